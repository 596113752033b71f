"""One exception tree: every bad argument is a ``StreamingConfigError``, and
everything the library raises on purpose is a ``StreamingError``."""

from __future__ import annotations

import ast
import builtins
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

import streaming
import streaming.exceptions
from streaming import (
    Drain,
    EventSourceResponse,
    FileResponse,
    NDJSONResponse,
    ReplayBuffer,
    RequestBody,
    ServerSentEvent,
    StreamingConfigError,
    StreamingError,
    StreamingResponse,
    StreamPolicy,
    StreamRefused,
    UpstreamError,
)
from streaming.encoders import encode_comment, encode_event, encode_item
from streaming.formats import NDJSONFormat, SSEFormat, TextFormat
from streaming.integrations import ChatRelay, relay_response
from streaming.integrations.openai_relay import chunk_dict
from streaming.request_body import parse_json
from streaming.responses import ResponseHeaders
from streaming.tracing.wire import watch

PACKAGE = Path(streaming.__file__).parent


async def nothing() -> AsyncIterator[str]:
    yield ""


def sse(**kwargs: object) -> object:
    return EventSourceResponse(nothing(), **kwargs)  # type: ignore[arg-type]


def text(**kwargs: object) -> object:
    return StreamingResponse(nothing(), **kwargs)  # type: ignore[arg-type]


#: Every argument of the public API that is checked, given a value that cannot work.
BAD_ARGUMENTS: list[tuple[str, Callable[[], object]]] = [
    ("sse sep", lambda: sse(sep="x")),
    ("sse retry", lambda: sse(retry=-1)),
    ("sse retry type", lambda: sse(retry="5")),
    ("sse error_event", lambda: sse(error_event="a\nb")),
    ("sse ping", lambda: sse(ping=-1)),
    ("sse ping nan", lambda: sse(ping=float("nan"))),
    ("sse send_timeout", lambda: sse(send_timeout=0)),
    ("sse format beside settings", lambda: sse(format=SSEFormat(), retry=1)),
    ("sse content", lambda: EventSourceResponse("text")),
    ("sse generator function", lambda: EventSourceResponse(nothing)),  # type: ignore[arg-type]
    ("status_code", lambda: text(status_code=99)),
    ("status_code type", lambda: text(status_code="200")),
    ("commit_deadline", lambda: text(commit_deadline=-1)),
    ("cleanup_timeout", lambda: text(cleanup_timeout=None)),
    ("cleanup_timeout inf", lambda: text(cleanup_timeout=float("inf"))),
    ("batch", lambda: text(batch="yes")),
    ("header", lambda: text(headers={"x": "a\r\nb"})),
    ("header name", lambda: text(headers={"a b": "c"})),
    ("media_type", lambda: text(media_type="text/plain\n")),
    ("content", lambda: StreamingResponse(b"bytes")),
    ("content type", lambda: StreamingResponse(42)),  # type: ignore[arg-type]
    ("ndjson content", lambda: NDJSONResponse("text")),
    ("set header", lambda: ResponseHeaders([]).__setitem__("x", "\n")),
    ("policy", lambda: StreamPolicy(ping_interval=-1)),
    ("text charset", lambda: TextFormat(charset="nope")),
    ("ndjson charset", lambda: NDJSONFormat(charset="nope")),
    ("sse format sep", lambda: SSEFormat(sep="")),
    ("encoder sep", lambda: encode_item("x", sep="\t")),
    ("event sep", lambda: encode_event(ServerSentEvent("x"), sep="\t")),
    ("comment sep", lambda: encode_comment("x", "\t")),
    ("StreamRefused status", lambda: StreamRefused(200)),
    ("StreamRefused status type", lambda: StreamRefused("404")),  # type: ignore[arg-type]
    ("UpstreamError status", lambda: UpstreamError(302, "moved")),
    ("Drain grace", lambda: Drain(grace=0)),
    ("Drain grace inf", lambda: Drain(grace=float("inf"))),
    ("ReplayBuffer max_events", lambda: ReplayBuffer(max_events=0)),
    ("ReplayBuffer max_age", lambda: ReplayBuffer(max_age=-1)),
    ("ReplayBuffer max_age type", lambda: ReplayBuffer(max_age="1")),  # type: ignore[arg-type]
    ("ReplayBuffer event without id", lambda: ReplayBuffer().append(ServerSentEvent("x"))),
    ("relay mode", lambda: relay_response(nothing(), "xml")),  # type: ignore[arg-type]
    ("relay timeout", lambda: relay_response(nothing(), first_token_timeout=-1)),
    ("relay chunk", lambda: chunk_dict(["not", "a", "chunk"])),
    ("ChatRelay timeout", lambda: ChatRelay(object(), inactivity_timeout=0)),  # type: ignore[arg-type]
    ("ChatRelay retries", lambda: ChatRelay(object(), max_retries=-1)),  # type: ignore[arg-type]
    ("wire url", lambda: anyio.run(watch, "ftp://example")),
    ("file chunk_size", lambda: FileResponse(__file__, chunk_size=0)),
    ("body max_size", lambda: RequestBody({}, nothing, max_size=-1)),  # type: ignore[arg-type]
    ("body idle_timeout", lambda: RequestBody({}, nothing, idle_timeout=0)),  # type: ignore[arg-type]
    ("json max_depth", lambda: parse_json(b"{}", max_depth=0)),
]


@pytest.mark.parametrize("build", [b for _, b in BAD_ARGUMENTS], ids=[n for n, _ in BAD_ARGUMENTS])
def test_every_bad_argument_is_a_config_error(build: Callable[[], object]) -> None:
    with pytest.raises(StreamingConfigError):
        build()


def test_every_exception_class_is_in_the_tree_and_says_who_raises_it() -> None:
    classes = [obj for _, obj in inspect.getmembers(streaming.exceptions, inspect.isclass)
               if obj.__module__ == "streaming.exceptions"]
    assert len(classes) >= 14
    for cls in classes:
        assert issubclass(cls, StreamingError) or cls is streaming.StreamingWarning, cls
        assert cls.__doc__ and len(cls.__doc__) > 40, f"{cls.__name__} needs a docstring"


#: Raised on purpose and not a StreamingError, each for a reason of its own.
NOT_IN_THE_TREE = {
    ("__main__.py", "SystemExit"),  # the command line exits with its status
    ("testing/client.py", "OSError"),  # the fake server imitates an ASGI 2.4 server
    ("testing/client.py", "RuntimeError"),  # an app that never started a response
    ("testing/openai_server.py", "TimeoutError"),  # the test server's own wait
    ("testing/openai_server.py", "IndexError"),  # its log is a sequence: a number not held
    # An unknown keyword argument, as Python reports one (EventSourceResponse
    # takes sse-starlette's option names through **options to name their twins).
    ("responses/sse.py", "TypeError"),
}

#: Python's protocols speak these: a mapping's missing key, an iterator's end,
#: an abstract method, a line that cannot run.
PROTOCOL = {"KeyError", "StopIteration", "StopAsyncIteration", "NotImplementedError",
            "AssertionError"}


def raised_builtins() -> set[tuple[str, str]]:
    """(module path, class name) of every ``raise Name(...)`` of a built-in
    exception in the package (a module's own internal exception classes, caught
    where they are raised, and re-raised variables are not built-ins)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if (isinstance(target, ast.Name) and hasattr(builtins, target.id)
                        and target.id not in PROTOCOL):
                    found.add((path.relative_to(PACKAGE).as_posix(), target.id))
    return found


def test_everything_raised_on_purpose_is_a_streaming_error() -> None:
    assert raised_builtins() == NOT_IN_THE_TREE

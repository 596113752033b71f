"""``EventSourceResponse``: Server-Sent Events on the raw driver.

Where it deliberately differs from ``sse_starlette.EventSourceResponse``:

- nothing is patched at import time; shutdown is an explicit ``Drain`` handle,
  and everything runs on asyncio and trio (anyio only);
- keep-alive comments go out only after ``ping`` seconds of silence, through
  the same send path (and send timeout) as events, not on a fixed timer;
- a field the format cannot carry (a line break in ``event`` or ``id``) is an
  ``SSEEncodingError``, never silently stripped; plain strings are sent as they
  are; no ``Connection`` header (illegal over HTTP/2);
- ``Last-Event-ID`` is validated and handed to the producer; ``retry`` rides on
  the first event instead of a block of its own (a lone ``retry:`` block makes
  some clients dispatch an empty event);
- a producer error after the first event becomes an ``event: error`` before the
  stream is cut; before it, a real HTTP error status with a JSON body.

Its item shapes and options port: event dicts and event objects keep their
meaning (``encoders/sse_shapes``); ``ping_message_factory`` and
``client_close_handler_callable`` work as there; ``data_sender_callable``,
``shutdown_event`` and ``shutdown_grace_period`` fail in the constructor with
the equivalent named (the producer itself; a ``Drain``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from streaming._types import BackgroundTask, Message, OutcomeCallback, Scope
from streaming.drain import Drain
from streaming.driver import ContentStream, Driver, StreamPolicy
from streaming.exceptions import InvalidContentError, StreamingConfigError
from streaming.formats import Format, SSEFormat
from streaming.outcome import EndReason, Outcome
from streaming.responses.stream import StreamingResponse, check_content
from streaming.resume import read_last_event_id

#: A producer factory: gets the validated ``Last-Event-ID`` (or ``None``), and
#: the request's ASGI scope as ``scope=`` if it has a parameter of that name.
ResumableContent = Callable[[str | None], ContentStream]


class EventSourceResponse(StreamingResponse):
    """Stream items as ``text/event-stream``.

    Items may be ``ServerSentEvent``, ``str`` (sent as ``data``), pre-encoded
    ``bytes`` (untouched), sse-starlette's event dicts and event objects and
    FastAPI's ``ServerSentEvent`` (with their meaning: ``encoders/sse_shapes``),
    or ``dict``/``list`` data when ``json_data=True``.
    ``content`` may also be a callable taking the request's validated
    ``Last-Event-ID`` and returning the producer, so a reconnecting client
    resumes where it left off.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: ContentStream | ResumableContent,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        *,
        ping: float | None = 15.0,
        send_timeout: float | None = 30.0,
        retry: int | None = None,
        sep: str | None = "\n",
        json_data: bool = False,
        error_event: str | None = "error",
        batch: bool = False,
        commit_deadline: float | None = 1.0,
        cleanup_timeout: float = 5.0,
        drain: Drain | None = None,
        on_outcome: OutcomeCallback | None = None,
        format: Format | None = None,
        ping_message_factory: Callable[[], object] | None = None,
        client_close_handler_callable: Callable[[Message], Awaitable[None]] | None = None,
        **sse_starlette_options: object,
    ) -> None:
        _refuse(sse_starlette_options)
        sep = "\n" if sep is None else sep  # sse-starlette: None is the default
        if format is None:
            sse = SSEFormat(sep=sep, json_data=json_data, retry=retry, error_event=error_event,
                            ping_message=ping_message_factory)
            format = _DEFAULT if sse == _DEFAULT else sse
        elif (sep, json_data, retry, error_event, ping_message_factory) != (
                "\n", False, None, "error", None):
            raise StreamingConfigError(
                "sep, json_data, retry, error_event and ping_message_factory are settings "
                "of the format: give them to the SSEFormat passed as format=, not beside it")
        if client_close_handler_callable is not None:
            on_outcome = _on_close(client_close_handler_callable, on_outcome)
        self._ping = ping or None
        super().__init__(
            content,  # type: ignore[arg-type]  # a factory is resolved per request
            status_code, headers, media_type, background,
            commit_deadline=commit_deadline, cleanup_timeout=cleanup_timeout,
            send_timeout=send_timeout, batch=batch, drain=drain, on_outcome=on_outcome,
            format=format,
        )
        given = {name for name, _ in self.raw_headers}
        self.raw_headers[:0] = [pair for pair in _SSE_HEADERS if pair[0] not in given]
        self.last_event_id: str | None = None

    def _policy(self, **settings: Any) -> StreamPolicy:
        return StreamPolicy(ping_interval=self._ping, **settings)

    @staticmethod
    def _check_content(content: object) -> Any:
        # A factory is called with Last-Event-ID at request time, checked then.
        return content if _is_factory(content) else check_content(content)

    def _content_for(self, scope: Scope, driver: Driver) -> ContentStream:
        content: Any = self.body_iterator
        if not _is_factory(content):
            return content  # type: ignore[no-any-return]
        self.last_event_id = read_last_event_id(scope)
        takes_offers = getattr(content, "takes_offers", None)
        if takes_offers is not None:  # a hub subscriber (offers: driver/offers.py)
            offer = driver.accept_offers() if takes_offers else None
            return check_content(content(self.last_event_id, scope=scope, offer=offer))
        if _takes_scope(content):  # authorization needs the request
            return check_content(content(self.last_event_id, scope=scope))
        return check_content(content(self.last_event_id))


#: sse-starlette's options that have another shape here: what to use instead.
_EQUIVALENTS = {
    "data_sender_callable": (
        "here the producer (content) is the one source of items: yield from it, or pass "
        "the receive end of an anyio memory object stream as content and send into it "
        "from the task that has the data"),
    "shutdown_event": (
        "pass drain=Drain(final=<farewell event>, grace=<seconds>) and use drain.lifespan as "
        "the app's lifespan: on SIGTERM the drain ends the stream with the farewell; a "
        "producer that wants to know can await drain.wait_for_drain()"),
    "shutdown_grace_period": (
        "the drain's grace is the equivalent: drain=Drain(grace=<seconds>), with "
        "drain.lifespan as the app's lifespan"),
}


def _refuse(options: Mapping[str, object]) -> None:
    """Fail at construction for sse-starlette's options that work differently
    here, naming the equivalent; any other name is a plain ``TypeError``."""
    for name in options:
        if name not in _EQUIVALENTS:
            raise TypeError(
                f"EventSourceResponse.__init__() got an unexpected keyword argument {name!r}")
        raise StreamingConfigError(f"sse-starlette's {name} has no twin here: "
                                   f"{_EQUIVALENTS[name]}")


def _on_close(handler: Callable[[Message], Awaitable[None]],
              on_outcome: OutcomeCallback | None) -> OutcomeCallback:
    """``on_outcome`` that also awaits sse-starlette's ``client_close_handler_callable``
    with the ``http.disconnect`` message when the client left (after the producer
    was closed, where sse-starlette calls it as the message arrives)."""

    async def notify(outcome: Outcome) -> None:
        if on_outcome is not None:
            result = on_outcome(outcome)
            if inspect.isawaitable(result):
                await result
        if outcome.reason is EndReason.CLIENT_DISCONNECTED:
            await handler({"type": "http.disconnect"})

    return notify


def _is_factory(content: object) -> bool:
    """A callable that is not itself iterable is a producer factory, called with
    the ``Last-Event-ID``. A generator function passed without calling it is
    the common slip: it is refused here with a message saying so."""
    iterable = hasattr(content, "__aiter__") or hasattr(content, "__iter__")
    if not callable(content) or iterable:
        return False
    if _takes_no_argument(content):
        raise InvalidContentError(
            f"{getattr(content, '__name__', content)!r} takes no argument: pass the "
            "producer itself (call it), or a factory taking the Last-Event-ID")
    return True


def _takes_scope(function: Callable[..., object]) -> bool:
    try:
        return "scope" in inspect.signature(function).parameters
    except ValueError:
        return False


def _takes_no_argument(function: Callable[..., object]) -> bool:
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        return True
    except ValueError:  # no signature (a builtin): let the call decide
        return False
    return False


#: Our defaults under the caller's headers: no caching (WHATWG 9.2 advises
#: against caching event streams) and no proxy buffering (nginx honours
#: ``X-Accel-Buffering``), so events reach the client as they are sent. Shared
#: immutable pairs: thousands of idle streams need no copy of their own.
_SSE_HEADERS = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))

_DEFAULT = SSEFormat()

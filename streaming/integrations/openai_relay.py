"""Relay an OpenAI-compatible chat-completion stream to a reader, and stop paying
the moment the reader leaves.

The tutorial's card 7 reads ``client.chat.completions.create(stream=True)`` and
yields each delta. Three things that card leaves out are what this module adds:

- **The upstream call happens inside the producer**, before its first yield.
  An upstream failure before the first token (401, 429, 5xx, connection refused,
  timeout) is raised there as an ``UpstreamError``, and the response's deferred
  header commit turns it into the reader's HTTP status with a JSON error body.
  After tokens have flowed the status is out, so the error becomes an in-band
  error (an SSE ``error`` event, an NDJSON error line, or the API's own
  ``data: {"error": ...}`` in proxy mode) and the stream is cut.
- **A reader that leaves closes the upstream at once.** The driver cancels the
  producer at its await, even during the silent prefill before the first
  token; the producer's ``finally`` closes the SDK's HTTP response, and closing
  an unfinished response makes httpx close the TCP connection (it cannot go
  back to the pool), so the model server sees its client leave and stops
  generating tokens nobody will read.
- **Timeouts that mean something for a model**: connect, first token (the
  prefill), and inactivity between chunks.
- **The upstream is not trusted either.** Its error text (which may quote the
  operator's key, or its own internals) goes to the log with secrets masked;
  readers get a generic OpenAI-shaped message per status class, unless the
  relay is built with ``expose_upstream_errors=True`` for trusted readers.
  One event (or a line without end) is bounded by ``max_event_size``; a chunk
  without the shape the relay reads is a 502; either way the upstream is closed.

``relay_events`` is the producer over any async iterable of chunks
(``chat.completion.chunk`` mappings, or pydantic models such as the SDK's
``ChatCompletionChunk``); ``relay_response`` wraps it in the response for a
mode; ``ChatRelay`` adds the official SDK's ``AsyncOpenAI`` as the source.
The ``openai`` package is imported only when a ``ChatRelay`` builds its client
or an SDK exception is mapped, so the rest works without it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from streaming._checks import check_seconds
from streaming._types import OutcomeCallback, RawHeaders
from streaming.encoders.ndjson import encode_ndjson_line
from streaming.encoders.sse import ServerSentEvent, encode_event
from streaming.encoders.sse_parser import SSEParser
from streaming.exceptions import (
    InvalidJSONError,
    SSELimitError,
    StreamingConfigError,
    UpstreamError,
)
from streaming.formats import NDJSONFormat, SSEFormat, describe_error, error_headers
from streaming.integrations import openai_wire as wire
from streaming.request_body import parse_json
from streaming.responses import EventSourceResponse, NDJSONResponse, StreamingResponse

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

#: ``sse``: ``delta``/``usage``/``done`` events for a browser; ``ndjson``: the
#: same as JSON lines; ``openai``: the upstream's chunks and ``[DONE]`` as they
#: came, for any OpenAI client pointed at the relay.
RelayMode = Literal["sse", "ndjson", "openai"]
RELAY_MODES: tuple[RelayMode, ...] = ("sse", "ndjson", "openai")

#: Closing an HTTP response only closes a socket; this bounds it all the same.
_CLOSE_LIMIT = 2.0

#: The most of one upstream event (or of a line still without its end) the
#: relay holds before it gives up on the upstream.
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024

logger = logging.getLogger("streaming")

_END = object()


@dataclass(slots=True)
class RelayResult:
    """What a relay has passed on so far: filled in chunk by chunk, complete
    once the stream completed (a ``background`` task receives it then)."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    chunks: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: Mapping[str, Any]) -> str:
        """Take in one chunk; return its content delta (``""`` if none)."""
        self.chunks += 1
        choice = _first_choice(chunk)
        content = (choice.get("delta") or {}).get("content") or ""
        if content:
            self.parts.append(content)
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        if chunk.get("usage"):
            self.usage = dict(chunk["usage"])
        return str(content)


# -- the producer ------------------------------------------------------------------


async def relay_events(
    chunks: AsyncIterable[Any],
    mode: RelayMode = "sse",
    *,
    first_token_timeout: float | None = None,
    inactivity_timeout: float | None = None,
    result: RelayResult | None = None,
    expose_upstream_errors: bool = False,
    redact: Sequence[str] = (),
) -> AsyncIterator[Any]:
    """Yield the items of ``mode`` for each upstream chunk, then the ending.

    Upstream errors and timeouts come out as ``UpstreamError``; ``chunks`` is
    closed (``aclose()``) however this generator ends. Only the first choice
    is relayed in ``sse``/``ndjson`` mode; ``openai`` mode passes chunks whole,
    once their shape is checked (``check_chunk``). An upstream's error text is
    logged with ``redact`` strings and credentials masked, and told to the
    reader only with ``expose_upstream_errors``.
    """
    spec = _mode(mode)
    items, ending = spec.items, spec.ending
    result = RelayResult() if result is None else result
    trust = _Trust(expose_upstream_errors, tuple(s for s in redact if s))
    upstream = _checked_chunks(chunks, first_token_timeout, inactivity_timeout, trust)
    try:
        async for chunk in upstream:
            for item in items(chunk, result.add(chunk)):
                yield item
        for item in ending(result):
            yield item
    finally:
        await _aclose(upstream)


async def _checked_chunks(chunks: AsyncIterable[Any], first_token_timeout: float | None,
                          inactivity_timeout: float | None, trust: _Trust,
                          ) -> AsyncIterator[dict[str, Any]]:
    """``chunks`` as checked dicts, with the timeouts applied and errors mapped."""
    iterator = aiter(chunks)
    limit, what = first_token_timeout, "first_token_timeout"
    try:
        while (item := await _next_within(iterator, limit, what)) is not _END:
            # A chunk that arrived in the same tick as the reader's disconnect
            # comes back from its await uncancelled (trio delivers cancellation
            # at the next checkpoint): stop here instead of yielding a chunk
            # the driver would drop.
            await checkpoint_if_cancelled()
            chunk = chunk_dict(item)
            if "error" in chunk:  # the API's way to fail mid-stream
                raise _in_stream_error(chunk["error"], trust)
            yield check_chunk(chunk)
            limit, what = inactivity_timeout, "inactivity_timeout"
    except Exception as exc:
        error = upstream_error_for(exc, expose_upstream_errors=trust.expose,
                                   redact=trust.redact)
        if error is None or error is exc:
            raise
        # Not chained: the SDK's exception quotes the upstream's text, which
        # would reach the log unmasked with the traceback.
        raise error from None
    finally:
        await _aclose(iterator)


async def _next_within(iterator: AsyncIterator[Any], limit: float | None, what: str) -> Any:
    if limit is None:
        return await anext(iterator, _END)
    with anyio.move_on_after(limit):
        return await anext(iterator, _END)
    raise UpstreamError(504, _TIMEOUT_MESSAGES[what].format(limit), type="timeout", code=what)


_TIMEOUT_MESSAGES = {
    "first_token_timeout": "The upstream model sent no token within {} s.",
    "inactivity_timeout": "The upstream model went silent for {} s.",
}


async def _aclose(iterator: object) -> None:
    # Shielded: this runs in a finally that may be unwinding a cancellation
    # (the reader left), where any unshielded await would be cancelled again
    # before the upstream connection was closed. Bounded all the same.
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with anyio.move_on_after(_CLOSE_LIMIT, shield=True):
            await close()


def chunk_dict(chunk: object) -> dict[str, Any]:
    """A chunk as a wire-format dict: a mapping as is, a pydantic model (the
    SDK's ``ChatCompletionChunk``) with exactly the fields the upstream sent."""
    if isinstance(chunk, Mapping):
        return dict(chunk)
    dump = getattr(chunk, "model_dump", None)
    if dump is None:
        raise StreamingConfigError(f"a chat.completion.chunk must be a mapping or a pydantic "
                                   f"model, not {type(chunk).__name__}")
    return dict(dump(mode="json", exclude_unset=True, by_alias=True))


def check_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """``chunk`` if it has the shape the relay reads (``choices`` a list of
    objects, each ``delta`` an object whose ``content`` is text, ``usage`` an
    object), else ``UpstreamError`` 502: a chunk such as
    ``{"choices": [{"delta": "str"}]}`` is the upstream's fault, not a 500."""
    choices = chunk.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise _malformed("'choices' is not a list")
    for choice in choices or ():
        if not isinstance(choice, dict):
            raise _malformed("a choice is not an object")
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise _malformed("a 'delta' is not an object")
        if delta and not isinstance(delta.get("content"), str | None):
            raise _malformed("a 'delta.content' is not text")
        if not isinstance(choice.get("finish_reason"), str | None):
            raise _malformed("a 'finish_reason' is not text")
    if not isinstance(chunk.get("usage"), dict | None):
        raise _malformed("'usage' is not an object")
    return chunk


def _malformed(what: str) -> UpstreamError:
    return UpstreamError(502, f"The upstream API sent a malformed chunk: {what}.",
                         type="upstream_error", code="upstream_malformed_chunk")


def _first_choice(chunk: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = chunk.get("choices") or []
    return choices[0] if choices and isinstance(choices[0], Mapping) else {}


# -- the three modes' items: pure -----------------------------------------------------------


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _sse_items(chunk: Mapping[str, Any], content: str) -> list[ServerSentEvent]:
    events = [ServerSentEvent(_json({"content": content}), "delta")] if content else []
    if chunk.get("usage"):
        events.append(ServerSentEvent(_json(chunk["usage"]), "usage"))
    return events


def _sse_ending(result: RelayResult) -> list[ServerSentEvent]:
    return [ServerSentEvent(_json({"finish_reason": result.finish_reason}), "done")]


def _ndjson_items(chunk: Mapping[str, Any], content: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [{"type": "delta", "content": content}] if content else []
    if chunk.get("usage"):
        lines.append({"type": "usage", "usage": chunk["usage"]})
    return lines


def _ndjson_ending(result: RelayResult) -> list[dict[str, Any]]:
    return [{"type": "done", "finish_reason": result.finish_reason}]


def _openai_items(chunk: Mapping[str, Any], content: str) -> list[bytes]:
    return [wire.sse_data(chunk)]


def _openai_ending(result: RelayResult) -> list[bytes]:
    return [wire.DONE]


# -- errors -------------------------------------------------------------------------


def error_fields(error: BaseException) -> tuple[int, dict[str, str | None]]:
    """The status and the OpenAI-shaped error object the reader is told about.
    An ``UpstreamError`` speaks for itself; anything else is a bug whose text
    stays in the log (``describe_error``)."""
    if isinstance(error, UpstreamError):
        return error.status_code, error.body()["error"]
    status, message = describe_error(error)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return status, wire.error_object(message, kind)["error"]


def error_response(error: BaseException) -> tuple[RawHeaders, bytes]:
    """The error response before the first token, in every mode: the status
    with the OpenAI API's error body (what an OpenAI client expects)."""
    _, fields = error_fields(error)
    body = json.dumps({"error": fields}, ensure_ascii=False).encode()
    return error_headers(error, b"application/json", body), body


def upstream_error_for(error: BaseException, *, expose_upstream_errors: bool = False,
                       redact: Sequence[str] = ()) -> UpstreamError | None:
    """The ``UpstreamError`` an upstream failure stands for, or ``None`` for an
    error that is not the upstream's (a bug: it is re-raised as it is). What
    the upstream said is logged (masked) and told only if exposed."""
    if isinstance(error, UpstreamError):
        return error
    # No SDK exception can exist unless the SDK was imported: the relay then
    # needs neither the SDK nor a guess.
    if "openai" not in sys.modules:
        return None
    import openai

    trust = _Trust(expose_upstream_errors, tuple(s for s in redact if s))
    if isinstance(error, openai.APIStatusError):
        return _from_status_error(error, trust)
    if isinstance(error, openai.APIConnectionError):  # APITimeoutError included
        return _from_connection_error(error, isinstance(error, openai.APITimeoutError))
    if isinstance(error, openai.APIError):  # an error object sent inside the stream
        return trust.told(502, error.message, error.type, error.param, error.code)
    if type(error).__module__.partition(".")[0] in _TRANSPORTS:
        # Raised while the relay reads the event stream itself (ChatRelay.upstream).
        return _from_connection_error(error, "Timeout" in type(error).__name__)
    return None


#: The SDK's HTTP stacks, whose exceptions say how a connection failed.
_TRANSPORTS = frozenset({"httpx", "httpx2", "httpcore", "httpcore2"})


def _from_status_error(error: Any, trust: _Trust) -> UpstreamError:
    # The SDK keeps the body's "error" member; its own message prefixes the
    # status and the whole body, which the reader does not need twice.
    body = error.body if isinstance(error.body, Mapping) else {}
    message = str(body["message"]) if isinstance(body.get("message"), str) else error.message
    status = error.status_code if 400 <= error.status_code <= 599 else 502
    headers = {name: value for name, value in error.response.headers.items()
               if name.lower() in ("retry-after", "retry-after-ms")}
    return trust.told(status, message, error.type, error.param, error.code, headers)


def _in_stream_error(error: object, trust: _Trust) -> UpstreamError:
    fields = error if isinstance(error, Mapping) else {"message": error}
    message = fields.get("message")
    return trust.told(502, message if isinstance(message, str) else json.dumps(fields),
                      fields.get("type"), fields.get("param"), fields.get("code"))


# -- what readers are told: the upstream's words stay in the log -----------------------

#: The sentence a reader gets per upstream status (others: by class).
_TOLD = {
    400: "The upstream API rejected the request.",
    401: "The relay could not authenticate with the upstream API.",
    403: "The upstream API refused the request.",
    404: "The upstream API does not know this model or endpoint.",
    413: "The request is too large for the upstream API.",
    429: "The upstream API is rate limiting requests; retry later.",
    502: "The upstream API failed while streaming.",
    503: "The upstream API is overloaded; retry later.",
}

#: type, param and code are passed on only when they look like the API's own
#: identifiers: a hostile upstream cannot hide a sentence in them.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")

#: Credentials as error texts quote them: a scheme and its token, a key=value
#: pair under a secret's name, an OpenAI-style key.
_SECRET = re.compile(
    r"(?i)\b(bearer|basic|token)\s+[^\s\"',;]+"
    r"|\b(authorization|api[_-]?key|password|passwd|secret|access[_-]?token)"
    r"(\"?\s*[:=]\s*\"?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;]+"
    r"|\bsk-[A-Za-z0-9_\-]{4,}")


def mask_secrets(text: str, redact: Sequence[str] = ()) -> str:
    """``text`` with every string in ``redact`` (the relay's own API key) and
    anything shaped like a credential replaced by ``***``."""
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    if match[1]:
        return f"{match[1]} ***"
    if match[2]:
        return f"{match[2]}{match[3]}***"
    return "sk-***"


def _identifier(value: object) -> str | None:
    return value if isinstance(value, str) and _IDENTIFIER.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class _Trust:
    """How much of the upstream's words readers may hear, and what to mask."""

    expose: bool = False
    redact: tuple[str, ...] = ()

    def told(self, status: int, message: str, kind: object, param: object, code: object,
             headers: Mapping[str, str] | None = None) -> UpstreamError:
        said = mask_secrets(message, self.redact)
        # %r: whatever the upstream sent is escaped before it reaches the log.
        logger.warning("the upstream API answered %d: %r", status, said)
        generic = _TOLD.get(status) or ("The upstream API failed." if status >= 500
                                        else "The upstream API rejected the request.")
        fallback = "server_error" if status >= 500 else "invalid_request_error"
        return UpstreamError(status, said if self.expose else generic,
                             type=_identifier(kind) or fallback, param=_identifier(param),
                             code=_identifier(code), headers=headers, upstream_message=said)


#: httpx exception name -> (status, code, message) for a failed connection.
_CONNECTION_FAILURES = {
    "ConnectError": (502, "upstream_connect_error", "Could not connect to the upstream API."),
    "ConnectTimeout": (504, "upstream_connect_timeout",
                       "Timed out connecting to the upstream API."),
    "RemoteProtocolError": (502, "upstream_connection_lost",
                            "The upstream API closed the connection mid-response."),
    "ReadError": (502, "upstream_connection_lost",
                  "The upstream API closed the connection mid-response."),
}


def _from_connection_error(error: BaseException, timed_out: bool) -> UpstreamError:
    # The SDK chains the transport's exception (httpx's or httpx2's: matched by
    # name, so both work) as the cause; it says which way the connection failed.
    cause: BaseException | None = error
    while cause is not None:
        known = _CONNECTION_FAILURES.get(type(cause).__name__)
        if known is not None:
            status, code, message = known
            return UpstreamError(status, message, type="upstream_error", code=code)
        cause = cause.__cause__ or cause.__context__
    if timed_out:
        return UpstreamError(504, "The upstream API timed out.", type="timeout",
                             code="upstream_timeout")
    return UpstreamError(502, "The connection to the upstream API failed.",
                         type="upstream_error", code="upstream_connection_error")


# -- the modes' formats: pure, table-tested -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySSEFormat(SSEFormat):
    """``sse`` mode: an error after the first token is an ``error`` event whose
    data is ``{"status", "message", "type", "param", "code"}``; before it, the
    status with the OpenAI error body."""

    def error_marker(self, error: BaseException) -> bytes | None:
        status, fields = error_fields(error)
        data = _json({"status": status, **fields})
        return encode_event(ServerSentEvent(data, "error"), sep=self.sep)

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        return error_response(error)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayNDJSONFormat(NDJSONFormat):
    """``ndjson`` mode: an error after the first token is the line
    ``{"type": "error", "error": {"status", "message", "type", "param", "code"}}``."""

    def error_marker(self, error: BaseException) -> bytes | None:
        status, fields = error_fields(error)
        return encode_ndjson_line({"type": "error", "error": {"status": status, **fields}})

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        return error_response(error)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIFormat(SSEFormat):
    """``openai`` mode: the API's own stream, so the SDK raises on an error
    mid-stream (``data: {"error": ...}``) and on an error status (the API's
    error body), exactly as it would talking to the API."""

    def error_marker(self, error: BaseException) -> bytes | None:
        return wire.sse_data({"error": error_fields(error)[1]})

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        return error_response(error)


@dataclass(frozen=True, slots=True)
class _Mode:
    """One relay mode: the items per upstream chunk and at the end, and the
    format that carries them (an event stream, or JSON lines)."""

    items: Callable[[Mapping[str, Any], str], list[Any]]
    ending: Callable[[RelayResult], list[Any]]
    format: SSEFormat | NDJSONFormat


_MODES: dict[str, _Mode] = {
    "sse": _Mode(_sse_items, _sse_ending, RelaySSEFormat()),
    "ndjson": _Mode(_ndjson_items, _ndjson_ending, RelayNDJSONFormat()),
    "openai": _Mode(_openai_items, _openai_ending, OpenAIFormat()),
}


def _check_timeouts(**timeouts: float | None) -> None:
    for name, value in timeouts.items():
        check_seconds(name, value)


def _mode(mode: str) -> _Mode:
    spec = _MODES.get(mode) if isinstance(mode, str) else None
    if spec is None:
        raise StreamingConfigError(f"mode must be one of {RELAY_MODES}, not {mode!r}")
    return spec


RelayBackground = Callable[[RelayResult], Awaitable[Any]]


def relay_response(
    chunks: AsyncIterable[Any],
    mode: RelayMode = "sse",
    *,
    first_token_timeout: float | None = None,
    inactivity_timeout: float | None = None,
    ping: float | None = 15.0,
    headers: Mapping[str, str] | None = None,
    result: RelayResult | None = None,
    background: RelayBackground | None = None,
    on_outcome: OutcomeCallback | None = None,
    expose_upstream_errors: bool = False,
    redact: Sequence[str] = (),
) -> StreamingResponse:
    """The response that relays ``chunks`` in ``mode``.

    Headers wait for the first item (no commit deadline), so any upstream
    failure before it is a real status; in the SSE modes a keep-alive comment
    after ``ping`` seconds of silence commits them. ``background`` gets the
    ``RelayResult`` and runs only after a completed stream, never after the
    reader left or the upstream failed (card 10 of the tutorial).
    """
    spec = _mode(mode)  # a bad mode fails here, not when the response runs
    _check_timeouts(first_token_timeout=first_token_timeout,
                    inactivity_timeout=inactivity_timeout)
    result = RelayResult() if result is None else result
    producer = relay_events(chunks, mode, first_token_timeout=first_token_timeout,
                            inactivity_timeout=inactivity_timeout, result=result,
                            expose_upstream_errors=expose_upstream_errors, redact=redact)
    task = None if background is None else functools.partial(background, result)
    if isinstance(spec.format, NDJSONFormat):
        return NDJSONResponse(producer, headers=headers, background=task, commit_deadline=None,
                              on_outcome=on_outcome, format=spec.format)
    return EventSourceResponse(producer, headers=headers, background=task, ping=ping,
                               commit_deadline=None, on_outcome=on_outcome, format=spec.format)


# -- the SDK as the source --------------------------------------------------------------


class ChatRelay:
    """Relay chat completions from an OpenAI-compatible API through the
    official SDK's ``AsyncOpenAI``.

    Give a ``client``, or let the relay build one from ``base_url`` and
    ``api_key`` (each read by the SDK from ``OPENAI_BASE_URL`` /
    ``OPENAI_API_KEY`` when ``None``) with ``max_retries`` (0 by default: the
    reader gets the error and its ``Retry-After`` at once and decides).
    ``model`` fills in a request body without one. Timeouts, in seconds,
    ``None`` for none: ``connect_timeout`` for the TCP connection,
    ``first_token_timeout`` from the request to the first chunk (the prefill),
    ``inactivity_timeout`` between chunks. They apply to a given client too.
    ``max_event_size`` bounds one upstream event (or a line without end);
    ``expose_upstream_errors`` tells readers the upstream's own error text
    (credentials masked) instead of a generic sentence: for trusted readers only.
    """

    def __init__(
        self,
        client: AsyncOpenAI | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        connect_timeout: float | None = 10.0,
        first_token_timeout: float | None = 60.0,
        inactivity_timeout: float | None = 30.0,
        max_retries: int = 0,
        ping: float | None = 15.0,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        expose_upstream_errors: bool = False,
    ) -> None:
        _check_timeouts(connect_timeout=connect_timeout, first_token_timeout=first_token_timeout,
                        inactivity_timeout=inactivity_timeout)
        check_seconds("ping", ping, zero_ok=True)
        if type(max_retries) is not int or max_retries < 0:
            raise StreamingConfigError(f"max_retries must be an int >= 0, not {max_retries!r}")
        if type(max_event_size) is not int or max_event_size < 1:
            raise StreamingConfigError(f"max_event_size must be an int >= 1, "
                                       f"not {max_event_size!r}")
        self.max_event_size = max_event_size
        self.expose_upstream_errors = expose_upstream_errors
        self._owns_client = client is None
        self.client = client if client is not None else _build_client(base_url, api_key,
                                                                       max_retries)
        self.model = model
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.inactivity_timeout = inactivity_timeout
        self.ping = ping

    async def __aenter__(self) -> ChatRelay:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connection pool, if the relay built the client."""
        if self._owns_client:
            await self.client.close()

    def respond(
        self,
        body: Mapping[str, Any],
        mode: RelayMode = "sse",
        *,
        upstream_headers: Mapping[str, str] | None = None,
        result: RelayResult | None = None,
        background: RelayBackground | None = None,
        on_outcome: OutcomeCallback | None = None,
    ) -> StreamingResponse:
        """The response relaying the completion of ``body`` (chat-completions
        parameters, sent upstream as they are: filter what readers may set).
        ``upstream_headers`` are added to the upstream request. Nothing is sent
        upstream until the response runs."""
        if mode == "openai" and body.get("stream") is not True:
            chunks: AsyncIterable[Any] = _refuse(UpstreamError(
                400, "This endpoint only streams: send \"stream\": true.",
                type="invalid_request_error", param="stream", code="unsupported_value"))
        else:
            chunks = self.upstream(body, headers=upstream_headers,
                                   include_usage=mode != "openai")
        key = getattr(self.client, "api_key", None)
        return relay_response(chunks, mode, first_token_timeout=self.first_token_timeout,
                              inactivity_timeout=self.inactivity_timeout, ping=self.ping,
                              result=result, background=background, on_outcome=on_outcome,
                              expose_upstream_errors=self.expose_upstream_errors,
                              redact=[key] if isinstance(key, str) else [])

    async def upstream(self, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None,
                       include_usage: bool = False) -> AsyncIterator[dict[str, Any]]:
        """The upstream's chunks for ``body``, as wire-format dicts (an error
        object too: ``relay_events`` raises it). The SDK makes the request and
        raises for an error status; the event stream is read here, with a
        bounded parser, since the SDK's would hold a line without end whole.
        The HTTP response is closed when this generator ends, fails, is
        cancelled or is closed; an unfinished one takes its connection down."""
        stream = await self._create(body, headers, include_usage)
        parser = SSEParser(max_event_size=self.max_event_size)
        try:
            async for data in stream.response.aiter_bytes():
                for event in _events(parser, data, self.max_event_size):
                    if event.data.startswith("[DONE]"):
                        return
                    yield _chunk_json(event.data)
        finally:
            await _close_sdk_stream(stream)

    async def _create(self, body: Mapping[str, Any], headers: Mapping[str, str] | None,
                      include_usage: bool) -> AsyncStream[ChatCompletionChunk]:
        from openai import Timeout

        extra = {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}
        if include_usage:
            extra.setdefault("stream_options", {"include_usage": True})
        stream = await self.client.chat.completions.create(
            model=body.get("model", self.model),
            messages=body.get("messages"),  # type: ignore[arg-type]  # checked upstream
            stream=True,
            extra_body=extra,
            extra_headers=dict(headers or {}),
            # Read, write and pool waits are bounded by the relay's own
            # first-token and inactivity deadlines, whose errors say which.
            timeout=Timeout(None, connect=self.connect_timeout),
        )
        return cast("AsyncStream[ChatCompletionChunk]", stream)


def _build_client(base_url: str | None, api_key: str | None, max_retries: int) -> AsyncOpenAI:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries)


async def _close_sdk_stream(stream: AsyncStream[Any]) -> None:
    with anyio.move_on_after(_CLOSE_LIMIT, shield=True):
        await stream.close()
        # The SDK iterates through an async generator of its own; closing the
        # response leaves it suspended, and trio warns when it is garbage
        # collected unclosed. Close it too (it is already finished when the
        # cancellation went through it).
        inner = getattr(stream, "_iterator", None)
        if inner is not None and hasattr(inner, "aclose"):
            await inner.aclose()


def _events(parser: SSEParser, data: bytes, limit: int) -> list[ServerSentEvent]:
    try:
        return parser.feed(data)
    except SSELimitError:
        raise UpstreamError(502, f"The upstream API sent an event larger than {limit} "
                            "bytes.", type="upstream_error",
                            code="upstream_event_too_large") from None


def _chunk_json(data: str) -> dict[str, Any]:
    try:
        chunk = parse_json(data)  # strict: too deep or a lone surrogate is malformed too
    except InvalidJSONError as exc:
        raise _malformed(f"not JSON ({exc.detail})") from None
    if not isinstance(chunk, dict):
        raise _malformed("not a JSON object")
    return chunk


async def _refuse(error: UpstreamError) -> AsyncIterator[Any]:
    raise error
    yield  # unreachable: makes this an async generator

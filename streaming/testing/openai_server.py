"""A local OpenAI-compatible chat server: a plain ASGI app for demos and tests.

``LocalOpenAI`` answers ``POST /v1/chat/completions`` (``stream`` true or false)
in the real wire format (``streaming.integrations.openai_wire``), so the official
``openai`` SDK, or a relay in front of it, can be exercised over real HTTP with
no API key and no network. Replies come from a deterministic generator (by
default an echo of the prompt followed by a fixed text in English and Chinese),
with knobs for what a real model API does to its clients: a long silence before
the first token (prefill), a delay per token, an error status before streaming,
an error object mid-stream, and a connection dropped mid-stream. Each knob has a
server-wide default and, when the server is built for tests
(``fault_headers=True``), a per-request override header (``X-Local-Fail: 429``,
say), so one server can play every failure. Built without it (the default, as
the demo mounts it) the headers are ignored: anyone who reaches the server
could otherwise hold streams open or make it fail.

Its work is bounded whatever a client sends: a body of at most ``max_body``
bytes read within time limits (``streaming.RequestBody``), strict JSON, at most
``max_reply_tokens`` tokens per reply (the echo of the prompt is cut), delays
of at most ``MAX_DELAY`` seconds.

It also keeps a thread-safe ``RequestLog`` of the latest requests: when each
request started, how many tokens it was sent, and when and how it ended, with
``time.monotonic()`` stamps (the same clock in every thread of the process,
unlike trio's), so a test can
wait for "the upstream saw its client leave" and measure how long that took.

It is built on this library's own responses, with no framework: streams go out
through ``EventSourceResponse``, which also notices a client that leaves during
the prefill silence, and so records the moment its connection closed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import anyio

from streaming._types import Message, Receive, Scope, Send
from streaming.exceptions import (
    BodyIncompleteError,
    RequestBodyError,
    StreamingConfigError,
    UnsupportedScopeError,
    UpstreamError,
)
from streaming.integrations import openai_wire as wire
from streaming.request_body import RequestBody, parse_json
from streaming.responses import EventSourceResponse, StreamingResponse, send_whole

#: The reply when ``text`` is not given: card 7 of the tutorial, then English.
REPLY_TEXT = ("OpenAI 的 stream=True 参数开启流式模式，逐 token 返回生成内容。"
              "Streaming shows each token the moment the model writes it 🚀.")

ReplyText = str | Callable[[Sequence[Mapping[str, Any]]], str]

_CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
_MODEL_PATHS = ("/v1/models", "/models")

#: Bounds on the work one request can ask for.
MAX_BODY = 1 << 20
MAX_REPLY_TOKENS = 2048
MAX_ECHO = 2000  # characters of the prompt the default reply repeats
MAX_DELAY = 60.0  # seconds, for any delay a header or setting asks for


def echo_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The default reply: the last user message echoed (its first ``MAX_ECHO``
    characters), then ``REPLY_TEXT``."""
    prompt = wire.last_user_text(messages)
    if len(prompt) > MAX_ECHO:
        prompt = prompt[:MAX_ECHO] + "..."
    return f"You said: {prompt}\n\n{REPLY_TEXT}" if prompt else REPLY_TEXT


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the server does to one request (seconds; token counts from 0).

    ``fail_status``: answer with this 4xx/5xx before streaming, in the API's
    error shape. ``error_after_tokens``: after that many tokens send an error
    object in the stream and end it, as the API does. ``drop_after_tokens``:
    after that many tokens close the connection without ending the body.
    ``split_utf8``: write each event that holds a multi-byte character in two
    body messages, cut inside that character.
    """

    prefill_delay: float = 0.0
    token_delay: float = 0.0
    fail_status: int | None = None
    error_after_tokens: int | None = None
    drop_after_tokens: int | None = None
    split_utf8: bool = True

    def __post_init__(self) -> None:
        for name in ("prefill_delay", "token_delay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and 0 <= value <= MAX_DELAY):
                raise StreamingConfigError(f"{name} must be 0 to {MAX_DELAY:g} seconds, "
                                           f"not {value!r}")
        for name in ("error_after_tokens", "drop_after_tokens"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise StreamingConfigError(f"{name} must be an int >= 0 or None, not {value!r}")
        status = self.fail_status
        if status is not None and (type(status) is not int or not 400 <= status <= 599):
            raise StreamingConfigError(f"fail_status must be a 4xx or 5xx int, not {status!r}")


class _BadHeader(ValueError):
    """A fault header value that does not parse: answered with 400."""


def _seconds(text: str) -> float:
    # A plain decimal: float() alone takes "inf" (a stream held open forever),
    # "nan" (a crash in sleep), "1_0" and non-ASCII digits.
    if re.fullmatch(r"[0-9]{1,6}(?:\.[0-9]{1,6})?", text.strip()) is None:
        raise _BadHeader(text)
    value = float(text)
    if value > MAX_DELAY:
        raise _BadHeader(text)
    return value


def _count(text: str) -> int:
    if re.fullmatch(r"[0-9]{1,9}", text.strip()) is None:
        raise _BadHeader(text)
    return int(text)


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise _BadHeader(text)
    return value in ("1", "true", "yes")


#: Per-request override headers and the ``Behaviour`` field each sets; honoured
#: only by a server built with ``fault_headers=True``.
OVERRIDE_HEADERS: Mapping[str, tuple[str, Callable[[str], Any]]] = MappingProxyType({
    "x-local-prefill": ("prefill_delay", _seconds),
    "x-local-token-delay": ("token_delay", _seconds),
    "x-local-fail": ("fail_status", _count),
    "x-local-error-after": ("error_after_tokens", _count),
    "x-local-drop-after": ("drop_after_tokens", _count),
    "x-local-split-utf8": ("split_utf8", _switch),
})


class RequestEnd(enum.Enum):
    """How a request to the local server ended."""

    #: The whole reply and its terminator were handed to the server.
    COMPLETED = "completed"
    #: The client left (its connection closed) before the reply was complete.
    CLIENT_DISCONNECTED = "client_disconnected"
    #: Answered with an error status before any streaming.
    REFUSED = "refused"
    #: An error object was sent mid-stream (``error_after_tokens``).
    ERROR_EVENT = "error_event"
    #: The connection was dropped mid-stream (``drop_after_tokens``).
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it; times are ``time.monotonic()``."""

    index: int
    started_at: float
    stream: bool | None = None
    status: int | None = None
    tokens_sent: int = 0
    end: RequestEnd | None = None
    ended_at: float | None = None


class RequestLog:
    """A thread-safe record of the latest requests, for tests to read and wait on.

    Requests are numbered from 0 in arrival order; ``len()`` is how many have
    arrived, so ``len(log)`` is the number the next one gets. Only the newest
    ``keep`` records are held (every request adds one); an older number is an
    ``IndexError``. The ``wait_for_*`` methods block the calling thread (at
    most ``timeout`` seconds, then ``TimeoutError``); from async code call them
    through ``anyio.to_thread.run_sync`` so the event loop keeps running.
    """

    def __init__(self, keep: int = 1000) -> None:
        if type(keep) is not int or keep < 1:
            raise StreamingConfigError(f"keep must be an int >= 1, not {keep!r}")
        self.keep = keep
        self._records: OrderedDict[int, RequestRecord] = OrderedDict()
        self._arrived = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        with self._changed:
            return self._arrived

    def __getitem__(self, index: int) -> RequestRecord:
        with self._changed:
            return self._get(index)

    def _get(self, index: int) -> RequestRecord:
        number = index + self._arrived if index < 0 else index
        if number not in self._records:
            raise IndexError(f"request {index} is not held (the log keeps the latest "
                             f"{self.keep})")
        return self._records[number]

    def snapshot(self) -> list[RequestRecord]:
        """The records still held (the newest ``keep``), oldest first: a
        copy, taken in one step while requests go on arriving."""
        with self._changed:
            return list(self._records.values())

    def wait_for_start(self, index: int, timeout: float) -> RequestRecord:
        """Wait until request number ``index`` (from 0) has arrived."""
        return self._wait(index, lambda r: True, timeout, "arrive")

    def wait_for_tokens(self, index: int, count: int, timeout: float) -> RequestRecord:
        """Wait until request ``index`` has been sent ``count`` tokens."""
        return self._wait(index, lambda r: r.tokens_sent >= count, timeout, f"get {count} tokens")

    def wait_for_end(self, index: int, timeout: float) -> RequestRecord:
        """Wait until request ``index`` has ended, and return its record."""
        return self._wait(index, lambda r: r.end is not None, timeout, "end")

    def _wait(self, index: int, done: Callable[[RequestRecord], bool], timeout: float,
              what: str) -> RequestRecord:
        def ready() -> bool:
            return index < self._arrived and done(self._get(index))

        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                raise TimeoutError(f"request {index} did not {what} within {timeout} s")
            return self._get(index)

    # -- written by the server ------------------------------------------------

    def start(self) -> int:
        with self._changed:
            index = self._arrived
            self._arrived += 1
            self._records[index] = RequestRecord(index, time.monotonic())
            while len(self._records) > self.keep:
                self._records.popitem(last=False)
            self._changed.notify_all()
            return index

    def update(self, index: int, **changes: Any) -> None:
        with self._changed:
            if index in self._records:  # else long forgotten: nothing to update
                self._records[index] = dataclasses.replace(self._records[index], **changes)
                self._changed.notify_all()

    def count_token(self, index: int) -> None:
        with self._changed:
            record = self._records.get(index)
            if record is not None:
                self._records[index] = dataclasses.replace(
                    record, tokens_sent=record.tokens_sent + 1)
                self._changed.notify_all()

    def finish(self, index: int, end: RequestEnd) -> None:
        """Record how request ``index`` ended; the first report wins."""
        with self._changed:
            record = self._records.get(index)
            if record is not None and record.end is None:
                self._records[index] = dataclasses.replace(
                    record, end=end, ended_at=time.monotonic())
                self._changed.notify_all()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The fields of a chat-completions request the local server acts on."""

    model: str
    messages: list[Mapping[str, Any]]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None


class _Dropped(Exception):
    """Raised inside the local server's producer to drop the connection: the
    response re-raises it and the ASGI server closes the connection mid-body."""


@dataclass(frozen=True, slots=True)
class _Reply:
    index: int
    request: ChatRequest
    behaviour: Behaviour
    completion_id: str
    created: int
    tokens: list[str]
    finish_reason: str
    prompt_tokens: int


class LocalOpenAI:
    """An ASGI app speaking the OpenAI chat-completions API from a deterministic
    generator. Mount it anywhere (``/v1/chat/completions`` and, under a ``/v1``
    mount, ``/chat/completions`` both work).

    ``text`` is the reply (a string, or a function of the request's messages;
    default ``echo_reply``). ``api_key``, when set, must come as a bearer token
    (else 401, as the API answers). The fault keyword arguments are the
    server-wide ``Behaviour``; with ``fault_headers=True`` (tests only) the
    ``X-Local-*`` request headers override them per request (see
    ``OVERRIDE_HEADERS``). ``max_reply_tokens`` cuts every reply (finish reason
    ``length``), ``max_body`` bounds the request body, ``log_size`` the log.
    """

    def __init__(
        self,
        text: ReplyText | None = None,
        *,
        model: str = "local-echo",
        api_key: str | None = None,
        prefill_delay: float = 0.0,
        token_delay: float = 0.0,
        fail_status: int | None = None,
        error_after_tokens: int | None = None,
        drop_after_tokens: int | None = None,
        split_utf8: bool = True,
        fault_headers: bool = False,
        max_reply_tokens: int = MAX_REPLY_TOKENS,
        max_body: int = MAX_BODY,
        log_size: int = 1000,
    ) -> None:
        for name, value in (("max_reply_tokens", max_reply_tokens), ("max_body", max_body)):
            if type(value) is not int or value < 1:
                raise StreamingConfigError(f"{name} must be an int >= 1, not {value!r}")
        self.text: ReplyText = echo_reply if text is None else text
        self.model = model
        self.api_key = api_key
        self.behaviour = Behaviour(prefill_delay, token_delay, fail_status,
                                   error_after_tokens, drop_after_tokens, split_utf8)
        self.fault_headers = fault_headers
        self.max_reply_tokens = max_reply_tokens
        self.max_body = max_body
        self.log = RequestLog(log_size)

    def reply_for(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The full text this server answers ``messages`` with."""
        return self.text if isinstance(self.text, str) else self.text(messages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _serve_lifespan(receive, send)
        if scope["type"] != "http":
            raise UnsupportedScopeError(f"LocalOpenAI serves HTTP, not {scope['type']!r}")
        path, method = _route_path(scope), scope["method"]
        if path in _CHAT_PATHS and method == "POST":
            await self._chat(scope, receive, send)
        elif path in _MODEL_PATHS and method == "GET":
            await _send_json(send, 200, self._models())
        else:
            status = 405 if path in _CHAT_PATHS + _MODEL_PATHS else 404
            message = f"Invalid URL ({method} {scope['path']})"
            await _send_json(send, status, wire.error_object(message, "invalid_request_error"))

    def _models(self) -> dict[str, Any]:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "streaming"}
        return {"object": "list", "data": [model]}

    # -- one chat request --------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        index = self.log.start()
        try:
            reply = await self._accept(index, scope, receive)
        except UpstreamError as refusal:
            self.log.update(index, status=refusal.status_code)
            self.log.finish(index, RequestEnd.REFUSED)
            return await _send_json(send, refusal.status_code, refusal.body(), refusal.headers)
        if reply is None:  # the client left while sending its request
            return self.log.finish(index, RequestEnd.CLIENT_DISCONNECTED)
        self.log.update(index, stream=reply.request.stream, status=200)
        await self._respond(reply)(scope, receive, send)

    async def _accept(self, index: int, scope: Scope, receive: Receive) -> _Reply | None:
        """Read and check the request; raise ``UpstreamError`` for the error the
        API would answer with (checked in the API's order: auth, body, faults)."""
        body = await _read_body(scope, receive, self.max_body)
        if body is None:
            return None
        headers = _headers(scope)
        self._check_key(headers.get("authorization"))
        request = parse_chat_request(body)
        behaviour = behaviour_for(self.behaviour, headers) if self.fault_headers \
            else self.behaviour
        if behaviour.fail_status is not None:
            raise injected_error(behaviour.fail_status, request.model)
        return self._plan(index, request, behaviour)

    def _check_key(self, authorization: str | None) -> None:
        if self.api_key is None:
            return
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given:
            raise UpstreamError(401, "You didn't provide an API key. You need to provide your "
                                "API key in an Authorization header using Bearer auth "
                                "(i.e. Authorization: Bearer YOUR_KEY).",
                                type="invalid_request_error")
        if given != self.api_key:
            raise injected_error(401, "")

    def _plan(self, index: int, request: ChatRequest, behaviour: Behaviour) -> _Reply:
        tokens = wire.tokenize(self.reply_for(request.messages))
        finish_reason = "stop"
        limit = min(request.max_tokens or self.max_reply_tokens, self.max_reply_tokens)
        if len(tokens) > limit:
            tokens, finish_reason = tokens[:limit], "length"
        prompt = "".join(wire.message_text(m) for m in request.messages)
        return _Reply(index, request, behaviour, f"chatcmpl-local-{index}", int(time.time()),
                      tokens, finish_reason, len(wire.tokenize(prompt)))

    def _respond(self, reply: _Reply) -> StreamingResponse:
        headers = {"x-request-id": reply.completion_id}
        if not reply.request.stream:
            # Headers wait for the body (no deadline), so the driver still
            # notices a client that leaves during the wait.
            return StreamingResponse(self._whole(reply), headers=headers,
                                     media_type="application/json", commit_deadline=None)
        # Headers go out at once, as the API's do: the prefill silence is spent
        # inside the body, where a client's read timeout applies. No pings
        # and no error event of ours: the API sends neither.
        return EventSourceResponse(self._events(reply), headers=headers, ping=None,
                                   commit_deadline=0, error_event=None)

    async def _whole(self, reply: _Reply) -> AsyncIterator[bytes]:
        try:
            await anyio.sleep(reply.behaviour.prefill_delay
                              + reply.behaviour.token_delay * max(len(reply.tokens) - 1, 0))
            text = "".join(reply.tokens)
            body = wire.completion(reply.completion_id, reply.created, reply.request.model, text,
                                   reply.finish_reason, self._usage(reply, len(reply.tokens)))
            self.log.update(reply.index, tokens_sent=len(reply.tokens))
            yield json.dumps(body, ensure_ascii=False).encode()
            self.log.finish(reply.index, RequestEnd.COMPLETED)
        finally:
            self.log.finish(reply.index, RequestEnd.CLIENT_DISCONNECTED)

    async def _events(self, reply: _Reply) -> AsyncIterator[bytes]:
        """The stream: role chunk, one chunk per token, the finish chunk, the
        usage chunk if asked for, ``[DONE]``; with the behaviour's faults."""
        behaviour, index = reply.behaviour, reply.index
        try:
            await anyio.sleep(behaviour.prefill_delay)
            yield self._chunk(reply, {"role": "assistant", "content": "", "refusal": None})
            for number, token in enumerate(reply.tokens):
                if number == behaviour.error_after_tokens:
                    yield wire.sse_data(injected_error(500, reply.request.model).body())
                    self.log.finish(index, RequestEnd.ERROR_EVENT)
                    return
                if number == behaviour.drop_after_tokens:
                    self.log.finish(index, RequestEnd.DROPPED)
                    raise _Dropped(f"dropping request {index} after {number} tokens")
                if number:
                    await anyio.sleep(behaviour.token_delay)
                for piece in self._token_pieces(reply, token):
                    yield piece
                self.log.count_token(index)
            for ending in self._endings(reply):
                yield ending
            self.log.finish(index, RequestEnd.COMPLETED)
        finally:
            # Cancelled at an await or closed at a yield: the client left.
            self.log.finish(index, RequestEnd.CLIENT_DISCONNECTED)

    def _token_pieces(self, reply: _Reply, token: str) -> list[bytes]:
        data = self._chunk(reply, {"content": token})
        return wire.split_inside_character(data) if reply.behaviour.split_utf8 else [data]

    def _endings(self, reply: _Reply) -> list[bytes]:
        request = reply.request
        endings = [self._chunk(reply, {}, reply.finish_reason)]
        if request.include_usage:
            usage = self._usage(reply, len(reply.tokens))
            endings.append(wire.sse_data(wire.usage_chunk(
                reply.completion_id, reply.created, request.model, usage)))
        endings.append(wire.DONE)
        return endings

    def _chunk(self, reply: _Reply, delta: Mapping[str, Any],
               finish_reason: str | None = None) -> bytes:
        return wire.sse_data(wire.chunk(reply.completion_id, reply.created, reply.request.model,
                                        delta, finish_reason,
                                        with_usage_field=reply.request.include_usage))

    @staticmethod
    def _usage(reply: _Reply, completion_tokens: int) -> dict[str, int]:
        return wire.usage(reply.prompt_tokens, completion_tokens)


# -- request parsing: pure ---------------------------------------------------------


def parse_chat_request(body: bytes) -> ChatRequest:
    """Check a request body as the API does; raise ``UpstreamError`` (400) with
    the API's message, ``param`` and ``code`` for the first problem found."""
    try:
        data = parse_json(body)  # strict: too deep or a lone surrogate is a 400 too
    except RequestBodyError:
        raise _invalid("We could not parse the JSON body of your request. (HINT: This likely "
                       "means you aren't using your HTTP library correctly. The OpenAI API "
                       "expects a JSON payload.)") from None
    if not isinstance(data, dict):
        raise _invalid("Invalid request body: expected a JSON object.")
    if not isinstance(data.get("model"), str) or not data["model"]:
        raise _invalid("you must provide a model parameter")
    messages = _checked_messages(data)
    options = data.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise _invalid(f"Invalid 'max_tokens': {max_tokens!r}.", "max_tokens",
                       "invalid_value")
    return ChatRequest(data["model"], messages, data.get("stream") is True, include_usage,
                       max_tokens)


def _checked_messages(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "messages" not in data:
        raise _invalid("Missing required parameter: 'messages'.", "messages",
                       "missing_required_parameter")
    messages = data["messages"]
    if not isinstance(messages, list):
        raise _invalid(f"Invalid type for 'messages': expected an array, but got "
                       f"{type(messages).__name__} instead.", "messages", "invalid_type")
    if not messages:
        raise _invalid("Invalid 'messages': empty array. Expected an array with minimum "
                       "length 1, but got an empty array instead.", "messages", "empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _invalid(f"Missing required parameter: 'messages[{i}].role'.",
                           f"messages[{i}].role", "missing_required_parameter")
    return messages


def _invalid(message: str, param: str | None = None, code: str | None = None) -> UpstreamError:
    return UpstreamError(400, message, type="invalid_request_error", param=param, code=code)


def injected_error(status: int, model: str) -> UpstreamError:
    """The error the API answers ``status`` with, in its words and shape."""
    if status == 401:
        return UpstreamError(401, "Incorrect API key provided. You can find your API key at "
                             "https://platform.openai.com/account/api-keys.",
                             type="invalid_request_error", code="invalid_api_key")
    if status == 429:
        return UpstreamError(429, f"Rate limit reached for {model} in organization org-local "
                             "on requests per min (RPM): Limit 3, Used 3, Requested 1. "
                             "Please try again in 1s.", type="requests",
                             code="rate_limit_exceeded", headers={"retry-after": "1"})
    if status == 503:
        return UpstreamError(503, "The engine is currently overloaded, please try again later.",
                             type="server_error")
    if status >= 500:
        return UpstreamError(status, "The server had an error while processing your request. "
                             "Sorry about that!", type="server_error")
    return UpstreamError(status, f"Injected failure: status {status}.",
                         type="invalid_request_error")


def behaviour_for(default: Behaviour, headers: Mapping[str, str]) -> Behaviour:
    """``default`` with the request's ``X-Local-*`` overrides applied; a value
    that does not parse is a 400, like any other bad request."""
    changes: dict[str, Any] = {}
    for name, (field, parse) in OVERRIDE_HEADERS.items():
        if name in headers:
            try:
                changes[field] = parse(headers[name])
            except ValueError:
                raise _invalid(f"Invalid header {name}: {headers[name]!r}.") from None
    try:
        return dataclasses.replace(default, **changes)
    except StreamingConfigError as error:  # a status outside 400-599, say
        raise _invalid(f"Invalid X-Local-* header: {error}.") from None


# -- ASGI plumbing -----------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    # Mounted apps get the full path plus the mount in root_path (ASGI spec,
    # "root_path"), as Starlette's Mount passes them.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _read_body(scope: Scope, receive: Receive, max_size: int) -> bytes | None:
    """The request body, or ``None`` if the client left while sending it; the
    reader's refusals (413, 408) become the API's error shape."""
    try:
        return await RequestBody(scope, receive, max_size=max_size).read()
    except BodyIncompleteError:
        return None
    except RequestBodyError as error:
        raise UpstreamError(error.status_code, error.detail, type="invalid_request_error",
                            headers=error.headers) from None


async def _send_json(send: Send, status: int, obj: object,
                     headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode()
    await send_whole(send, status, body, "application/json", headers or {})


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop; answering keeps servers from logging that
    # lifespan is unsupported.
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            return await send({"type": "lifespan.shutdown.complete"})

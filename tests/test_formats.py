"""Formats as pure objects: table tests without ASGI, then once through a response."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from streaming import (
    EventSourceResponse,
    NDJSONResponse,
    ServerSentEvent,
    SSEParser,
    StreamingConfigError,
    StreamingResponse,
    StreamRefused,
    UpstreamError,
)
from streaming.formats import Format, NDJSONFormat, SSEFormat, TextFormat
from streaming.integrations import OpenAIFormat, RelayNDJSONFormat, RelaySSEFormat
from streaming.testing import StreamingClient

ALL_FORMATS: list[Format] = [
    TextFormat(), TextFormat(charset="latin-1"), NDJSONFormat(), SSEFormat(),
    SSEFormat(sep="\r\n", retry=10), RelaySSEFormat(), RelayNDJSONFormat(), OpenAIFormat(),
]
# Plain ids: an id made by repr() holds backslashes, which pytest escapes once
# more each time it collects in the same process (mutmut collects several times).
FORMAT_IDS = ["text", "text-latin-1", "ndjson", "sse", "sse-crlf-retry", "relay-sse",
              "relay-ndjson", "openai"]


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_pre_encoded_bytes_pass_through_every_format(fmt: Format) -> None:
    line = b'{"pre":"encoded"}\n'  # one line, so NDJSON's check accepts it too
    assert fmt.encode(line) is line
    first = fmt.encode_first(line)
    retry = getattr(fmt, "retry", None)
    assert first == (b"" if retry is None else b"retry: 10\r\n") + line


ENCODED = [
    (TextFormat(), "数据", "数据".encode()),
    (TextFormat(charset="gbk"), "数据", "数据".encode("gbk")),
    (TextFormat(), bytearray(b"ab"), b"ab"),
    (NDJSONFormat(), {"a": [1, "é"]}, '{"a":[1,"é"]}\n'.encode()),
    (NDJSONFormat(json_default=str), {"a": {1}}, b'{"a":"{1}"}\n'),
    (SSEFormat(), "x", b"data: x\n\n"),
    (SSEFormat(sep="\r"), "a\nb", b"data: a\rdata: b\r\r"),
    (SSEFormat(json_data=True), {"k": 1}, b'data: {"k":1}\n\n'),
    (SSEFormat(), ServerSentEvent("d", "e", "1"), b"event: e\nid: 1\ndata: d\n\n"),
]


@pytest.mark.parametrize(("fmt", "item", "expected"), ENCODED)
def test_encode(fmt: Format, item: object, expected: bytes) -> None:
    assert bytes(fmt.encode(item)) == expected


@pytest.mark.parametrize(("fmt", "expected"), [
    (TextFormat(), None), (NDJSONFormat(), None), (SSEFormat(), b":ping\n"),
    (SSEFormat(sep="\r\n"), b":ping\r\n"), (OpenAIFormat(), b":ping\n"),
])
def test_keepalive(fmt: Format, expected: bytes | None) -> None:
    assert fmt.keepalive() == expected


def test_retry_rides_on_the_first_event_only() -> None:
    fmt = SSEFormat(retry=2500)
    assert fmt.encode_first("x") == b"retry: 2500\ndata: x\n\n"
    assert fmt.encode("x") == b"data: x\n\n"


class Secret(Exception):
    """A bug whose text must never reach the client."""


BUG = Secret("password=hunter2")
REFUSED = StreamRefused(429, "slow down", headers={"Retry-After": "5", "X-Bad": "a\nb"})
UPSTREAM = UpstreamError(503, "overloaded", type="server_error", code="busy")

#: (format, error) -> the error response's status-independent body, content type
#: and extra headers; rendered before the headers are committed.
ERROR_RESPONSES = [
    (TextFormat(), BUG, b"Internal Server Error", b"text/plain; charset=utf-8", []),
    (TextFormat(), REFUSED, b"slow down", b"text/plain; charset=utf-8",
     [(b"retry-after", b"5")]),
    (TextFormat(charset="latin-1"), StreamRefused(404, "нет"), b"???",
     b"text/plain; charset=latin-1", []),
    (NDJSONFormat(), REFUSED, b"slow down", b"text/plain; charset=utf-8",
     [(b"retry-after", b"5")]),
    (SSEFormat(), BUG, b'{"error": {"status": 500, "message": "Internal Server Error"}}',
     b"application/json", []),
    (SSEFormat(), REFUSED, b'{"error": {"status": 429, "message": "slow down"}}',
     b"application/json", [(b"retry-after", b"5")]),
    (RelaySSEFormat(), UPSTREAM, b'{"error": {"message": "overloaded", "type": "server_error",'
     b' "param": null, "code": "busy"}}', b"application/json", []),
    (RelayNDJSONFormat(), BUG, b'{"error": {"message": "Internal Server Error", "type": '
     b'"server_error", "param": null, "code": null}}', b"application/json", []),
    (OpenAIFormat(), REFUSED, b'{"error": {"message": "slow down", "type": '
     b'"invalid_request_error", "param": null, "code": null}}', b"application/json",
     [(b"retry-after", b"5")]),
]


@pytest.mark.parametrize(("fmt", "error", "body", "content_type", "extra"), ERROR_RESPONSES)
def test_error_response(fmt: Format, error: Exception, body: bytes, content_type: bytes,
                        extra: list[tuple[bytes, bytes]]) -> None:
    headers, rendered = fmt.error_response(getattr(error, "status_code", 500), error)
    assert rendered == body
    assert headers == [*extra, (b"content-type", content_type),
                       (b"content-length", str(len(body)).encode())]


#: (format, error) -> the in-band marker sent after the headers, or None (a cut).
ERROR_MARKERS = [
    (TextFormat(), BUG, None),
    (NDJSONFormat(), BUG, b'{"error":{"type":"http_500","message":"Internal Server Error"}}\n'),
    (NDJSONFormat(), REFUSED, b'{"error":{"type":"http_429","message":"slow down"}}\n'),
    (SSEFormat(), BUG,
     b'event: error\ndata: {"status": 500, "message": "Internal Server Error"}\n\n'),
    (SSEFormat(error_event="oops", sep="\r"), REFUSED,
     b'event: oops\rdata: {"status": 429, "message": "slow down"}\r\r'),
    (SSEFormat(error_event=None), BUG, None),
    (RelaySSEFormat(), UPSTREAM, b'event: error\ndata: {"status":503,"message":"overloaded",'
     b'"type":"server_error","param":null,"code":"busy"}\n\n'),
    (RelayNDJSONFormat(), UPSTREAM, b'{"type":"error","error":{"status":503,"message":'
     b'"overloaded","type":"server_error","param":null,"code":"busy"}}\n'),
    (OpenAIFormat(), UPSTREAM, b'data: {"error":{"message":"overloaded","type":"server_error",'
     b'"param":null,"code":"busy"}}\n\n'),
]


@pytest.mark.parametrize(("fmt", "error", "marker"), ERROR_MARKERS)
def test_error_marker(fmt: Format, error: Exception, marker: bytes | None) -> None:
    assert fmt.error_marker(error) == marker


def test_no_secret_reaches_any_rendering() -> None:
    for fmt in ALL_FORMATS:
        _, body = fmt.error_response(500, BUG)
        assert b"hunter2" not in body + (fmt.error_marker(BUG) or b"")


@pytest.mark.parametrize("settings", [
    {"sep": "\n\n"}, {"sep": ""}, {"retry": -1}, {"retry": 1.5}, {"error_event": "a\nb"},
])
def test_bad_sse_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        SSEFormat(**settings)


def test_bad_charset() -> None:
    with pytest.raises(StreamingConfigError, match="charset"):
        TextFormat(charset="no-such-codec")
    with pytest.raises(StreamingConfigError, match="charset"):
        NDJSONFormat(charset="no-such-codec")


def test_formats_are_immutable_values() -> None:
    fmt = SSEFormat(retry=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.retry = 6  # type: ignore[misc]
    assert fmt == SSEFormat(retry=5) and fmt != SSEFormat()


# -- through a response -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ShoutingSSE(SSEFormat):
    def encode(self, item: Any) -> bytes:
        return SSEFormat.encode(self, item.upper() if isinstance(item, str) else item)


class Bracketed(TextFormat):  # a plain subclass, no dataclass decorator
    def encode(self, item: Any) -> bytes:
        return b"[" + bytes(TextFormat.encode(self, item)) + b"]"

    def error_marker(self, error: BaseException) -> bytes:
        return b"<cut>"


async def words() -> AsyncIterator[str]:
    for word in ("abc", "def"):
        yield word


async def test_a_format_subclass_overriding_encode_is_used() -> None:
    app = EventSourceResponse(words(), format=ShoutingSSE())
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/")
    assert [e.data for e in SSEParser().feed(response.body)] == ["ABC", "DEF"]
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


async def test_a_plain_format_subclass_overrides_encode_and_the_marker() -> None:
    async def fails() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise ValueError("late")

    app = StreamingResponse(fails(), format=Bracketed())
    with anyio.fail_after(5):
        async with StreamingClient(app, raise_app_exceptions=False).stream("GET", "/") as response:
            await response.read()
    assert response.body == b"[a][b]<cut>"


async def test_the_relay_formats_serve_a_plain_response_too() -> None:
    async def refuses() -> AsyncIterator[str]:
        raise UPSTREAM
        yield ""

    app = NDJSONResponse(refuses(), format=RelayNDJSONFormat())
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/")
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "busy"


def test_a_response_subclass_defining_a_format_method_is_refused() -> None:
    with pytest.raises(StreamingConfigError, match="subclass a format"):
        class Upper(EventSourceResponse):
            def encode(self, item: Any) -> bytes:
                return b""


def test_format_settings_go_to_the_format_not_beside_it() -> None:
    with pytest.raises(StreamingConfigError, match="settings of the format"):
        EventSourceResponse(words(), format=SSEFormat(), sep="\r")


def test_the_response_holds_its_format() -> None:
    assert EventSourceResponse(words(), retry=7, sep="\r").format == SSEFormat(retry=7, sep="\r")
    assert NDJSONResponse(words()).format == NDJSONFormat()
    assert StreamingResponse(words()).format == TextFormat()
    response = StreamingResponse(words())
    response.charset = "latin-1"  # Starlette's attribute, still honoured after construction
    assert response.format == TextFormat(charset="latin-1")

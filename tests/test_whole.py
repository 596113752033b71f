"""send_whole: a complete response in two messages, headers checked first."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from streaming import HeaderValidationError
from streaming._types import Message, Receive, Scope, Send
from streaming.responses import send_whole
from streaming.responses.whole import whole_headers
from streaming.testing import StreamingClient


def app_sending(body: bytes, headers: Mapping[str, str]) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_whole(send, 418, body, "text/plain; charset=utf-8", headers)
    return app


async def test_status_headers_and_body_in_two_messages() -> None:
    client = StreamingClient(app_sending(b"short and stout", {"Retry-After": "3"}))  # type: ignore[arg-type]
    response = await client.get("/")
    assert response.status_code == 418
    assert response.raw_headers == [(b"retry-after", b"3"),
                                    (b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", b"15")]
    sent = [m.message for m in response.messages if m.direction == "send"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"short and stout" and sent[1]["more_body"] is False


@pytest.mark.parametrize("headers", [
    {"x-note": "one\r\nset-cookie: two"},   # a line break would split the response
    {"x-caf\u00e9": "latin-1 name"},       # not a token
    {"content-length": "1"},                # the body's length is ours to say
    {"Transfer-Encoding": "chunked"},
    {"content-type": "text/html"},          # given as its own argument
])
def test_a_header_that_cannot_go_out_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(HeaderValidationError):
        whole_headers(b"x", "text/plain", headers)


async def test_nothing_is_sent_when_a_header_is_refused() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(HeaderValidationError):
        await send_whole(send, 200, b"x", "text/plain", [("x-note", "a\nb")])
    assert sent == []

"""The byte-rate cap: the pacing schedule on trio's mock clock (exact, no
waiting), and the extensions a paced stream must not be offered."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import trio.testing

from streaming import StreamLimiter
from streaming._types import Message, Receive, Scope, Send
from streaming.limits import PacedSend


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    # Timer logic runs on a mock clock that jumps to the next deadline at once.
    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}


class Wire:
    """A server's send that notes when each message left and its size."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, int, bool]] = []
        self.origin = anyio.current_time()

    async def send(self, message: Message) -> None:
        self.sent.append((round(anyio.current_time() - self.origin, 6), message["type"],
                          len(message.get("body", b"")), message.get("more_body", False)))


async def test_one_large_body_leaves_in_pieces_on_an_absolute_schedule() -> None:
    wire = Wire()
    send = PacedSend(wire.send, 1000)  # 1000 B/s: 20 B pieces, one every 20 ms
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    assert wire.sent[0] == (0.0, "http.response.start", 0, False)
    pieces = wire.sent[1:-1]
    assert [size for _, _, size, _ in pieces] == [20] * 50
    assert [at for at, *_ in pieces] == [round(i * 0.02, 6) for i in range(50)]
    assert all(more for *_, more in pieces)
    # The terminator waits for the last piece's allowance: 1000 B took 1 s.
    assert wire.sent[-1] == (1.0, "http.response.body", 0, False)


async def test_small_chunks_are_spaced_not_split() -> None:
    wire = Wire()
    send = PacedSend(wire.send, 10_000)  # pieces of 200 B
    for _ in range(10):
        await send({"type": "http.response.body", "body": b"y" * 100, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    assert [(at, size) for at, _, size, _ in wire.sent] == (
        [(round(i * 0.01, 6), 100) for i in range(10)] + [(0.1, 0)])


async def test_a_slow_producer_is_not_paced_further() -> None:
    wire = Wire()
    send = PacedSend(wire.send, 1000)
    await send({"type": "http.response.body", "body": b"z" * 10, "more_body": True})
    await anyio.sleep(5)  # the producer took its time: the allowance is long used up
    await send({"type": "http.response.body", "body": b"z" * 10, "more_body": True})
    assert [at for at, *_ in wire.sent] == [0.0, 5.0]


async def test_the_last_piece_keeps_the_message_s_more_body() -> None:
    wire = Wire()
    send = PacedSend(wire.send, 1000)
    await send({"type": "http.response.body", "body": b"w" * 50, "more_body": False})
    assert [(size, more) for _, _, size, more in wire.sent] == [
        (20, True), (20, True), (10, False)]


async def test_the_limiter_paces_and_withdraws_whole_file_extensions() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"v" * 100})

    wire = Wire()
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
                    "extensions": {"http.response.pathsend": {},
                                   "http.response.zerocopysend": {}, "other": {}}}

    async def receive() -> Message:
        return {"type": "http.disconnect"}  # pragma: no cover

    await StreamLimiter(app, max_bytes_per_second=1000)(scope, receive, wire.send)
    assert seen[0]["extensions"] == {"other": {}}
    assert [at for at, *_ in wire.sent] == [0.0, 0.0, 0.02, 0.04, 0.06, 0.08]

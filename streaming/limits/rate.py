"""A per-stream byte-rate cap: a ``send`` that paces the body it is given.

Body messages are cut into pieces of about 20 ms worth of bytes, and each
piece leaves at ``start + bytes_before_it / rate``: the schedule is absolute,
so a late wake-up is made up by the next piece instead of accumulating, and
the terminating empty message leaves when the last byte's allowance is used
up, so the whole body takes ``size / rate`` seconds. With no cap the send is
not wrapped at all: nothing is added to the per-chunk path.
"""

from __future__ import annotations

import math

import anyio

from streaming._types import Message, Scope, Send
from streaming.exceptions import StreamingConfigError

#: A piece is this many seconds of the rate (a smooth curve, few sends),
_PIECE_SECONDS = 0.02
#: and never more than this many bytes.
_MAX_PIECE = 64 * 1024

#: Extensions that hand the server a whole file (ASGI ``http.response.pathsend``,
#: ``http.response.zerocopysend``): a paced stream must not be offered them.
_BYPASSING_EXTENSIONS = ("http.response.pathsend", "http.response.zerocopysend")


def check_rate(max_bytes_per_second: float) -> float:
    rate = max_bytes_per_second
    if type(rate) not in (int, float) or not math.isfinite(rate) or rate < 1:
        raise StreamingConfigError(
            f"max_bytes_per_second must be a finite number >= 1, not {rate!r}")
    return float(rate)


def without_bypasses(scope: Scope) -> None:
    """Withdraw the extensions through which a response could send a file
    without passing through the paced ``send``."""
    extensions = scope.get("extensions")
    if extensions and any(name in extensions for name in _BYPASSING_EXTENSIONS):
        scope["extensions"] = {name: value for name, value in extensions.items()
                               if name not in _BYPASSING_EXTENSIONS}


class PacedSend:
    """Wraps one response's ``send`` so that its body leaves at no more than
    ``rate`` bytes per second, counted from the first body message."""

    __slots__ = ("_piece", "_rate", "_send", "_sent", "_started")

    def __init__(self, send: Send, rate: float) -> None:
        self._send = send
        self._rate = rate
        self._piece = max(1, min(_MAX_PIECE, int(rate * _PIECE_SECONDS)))
        self._started: float | None = None
        self._sent = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        body = message.get("body", b"")
        piece = self._piece
        if len(body) <= piece:
            await self._wait_for_allowance(len(body))
            await self._send(message)
            return
        more = message.get("more_body", False)
        for start in range(0, len(body), piece):
            part = body[start:start + piece]
            await self._wait_for_allowance(len(part))
            last = start + piece >= len(body)
            await self._send({"type": "http.response.body", "body": part,
                              "more_body": more if last else True})

    async def _wait_for_allowance(self, size: int) -> None:
        now = anyio.current_time()
        if self._started is None:  # the first body message
            self._started = now
        due = self._started + self._sent / self._rate
        if due > now:
            await anyio.sleep(due - now)
        self._sent += size

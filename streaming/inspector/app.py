"""The live inspector: an ASGI app users mount, fed as a ``StreamWatch`` observer.

It is off unless you build it, pass it to ``StreamWatch`` and mount it, and
every request it serves must pass the ``allow(scope)`` check you supply
(``403`` otherwise). It shows the open streams (route, client, age, bytes,
chunks, chunks/s, state), the outcomes so far, a time-to-first-byte
histogram and, for a selected stream, its ASGI message flow drawn as a
timeline. The page is three static files; the figures come over SSE
(``events``, a snapshot every ``interval`` seconds) and the flows as JSON
(``streams/<id>``). The page inserts every value as text, and is served with
a Content-Security-Policy that allows nothing but its own files.
"""

from __future__ import annotations

import bisect
import inspect
import json
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from importlib import resources
from typing import Any

import anyio

from streaming._types import Receive, Scope, Send
from streaming.encoders.sse import ServerSentEvent
from streaming.exceptions import StreamingConfigError
from streaming.observe import FLOW_KEY, WATCH_KEY, StreamRecord
from streaming.responses import EventSourceResponse, send_whole

AllowCheck = Callable[[Scope], "bool | Awaitable[bool]"]

#: Upper bounds (seconds) of the time-to-first-byte histogram's bars.
TTFB_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_ASSETS = {"/": ("index.html", "text/html; charset=utf-8"),
           "/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/app.css": ("app.css", "text/css; charset=utf-8")}
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def loopback_only(scope: Scope) -> bool:
    """An ``allow`` check for a development machine: clients on 127.0.0.1 or ::1."""
    client = scope.get("client")
    return client is not None and client[0] in ("127.0.0.1", "::1")


class Inspector:
    """See the module docstring. ``history``: ended streams kept (with their
    flows) for the "recently ended" table."""

    records_messages = True

    def __init__(self, allow: AllowCheck, *, interval: float = 0.5, history: int = 50,
                 ttfb_bounds: Sequence[float] = TTFB_BOUNDS) -> None:
        if not callable(allow):
            raise StreamingConfigError("Inspector needs allow=, a check of each request "
                                       "(loopback_only, or your own)")
        if not interval > 0:
            raise StreamingConfigError(f"interval must be above 0 seconds, not {interval!r}")
        self.allow = allow
        self.interval = interval
        self.ttfb_bounds = tuple(ttfb_bounds)
        self._open: dict[int, StreamRecord] = {}
        self._ended: deque[StreamRecord] = deque(maxlen=history)
        self._outcomes: Counter[str] = Counter()
        self._ttfb_counts = [0] * (len(self.ttfb_bounds) + 1)
        self._ended_count = 0
        self._assets: dict[str, bytes] = {}

    # -- the observer ------------------------------------------------------------

    def stream_opened(self, stream: StreamRecord) -> None:
        self._open[stream.id] = stream

    def stream_closed(self, stream: StreamRecord) -> None:
        self._open.pop(stream.id, None)
        self._ended.append(stream)
        self._ended_count += 1
        outcome = stream.outcome
        self._outcomes[outcome.reason.value if outcome else "cancelled"] += 1
        if outcome is not None and outcome.first_byte_after is not None:
            bar = bisect.bisect_left(self.ttfb_bounds, outcome.first_byte_after)
            self._ttfb_counts[bar] += 1

    def stream_refused(self, scope: Scope, why: str) -> None:
        self._outcomes[f"refused_{why}"] += 1

    # -- the figures -------------------------------------------------------------

    def snapshot(self, previous: dict[int, tuple[float, int]]) -> dict[str, Any]:
        """What the page shows now; ``previous`` (stream id -> time and chunks
        at the last snapshot, updated here) gives chunks/s and idleness."""
        now = anyio.current_time()
        rows, seen = [], {}
        for stream in list(self._open.values()):
            live = stream.live
            chunks = live.chunks_sent if live else 0
            then, before = previous.get(stream.id, (stream.started, 0))
            rate = (chunks - before) / (now - then) if now > then else 0.0
            seen[stream.id] = (now, chunks)
            rows.append({
                "id": stream.id, "method": stream.method, "route": stream.route,
                "path": stream.path, "client": stream.client, "type": stream.response_type,
                "age": round(now - stream.started, 3), "chunks": chunks,
                "bytes": live.bytes_sent if live else 0, "rate": round(rate, 2),
                "state": _state(live.state if live else "waiting", chunks != before),
            })
        previous.clear()
        previous.update(seen)
        return {
            "open": rows, "outcomes": dict(self._outcomes), "ended": self._ended_count,
            "ttfb": {"bounds": self.ttfb_bounds, "counts": self._ttfb_counts},
            "recent": [_ended_row(s) for s in reversed(self._ended)][:12],
        }

    def flow(self, stream_id: int) -> dict[str, Any] | None:
        """One stream's recorded ASGI messages, open or recently ended."""
        stream = self._open.get(stream_id) or next(
            (s for s in self._ended if s.id == stream_id), None)
        if stream is None:
            return None
        flow = stream.flow
        messages = [] if flow is None else [
            [round(m.time, 6), m.direction, m.type, m.size, m.more_body, m.status,
             m.preview.decode("utf-8", "replace")] for m in flow.messages]
        return {"id": stream.id, "method": stream.method, "path": stream.path,
                "route": stream.route, "messages": messages,
                "dropped": flow.dropped if flow else 0,
                "outcome": stream.outcome.reason.value if stream.outcome else None}

    # -- the ASGI app ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        # The inspector's own requests are not streams to show.
        scope.pop(WATCH_KEY, None)
        scope.pop(FLOW_KEY, None)
        if not await self._allowed(scope):
            await _respond(send, 403, "text/plain; charset=utf-8", b"Forbidden\n")
            return
        path = _sub_path(scope)
        if path in _ASSETS:
            name, content_type = _ASSETS[path]
            await _respond(send, 200, content_type, self._asset(name))
        elif path == "/events":
            await EventSourceResponse(self._snapshots(), ping=None,
                                      headers={"cache-control": "no-store"}
                                      )(scope, receive, send)
        elif path.startswith("/streams/") and path[9:].isdigit():
            flow = self.flow(int(path[9:]))
            if flow is None:
                await _respond(send, 404, "text/plain; charset=utf-8", b"No such stream\n")
            else:
                await _respond(send, 200, "application/json", json.dumps(flow).encode())
        else:
            await _respond(send, 404, "text/plain; charset=utf-8", b"Not found\n")

    async def _allowed(self, scope: Scope) -> bool:
        verdict = self.allow(scope)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict is True

    async def _snapshots(self) -> AsyncIterator[ServerSentEvent]:
        previous: dict[int, tuple[float, int]] = {}
        while True:
            yield ServerSentEvent(event="snapshot", data=json.dumps(self.snapshot(previous)))
            await anyio.sleep(self.interval)

    def _asset(self, name: str) -> bytes:
        if name not in self._assets:
            self._assets[name] = (resources.files("streaming.inspector") / "static" / name
                                  ).read_bytes()
        return self._assets[name]


def _state(driver_state: str, progressed: bool) -> str:
    if driver_state != "streaming":
        return driver_state  # waiting (for the first chunk) or draining
    return "streaming" if progressed else "idle"


def _ended_row(stream: StreamRecord) -> dict[str, Any]:
    outcome = stream.outcome
    return {
        "id": stream.id, "method": stream.method, "route": stream.route,
        "reason": outcome.reason.value if outcome else "cancelled",
        "status": outcome.status_code if outcome else None,
        "duration": round(outcome.duration, 6) if outcome else None,
        "bytes": outcome.bytes_sent if outcome else None,
        "chunks": outcome.chunks_sent if outcome else None,
        "ttfb": outcome.first_byte_after if outcome else None,
    }


def _sub_path(scope: Scope) -> str:
    # Mounted (Starlette's Mount keeps the full path and sets root_path) or not.
    path, root = str(scope.get("path", "/")), str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


async def _respond(send: Send, status: int, content_type: str, body: bytes) -> None:
    await send_whole(send, status, body, content_type, _SECURITY_HEADERS)

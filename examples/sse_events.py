"""Server-Sent Events: the tutorial's card 6 on three layers, a resumable ticker
and an endless clock. The demo mounts ``SSEDemo(...).routes()`` under ``/sse``:

* ``/sse/{layer}/progress``: card 6's ``start``, ``progress`` and ``complete``
  events (four progress steps instead of the card's one);
* ``/sse/{layer}/progress-error``: the same job failing after two progress
  events, to see what each layer tells the client;
* ``/sse/{layer}/clock``: an endless ``tick`` per second, to see a shutdown;
* ``/sse/ours/ticker[/{channel}]``: a shared ticker whose events carry ids, so a
  reconnecting ``EventSource`` resumes with ``Last-Event-ID``; ends with
  ``complete``. ``/page/events`` shows it in a browser.

``layer`` is ``ours`` (``streaming.EventSourceResponse``), ``starlette``
(Starlette's ``StreamingResponse`` with the events formatted by hand, as card 6
does) or ``sse-starlette`` (``sse_starlette.EventSourceResponse``). The
producers are written once and yield our ``ServerSentEvent``; the comparison
layer (``streaming.compare``) converts them for the other two. Importing this
module imports sse-starlette, which patches uvicorn's ``Server.handle_exit``
(see ``streaming.compare.sse_starlette_layer``): a user's app does the same, and
it is what makes sse-starlette's own shutdown detection work in the demo.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from streaming import RESET_EVENT, Drain, EventSourceResponse, Replay, ReplayBuffer
from streaming import ServerSentEvent as Event
from streaming.compare.sse_starlette_layer import sse_starlette_response
from streaming.compare.starlette_layer import starlette_sse_response

SSELayer = Literal["ours", "starlette", "sse-starlette"]
SSE_LAYERS: tuple[SSELayer, ...] = ("ours", "starlette", "sse-starlette")

#: The endpoints under ``/sse/<layer>``: (path, what it shows).
LAYER_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("/progress", "card 6: start, progress (25..100%), complete"),
    ("/progress-error", "the job fails after two progress events"),
    ("/clock", "an endless tick per second (see a shutdown)"),
)

#: The ticker, ours only: it needs the Last-Event-ID factory form.
TICKER_PATH = "/sse/ours/ticker"

#: The progress steps of the job, in percent.
JOB_STEPS = (25, 50, 75, 100)
#: How many connections (and drops) a ticker remembers, for the tests to read.
MAX_RECORDED = 100


class JobFailed(RuntimeError):
    """Raised by the job of ``/progress-error`` part-way through."""


# -- the producers, written once -------------------------------------------------


async def progress_events(delay: float = 0.5, fail_after: int | None = None
                          ) -> AsyncIterator[Event]:
    """Card 6: ``start``, one ``progress`` per step ``delay`` seconds apart, then
    ``complete``. With ``fail_after=n`` the job raises ``JobFailed`` after its
    n-th progress event instead (the error variant)."""
    yield Event(event="start", data="开始")
    for step, percent in enumerate(JOB_STEPS, 1):
        await anyio.sleep(delay)
        yield Event(event="progress", data=f"{percent}%")
        if step == fail_after:
            raise JobFailed(f"the job failed at {percent}%")
    yield Event(event="complete", data="完成")


async def clock_events(interval: float = 1.0) -> AsyncIterator[Event]:
    """Endless: a ``tick`` at once, then one every ``interval`` seconds. It
    ends only when the client leaves or the server drains it."""
    for n in itertools.count(1):
        yield Event(event="tick", id=str(n), data=f"tick {n}")
        await anyio.sleep(interval)


# -- the ticker: one publisher, many subscribers, resumable -----------------------

#: The cursor of a subscriber that has seen nothing: ids start at 1, so "0"
#: is never in the buffer and ``since("0")`` returns everything it holds.
_BEFORE_FIRST = "0"


@dataclass(frozen=True, slots=True)
class Connection:
    """One subscription: when (``time.monotonic()``) and with which validated
    ``Last-Event-ID`` (``None``: a fresh client)."""

    at: float
    last_event_id: str | None


class TickerChannel:
    """One shared ticker: ``tick`` events with ids ``1..total``, then ``complete``
    (id ``total + 1``), all appended to one ``ReplayBuffer``.

    The publisher is a clock rather than a task: tick k is due ``k * interval``
    seconds after the first subscriber arrived, and whichever subscriber wakes
    first appends the ticks that are due. So no background task (or lifespan)
    is needed, ticks keep "happening" while nobody listens, and a client that
    comes back gets what it missed from the buffer. Everything runs on the
    server's event loop; ``drop_after`` may be called from any thread.
    """

    def __init__(self, interval: float, total: int, history: int) -> None:
        self.interval = interval
        self.total = total
        self.buffer = ReplayBuffer(max_events=history, max_age=None)
        self.published = 0
        self.started: float | None = None
        #: The latest connections, in order, with the Last-Event-ID each sent:
        #: bounded, since every request adds one.
        self.connections: deque[Connection] = deque(maxlen=MAX_RECORDED)
        self._drop_at: int | None = None
        self._dropped: deque[float] = deque(maxlen=MAX_RECORDED)

    def drop_after(self, n: int) -> None:
        """Admin handle: every stream that sends event ``n`` ends right after
        it, with a clean end of response (a reconnecting client resumes at n+1).
        Safe from another thread: one attribute store, read by the server's loop."""
        self._drop_at = n

    @property
    def dropped_at(self) -> list[float]:
        """When (``time.monotonic()``) streams were ended by ``drop_after``."""
        return list(self._dropped)

    async def subscribe(self, last_event_id: str | None) -> AsyncIterator[Event]:
        """The events after ``last_event_id``, then live ones until ``complete``.
        An id the buffer does not hold gets a ``reset`` event first, then every
        event still held (the client should discard what it had)."""
        self.connections.append(Connection(time.monotonic(), last_event_id))
        if self.started is None:
            self.started = time.monotonic()
        cursor = last_event_id or _BEFORE_FIRST
        while True:  # bounded: the ticker publishes `total + 1` events
            replay = self._since(cursor)
            if replay.gap and cursor != _BEFORE_FIRST:
                yield _reset(cursor, replay)
            for event in replay.events:
                yield event
                if self._ends_stream(event):
                    return
            if replay.events:
                cursor = replay.events[-1].id or cursor
            if self.published >= self.total:
                return  # the client is past ``complete``
            await self._wait_for_next_tick()

    def _since(self, cursor: str) -> Replay:
        self._publish_due()
        return self.buffer.since(cursor)

    def _ends_stream(self, event: Event) -> bool:
        if event.event == "complete":
            return True
        if event.id == str(self._drop_at):
            self._dropped.append(time.monotonic())
            return True
        return False

    def _publish_due(self) -> None:
        assert self.started is not None
        elapsed = time.monotonic() - self.started
        due = self.total if self.interval <= 0 else min(self.total, int(elapsed / self.interval))
        while self.published < due:
            self.published += 1
            self.buffer.append(Event(event="tick", id=str(self.published),
                                     data=f"tick {self.published}/{self.total}"))
            if self.published == self.total:
                self.buffer.append(Event(event="complete", id=str(self.total + 1),
                                         data=f"{self.total} ticks"))

    async def _wait_for_next_tick(self) -> None:
        assert self.started is not None
        due = self.started + (self.published + 1) * self.interval
        await anyio.sleep(max(0.0, due - time.monotonic()))


def _reset(last_event_id: str, replay: Replay) -> Event:
    oldest = replay.events[0].id if replay.events else None
    data = json.dumps({"last_event_id": last_event_id, "resume_from": oldest})
    return Event(event=RESET_EVENT, data=data)


class TickerHub:
    """Named ticker channels, made on first use. At most ``max_channels`` are
    kept (the oldest is forgotten), since a channel name comes from the URL."""

    def __init__(self, interval: float = 0.5, total: int = 20, history: int = 100,
                 max_channels: int = 32) -> None:
        self.interval, self.total, self.history = interval, total, history
        self.max_channels = max_channels
        self._channels: dict[str, TickerChannel] = {}
        self._lock = threading.Lock()  # the test's thread and the server's loop

    def channel(self, name: str) -> TickerChannel:
        with self._lock:
            if name not in self._channels:
                while len(self._channels) >= self.max_channels:
                    del self._channels[next(iter(self._channels))]
                self._channels[name] = TickerChannel(self.interval, self.total, self.history)
            return self._channels[name]


#: A channel name in a URL: short, and safe to show in a page.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


# -- the routes --------------------------------------------------------------------


class SSEDemo:
    """The demo's SSE routes. ``scale`` multiplies every delay (tests use small
    ones); ``drain`` ends our streams on shutdown; ``retry`` is the ticker's
    reconnection time in milliseconds; ``tickers`` is the admin handle."""

    def __init__(self, *, scale: float = 1.0, drain: Drain | None = None, retry: int = 1000,
                 ticks: int = 20, history: int = 100) -> None:
        self.scale = scale
        self.drain = drain
        self.retry = retry
        self.tickers = TickerHub(interval=0.5 * scale, total=ticks, history=history)

    def respond(self, layer: SSELayer, events: AsyncIterator[Event]) -> Response:
        """``events`` through ``layer``'s response; only ours joins the drain."""
        if layer == "ours":
            return EventSourceResponse(events, drain=self.drain)
        if layer == "starlette":
            return starlette_sse_response(events)
        return sse_starlette_response(events)

    async def ticker(self, request: Request) -> Response:
        name = request.path_params.get("channel", "main")
        if not CHANNEL_NAME.fullmatch(name):
            return JSONResponse({"detail": f"bad channel name {name!r}"}, status_code=404)
        channel = self.tickers.channel(name)
        return EventSourceResponse(lambda last_id: channel.subscribe(last_id),
                                   retry=self.retry, drain=self.drain)

    def routes(self) -> list[BaseRoute]:
        mounts: list[BaseRoute] = [
            Mount(f"/{layer}", routes=LayerEndpoints(layer, self).routes())
            for layer in SSE_LAYERS
        ]
        ticker = [Route("/ours/ticker", self.ticker),
                  Route("/ours/ticker/{channel}", self.ticker)]
        return ticker + mounts


@dataclass(frozen=True, slots=True)
class LayerEndpoints:
    """The producers above, served on one layer."""

    layer: SSELayer
    demo: SSEDemo

    async def progress(self, request: Request) -> Response:
        return self.demo.respond(self.layer, progress_events(0.5 * self.demo.scale))

    async def progress_error(self, request: Request) -> Response:
        events = progress_events(0.5 * self.demo.scale, fail_after=2)
        return self.demo.respond(self.layer, events)

    async def clock(self, request: Request) -> Response:
        return self.demo.respond(self.layer, clock_events(1.0 * self.demo.scale))

    def routes(self) -> list[BaseRoute]:
        return [Route("/progress", self.progress),
                Route("/progress-error", self.progress_error),
                Route("/clock", self.clock)]

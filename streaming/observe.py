"""Watching streams: the records observers see and the middleware that lends them.

``StreamWatch(app, *observers)`` puts itself in the scope under ``WATCH_KEY``;
each response of this library that runs under it opens a ``StreamRecord``
(route, client, response type) before its first message and closes it with
the driver's ``Outcome`` after its last. Observers (``streaming.metrics``,
``streaming.otel``, ``streaming.logs``, the inspector) get both calls,
synchronously: they count, they never wait. Nothing here touches the per-chunk
path: an open record reads the driver's own counters when someone looks.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio

from streaming._types import ASGIApp, Message, Receive, Scope, Send
from streaming.outcome import Outcome

logger = logging.getLogger("streaming")

#: The scope key under which ``StreamWatch`` lends itself to the responses.
WATCH_KEY = "streaming.watch"

#: The scope key of a request's ``MessageFlow``, when an observer wants one.
FLOW_KEY = "streaming.flow"

#: The ``route`` of a request no router matched (a label, never the raw path:
#: a metric label per distinct path would grow without bound).
UNMATCHED = "<unmatched>"


class LiveFigures(Protocol):
    """What an open stream's driver reports when looked at (read, never pushed)."""

    @property
    def chunks_sent(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def first_byte_at(self) -> float | None: ...
    @property
    def state(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FlowMessage:
    """One ASGI message as the inspector draws it: seconds since the request
    began, which way it went (``receive``: server to app; ``send``: app to
    server), its type, body size, ``more_body``, status (a start message) and
    the first bytes of its body (raw: escape before showing)."""

    time: float
    direction: Literal["receive", "send"]
    type: str
    size: int
    more_body: bool
    status: int | None
    preview: bytes


class MessageFlow:
    """The ASGI messages of one request, bounded: the first ``head`` and the
    latest ``tail`` are kept, the count of those in between is not lost."""

    __slots__ = ("_started", "dropped", "head", "limit", "tail")

    def __init__(self, started: float, head: int = 64, tail: int = 192) -> None:
        self._started = started
        self.limit = head
        self.head: list[FlowMessage] = []
        self.tail: deque[FlowMessage] = deque(maxlen=tail)
        self.dropped = 0

    def record(self, direction: Literal["receive", "send"], message: Message) -> None:
        body = message.get("body", b"")
        entry = FlowMessage(anyio.current_time() - self._started, direction,
                            str(message.get("type", "?")), len(body),
                            bool(message.get("more_body", False)), message.get("status"),
                            bytes(body[:48]))
        if len(self.head) < self.limit:
            self.head.append(entry)
            return
        if len(self.tail) == self.tail.maxlen:
            self.dropped += 1
        self.tail.append(entry)

    @property
    def messages(self) -> list[FlowMessage]:
        return [*self.head, *self.tail]


@dataclass(eq=False, slots=True)
class StreamRecord:
    """One stream seen by ``StreamWatch``: who asked for what, and how it went.

    ``path`` and ``client`` come from the network: escape them before they
    reach a terminal, a log or a page (the observers here do). ``started`` is
    ``anyio.current_time()`` at open. ``outcome`` is set when the stream ends.
    """

    id: int
    method: str
    path: str
    route: str
    client: str | None
    response_type: str
    started: float
    live: LiveFigures | None = None
    #: The request's scope while the stream is open (``None`` after).
    scope: Scope | None = None
    #: Its ASGI messages, when an observer asked for them (``records_messages``).
    flow: MessageFlow | None = None
    outcome: Outcome | None = None
    #: Observers may keep their own per-stream state here (a span, say).
    notes: dict[str, object] = field(default_factory=dict)


class StreamObserver(Protocol):
    """What ``StreamWatch`` calls. Each call runs inline on the stream's task:
    keep it cheap and never let it raise (a raising observer is logged and
    skipped, the stream is unaffected)."""

    def stream_opened(self, stream: StreamRecord) -> None: ...
    def stream_closed(self, stream: StreamRecord) -> None: ...
    def stream_refused(self, scope: Scope, why: str) -> None: ...


class HubObserver(Protocol):
    """What a fan-out hub reports (``streaming.metrics.StreamMetrics`` is one):
    ``hub`` names the hub (a label: keep the set of names small)."""

    def hub_subscribers(self, hub: str, change: int) -> None: ...
    def hub_queue_depth(self, hub: str, depth: int) -> None: ...
    def hub_overflow(self, hub: str) -> None: ...


class StreamWatch:
    """ASGI middleware: every stream of ``app`` is reported to ``observers``.

    Place it outside ``StreamLimiter`` so that refusals are reported too.
    When an observer has ``records_messages = True`` (the inspector), each
    request's messages are also recorded (``MessageFlow``): that costs a
    wrapped ``send`` and ``receive``, paid only then.
    """

    def __init__(self, app: ASGIApp, *observers: StreamObserver) -> None:
        self.app = app
        self.observers = observers
        self.records_messages = any(getattr(o, "records_messages", False) for o in observers)
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[WATCH_KEY] = self
        if not self.records_messages:
            await self.app(scope, receive, send)
            return
        flow = scope[FLOW_KEY] = MessageFlow(anyio.current_time())

        async def recorded_receive() -> Message:
            message = await receive()
            flow.record("receive", message)
            return message

        async def recorded_send(message: Message) -> None:
            flow.record("send", message)
            await send(message)

        await self.app(scope, recorded_receive, recorded_send)

    def open(self, scope: Scope, response_type: str, live: LiveFigures | None) -> StreamRecord:
        """Called by a response as it starts: the record its observers will see."""
        client = scope.get("client")
        record = StreamRecord(
            id=next(self._ids),
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
            route=route_of(scope),
            client=f"{client[0]}:{client[1]}" if client else None,
            response_type=response_type,
            started=anyio.current_time(),
            live=live,
            scope=scope,
            flow=scope.get(FLOW_KEY),
        )
        self._tell("stream_opened", (record,))
        return record

    def close(self, record: StreamRecord, outcome: Outcome | None) -> None:
        """Called by the response once the stream has ended (``outcome`` is
        ``None`` when it was cancelled from outside before it could say)."""
        record.outcome = outcome
        record.live = record.scope = None  # done: keep neither the driver nor the request
        self._tell("stream_closed", (record,))

    def refused(self, scope: Scope, why: str) -> None:
        """Called by ``StreamLimiter`` for a request it turned away."""
        self._tell("stream_refused", (scope, why))

    def _tell(self, event: str, args: Iterable[object]) -> None:
        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:
                logger.exception(
                    "stream observer %r failed in %s", observer, event)


def route_of(scope: Scope) -> str:
    """The matched route's path template (Starlette and FastAPI set
    ``scope["route"]``), or ``UNMATCHED``."""
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else UNMATCHED

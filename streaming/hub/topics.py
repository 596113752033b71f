"""A process's view of one topic, and one subscriber's bounded queue.

``LocalTopic`` holds the last position this process delivered for a topic
and its local subscribers. Live entries are applied in order: an entry at or
below the position is a duplicate and is dropped, the next offset is fanned
out, anything else is a gap the backend repairs (``Feed.resync``). Fan-out
frames an entry once (``id`` line + the published body) and hands the same
bytes to every one-topic subscriber; a subscription to several topics gets
its own id line, since its id carries every topic's position.

``Subscription`` is one connection's queue: appending never blocks and never
waits for the reader, and a queue past its bounds (events or bytes) ends that
subscription alone (``OVERFLOW``). With ``Hub(inline_sends=True)``, on
asyncio, a frame pushed while the subscriber waits for one is not queued but
offered to its stream's driver, which sends it from the pushing task
(``streaming/driver/offers.py``): a publish is then one pass of sends, with
no task woken per subscriber.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

from streaming.driver import Finish, Offer
from streaming.hub.backend import Entry, History
from streaming.hub.frames import framed, reset_frame
from streaming.hub.position import Position, format_id


class Ended(enum.Enum):
    OVERFLOW = "overflow"
    DRAINED = "drained"
    CLOSED = "closed"


class Subscription:
    """The queue of frames waiting to be sent to one client."""

    __slots__ = (
        "_event",
        "_max_bytes",
        "_max_events",
        "_wake",
        "ended",
        "final",
        "finish",
        "frames",
        "offer",
        "size",
        "topics",
        "view",
    )

    def __init__(self, topics: tuple[str, ...], max_events: int, max_bytes: int,
                 event: Callable[[], anyio.Event] = anyio.Event, offer: Offer | None = None
                 ) -> None:
        self.topics = topics
        #: The stream's ``Driver.offer``: a frame pushed while the subscriber
        #: waits for one is sent from the pushing task, with no wake-up.
        self.offer = offer
        #: An offered frame whose send had to wait: the subscriber awaits it.
        self.finish: Finish | None = None
        #: The position of the last queued event in each topic (several topics only).
        self.view: dict[str, Position] = {}
        self.frames: list[bytes] = []
        self.size = 0
        self.ended: Ended | None = None
        self.final: object = None
        self._wake: anyio.Event | None = None
        self._max_events, self._max_bytes = max_events, max_bytes
        #: Makes the wake-up event: the event loop's own ``anyio.Event`` class,
        #: which skips finding the running loop on every wait (see ``Hub``).
        self._event = event

    def push(self, frame: bytes) -> None:
        if self.ended is not None:
            return
        wake = self._wake
        if wake is not None and self.offer is not None:  # waiting, so nothing is queued
            sent = self.offer(frame)
            if sent is True:
                return  # it sleeps on
            if sent is not False:  # the send had to wait: the subscriber finishes it
                self.finish = sent
                self._wake = None
                wake.set()
                return
        self.frames.append(frame)
        self.size += len(frame)
        if len(self.frames) > self._max_events or self.size > self._max_bytes:
            self.end(Ended.OVERFLOW)
        elif (wake := self._wake) is not None:
            self._wake = None
            wake.set()

    def push_entry(self, topic: str, entry: Entry) -> None:
        self.view[topic] = entry.position
        self.push(framed(format_id(self.topics, self.view), entry.body))

    def push_reset(self, topic: str, position: Position) -> None:
        self.view[topic] = position
        self.push(reset_frame(format_id(self.topics, self.view), topic))

    def end(self, why: Ended, final: object = None) -> None:
        """Stop taking frames. On overflow the queue is dropped (the client
        gets it again from history); otherwise what is queued still goes out."""
        if self.ended is not None:
            return
        self.ended, self.final = why, final
        if why is Ended.OVERFLOW:
            self.frames, self.size = [], 0
        if (wake := self._wake) is not None:
            self._wake = None
            wake.set()

    def stop_for_drain(self, final: object) -> None:
        self.end(Ended.DRAINED, final)

    def wake_up(self) -> Awaitable[None]:
        """What to await until a frame is queued or the subscription ends
        (whoever sets it also clears ``_wake``). A plain def returning the
        event's wait: no frame of its own on the stack while it waits."""
        wake = self._wake = self._event()
        return wake.wait()

    def take(self) -> list[bytes]:
        """The queued frames (possibly none), leaving the queue empty."""
        frames = self.frames
        self.frames, self.size = [], 0
        return frames


class LocalTopic:
    """One topic as this process sees it (see the module docstring)."""

    __slots__ = (
        "error",
        "multi",
        "name",
        "pending",
        "position",
        "ready",
        "recent",
        "refs",
        "single",
    )

    def __init__(self, name: str, cache: int) -> None:
        self.name = name
        self.refs = 0
        #: ``None`` until the backend watches the topic and told its top.
        self.position: Position | None = None
        self.pending: list[Entry] = []
        self.ready = anyio.Event()
        self.error: BaseException | None = None
        self.single: set[Subscription] = set()
        self.multi: set[Subscription] = set()
        #: The last entries delivered here, with their frames (contiguous).
        self.recent: deque[tuple[Entry, bytes]] | None = deque(maxlen=cache) if cache else None

    def add(self, subscription: Subscription) -> None:
        (self.single if len(subscription.topics) == 1 else self.multi).add(subscription)

    def discard(self, subscription: Subscription) -> None:
        self.single.discard(subscription)
        self.multi.discard(subscription)

    def start(self, top: Position) -> bool:
        """The topic is watched and ``top`` is its position: deliver what came
        in meanwhile. ``False`` if that left a gap."""
        self.position = top
        pending, self.pending = self.pending, []
        self.ready.set()
        return all(self.apply(entry) for entry in pending)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.ready.set()

    def apply(self, entry: Entry) -> bool:
        """Deliver ``entry`` if it is the next one; ``False`` for a gap."""
        position, new = self.position, entry.position
        if position is None:
            self.pending.append(entry)
            return True
        if new.epoch == position.epoch:
            if new.offset <= position.offset:
                return True  # already delivered (a resync overlapping live events)
            if new.offset != position.offset + 1:
                return False
        elif position.offset != 0 or new.offset != 1:
            return False  # a new epoch, and we may have missed events of the old one
        self.position = new
        frame = framed(new.format(), entry.body)
        if self.recent is not None:
            self.recent.append((entry, frame))
        for subscription in self.single:
            subscription.push(frame)
        for subscription in self.multi:
            subscription.push_entry(self.name, entry)
        return True

    def catch_up(self, history: History) -> None:
        """Apply a backend's history after our position: the missed entries,
        after a reset when some are gone."""
        if not history.complete:
            entries = history.entries
            first = entries[0].position.offset - 1 if entries else history.top.offset
            self.reset(Position(history.top.epoch, first))
        for entry in history.entries:
            self.apply(entry)

    def reset(self, position: Position) -> None:
        self.position = position
        if self.recent is not None:
            self.recent.clear()
        frame = reset_frame(position.format(), self.name)
        for subscription in self.single:
            subscription.push(frame)
        for subscription in self.multi:
            subscription.push_reset(self.name, position)

    def cached_between(self, start: Position, top: Position) -> list[tuple[Entry, bytes]] | None:
        """The entries after ``start`` up to ``top`` from the local cache, or
        ``None`` when the cache does not hold all of them."""
        recent = self.recent
        if not recent or start.epoch != top.epoch or start.offset > top.offset:
            return None
        oldest = recent[0][0].position
        if oldest.epoch != top.epoch or oldest.offset > start.offset + 1:
            return None
        return [(entry, frame) for entry, frame in recent
                if start.offset < entry.position.offset <= top.offset]

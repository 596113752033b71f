"""``MemoryBackend``: the hub's default, one process, no server.

Each topic is a bounded deque of entries with an epoch made when the topic is
first used; a topic idle for ``history_ttl`` seconds is forgotten (as Redis
expires the keys), so its next use starts a new epoch and a client still
holding an old position gets a reset, never a silent gap. Expiry is lazy: the
topics are kept in last-use order and the expired ones are dropped from the
front whenever a topic is used, so the work is bounded and nothing runs in
the background.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio.lowlevel

from streaming.exceptions import HubClosedError
from streaming.hub.backend import Entry, Feed, History, history_after
from streaming.hub.position import Position, new_epoch


@dataclass(slots=True)
class _Log:
    epoch: str
    entries: deque[Entry]
    offset: int = 0
    used: float = field(default=0.0)


class MemoryBackend:
    """Topics in this process's memory. Every ``Hub()`` has its own."""

    local_cache = 0  # the history is already here

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._watched: set[str] = set()
        self._feed: Feed | None = None
        self._history = 0
        self._ttl: float | None = None

    @asynccontextmanager
    async def open(self, feed: Feed, history: int, history_ttl: float | None
                   ) -> AsyncIterator[None]:
        self._feed, self._history, self._ttl = feed, history, history_ttl
        try:
            yield
        finally:
            self._feed = None
            self._watched.clear()

    async def publish(self, topic: str, body: bytes) -> Position:
        # A checkpoint, so a loop of publishes lets the subscribers run.
        await anyio.lowlevel.checkpoint()
        feed = self._running()
        log = self._log(topic, touch=True)
        log.offset += 1
        entry = Entry(Position(log.epoch, log.offset), body)
        log.entries.append(entry)
        if topic in self._watched:
            feed.deliver(topic, entry)
        return entry.position

    async def read(self, topic: str, after: Position | None) -> History:
        await anyio.lowlevel.checkpoint()
        self._running()
        log = self._log(topic, touch=False)
        start = after.offset if after is not None and after.epoch == log.epoch else 0
        held = [entry for entry in log.entries if entry.position.offset > start]
        return history_after(after, Position(log.epoch, log.offset), held)

    async def watch(self, topic: str) -> None:
        self._running()
        self._watched.add(topic)

    async def unwatch(self, topic: str) -> None:
        self._watched.discard(topic)

    def _running(self) -> Feed:
        if self._feed is None:
            raise HubClosedError("the hub is not running")
        return self._feed

    def _log(self, topic: str, touch: bool) -> _Log:
        """The topic's log, made (with a new epoch) if missing or expired. A
        publish (``touch``) restarts the topic's ttl, as a read does not: the
        Redis backend's keys expire the same way."""
        now = self._clock()
        self._expire(now)
        log = self._logs.get(topic)
        if log is None:
            log = self._logs[topic] = _Log(new_epoch(), deque(maxlen=self._history), used=now)
        elif touch:
            self._logs.move_to_end(topic)
            log.used = now
        return log

    def _expire(self, now: float) -> None:
        if self._ttl is None:
            return
        while self._logs:
            topic, oldest = next(iter(self._logs.items()))
            if now - oldest.used < self._ttl:
                return
            del self._logs[topic]

"""The one protocol both backends implement, and the values they exchange.

A backend stores each topic's history and carries live events between
processes; the ``Hub`` above it does everything else (positions, gaps,
resets, fan-out, queues), once, for every backend. That split is why the
in-memory and the Redis backend pass the same test module.

What is stored is the event already encoded as Server-Sent Events, without
its ``id`` line (``Entry.body``): a published event is encoded once, by the
publisher, and every process only puts its id in front.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from streaming.hub.position import Position


@dataclass(frozen=True, slots=True)
class Entry:
    """One published event: where it is in its topic, and its SSE bytes
    without the ``id`` line (``event:`` and ``data:`` lines, blank line)."""

    position: Position
    body: bytes


@dataclass(frozen=True, slots=True)
class History:
    """What a backend holds of a topic after a position.

    ``top`` is the topic's current position (its epoch and the offset of the
    newest event). ``entries`` are the held events after the position asked
    for, oldest first, all of ``top``'s epoch. ``complete`` is false when
    events after that position are no longer held (trimmed, expired, or the
    position is from another epoch): ``entries`` then start wherever the
    history starts.
    """

    top: Position
    entries: tuple[Entry, ...]
    complete: bool


class Feed(Protocol):
    """What a backend calls in the hub when live events arrive."""

    def deliver(self, topic: str, entry: Entry) -> bool:
        """Hand a live event to the topic's local subscribers. ``False``: the
        event does not follow the last one delivered (events were missed);
        the backend then calls ``resync(topic)``."""
        ...

    async def resync(self, topic: str) -> None:
        """Catch the topic up from the backend's history (after a reconnect or
        a gap): missed events, or a reset when they are gone."""
        ...

    def watched(self) -> tuple[str, ...]:
        """The topics with local subscribers."""
        ...


class Backend(Protocol):
    """Storage and transport under a ``Hub``.

    ``history`` is the number of events kept per topic, ``history_ttl`` the
    seconds a topic's history is kept after its last publish (``None``:
    forever).
    """

    #: How many recent events the hub keeps per topic in this process to serve
    #: resumes without asking the backend (0 for the in-memory backend, whose
    #: history is already local).
    local_cache: int

    def open(self, feed: Feed, history: int, history_ttl: float | None
             ) -> AbstractAsyncContextManager[None]:
        """Connect (raising ``HubUnavailable`` if that fails) and run whatever
        carries live events to ``feed`` until the context exits."""
        ...

    async def publish(self, topic: str, body: bytes) -> Position:
        """Append an event, atomically, and notify every process watching the
        topic; return its position."""
        ...

    async def read(self, topic: str, after: Position | None) -> History:
        """The topic's current position and the held events after ``after``
        (none for ``None``). Creates the topic's epoch if it has none yet."""
        ...

    async def watch(self, topic: str) -> None:
        """Start delivering the topic's live events to the feed. Returns once
        every event published from now on will be delivered."""
        ...

    async def unwatch(self, topic: str) -> None:
        """Stop delivering the topic's live events."""
        ...


def history_after(after: Position | None, top: Position, held: Sequence[Entry]) -> History:
    """The ``History`` a backend answers, from the topic's ``top`` and the
    entries it holds of ``top``'s epoch after ``after`` (all of them when
    ``after`` is of another epoch), oldest first.

    Complete means nothing between ``after`` and ``top`` is missing: the held
    entries start right after ``after``. A position of another epoch is
    complete only when it had seen nothing (offset 0) and the new epoch's
    history starts at its first event: nothing was lost. A position past the
    top (a forged id) is never complete.
    """
    if after is None:
        return History(top, (), True)
    same_epoch = after.epoch == top.epoch
    start = after.offset if same_epoch else 0
    entries = tuple(held)
    first = entries[0].position.offset if entries else top.offset + 1
    complete = (same_epoch or after.offset == 0) and start <= top.offset and first == start + 1
    return History(top, entries, complete)

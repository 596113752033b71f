"""Resuming an event stream: the ``Last-Event-ID`` request header and a replay buffer.

When an ``EventSource`` reconnects it sends the id of the last event it saw in
the ``Last-Event-ID`` header (WHATWG HTML 9.2.4, "the reestablish the connection"
steps). The header is client input: ``read_last_event_id`` validates it and
answers ``None`` ("start fresh") for anything hostile, never an error status.
``ReplayBuffer`` keeps recent events so a producer can send what was missed,
and says so when the id is too old to resume from: the producer then sends a
``reset`` event (``RESET_EVENT``) and starts from the current state.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from streaming._checks import check_seconds
from streaming._types import Scope
from streaming.encoders.sse import ServerSentEvent
from streaming.exceptions import MissingEventIdError, StreamingConfigError

logger = logging.getLogger("streaming")

#: Longest ``Last-Event-ID`` accepted; ids are names, not payloads.
MAX_LAST_EVENT_ID = 256

#: The event type a producer sends when it cannot resume from the client's id.
RESET_EVENT = "reset"


def read_last_event_id(scope: Scope) -> str | None:
    """Return the request's validated ``Last-Event-ID``, or ``None`` when it is
    absent, empty, longer than ``MAX_LAST_EVENT_ID``, not UTF-8, or holds a
    control character (the encoder could never have sent such an id)."""
    raw = next((v for k, v in scope.get("headers", ()) if k == b"last-event-id"), None)
    if not raw:
        return None
    try:
        value = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        value, problem = "", "not UTF-8"
    else:
        problem = _problem_with(value)
    if problem:
        logger.info("ignoring a Last-Event-ID header that is %s; starting fresh", problem)
        return None
    return value


def _problem_with(value: str) -> str:
    if len(value) > MAX_LAST_EVENT_ID:
        return f"longer than {MAX_LAST_EVENT_ID} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "holding a control character"
    return ""


@dataclass(frozen=True, slots=True)
class Replay:
    """What ``ReplayBuffer.since`` found: the events after the client's id, and
    whether the client missed events the buffer no longer holds (``gap``)."""

    events: tuple[ServerSentEvent, ...]
    gap: bool


class ReplayBuffer:
    """The most recent events with ids, bounded by count and by age (seconds).

    Pure bookkeeping (no I/O, no event loop); ``clock`` is injectable for tests.
    One buffer serves every client of a stream: append each event as it is
    published, call ``since(last_event_id)`` when a client (re)connects.
    """

    def __init__(
        self,
        max_events: int = 1000,
        max_age: float | None = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if type(max_events) is not int or max_events < 1:
            raise StreamingConfigError(f"max_events must be an int >= 1, not {max_events!r}")
        check_seconds("max_age", max_age)
        self._events: deque[tuple[float, ServerSentEvent]] = deque(maxlen=max_events)
        self._max_age = max_age
        self._clock = clock

    def append(self, event: ServerSentEvent) -> None:
        if not event.id:
            raise MissingEventIdError("only events with an id can be replayed")
        self._events.append((self._clock(), event))

    def since(self, last_event_id: str | None) -> Replay:
        """Events published after ``last_event_id``. ``None`` (a fresh client)
        replays nothing and has no gap; an id the buffer does not hold (evicted,
        expired, or never sent) is a gap and replays everything still held."""
        self._expire()
        if last_event_id is None:
            return Replay((), False)
        events = [event for _, event in self._events]
        for index, event in enumerate(events):
            if event.id == last_event_id:
                return Replay(tuple(events[index + 1:]), False)
        return Replay(tuple(events), True)

    def _expire(self) -> None:
        if self._max_age is None:
            return
        oldest = self._clock() - self._max_age
        while self._events and self._events[0][0] < oldest:
            self._events.popleft()

    def __len__(self) -> int:
        self._expire()
        return len(self._events)

"""The keep-alive and slow-client decision, as a pure object: no I/O, no clock.

The driver looks at a stream now and then (from its listener task, never per
chunk) and tells the ``Watchdog`` what it sees: the time, how many body
messages ``send()`` has completed, whether the producer is busy, and the
*stamp*: when the first send after the previous look began. The watchdog
answers what to do (nothing, send a keep-alive, or give up on the client) and
when to look again.

Why these inputs are enough, at no cost per chunk:

- A busy producer (awaiting inside, or its worker thread running) means the
  driver is not in ``send()``: the stream is idle, and after ``ping`` seconds
  without body bytes it gets a keep-alive.
- A producer parked at its ``yield`` means the driver is sending. If no send
  has completed since the last look, the same ``send()`` is still running: a
  client that does not accept one message within ``send_timeout`` is gone.
- Reading the clock per chunk would cost more than the rest of the chunk's
  path; instead each look asks the driver to stamp the start of the next send
  (one clock read per look, not per chunk). A send that stalls right after a
  look is therefore timed exactly; otherwise its start is known to within the
  time between two looks, which is why the watchdog looks every
  ``send_timeout / 8`` while messages flow.

So a client that stops reading is cut between ``send_timeout`` and
``send_timeout * 9 / 8`` after its last accepted message. One case is coarser:
after a quiet spell, a burst of several messages that fills the client's
buffers before the next look is timed from that look, at most
``min(ping, send_timeout / 2)`` late.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

#: A timer that fires this early still counts as due (clock granularity).
SLACK = 0.001

#: Looks per send timeout while messages flow: the bound on how late a cut is.
LOOKS_PER_TIMEOUT = 8


class Action(enum.Enum):
    """What the driver does after a look."""

    WAIT = "wait"
    PING = "ping"
    TIME_OUT = "time_out"


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a ``send()`` began, and how many sends had completed before it."""

    at: float
    sent: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """A look's answer: the action, and when to look next (``inf``: never)."""

    action: Action
    next_look: float


class Watchdog:
    """Decides keep-alives and send timeouts for one stream.

    ``ping``: seconds of silence before a keep-alive (``None``: never).
    ``send_timeout``: seconds one ``send()`` may take (``None``: forever).
    ``started``: when the stream began (the silence before the first chunk counts).
    """

    __slots__ = ("_ping", "_quiet_since", "_seen", "_sending_since", "_timeout")

    def __init__(self, ping: float | None, send_timeout: float | None, started: float) -> None:
        self._ping = ping or math.inf
        self._timeout = send_timeout or math.inf
        self._seen = 0  # completed sends at the last look
        self._quiet_since = started  # no body bytes went out after this (as far as known)
        self._sending_since = math.inf  # the running send began by then (inf: none seen)

    @property
    def active(self) -> bool:
        """False when there is nothing to watch (neither setting given)."""
        return self._ping < math.inf or self._timeout < math.inf

    def first_look(self) -> float:
        """When to look first: soon enough to time a client that stops reading
        at once, and no later than the first keep-alive is due."""
        return self._quiet_since + min(self._ping, self._timeout / LOOKS_PER_TIMEOUT)

    def look(self, now: float, sent: int, busy: bool, stamp: Stamp | None) -> Verdict:
        """Decide at ``now``: ``sent`` sends completed so far, the producer
        ``busy`` or not, and ``stamp`` the first send begun since the last look
        (``None`` if none began)."""
        progress = sent != self._seen
        self._seen = sent
        if progress:
            # The end of the last send is known (about) only if it is the one
            # stamped; otherwise it was some time before now.
            last = stamp.at if stamp is not None and stamp.sent == sent - 1 else now
            self._quiet_since = max(self._quiet_since, last)
        if busy:
            return self._idle(now)
        return self._sending(now, progress, stamp)

    def _idle(self, now: float) -> Verdict:
        # Not in send(): nothing can be stuck; a stall can start only after the
        # producer yields, and the stamp the driver takes then will time it.
        self._sending_since = math.inf
        if now - self._quiet_since >= self._ping - SLACK:
            self._quiet_since = now
            return Verdict(Action.PING, now + min(self._ping, self._timeout / 2))
        return Verdict(Action.WAIT, min(self._quiet_since + self._ping, now + self._timeout / 2))

    def _sending(self, now: float, progress: bool, stamp: Stamp | None) -> Verdict:
        exact = False
        if stamp is not None and stamp.sent == self._seen:  # the stamped send still runs
            self._sending_since, exact = stamp.at, True
        elif progress or stamp is not None or self._sending_since == math.inf:
            self._sending_since = now  # it began at most now (the end that never cuts early)
        # else: no send completed or began since the last look: the same one runs
        since = self._sending_since
        if now - since >= self._timeout - SLACK:
            return Verdict(Action.TIME_OUT, math.inf)
        if progress or exact or self._timeout == math.inf:
            step = min(self._timeout / LOOKS_PER_TIMEOUT, self._ping)
            return Verdict(Action.WAIT, min(since + self._timeout, now + step))
        # The same send, or one whose start is unknown: look again by the time
        # it would time out, and by half of that (a burst may have ended in it).
        return Verdict(Action.WAIT, min(since + self._timeout, now + self._timeout / 2))

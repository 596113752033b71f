"""How long a reader waits before it reconnects: a pure function of the
failures so far (no clock, no I/O; the random source is passed in)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from streaming.exceptions import StreamingConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts, in seconds.

    A reconnection waits ``base``: the server's SSE ``retry`` when it sent
    one (WHATWG HTML 9.2.3, the "reconnection time"), else ``initial``. From
    the second attempt in a row that delivered nothing, each multiplies the
    wait by ``multiplier``, up to ``maximum``. ``jitter`` takes up to that fraction
    off at random, so clients that lost one server do not return in step.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "multiplier"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
                raise StreamingConfigError(f"Backoff.{name} must be a finite number above "
                                           f"0, not {value!r}")
        if self.multiplier < 1 or self.maximum < self.initial:
            raise StreamingConfigError("Backoff needs multiplier >= 1 and maximum >= initial")
        if type(self.jitter) not in (int, float) or not 0 <= self.jitter <= 1:
            raise StreamingConfigError(f"Backoff.jitter must be from 0 to 1, not {self.jitter!r}")

    def delay(self, failures: int, base: float | None = None,
              random: Callable[[], float] = lambda: 1.0) -> float:
        """The wait before the next attempt after ``failures`` attempts in a
        row that delivered nothing (``0``: the stream just ended after data).
        ``random()`` returns a number in [0, 1)."""
        start = self.initial if base is None else base
        grown = start * self.multiplier ** min(max(0, failures - 1), 64)
        capped = min(self.maximum, grown)
        return capped * (1 - self.jitter * random())

"""The timing knobs of one response, checked where they are given."""

from __future__ import annotations

from dataclasses import dataclass

from streaming._checks import check_seconds
from streaming.exceptions import StreamingConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPolicy:
    """Timing knobs of one response (seconds; ``None`` or ``0`` turns one off).

    ``commit_deadline``: how long to hold the headers back waiting for the first
    chunk, so an error before it can still become an HTTP error status. ``0``
    commits at once (Starlette's behaviour); ``None`` waits however long it takes.
    ``cleanup_timeout``: how long closing the producer may take before the
    outcome reports ``cleanup_timed_out``.
    ``ping_interval``: send the format's keep-alive after this much silence.
    ``send_timeout``: a client that takes longer than this to accept one
    message is treated as gone (``EndReason.SEND_TIMEOUT``), within an eighth
    of it (``streaming/driver/watchdog.py``).
    ``batch``: send all the chunks the producer has ready as one message.
    """

    commit_deadline: float | None = 1.0
    cleanup_timeout: float = 5.0
    ping_interval: float | None = None
    send_timeout: float | None = None
    batch: bool = False

    def __post_init__(self) -> None:
        check_seconds("commit_deadline", self.commit_deadline, zero_ok=True)
        check_seconds("cleanup_timeout", self.cleanup_timeout, none_ok=False)
        check_seconds("ping", self.ping_interval, zero_ok=True)
        check_seconds("send_timeout", self.send_timeout)
        if type(self.batch) is not bool:
            raise StreamingConfigError(f"batch must be True or False, not {self.batch!r}")

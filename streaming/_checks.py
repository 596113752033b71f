"""Argument checks shared by every layer: a bad setting fails where it is given."""

from __future__ import annotations

import math

from streaming.exceptions import StreamingConfigError


def check_seconds(name: str, value: object, *, none_ok: bool = True,
                  zero_ok: bool = False) -> None:
    """Refuse a duration that cannot work: not a finite ``int``/``float`` of
    seconds, negative, or ``0`` where ``0`` means nothing (``bool`` is refused:
    ``True`` seconds is a slip)."""
    if value is None and none_ok:
        return
    if type(value) in (int, float) and math.isfinite(value) and (  # type: ignore[arg-type]
            value > 0 or (value == 0 and zero_ok)):  # type: ignore[operator]
        return
    allowed = "a finite number of seconds" + (", 0" if zero_ok else " above 0")
    raise StreamingConfigError(
        f"{name} must be {allowed}{' or None' if none_ok else ''}, not {value!r}")

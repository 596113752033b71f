"""Closing a producer, and telling a producer's mistake from a race.

After the client leaves, the driver cancels the producer where it waits. Two
things can then hand the driver one more item:

- **a race**: the producer's ``await`` completed in the same loop iteration as
  the disconnect, so it resumed uncancelled (asyncio and trio both deliver a
  cancellation only at the next suspension) and yielded its next item as usual;
- **a mistake**: the producer caught the cancellation in ``finally`` or
  ``except`` and yielded there.

The item is dropped either way. To tell which it was, the producer is closed by
throwing ``GeneratorExit`` at the ``yield`` it stopped at: an exception raised
while another is being handled carries it as its ``__context__``, so a
``GeneratorExit`` that comes back with the cancellation in its context was
raised inside a handler of that cancellation. Only then is it worth a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator
from types import CodeType
from typing import Any

import anyio

from streaming.driver.sources import ThreadedIterator
from streaming.exceptions import StreamingWarning


async def close_after_late_item(producer: AsyncGenerator[Any, Any]) -> bool:
    """Close ``producer``, which yielded after it was cancelled; return True if
    it yielded from inside a handler of that cancellation (a mistake)."""
    try:
        await producer.athrow(GeneratorExit)
    except GeneratorExit as exit_:
        return _handling_cancellation(exit_.__context__)
    except StopAsyncIteration:
        return False  # it caught GeneratorExit and returned: closed, no mistake seen
    # It yielded again, after GeneratorExit: aclose() raises "ignored
    # GeneratorExit", which the caller reports as the same mistake.
    await producer.aclose()
    return False


def _handling_cancellation(error: BaseException | None) -> bool:
    cancelled = anyio.get_cancelled_exc_class()
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, cancelled):
            return True
        seen.add(id(error))
        error = error.__context__
    return False


def ignored_generator_exit(error: BaseException) -> bool:
    """True for the error ``aclose()``/``close()`` raise when the producer
    yielded instead of ending: a ``yield`` inside ``finally``."""
    return isinstance(error, RuntimeError) and "ignored GeneratorExit" in str(error)


class Warner:
    """Where a producer's warning points: its own code, and its module's
    warning registry, so Python's default filter shows each mistake once per
    producer instead of once per stream. Taken while the producer's frame lives."""

    __slots__ = ("_code", "_registry")

    def __init__(self, source: object) -> None:
        if isinstance(source, ThreadedIterator):
            source = source.iterator
        code = getattr(source, "ag_code", None) or getattr(source, "gi_code", None)
        self._code = code if isinstance(code, CodeType) else None
        frame = getattr(source, "ag_frame", None) or getattr(source, "gi_frame", None)
        module_globals = getattr(frame, "f_globals", None)
        self._registry: dict[Any, int] | None = None
        if isinstance(module_globals, dict):
            registry = module_globals.setdefault("__warningregistry__", {})
            self._registry = registry if isinstance(registry, dict) else None

    def yielded_after_disconnect(self) -> None:
        code = self._code
        warnings.warn_explicit(
            f"the producer {code.co_name if code else ''}() yielded after the client "
            "disconnected (a yield inside finally or except?); the chunk was dropped "
            "and the producer closed",
            StreamingWarning,
            code.co_filename if code else __file__,
            code.co_firstlineno if code else 0,
            registry=self._registry,
        )

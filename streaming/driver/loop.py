"""What the running event loop is, where the driver needs more than anyio.

The package speaks anyio only, so that it runs on trio as on asyncio; this is
the one module that looks at asyncio itself, lazily, for two things anyio
does not offer: whether a send begun in one task may end in another (offers,
``offers.py``: asyncio's futures name no task, trio's waits do), and the
loop's clock without anyio's lookup of the running backend on every read
(``anyio.current_time()`` finds the backend first: about 25 times the cost of
the read itself, paid a few times per response), and a checkpoint likewise
(``anyio.lowlevel.checkpoint()`` is ``asyncio.sleep(0)`` there, after the
same lookup).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel

__all__ = ["asyncio_loop", "loop_calls"]


def asyncio_loop() -> Any:
    """The running asyncio event loop, or ``None`` (trio, or no loop)."""
    import asyncio  # here, not at the top: only an asyncio program has it loaded anyway

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def loop_calls() -> tuple[Callable[[], float], Callable[[], Awaitable[None]]]:
    """The running loop's clock and checkpoint, found once: what
    ``anyio.current_time`` returns (the clock cancel-scope deadlines use) and
    what ``anyio.lowlevel.checkpoint`` awaits, for the loop running now."""
    loop = asyncio_loop()
    if loop is None:
        return anyio.current_time, anyio.lowlevel.checkpoint
    return loop.time, _asyncio_checkpoint


def _asyncio_checkpoint() -> Awaitable[None]:
    import asyncio  # loaded already: the running loop is asyncio's

    return asyncio.sleep(0)  # what anyio's checkpoint awaits on asyncio

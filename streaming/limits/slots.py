"""Where stream slots live: the store protocol and the one-process store.

A stream counts against one or more *claims* (the global limit, its key's
limit). A store grants all of a stream's claims at once or none of them, so a
refused request holds nothing. ``MemorySlots`` serves one process; the Redis
store (``streaming.limits.redis``) shares slots across workers and hosts and
passes the same tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio


@dataclass(frozen=True, slots=True)
class Claim:
    """One limit a stream counts against: a name and how many may hold it."""

    name: str
    limit: int


class SlotStore(Protocol):
    """What ``StreamLimiter`` needs from a store of slots."""

    async def acquire(self, claims: Sequence[Claim], wait: float) -> object | None:
        """Take one slot of every claim, waiting up to ``wait`` seconds for
        them to be free together; return a lease, or ``None`` if refused."""

    async def keep(self, lease: object, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body`` while holding the lease, then release it, exactly once,
        however ``body`` ends (returns, raises, is cancelled)."""


@dataclass(eq=False, slots=True)
class _Waiter:
    claims: Sequence[Claim]
    granted: anyio.Event = field(default_factory=anyio.Event)


class MemorySlots:
    """Slots counted in this process. Waiters are served in arrival order: a
    freed slot is handed to the first waiter it fits before a newcomer can
    see it free."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._queue: deque[_Waiter] = deque()

    def held(self, name: str) -> int:
        """How many slots of the claim ``name`` are held now."""
        return self._held.get(name, 0)

    async def acquire(self, claims: Sequence[Claim], wait: float) -> object | None:
        if self._take(claims):
            return claims
        if wait <= 0:
            return None
        return await self._wait_for_slots(claims, wait)

    async def keep(self, lease: object, body: Callable[[], Awaitable[None]]) -> None:
        assert isinstance(lease, Sequence)
        try:
            await body()
        finally:
            self._give_back(lease)

    def _take(self, claims: Sequence[Claim]) -> bool:
        held = self._held
        if any(held.get(claim.name, 0) >= claim.limit for claim in claims):
            return False
        for claim in claims:
            held[claim.name] = held.get(claim.name, 0) + 1
        return True

    def _give_back(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            left = self._held[claim.name] - 1
            if left:
                self._held[claim.name] = left
            else:  # no entry per idle key: the table is as big as the open streams
                del self._held[claim.name]
        for waiter in list(self._queue):
            if self._take(waiter.claims):
                self._queue.remove(waiter)
                waiter.granted.set()

    async def _wait_for_slots(self, claims: Sequence[Claim], wait: float) -> object | None:
        waiter = _Waiter(claims)
        self._queue.append(waiter)
        try:
            with anyio.move_on_after(wait):
                await waiter.granted.wait()
        except BaseException:
            # Cancelled from outside: a slot granted meanwhile goes back.
            self._forget(waiter)
            raise
        if waiter.granted.is_set():  # granted, possibly as the timer fired
            return claims
        self._queue.remove(waiter)
        return None

    def _forget(self, waiter: _Waiter) -> None:
        if waiter.granted.is_set():
            self._give_back(waiter.claims)
        else:
            self._queue.remove(waiter)

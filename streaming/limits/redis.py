"""Stream slots in Redis, shared by every worker and host: leases that expire.

Each claim is a sorted set of leases scored by their expiry (Redis' own
clock, ``TIME``, so hosts need not agree on the time). Taking a slot is one
script: drop the expired leases, check every claim, add the lease to all of
them or to none. While the stream runs the lease is renewed every third of
its ``ttl``; when it ends the lease is removed. A worker that dies (SIGKILL,
out of memory, a lost host) stops renewing, and its slots come back within
``ttl`` seconds. Waiting requests poll (every ``poll`` seconds, with jitter):
there is no arrival order across workers.

Uses coredis (it runs on asyncio and trio; redis-py's asyncio client does not),
the client of the fan-out hub, opened like the hub's backend: from a URL,
for the life of the app (``async with slots:`` or ``lifespan=slots.lifespan``).
Before it is open, or when Redis does not answer, the limiter answers ``503``.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import coredis
import coredis.exceptions
from coredis.retry import NoRetryPolicy

from streaming.exceptions import SlotStoreUnavailable, StreamingConfigError
from streaming.limits.slots import Claim

logger = logging.getLogger("streaming")

# KEYS: the claims' sets. ARGV: lease id, ttl in ms, then each claim's limit.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('PEXPIRE', key, 2 * ttl)
end
return 1
"""

# Push the lease's expiry on; answers how many claims had lost it meanwhile.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local lost = 0
for _, key in ipairs(KEYS) do
  lost = lost + redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('PEXPIRE', key, 2 * ttl)
end
return lost
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 0
"""

_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""

_FAILURES = (coredis.exceptions.RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RedisLease:
    """One stream's hold on its claims' sets."""

    id: str
    keys: tuple[str, ...]


class RedisSlots:
    """Slots shared through Redis (see the module docstring).

    ``url``: the Redis server (``redis://``, ``rediss://``, ``unix://``).
    ``prefix``: the key prefix, one per limiter sharing the server. ``ttl``:
    seconds a lease outlives its last renewal. ``poll``: seconds between
    tries while waiting. ``timeout``: seconds one Redis call may take before
    the limiter treats Redis as unavailable (``503``).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *,
                 prefix: str = "streaming:slots", ttl: float = 10.0, poll: float = 0.1,
                 timeout: float = 2.0) -> None:
        for name, value in (("ttl", ttl), ("poll", poll), ("timeout", timeout)):
            if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
                raise StreamingConfigError(f"{name} must be a finite number of seconds "
                                           f"above 0, not {value!r}")
        if ttl < 0.03:
            raise StreamingConfigError(f"ttl must be at least 0.03 s (renewed every "
                                       f"third of it), not {ttl!r}")
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.poll = poll
        self.timeout = timeout
        self._ttl_ms = str(max(1, round(ttl * 1000)))
        self._scripts: dict[str, Any] = {}
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"<RedisSlots prefix={self.prefix!r} ttl={self.ttl}>"

    async def __aenter__(self) -> RedisSlots:
        if self._stack is not None:
            raise StreamingConfigError("this RedisSlots is already open")
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self.url, retry_policy=NoRetryPolicy(), connect_timeout=self.timeout)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(client)
            self._scripts = {name: client.register_script(text) for name, text in
                             (("acquire", _ACQUIRE), ("renew", _RENEW),
                              ("release", _RELEASE), ("count", _COUNT))}
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack, self._scripts = self._stack, None, {}
        if stack is not None:
            await stack.aclose()

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """For ``Starlette(lifespan=slots.lifespan)``: open for the app's life."""
        async with self:
            yield

    async def held(self, name: str) -> int:
        """How many unexpired leases the claim ``name`` has now."""
        return await self._call("count", RedisLease("", (self._key(name),)), [])

    async def acquire(self, claims: Sequence[Claim], wait: float) -> RedisLease | None:
        lease = RedisLease(secrets.token_hex(12), tuple(self._key(c.name) for c in claims))
        limits = [str(claim.limit) for claim in claims]
        deadline = anyio.current_time() + wait
        while True:
            if await self._call("acquire", lease, limits):
                return lease
            left = deadline - anyio.current_time()
            if left <= 0:
                return None
            # Jitter, so waiters on many workers do not try in lockstep.
            await anyio.sleep(min(left, self.poll * random.uniform(0.5, 1.5)))

    async def keep(self, lease: object, body: Callable[[], Awaitable[None]]) -> None:
        assert isinstance(lease, RedisLease)
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._renew_while_held, lease)
                try:
                    await body()
                except Exception as exc:  # re-raised below, not as an ExceptionGroup
                    error = exc
                group.cancel_scope.cancel()
        finally:
            await self._release(lease)
        if error is not None:
            raise error

    async def _renew_while_held(self, lease: RedisLease) -> None:
        while True:
            await anyio.sleep(self.ttl / 3)
            try:
                lost = await self._call("renew", lease, [])
            except SlotStoreUnavailable as exc:
                logger.warning("could not renew a stream slot lease (retrying): %s", exc)
                continue
            if lost:
                logger.warning("a stream slot lease had expired before its renewal "
                               "(Redis unreachable for more than ttl?); taken again, "
                               "the limit may have been exceeded meanwhile")

    async def _release(self, lease: RedisLease) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
            try:
                await self._call("release", lease, [])
            except SlotStoreUnavailable as exc:
                logger.warning("could not release a stream slot lease (it expires "
                               "within %s s): %s", self.ttl, exc)

    async def _call(self, name: str, lease: RedisLease, limits: list[str]) -> int:
        script = self._scripts.get(name)
        if script is None:
            raise SlotStoreUnavailable("RedisSlots is not open (async with slots, or "
                                       "lifespan=slots.lifespan)")
        try:
            with anyio.fail_after(self.timeout):
                result = await script(keys=list(lease.keys),
                                      args=[lease.id, self._ttl_ms, *limits])
        except _FAILURES as exc:
            raise SlotStoreUnavailable(f"Redis did not answer: {exc!r}") from exc
        return int(result)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

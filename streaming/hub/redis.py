"""``RedisBackend``: topics in Redis, shared by every worker and host.

Per topic, three names (``<prefix>{<topic>}``; the braces keep a topic's keys
in one cluster slot):

- ``...:m``, a hash: the topic's ``epoch`` and the ``offset`` of its last event;
- ``...:h``, a Redis Stream: the history, one entry per event whose stream id
  *is* the offset (``0-<offset>``), trimmed to ``history`` entries;
- the pub/sub channel ``<prefix>{<topic>}``: live notifications.

A publish is one Lua script, so Redis runs it atomically: it makes the epoch
if the topic has none, takes the next offset, appends to the history with an
exact ``MAXLEN`` (an approximate ``MAXLEN ~`` only drops whole stream nodes,
100 entries by default, so a short history is never trimmed at all), renews
the ttl, and publishes ``<epoch> <offset> <body>``. Two publishers on two
hosts therefore never take the same offset, and each process sees a topic's
events in offset order on its one subscriber connection.

A command that fails on a lost connection is sent once more on a fresh one
(a pooled connection can be dead after a server restart without anyone
having noticed). For a publish that is safe because each carries a random
token and the script returns the stored position instead of appending again
when the topic's last publish had the same token: the connection may have
died after Redis ran the script.

Each process holds one pub/sub connection for all its topics (subscribed
while it has subscribers) and a small pool for commands. When the pub/sub
connection drops, subscribers stay connected; the reader reconnects with
exponential backoff and jitter, subscribes again, and catches every watched
topic up from the history (``Feed.resync``), which resets a topic whose epoch
changed (the server came back empty).

The client is coredis, imported when a ``RedisBackend`` is made: it runs on
asyncio and trio through anyio (redis-py's asyncio client runs on asyncio
only). Install it with the ``redis`` extra.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from streaming.exceptions import HubUnavailable, StreamingConfigError
from streaming.hub.backend import Entry, Feed, History, history_after
from streaming.hub.frames import backoff
from streaming.hub.position import Position, new_epoch

if TYPE_CHECKING:
    import coredis
    from coredis.patterns.pubsub import PubSub

logger = logging.getLogger("streaming.hub")

_PUBLISH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
elseif redis.call('HGET', KEYS[1], 'token') == ARGV[6] then
  return {epoch, tonumber(redis.call('HGET', KEYS[1], 'offset'))}
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('HSET', KEYS[1], 'token', ARGV[6])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. offset, 'b', ARGV[2])
if ARGV[4] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. offset .. ' ' .. ARGV[2])
return {epoch, offset}
"""

_READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  if ARGV[4] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
end
local offset = redis.call('HGET', KEYS[1], 'offset')
if ARGV[2] == '' then return {epoch, offset, {}} end
local start = '-'
if ARGV[2] == epoch then start = '(0-' .. ARGV[3] end
return {epoch, offset, redis.call('XRANGE', KEYS[2], start, '+')}
"""


class RedisBackend:
    """Topics in the Redis server at ``url`` (``redis://``, ``rediss://`` or
    ``unix://``). ``prefix`` namespaces the keys and channels.
    ``connect_timeout`` bounds a connection attempt; reconnects wait
    ``reconnect_base * 2**attempt`` seconds, at most ``reconnect_cap``, with
    jitter."""

    local_cache = 256

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "streaming:hub:",
        connect_timeout: float = 2.0,
        reconnect_base: float = 0.1,
        reconnect_cap: float = 10.0,
    ) -> None:
        try:
            import coredis  # noqa: F401  (fail here, not on the first request)
        except ImportError:
            raise StreamingConfigError(
                "RedisBackend needs the coredis client: pip install coredis (the 'redis' extra)"
            ) from None
        for name, value in (("connect_timeout", connect_timeout),
                            ("reconnect_base", reconnect_base), ("reconnect_cap", reconnect_cap)):
            if type(value) not in (int, float) or not 0 < value < math.inf:
                raise StreamingConfigError(f"{name} must be a finite number of seconds, "
                                           f"not {value!r}")
        self.url, self.prefix = url, prefix
        self.connect_timeout = connect_timeout
        self.reconnect_base, self.reconnect_cap = reconnect_base, reconnect_cap
        self._rng = random.Random()
        self._client: coredis.Redis[bytes] | None = None
        self._pubsub: PubSub[bytes] | None = None
        self._watched: set[str] = set()
        self._history = 0
        self._ttl = "0"
        self._publish: Any = None
        self._read: Any = None

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"<RedisBackend prefix={self.prefix!r}>"

    # -- running -----------------------------------------------------------------

    @asynccontextmanager
    async def open(self, feed: Feed, history: int, history_ttl: float | None
                   ) -> AsyncIterator[None]:
        import coredis
        from coredis.retry import NoRetryPolicy

        self._history = history
        self._ttl = "0" if history_ttl is None else str(math.ceil(history_ttl))
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self.url, retry_policy=NoRetryPolicy(), connect_timeout=self.connect_timeout)
        # Errors leave through ``failure``: raised inside the client's (or our)
        # task group they would reach the caller wrapped in an ExceptionGroup.
        failure: Exception | None = None
        async with client:
            try:
                with anyio.fail_after(self.connect_timeout):
                    await client.ping()
            except (TimeoutError, coredis.exceptions.RedisError, OSError) as error:
                failure = HubUnavailable(f"cannot reach Redis: {_describe(error)}")
            else:
                self._client = client
                self._publish = client.register_script(_PUBLISH)
                self._read = client.register_script(_READ)
                try:
                    async with anyio.create_task_group() as group:
                        await group.start(self._listen, client, feed)
                        try:
                            yield
                        except Exception as error:
                            failure = error
                        finally:
                            group.cancel_scope.cancel()
                finally:
                    self._client = self._pubsub = None
                    self._publish = self._read = None
                    self._watched.clear()
        if failure is not None:
            raise failure

    async def _listen(self, client: coredis.Redis[bytes], feed: Feed,
                      *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """The one pub/sub reader of this process, reconnecting forever."""
        attempt, first = 0, True
        while True:
            try:
                async with client.pubsub(retry_policy=None, ignore_subscribe_messages=True
                                         ) as pubsub:
                    if self._watched:
                        await pubsub.subscribe(*map(self._channel, self._watched))
                    self._pubsub = pubsub
                    if first:
                        first = False
                        task_status.started()
                    else:
                        logger.info("the hub's Redis connection is back; catching up")
                        for topic in feed.watched():
                            await feed.resync(topic)
                    attempt = 0
                    await self._relay(pubsub, feed)
            except Exception as error:  # any failure: reconnect, never give up
                self._pubsub = None
                if first:
                    first = False
                    task_status.started()
                log = logger.warning if attempt == 0 else logger.debug
                log("the hub's Redis connection failed (%s); reconnecting", _describe(error))
            await anyio.sleep(backoff(attempt, self._rng, self.reconnect_base, self.reconnect_cap))
            attempt += 1

    async def _relay(self, pubsub: PubSub[bytes], feed: Feed) -> None:
        skip = len(self.prefix) + 1
        while True:
            message = await pubsub.get_message()
            if message is None or message["type"] != "message":
                continue
            channel = message["channel"]
            raw = channel if isinstance(channel, bytes) else channel.encode()
            topic = raw[skip:-1].decode()
            entry = _entry(message["data"])
            if entry is not None and not feed.deliver(topic, entry):
                await feed.resync(topic)

    # -- commands ------------------------------------------------------------------

    async def publish(self, topic: str, body: bytes) -> Position:
        keys = self._keys(topic)
        token = secrets.token_hex(8)
        args = [new_epoch(), body, self._history, self._ttl, self._channel(topic), token]
        reply = await self._call(self._publish, keys, args)
        return Position(reply[0].decode(), int(reply[1]))

    async def read(self, topic: str, after: Position | None) -> History:
        epoch, offset = ("", 0) if after is None else (after.epoch, after.offset)
        reply = await self._call(self._read, self._keys(topic),
                                 [new_epoch(), epoch, offset, self._ttl])
        top = Position(reply[0].decode(), int(reply[1]))
        held = [Entry(Position(top.epoch, int(bytes(ident).partition(b"-")[2])),
                      bytes(fields[1]))
                for ident, fields in reply[2]]
        return history_after(after, top, held)

    async def watch(self, topic: str) -> None:
        self._watched.add(topic)
        pubsub = self._pubsub
        if pubsub is None:
            raise HubUnavailable("the hub's Redis connection is down")
        try:
            await pubsub.subscribe(self._channel(topic))
        except Exception as error:
            raise HubUnavailable(f"cannot subscribe: {_describe(error)}") from None

    async def unwatch(self, topic: str) -> None:
        self._watched.discard(topic)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(self._channel(topic))
            except Exception as error:
                raise HubUnavailable(f"cannot unsubscribe: {_describe(error)}") from None

    async def _call(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        import coredis

        lost = (coredis.exceptions.ConnectionError, TimeoutError, OSError)
        for attempt in (1, 2):
            if script is None:
                raise HubUnavailable("the hub is not running")
            try:
                return await script(keys=keys, args=args)
            except lost as error:
                if attempt == 2:
                    raise HubUnavailable(f"Redis: {_describe(error)}") from None
        raise AssertionError("unreachable")

    def _keys(self, topic: str) -> list[str]:
        base = f"{self.prefix}{{{topic}}}"
        return [base + ":m", base + ":h"]

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}{{{topic}}}"


def _entry(data: Any) -> Entry | None:
    """Parse a notification, ``<epoch> <offset> <body>``; ``None`` (and a log
    line) for anything else on our channel."""
    try:
        epoch, offset, body = bytes(data).split(b" ", 2)
        return Entry(Position(epoch.decode(), int(offset)), body)
    except (ValueError, UnicodeDecodeError):
        logger.warning("ignoring a malformed hub notification (%d bytes)", len(bytes(data)))
        return None


def _describe(error: BaseException) -> str:
    """The error's type and, for a group, its first leaf: enough for a log
    line, never the URL."""
    while isinstance(getattr(error, "exceptions", None), tuple) and error.exceptions:  # type: ignore[attr-defined]
        error = error.exceptions[0]  # type: ignore[attr-defined]
    return f"{type(error).__name__}: {error}"[:200]

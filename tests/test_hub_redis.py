"""What is about Redis only: two hubs on one server (two hosts), one reader
connection per process, exact trimming, and faults made with a real
redis-server: down at start, killed and restarted with its data or empty,
hung (SIGSTOP). The guarantees common to every backend are in test_hub.py."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import anyio
import coredis
import pytest

from streaming import RESET_EVENT
from streaming.exceptions import HubUnavailable
from streaming.hub import Hub, Position, RedisBackend
from streaming.testing import StreamingClient
from tests.hub_client import Reader, data_of, ids_of, subscriber_app
from tests.redis_server import RedisServer


def _backend(server: RedisServer, prefix: str | None = None) -> RedisBackend:
    return RedisBackend(server.url, prefix=prefix or f"t{uuid.uuid4().hex[:8]}:",
                        connect_timeout=1.0, reconnect_base=0.05, reconnect_cap=0.4)


async def _wait_for_comments(reader: Reader, count: int) -> None:
    target = len(reader.comments) + count
    while len(reader.comments) < target:
        assert await reader._feed_next(), "the stream ended"


async def test_two_hubs_on_one_redis_never_share_a_position(shared_redis_server: RedisServer
                                                            ) -> None:
    """Two processes (hubs) publish to one topic at once: every position is
    taken once, contiguously, and both see the same order."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    async with (Hub(_backend(shared_redis_server, prefix)) as one,
                Hub(_backend(shared_redis_server, prefix)) as two):
        readers = []
        async with (StreamingClient(subscriber_app(one)).stream("GET", "/t") as a,
                    StreamingClient(subscriber_app(two)).stream("GET", "/t") as b):
            readers = [await Reader(a).started(), await Reader(b).started()]
            published: list[str] = []

            async def publish_from(hub: Hub, name: str) -> None:
                for n in range(40):
                    published.append(await hub.publish("t", f"{name}{n}"))

            async with anyio.create_task_group() as group:
                group.start_soon(publish_from, one, "one")
                group.start_soon(publish_from, two, "two")
            positions = sorted(Position.parse(i).offset for i in published)  # type: ignore[union-attr]
            assert positions == list(range(1, 81))
            with anyio.fail_after(10):
                seen = [ids_of(await reader.read(80)) for reader in readers]
        assert seen[0] == seen[1] == sorted(published, key=lambda i: int(i.split("-")[1]))


async def test_one_reader_connection_per_process(shared_redis_server: RedisServer) -> None:
    backend = _backend(shared_redis_server)
    async with Hub(backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with anyio.create_task_group() as group:
            started = 0
            all_started, done = anyio.Event(), anyio.Event()

            async def subscribe(path: str) -> None:
                nonlocal started
                async with client.stream("GET", path) as response:
                    await Reader(response).started()
                    started += 1
                    if started == 30:
                        all_started.set()
                    await done.wait()

            for n in range(30):
                group.start_soon(subscribe, f"/t{n % 3}")
            with anyio.fail_after(10):
                await all_started.wait()
            redis: Any = backend._client
            listing = (await redis.client_list())
            subscribed = [c for c in listing if int(c.get("sub", 0)) > 0]
            assert len(subscribed) == 1 and int(subscribed[0]["sub"]) == 3
            counts = await redis.pubsub_numsub(*(backend._channel(f"t{n}") for n in range(3)))
            assert set(counts.values()) == {1}
            done.set()


async def test_exact_trim_and_why_not_approximate(shared_redis_server: RedisServer) -> None:
    """Redis' ``MAXLEN ~`` drops whole stream nodes (100 entries by default),
    so a short history would never be trimmed: the hub trims exactly."""
    backend = _backend(shared_redis_server)
    async with Hub(backend, history=10) as hub:
        for n in range(150):
            await hub.publish("t", str(n))
        redis: Any = backend._client
        assert await redis.xlen(backend._keys("t")[1]) == 10
        for n in range(150):
            await redis.xadd("approximate", {"n": n}, trim_strategy="maxlen", threshold=10,
                             trim_operator="~")
        assert await redis.xlen("approximate") > 10


async def test_redis_down_at_startup_is_hub_unavailable() -> None:
    server = RedisServer()          # made, never started: nothing listens on its port
    try:
        with anyio.fail_after(5), pytest.raises(HubUnavailable, match="cannot reach Redis"):
            async with Hub(_backend(server)):
                pass
    finally:
        server.stop()


async def test_publish_while_redis_is_down_or_hung_fails_in_bounded_time(
        redis_server: RedisServer) -> None:
    async with Hub(_backend(redis_server), timeout=0.5) as hub:
        await hub.publish("t", "fine")
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)      # hung: takes, never answers
        try:
            with anyio.fail_after(3), pytest.raises(HubUnavailable, match=r"within 0\.5 s"):
                await hub.publish("t", "hangs")
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        redis_server.kill()                                    # down: refuses at once
        with anyio.fail_after(3), pytest.raises(HubUnavailable):
            await hub.publish("t", "refused")


async def test_subscribers_stay_connected_through_a_restart_and_catch_up(
        persistent_redis_server: RedisServer) -> None:
    """Killed mid-stream and restarted with its data: subscribers keep getting
    pings, a subscriber to a topic no one here watches yet is refused with a
    503 (one to a watched topic joins it), and once Redis is back
    every event published after it came back arrives once, in order, even
    those published by another process before this one reconnected."""
    server = persistent_redis_server
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    async with Hub(_backend(server, prefix)) as hub:
        client = StreamingClient(subscriber_app(hub, ping=0.05))
        async with client.stream("GET", "/t") as response:
            reader = await Reader(response).started()
            first = await hub.publish("t", "before")
            with anyio.fail_after(5):
                await reader.read(1)
            server.kill()
            with anyio.fail_after(5):
                await _wait_for_comments(reader, 3)            # still alive: pings
                refused = await StreamingClient(subscriber_app(hub)).get("/u")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
            server.start()
            async with Hub(_backend(server, prefix)) as other:   # another process
                after = [await other.publish("t", "after-1")]
            after.append(await hub.publish("t", "after-2"))
            with anyio.fail_after(10):
                events = await reader.read(2)
    assert ids_of(reader.events) == [first, *after]
    assert data_of(events) == ["after-1", "after-2"]


async def test_redis_restarted_empty_gives_a_reset(redis_server: RedisServer) -> None:
    async with Hub(_backend(redis_server)) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t") as response:
            reader = await Reader(response).started()
            old = await hub.publish("t", "old")
            with anyio.fail_after(5):
                await reader.read(1)
            redis_server.kill()
            redis_server.start(empty=True)
            new = await hub.publish("t", "new")
            with anyio.fail_after(10):
                reset, event = await reader.read(2)
    assert reset.event == RESET_EVENT and reset.data == "t"
    new_position, old_position = Position.parse(new), Position.parse(old)
    assert new_position is not None and old_position is not None
    assert new_position.epoch != old_position.epoch
    assert reset.id == f"{new_position.epoch}-0" and (event.id, event.data) == (new, "new")


async def test_coredis_runs_the_commands_the_hub_needs(shared_redis_server: RedisServer) -> None:
    """The client choice (ARCHITECTURE.md): pub/sub, scripts and streams, on
    this event loop (asyncio and trio)."""
    client: Any = coredis.Redis.from_url(shared_redis_server.url)
    stream, channel = f"s{uuid.uuid4().hex}", f"c{uuid.uuid4().hex}"
    async with client:
        script = client.register_script("return redis.call('XADD', KEYS[1], '0-7', 'b', ARGV[1])")
        async with client.pubsub(channels=[channel], ignore_subscribe_messages=True) as pubsub:
            assert await script(keys=[stream], args=["x"]) == b"0-7"
            await client.publish(channel, "hello")
            with anyio.fail_after(5):
                while (message := await pubsub.get_message()) is None:
                    pass
            assert message["data"] == b"hello"
        replies = await client.xread({stream: "0-0"}, count=1, block=100)
        assert next(iter(replies.values()))[0].identifier == b"0-7"


async def test_a_publish_sent_twice_is_stored_once(shared_redis_server: RedisServer) -> None:
    """A publish retried after a lost connection (the script may have run)
    carries the same token: Redis returns the stored position, no second entry."""
    backend = _backend(shared_redis_server)
    async with Hub(backend):
        keys = backend._keys("t")
        args = ["epoch1", b"data: x\n\n", 10, "0", backend._channel("t"), "token-1"]
        first = await backend._call(backend._publish, keys, args)
        again = await backend._call(backend._publish, keys, args)
        other = await backend._call(backend._publish, keys, [*args[:5], "token-2"])
        redis: Any = backend._client
        assert first == again and int(other[1]) == int(first[1]) + 1
        assert await redis.xlen(keys[1]) == 2

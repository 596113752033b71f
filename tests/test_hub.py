"""The hub's guarantees, one test per row of the README's table, run against
every backend (in memory, and a real redis-server) on asyncio and trio.

What is about Redis only (restarts, outages, two hosts) is in
``test_hub_redis.py``; real servers and browsers in ``test_hub_e2e.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import anyio
import pytest

from streaming import (
    RESET_EVENT,
    EndReason,
    EventSourceResponse,
    Outcome,
    SSEEncodingError,
    SSEParser,
    StreamRefused,
)
from streaming._types import ASGIApp, Message, Receive, Scope, Send
from streaming.exceptions import (
    EventTooLargeError,
    HubClosedError,
    InvalidTopicError,
)
from streaming.hub import Backend, Hub, MemoryBackend, Position, RedisBackend
from streaming.hub.position import parse_last_event_id
from streaming.metrics import StreamMetrics
from streaming.testing import StreamingClient
from tests.hub_client import Reader, data_of, ids_of, subscriber_app
from tests.redis_server import RedisServer

MakeBackend = Callable[..., Backend]


class FakeClock:
    """Time for the memory backend's ttl, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[MakeBackend]:
    """Backends of the kind under test; several made in one test share their
    topics (two hubs on one Redis stand for two processes)."""
    if backend_kind == "memory":
        yield lambda clock=None: MemoryBackend(**({"clock": clock} if clock else {}))
        return
    server: RedisServer = request.getfixturevalue("shared_redis_server")
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    yield lambda clock=None: RedisBackend(server.url, prefix=prefix)


def _hub(make_backend: MakeBackend, **settings: Any) -> Hub:
    clock = settings.pop("clock", None)
    return Hub(make_backend(clock), **settings)


async def test_live_events_reach_every_subscriber_once_in_order(make_backend: MakeBackend
                                                                 ) -> None:
    async with _hub(make_backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/room:1") as a, client.stream("GET", "/room:1") as b:
            readers = [await Reader(a).started(), await Reader(b).started()]
            ids = [await hub.publish("room:1", {"n": n}, event="message") for n in range(5)]
            await hub.publish("elsewhere", "not for them")
            with anyio.fail_after(5):
                for reader in readers:
                    events = await reader.read(5)
                    assert ids_of(events) == ids           # the ids publish returned
                    assert [json.loads(e.data)["n"] for e in events] == [0, 1, 2, 3, 4]
                    assert {e.event for e in events} == {"message"}
            assert a.body == b.body                         # the same bytes to everyone
            assert len({Position.parse(i).epoch for i in ids}) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("inline_sends", [True, False])
async def test_a_waiting_subscriber_is_sent_each_event_by_the_task_that_delivers_it(
        make_backend: MakeBackend, anyio_backend: str, inline_sends: bool) -> None:
    """On asyncio a subscriber waiting for an event is not woken to send it:
    the task that delivers it (the publisher's, or the Redis reader's) sends
    it (``Driver.offer``). On trio, or with ``inline_sends=False``, the
    subscriber's own task does. Either way every event goes out once, in order.
    The server's send here never waits, as uvicorn's does not while the
    client reads."""
    sent: list[tuple[int, bytes]] = []
    left, registered = anyio.Event(), anyio.Event()
    streams: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append((anyio.get_current_task().id, message["body"]))
            registered.set()

    async def receive() -> Message:
        await left.wait()
        return {"type": "http.disconnect"}

    async def subscribe() -> None:
        streams.append(anyio.get_current_task().id)
        scope = {"type": "http", "method": "GET", "path": "/t", "headers": []}
        await subscriber_app(hub)(scope, receive, send)

    async with _hub(make_backend, inline_sends=inline_sends) as hub, \
            anyio.create_task_group() as group:
        group.start_soon(subscribe)
        with anyio.fail_after(5):
            await registered.wait()
        ids = []
        for n in range(5):
            ids.append(await hub.publish("t", str(n)))
            await anyio.wait_all_tasks_blocked()  # delivered before the next
        with anyio.fail_after(5):
            while len(sent) < 6:
                await anyio.wait_all_tasks_blocked()
        left.set()
    events = SSEParser().feed(b"".join(body for _, body in sent[1:]))
    assert [e.id for e in events] == ids and [e.data for e in events] == list("01234")
    senders = {task for task, _ in sent[1:]}
    assert senders.isdisjoint(streams) is (inline_sends and anyio_backend == "asyncio")


@pytest.mark.parametrize("wrapper", ["cancel scope", "lock"])
async def test_by_default_a_send_wrapper_with_task_bound_state_works(
        make_backend: MakeBackend, wrapper: str) -> None:
    """A middleware may wrap ``send()`` in an anyio cancel scope or lock, which
    belong to the task that enters them. By default each subscriber's own task
    sends, so that holds; ``inline_sends=True`` (sending from the publisher's
    task) is for sends without such state (``Hub`` docs)."""
    lock = anyio.Lock()

    def wrapped_app(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            async def guarded(message: Message) -> None:
                if wrapper == "lock":
                    async with lock:
                        await send(message)
                else:
                    with anyio.move_on_after(30):
                        await send(message)
            await app(scope, receive, guarded)
        return middleware

    async with _hub(make_backend) as hub:
        client = StreamingClient(wrapped_app(subscriber_app(hub)))
        async with client.stream("GET", "/t") as a, client.stream("GET", "/t") as b:
            readers = [await Reader(a).started(), await Reader(b).started()]
            ids = [await hub.publish("t", str(n)) for n in range(3)]  # the publisher is unharmed
            with anyio.fail_after(5):
                for reader in readers:
                    assert ids_of(await reader.read(3)) == ids


async def test_resume_sends_exactly_the_missed_events_then_live(make_backend: MakeBackend
                                                                  ) -> None:
    async with _hub(make_backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/room:1") as response:
            reader = await Reader(response).started()
            first = [await hub.publish("room:1", n) for n in ("1", "2")]
            with anyio.fail_after(5):
                await reader.read(2)
            last = reader.last_event_id
        assert last == first[-1]
        missed = [await hub.publish("room:1", n) for n in ("3", "4", "5")]
        async with client.stream("GET", "/room:1", headers={"last-event-id": last}) as response:
            reader = Reader(response)
            with anyio.fail_after(5):
                replayed = await reader.read(3)
                live_id = await hub.publish("room:1", "6")
                live = await reader.read(1)
        assert ids_of(replayed) == missed and data_of(replayed) == ["3", "4", "5"]
        assert ids_of(live) == [live_id] and data_of(live) == ["6"]


async def test_resume_has_no_gap_and_no_duplicate_while_publishing(make_backend: MakeBackend
                                                                    ) -> None:
    """A client that keeps reconnecting while events are published without a
    pause receives each event exactly once, in order, across connections."""
    total = 150
    async with _hub(make_backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        published: list[str] = []
        received: list[str | None] = []

        async def publish_all() -> None:
            for n in range(total):
                published.append(await hub.publish("feed", str(n)))

        last: str | None = None
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                async with client.stream("GET", "/feed") as response:
                    reader = await Reader(response).started()
                    group.start_soon(publish_all)
                    received += ids_of(await reader.read(7))
                    last = reader.last_event_id
                while len(received) < total:
                    headers = {"last-event-id": last} if last else {}
                    async with client.stream("GET", "/feed", headers=headers) as response:
                        reader = Reader(response)
                        received += ids_of(await reader.read(min(11, total - len(received))))
                        last = reader.last_event_id
        assert received == published


async def test_a_position_older_than_the_history_gets_a_reset(make_backend: MakeBackend) -> None:
    async with _hub(make_backend, history=3) as hub:
        ids = [await hub.publish("t", str(n)) for n in range(1, 11)]
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t", headers={"last-event-id": ids[1]}) as response:
            with anyio.fail_after(5):
                events = await Reader(response).read(4)
    reset, *held = events
    assert reset.event == RESET_EVENT and reset.data == "t"
    assert reset.id == ids[6]                # the events that follow continue from there
    assert ids_of(held) == ids[7:] and data_of(held) == ["8", "9", "10"]


async def test_a_position_from_another_epoch_gets_a_reset(make_backend: MakeBackend) -> None:
    async with _hub(make_backend) as hub:
        ids = [await hub.publish("t", str(n)) for n in range(2)]
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t", headers={"last-event-id": "zzzz-7"}) as response:
            with anyio.fail_after(5):
                events = await Reader(response).read(3)
    assert events[0].event == RESET_EVENT
    assert ids_of(events[1:]) == ids


@pytest.mark.parametrize("hostile", ["garbage", "abc-01", "a" * 300, "x\u0007-1", "e-1,e-2",
                                     "1" * 40, "abc-99999999999999999999"])
async def test_a_malformed_or_foreign_id_is_a_fresh_start(make_backend: MakeBackend,
                                                          hostile: str) -> None:
    async with _hub(make_backend) as hub:
        await hub.publish("t", "before")
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t", headers={"last-event-id": hostile}) as response:
            reader = await Reader(response).started()
            assert response.status_code == 200
            assert reader.events == []            # nothing replayed, no reset
            start = reader.last_event_id          # the announced position
            event_id = await hub.publish("t", "after")
            with anyio.fail_after(5):
                assert ids_of(await reader.read(1)) == [event_id]
        before, after = Position.parse(start), Position.parse(event_id)
        assert before is not None and after is not None and before < after


async def test_a_fresh_subscriber_can_resume_before_any_event(make_backend: MakeBackend) -> None:
    """The announced id: a client that leaves before any event and comes back
    gets what was published meanwhile."""
    async with _hub(make_backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t") as response:
            announced = (await Reader(response).started()).last_event_id
        missed = await hub.publish("t", "meanwhile")
        async with client.stream("GET", "/t", headers={"last-event-id": announced}) as response:
            with anyio.fail_after(5):
                assert ids_of(await Reader(response).read(1)) == [missed]


async def test_several_topics_on_one_connection_resume_each(make_backend: MakeBackend) -> None:
    async with _hub(make_backend) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/a,b") as response:
            reader = await Reader(response).started()
            await hub.publish("a", "a1")
            await hub.publish("b", "b1")
            a2 = await hub.publish("a", "a2")
            with anyio.fail_after(5):
                assert data_of(await reader.read(3)) == ["a1", "b1", "a2"]
            last = reader.last_event_id
        positions = parse_last_event_id(last, ("a", "b"))
        assert positions["a"].format() == a2 and positions["b"].offset == 1
        await hub.publish("b", "b2")
        await hub.publish("a", "a3")
        async with client.stream("GET", "/a,b", headers={"last-event-id": last}) as response:
            reader = Reader(response)
            with anyio.fail_after(5):
                assert sorted(data_of(await reader.read(2))) == ["a3", "b2"]
            assert parse_last_event_id(last, ("b", "a")) == {}   # another subscription's id
        async with client.stream("GET", "/b,a", headers={"last-event-id": last}) as response:
            assert (await Reader(response).started()).events == []   # a fresh start


async def test_a_slow_subscriber_is_cut_alone_and_resumes_from_history(
        make_backend: MakeBackend) -> None:
    async with _hub(make_backend, max_queued_events=4) as hub:
        outcomes: list[Outcome] = []
        slow_client = StreamingClient(subscriber_app(hub, on_outcome=outcomes.append), buffer=0)
        fast_client = StreamingClient(subscriber_app(hub))
        async with slow_client.stream("GET", "/t") as slow, fast_client.stream("GET", "/t") as fast:
            slow_reader = await Reader(slow).started()
            fast_reader = await Reader(fast).started()
            ids = [await hub.publish("t", str(n)) for n in range(12)]  # never waits for slow
            with anyio.fail_after(5):
                assert ids_of(await fast_reader.read(12)) == ids
                got = await slow_reader.read(12)    # what it had, then the end
                await slow.wait_for_app()
            assert len(got) < 12 and slow.complete  # a clean end: the client reconnects
            last = slow_reader.last_event_id
        assert [o.reason for o in outcomes] == [EndReason.SUBSCRIBER_OVERFLOW]
        async with fast_client.stream("GET", "/t", headers={"last-event-id": last}) as again:
            with anyio.fail_after(5):
                rest = await Reader(again).read(12 - len(got))
        assert ids_of(got) + ids_of(rest) == ids


async def test_authorization_refuses_with_403_before_any_event(make_backend: MakeBackend) -> None:
    async def authorize(scope: dict[str, Any], topic: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return topic != "secret" and dict(scope["headers"]).get(b"x-user") == b"ann"

    async with _hub(make_backend, authorize=authorize) as hub:
        await hub.publish("secret", "hidden")
        client = StreamingClient(subscriber_app(hub))
        for path, headers in [("/secret", {"x-user": "ann"}), ("/open", {}),
                              ("/open,secret", {"x-user": "ann"})]:
            with anyio.fail_after(5):
                response = await client.get(path, headers=headers)
            assert response.status_code == 403
            assert b"hidden" not in response.body and b"data:" not in response.body
        async with client.stream("GET", "/open", headers={"x-user": "ann"}) as response:
            assert response.status_code == 200
        with pytest.raises(StreamRefused):                 # no request scope: refused too
            await hub.subscriber("open")(None).__anext__()


async def test_drain_ends_every_subscriber_with_a_spread_retry(make_backend: MakeBackend) -> None:
    async with _hub(make_backend, retry_spread=(2000, 9000)) as hub:
        client = StreamingClient(subscriber_app(hub))
        async with (client.stream("GET", "/t") as a, client.stream("GET", "/t") as b,
                    client.stream("GET", "/u") as c):
            readers = [await Reader(r).started() for r in (a, b, c)]
            report = await hub.drain.drain()
            assert report.drained == 3 and report.late == 0
            for reader in readers:
                with anyio.fail_after(5):
                    (final,) = await reader.read(1)
                assert final.event == "shutdown" and 2000 <= final.retry <= 9000  # type: ignore[operator]
                assert await reader.response.next_chunk() is None
                assert reader.response.complete              # a clean end, not a cut
            async with client.stream("GET", "/t") as late:   # while draining: final at once
                with anyio.fail_after(5):
                    assert (await Reader(late).read(1))[0].event == "shutdown"


async def test_a_drain_still_sends_what_was_queued_while_a_frame_went_out(
        make_backend: MakeBackend) -> None:
    """The producer is parked at its ``yield`` (the driver is sending e1) when
    e2 is queued and the drain comes: e2 goes out before the drain's event."""
    async with _hub(make_backend) as hub:
        subscription = hub.subscriber("t")(None)
        witness = hub.subscriber("t")(None)  # one fan-out pass queues e2 for both
        with anyio.fail_after(5):
            await subscription.__anext__()               # the subscription's first frame
            await witness.__anext__()
            await hub.publish("t", "e1")
            assert b"data: e1" in await subscription.__anext__()  # parked at the yield
            await hub.publish("t", "e2")
            while b"data: e2" not in await witness.__anext__():  # (Redis: once it came back)
                pass
            assert isinstance(witness, AsyncGenerator)
            await witness.aclose()                           # so e2 is in the queue too
            async with anyio.create_task_group() as group:
                group.start_soon(hub.drain.drain)
                await anyio.wait_all_tasks_blocked()         # the drain has stopped it
                rest = b"".join([frame async for frame in subscription])
    assert b"data: e2" in rest
    assert rest.index(b"data: e2") < rest.index(b"event: shutdown")


async def test_history_expires_after_its_ttl(make_backend: MakeBackend, backend_kind: str,
                                             request: pytest.FixtureRequest) -> None:
    clock = FakeClock()
    async with _hub(make_backend, history_ttl=60, clock=clock) as hub:
        old = await hub.publish("t", "old")
        if backend_kind == "memory":
            clock.now += 61
        else:
            backend: Any = hub.backend
            keys = backend._keys("t")
            ttls = [await backend._client.pttl(key) for key in keys]
            assert all(0 < ttl <= 60_000 for ttl in ttls)
            await backend._client.delete(keys)          # what Redis does when they expire
        new = await hub.publish("t", "new")
        assert Position.parse(new).epoch != Position.parse(old).epoch  # type: ignore[union-attr]
        client = StreamingClient(subscriber_app(hub))
        async with client.stream("GET", "/t", headers={"last-event-id": old}) as response:
            with anyio.fail_after(5):
                reset, event = await Reader(response).read(2)
        assert reset.event == RESET_EVENT and (event.id, event.data) == (new, "new")


async def test_the_history_is_trimmed_to_its_length(make_backend: MakeBackend) -> None:
    async with _hub(make_backend, history=5) as hub:
        for n in range(40):
            await hub.publish("t", str(n))
        history = await hub.backend.read("t", Position(Position.parse(
            await hub.publish("t", "last")).epoch, 0))  # type: ignore[union-attr]
        assert [e.position.offset for e in history.entries] == [37, 38, 39, 40, 41]
        if isinstance(hub.backend, RedisBackend):
            client: Any = hub.backend._client
            assert await client.xlen(hub.backend._keys("t")[1]) == 5


async def test_publish_refuses_what_no_subscriber_could_take(make_backend: MakeBackend) -> None:
    async with _hub(make_backend, max_queued_bytes=2048) as hub:
        with pytest.raises(EventTooLargeError):
            await hub.publish("t", "x" * 4096)
        with pytest.raises(InvalidTopicError):
            await hub.publish("no spaces", "x")
        with pytest.raises(SSEEncodingError):
            await hub.publish("t", "x", event="two\nlines")
    with pytest.raises(HubClosedError, match="not running"):
        await hub.publish("t", "after close")
    with pytest.raises(HubClosedError, match="not running"):
        await hub.subscriber("t")(None).__anext__()


async def test_closing_the_hub_ends_its_subscribers(make_backend: MakeBackend) -> None:
    hub = _hub(make_backend)
    client = StreamingClient(subscriber_app(hub))
    closing = anyio.Event()

    async def run_hub(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with hub:
            task_status.started()
            await closing.wait()

    async with anyio.create_task_group() as group:
        await group.start(run_hub)
        async with client.stream("GET", "/t") as response:
            await Reader(response).started()
            closing.set()
            with anyio.fail_after(5):
                assert await response.next_chunk() is None
            assert response.complete


class Metrics(StreamMetrics):
    """The real series, plus an event each time the hub reports a queue depth."""

    def __init__(self) -> None:
        super().__init__()
        self.depth_reported = anyio.Event()

    def hub_queue_depth(self, hub: str, depth: int) -> None:
        super().hub_queue_depth(hub, depth)
        self.depth_reported.set()
        self.depth_reported = anyio.Event()

    def value(self, name: str) -> float:
        return self.registry.get_sample_value(name, {"hub": "chat"}) or 0.0

    async def depth(self, wanted: Callable[[float], bool]) -> float:
        with anyio.fail_after(5):
            while not wanted(depth := self.value("streaming_hub_queue_depth")):
                await self.depth_reported.wait()
        return depth


async def test_an_observer_sees_subscribers_overflows_and_the_deepest_queue(
        make_backend: MakeBackend) -> None:
    metrics = Metrics()
    async with _hub(make_backend, max_queued_events=6, observer=metrics, name="chat",
                    report_every=0.01) as hub:
        assert metrics.value("streaming_hub_subscribers") == 0
        slow_client = StreamingClient(subscriber_app(hub), buffer=0)
        fast_client = StreamingClient(subscriber_app(hub))
        async with slow_client.stream("GET", "/t") as slow, fast_client.stream("GET", "/t") as fast:
            slow_reader = await Reader(slow).started()
            fast_reader = await Reader(fast).started()
            assert metrics.value("streaming_hub_subscribers") == 2
            for n in range(4):                     # the slow one reads none of them
                await hub.publish("t", str(n))
            await fast_reader.read(4)
            assert 2 <= await metrics.depth(lambda d: d >= 2) <= 4
            for n in range(4, 12):
                await hub.publish("t", str(n))
            with anyio.fail_after(5):
                await slow_reader.read(12)         # what it had, then the end
                await slow.wait_for_app()
            assert metrics.value("streaming_hub_overflows_total") == 1
            assert metrics.value("streaming_hub_subscribers") == 1
            await fast_reader.read(8)
            assert await metrics.depth(lambda d: d == 0) == 0
        assert metrics.value("streaming_hub_subscribers") == 0   # the client left


def test_hub_needs_an_explicit_factory_call() -> None:
    """A subscriber is a factory: EventSourceResponse calls it per request."""
    response = EventSourceResponse(Hub().subscriber("t"))
    assert response.body_iterator is not None

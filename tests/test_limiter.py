"""StreamLimiter: a slot for the whole stream, 429 before any header, released
exactly once however the stream ends, for every response type. Every test
that is not about one store runs on both: in memory and in a real Redis."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import sse_starlette
import starlette.responses
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from streaming import (
    EventSourceResponse,
    NDJSONResponse,
    StreamingConfigError,
    StreamingResponse,
    StreamLimiter,
)
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.limits import MemorySlots, SlotStore, header_value
from streaming.limits.redis import RedisSlots
from streaming.testing import StreamingClient
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def slots(request: pytest.FixtureRequest) -> AsyncIterator[SlotStore]:
    if request.param == "memory":
        yield MemorySlots()
        return
    server: RedisServer = request.getfixturevalue("shared_redis_server")
    async with RedisSlots(server.url, prefix=f"t{uuid.uuid4().hex[:8]}", poll=0.01,
                          ttl=5) as store:
        yield store


async def held(slots: Any, name: str = "all") -> int:
    count = slots.held(name)
    return int(await count) if inspect.isawaitable(count) else int(count)


class Gate:
    """Streams that send one chunk and then wait for the test to end them."""

    def __init__(self) -> None:
        self.opened = 0
        self.release = anyio.Event()
        self.bodies: list[bytes] = []

    async def produce(self) -> AsyncIterator[str]:
        self.opened += 1
        yield "first\n"
        await self.release.wait()
        # The known trio limit (ARCHITECTURE.md): leave no late chunk to warn of.
        await anyio.lowlevel.checkpoint_if_cancelled()
        yield "last\n"


def text(gate: Gate) -> StreamingResponse:
    return StreamingResponse(gate.produce())


def ndjson(gate: Gate) -> NDJSONResponse:
    async def items() -> AsyncIterator[dict[str, str]]:
        async for line in gate.produce():
            yield {"line": line}
    return NDJSONResponse(items())


def sse(gate: Gate) -> EventSourceResponse:
    return EventSourceResponse(gate.produce())


def starlette_stream(gate: Gate) -> starlette.responses.StreamingResponse:
    return starlette.responses.StreamingResponse(gate.produce())


def sse_starlette_stream(gate: Gate) -> sse_starlette.EventSourceResponse:
    return sse_starlette.EventSourceResponse(gate.produce())


RESPONSES: list[Callable[[Gate], ASGIApp]] = [
    text, ndjson, sse, starlette_stream, sse_starlette_stream]


def streaming_app(gate: Gate, make: Callable[[Gate], ASGIApp] = text) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":  # echo the request body, read by the app
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            gate.bodies.append(body)
        await make(gate)(scope, receive, send)
    return app


@pytest.mark.parametrize("make", RESPONSES, ids=lambda f: f.__name__)
async def test_a_slot_is_held_for_the_whole_stream(make: Callable[[Gate], ASGIApp],
                                                   slots: SlotStore) -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate, make), 1, slots=slots))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            assert first.status_code == 200
            await first.next_chunk()  # the stream has started and is open
            refused = await client.get("/")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert refused.body == b"Too many open streams; retry later.\n"
            gate.release.set()
            await first.read()
        assert await held(slots) == 0
        again = await client.get("/")
        assert again.status_code == 200
    assert gate.opened == 2  # the refused request never reached the app


async def test_a_refusal_is_a_complete_response_before_any_stream_header() -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate), 1, retry_after=2.5))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            refused = await client.get("/")
            gate.release.set()
    kinds = [(m.direction, m.message["type"]) for m in refused.messages]
    assert kinds == [("send", "http.response.start"), ("send", "http.response.body")]
    assert refused.messages[-1].message.get("more_body", False) is False
    assert refused.headers["retry-after"] == "3"  # whole seconds, rounded up


async def producer_fails_before_headers() -> AsyncIterator[bytes]:
    raise ValueError("before the first chunk")
    yield b""  # pragma: no cover


async def producer_fails_after_headers() -> AsyncIterator[bytes]:
    yield b"one\n"
    raise ValueError("after the first chunk")


async def producer_completes() -> AsyncIterator[bytes]:
    yield b"one\n"


async def producer_idles() -> AsyncIterator[bytes]:
    yield b"one\n"
    await anyio.sleep_forever()


ENDINGS: dict[str, tuple[Callable[[], AsyncIterator[bytes]], str, str]] = {
    # name: (producer, method, what the client does)
    "completed": (producer_completes, "GET", "read"),
    "client disconnected": (producer_idles, "GET", "leave"),
    "error before headers": (producer_fails_before_headers, "GET", "read"),
    "error after headers": (producer_fails_after_headers, "GET", "read"),
    "head": (producer_idles, "HEAD", "read"),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_the_slot_is_released_exactly_once_however_the_stream_ends(
        ending: str, slots: SlotStore) -> None:
    produce, method, action = ENDINGS[ending]
    held_while_streaming: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        held_while_streaming.append(await held(slots))
        await StreamingResponse(produce())(scope, receive, send)

    client = StreamingClient(StreamLimiter(app, 1, slots=slots), raise_app_exceptions=False)
    with anyio.fail_after(5):
        for _ in range(3):  # a slot released twice would let two in, or fail
            async with client.stream(method, "/") as response:
                if action == "read":
                    await response.read()
                else:
                    await response.next_chunk()
            assert await held(slots) == 0
    assert held_while_streaming == [1, 1, 1]


async def test_an_app_that_raises_releases_its_slot(slots: SlotStore) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("no response at all")

    client = StreamingClient(StreamLimiter(app, 1, slots=slots))
    with pytest.raises(RuntimeError, match="no response at all"):  # not an ExceptionGroup
        await client.get("/")
    assert await held(slots) == 0


async def test_per_key_limits_each_key_and_the_total_still_holds(slots: SlotStore) -> None:
    gate = Gate()
    limiter = StreamLimiter(streaming_app(gate), 3, key=header_value("x-api-key"), per_key=1,
                            slots=slots)
    client = StreamingClient(limiter)

    def key(name: str) -> dict[str, str]:
        return {"x-api-key": name}

    with anyio.fail_after(5):
        async with client.stream("GET", "/", headers=key("a")) as a:
            await a.next_chunk()
            assert (await client.get("/", headers=key("a"))).status_code == 429
            async with client.stream("GET", "/", headers=key("b")) as b, \
                    client.stream("GET", "/") as keyless:
                await b.next_chunk()
                await keyless.next_chunk()
                # three open: the total refuses even a fresh key
                assert (await client.get("/", headers=key("c"))).status_code == 429
                gate.release.set()
    assert await held(slots) == 0


async def test_a_waiting_request_gets_the_slot_when_it_frees(slots: SlotStore) -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate), 1, queue_timeout=30,
                                           slots=slots))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            async with client.stream("GET", "/", wait_for_start=False) as waiting:
                await anyio.wait_all_tasks_blocked()
                assert gate.opened == 1  # still queued
                gate.release.set()
                await first.read()
                await waiting.wait_for_start()
                assert waiting.status_code == 200
                await waiting.read()
    assert gate.opened == 2


async def test_waiters_are_served_in_arrival_order() -> None:
    gate = Gate()
    order: list[str] = []
    inner = streaming_app(gate)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        order.append(scope["query_string"].decode())
        await inner(scope, receive, send)

    client = StreamingClient(StreamLimiter(app, 1, queue_timeout=30))
    with anyio.fail_after(5):
        async with client.stream("GET", "/?first") as first:
            await first.next_chunk()
            async with client.stream("GET", "/?a", wait_for_start=False) as a:
                await anyio.wait_all_tasks_blocked()
                async with client.stream("GET", "/?b", wait_for_start=False) as b:
                    await anyio.wait_all_tasks_blocked()
                    gate.release.set()
                    for response in (first, a, b):
                        await response.read()
    assert order == ["first", "a", "b"]


async def test_a_wait_that_times_out_is_refused(slots: SlotStore) -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate), 1, queue_timeout=0.05,
                                           slots=slots))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            refused = await client.get("/")
            gate.release.set()
    assert refused.status_code == 429
    assert gate.opened == 1


async def test_a_client_that_leaves_while_waiting_gives_up_its_place(
        slots: SlotStore) -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate), 1, queue_timeout=30,
                                           slots=slots))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            async with client.stream("GET", "/", wait_for_start=False) as leaving:
                await anyio.wait_all_tasks_blocked()
                await leaving.disconnect()
                await leaving.wait_for_app()
            assert leaving.messages[-1].message["type"] == "http.disconnect"  # nothing sent
            gate.release.set()
        assert await held(slots) == 0
    assert gate.opened == 1


async def test_the_body_read_while_waiting_reaches_the_app(slots: SlotStore) -> None:
    gate = Gate()
    client = StreamingClient(StreamLimiter(streaming_app(gate), 1, queue_timeout=30,
                                           slots=slots))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            async with client.stream("POST", "/", body=b"the request body",
                                     wait_for_start=False) as waiting:
                await anyio.wait_all_tasks_blocked()
                gate.release.set()
                await first.read()
                await waiting.read()
    assert gate.bodies == [b"the request body"]


async def test_starlette_middleware_and_other_scopes_pass_through() -> None:
    gate = Gate()

    async def endpoint(request: Any) -> StreamingResponse:
        return text(gate)

    app = Starlette(routes=[Route("/", endpoint)],
                    middleware=[Middleware(StreamLimiter, max_streams=1)])
    client = StreamingClient(app)
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            assert (await client.get("/")).status_code == 429
            gate.release.set()

    seen: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await StreamLimiter(lifespan_app, 1)({"type": "lifespan"}, receive_nothing, send_nothing)
    assert seen == ["lifespan"]


async def receive_nothing() -> Any:
    raise AssertionError("not called")


async def send_nothing(message: Any) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize("settings", [
    {"max_streams": 0},
    {"max_streams": 1.5},
    {"max_streams": None},
    {"max_streams": 1, "per_key": 2},
    {"max_streams": 1, "queue_timeout": -1},
    {"max_streams": 1, "queue_timeout": float("inf")},
    {"max_streams": 1, "retry_after": float("nan")},
    {"max_streams": 1, "max_bytes_per_second": 0},
])
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        StreamLimiter(send_nothing, **settings)  # type: ignore[arg-type]

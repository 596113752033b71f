"""EventSourceResponse through the in-process client: headers, items, keep-alive,
slow clients, errors, Last-Event-ID, retry, HEAD and the drain."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Callable
from types import FrameType

import anyio
import pytest

from streaming import (
    Drain,
    DrainReport,
    EndReason,
    EventSourceResponse,
    InvalidContentError,
    ServerSentEvent,
    SSEEncodingError,
    StreamingConfigError,
    StreamRefused,
)
from streaming._types import ASGIApp, Message, Receive, Scope, Send
from streaming.testing import StreamingClient, TestResponse


async def card6() -> AsyncIterator[object]:
    """The tutorial's card 6: start, progress, complete."""
    yield ServerSentEvent(event="start", data="开始")
    yield ServerSentEvent(event="progress", data="50%")
    yield ServerSentEvent(event="complete", data="完成")


async def test_headers() -> None:
    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(card6())).get("/")
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "connection" not in response.headers  # illegal over HTTP/2
    assert "content-length" not in response.headers


async def test_caller_headers_win() -> None:
    app = EventSourceResponse(card6(), headers={"Cache-Control": "no-store", "X-Trace": "1"})
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-trace"] == "1"


async def test_card6_events_and_bytes() -> None:
    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(card6())).get("/")
    assert response.body == ("event: start\ndata: 开始\n\n"
                             "event: progress\ndata: 50%\n\n"
                             "event: complete\ndata: 完成\n\n").encode()
    assert [(e.event, e.data) for e in response.events()] == [
        ("start", "开始"), ("progress", "50%"), ("complete", "完成")]


async def test_item_kinds() -> None:
    async def produce() -> AsyncIterator[object]:
        yield "plain string, not JSON-quoted"
        yield b"data: pre-encoded\n\n"
        yield {"tokens": 3}
        yield ServerSentEvent(data=["a", "b"], event="list", id="7")

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce(), json_data=True)).get("/")
    events = response.events()
    assert [e.data for e in events] == [
        "plain string, not JSON-quoted", "pre-encoded", '{"tokens":3}', '["a","b"]']
    assert events[3].id == "7"


async def test_dict_without_json_data_is_a_clear_error_status() -> None:
    async def produce() -> AsyncIterator[object]:
        yield {"needs": "json_data=True"}

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce())).get("/")
    assert response.status_code == 500  # before the first event: a real status
    assert response.headers["content-type"] == "application/json"


async def test_newline_in_event_name_is_an_error_event_not_stripped() -> None:
    async def produce() -> AsyncIterator[object]:
        yield ServerSentEvent(data="ok")
        yield ServerSentEvent(data="x", event="bad\nname")

    app = EventSourceResponse(produce())
    with anyio.fail_after(5):
        response = await StreamingClient(app, raise_app_exceptions=False).get("/")
    events = response.events()
    assert events[0].data == "ok"
    assert events[1].event == "error"
    assert json.loads(events[1].data) == {"status": 500, "message": "Internal Server Error"}
    assert isinstance(response.app_exception, SSEEncodingError)
    assert not response.complete  # cut after the error event


async def test_error_before_first_event_is_a_json_status() -> None:
    async def produce() -> AsyncIterator[object]:
        raise StreamRefused(429, "too many streams", headers={"Retry-After": "2"})
        yield ""

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce())).get("/")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert json.loads(response.body) == {"error": {"status": 429, "message": "too many streams"}}


async def test_error_event_name_is_configurable_or_off() -> None:
    async def produce() -> AsyncIterator[object]:
        yield "one"
        raise StreamRefused(503, "upstream gone")

    named = EventSourceResponse(produce(), error_event="failure")
    silent = EventSourceResponse(produce(), error_event=None)
    with anyio.fail_after(5):
        named_response = await StreamingClient(named, raise_app_exceptions=False).get("/")
        silent_response = await StreamingClient(silent, raise_app_exceptions=False).get("/")
    assert named_response.events()[-1].event == "failure"
    assert [e.data for e in silent_response.events()] == ["one"]


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r"])
async def test_line_separator(sep: str) -> None:
    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(card6(), sep=sep)).get("/")
    assert response.body.startswith(f"event: start{sep}data: 开始{sep}{sep}".encode())
    assert len(response.events()) == 3


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(StreamingConfigError, match="sep must be"):
        EventSourceResponse(card6(), sep="\n\n")
    with pytest.raises(StreamingConfigError, match="retry must be"):
        EventSourceResponse(card6(), retry=-1)


async def test_retry_hint_rides_on_the_first_event() -> None:
    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(card6(), retry=2500)).get("/")
    assert response.body.startswith(b"retry: 2500\nevent: start\n")
    events = response.events()
    assert events[0].retry == 2500 and len(events) == 3


async def test_head_answers_headers_only() -> None:
    with anyio.fail_after(2):
        response = await StreamingClient(EventSourceResponse(card6())).request("HEAD", "/")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.body == b""


# -- keep-alive and slow clients -------------------------------------------------


async def test_pings_only_while_idle() -> None:
    release = anyio.Event()

    async def produce() -> AsyncIterator[object]:
        yield "first"
        await release.wait()
        yield "after the pause"

    app = EventSourceResponse(produce(), ping=0.02)
    with anyio.fail_after(5):
        async with StreamingClient(app).stream("GET", "/") as response:
            chunks = response.iter_chunks()
            assert await chunks.__anext__() == b"data: first\n\n"
            assert await chunks.__anext__() == b":ping\n"  # idle: a comment, not an event
            assert await chunks.__anext__() == b":ping\n"
            release.set()
            rest = b"".join([chunk async for chunk in chunks])
    assert rest.endswith(b"data: after the pause\n\n")
    assert [e.data for e in response.events()] == ["first", "after the pause"]


async def test_no_ping_while_events_flow_faster_than_the_interval() -> None:
    async def produce() -> AsyncIterator[object]:
        for i in range(20):
            await anyio.sleep(0.005)
            yield str(i)

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce(), ping=0.25)).get("/")
    assert b":ping" not in response.body


@pytest.mark.parametrize(("ping", "pinged"), [(0.01, True), (0, False), (None, False)])
async def test_ping_zero_or_none_disables_keepalive(ping: float | None, pinged: bool) -> None:
    """The producer stays idle for 25 ping intervals of 10 ms: with pings on,
    they come; with 0 or None, none do (the default would be 15 s)."""

    async def produce() -> AsyncIterator[object]:
        yield "a"
        await anyio.sleep(0.25)  # idle time, the condition under test
        yield "b"

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce(), ping=ping)).get("/")
    assert (b":ping" in response.body) is pinged
    assert [e.data for e in response.events()] == ["a", "b"]


@pytest.mark.parametrize("setting", [{"ping": -1}, {"send_timeout": 0}, {"send_timeout": -2},
                                     {"commit_deadline": float("nan")},
                                     {"cleanup_timeout": float("inf")},
                                     {"error_event": "two\nlines"}])
def test_unworkable_settings_are_refused_at_construction(setting: dict[str, object]) -> None:
    with pytest.raises(StreamingConfigError):
        EventSourceResponse(card6(), **setting)  # type: ignore[arg-type]


def test_a_generator_function_passed_without_calling_it_is_refused() -> None:
    with pytest.raises(InvalidContentError, match="card6"):
        EventSourceResponse(card6)  # type: ignore[arg-type]


async def test_head_does_not_call_the_factory() -> None:
    calls: list[str | None] = []
    with anyio.fail_after(2):
        await StreamingClient(EventSourceResponse(resumable(calls))).request("HEAD", "/")
    assert calls == []


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout() -> None:
    closed = anyio.Event()

    async def produce() -> AsyncIterator[object]:
        try:
            while True:
                yield "x" * 100
        finally:
            closed.set()

    app = EventSourceResponse(produce(), send_timeout=0.05, ping=None)
    client = StreamingClient(app, buffer=4)  # the "socket" holds four messages
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as response:
            outcome = await app.wait_for_outcome()  # the test never reads
    assert outcome.reason is EndReason.SEND_TIMEOUT
    assert closed.is_set()
    assert outcome.chunks_sent <= 5  # memory stayed bounded by the buffer
    assert response.status_code == 200


class PingServer:
    """An ASGI server double whose ``send()`` of a keep-alive does what the
    test says: ``"wait"`` until ``release``, ``"stall"`` for ever, ``"fail"``
    (the client left: ``OSError``) at once, ``"wait-fail"`` after a wait,
    ``"shielded"``: a slow write (0.3 s) in a shielded scope, as a wrapper
    that must not be cut half-way would do."""

    def __init__(self, ping: str) -> None:
        self.ping, self.release, self.pinged = ping, anyio.Event(), anyio.Event()
        self.bodies: list[bytes] = []
        self.ping_done = anyio.Event()

    async def receive(self) -> Message:
        await anyio.Event().wait()  # no disconnect: the driver's timers must end it
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        body = message.get("body", b"")
        assert isinstance(body, bytes)
        if message["type"] != "http.response.body" or not body:
            return  # the start, the terminator
        if not body.startswith(b":"):  # not a keep-alive
            self.bodies.append(body)
            return
        if self.pinged.is_set():
            return  # the first keep-alive is the one under test
        self.pinged.set()
        if self.ping == "fail":
            raise OSError("the client left")
        if self.ping == "shielded":
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.3)  # the write itself, longer than the send timeout
            self.ping_done.set()
            return
        await (anyio.Event() if self.ping == "stall" else self.release).wait()
        if self.ping == "wait-fail":
            raise OSError("the client left")
        self.ping_done.set()


@pytest.mark.parametrize(("ping", "reason"), [("stall", EndReason.SEND_TIMEOUT),
                                              ("fail", EndReason.CLIENT_DISCONNECTED),
                                              ("wait-fail", EndReason.CLIENT_DISCONNECTED)])
async def test_a_keepalive_that_cannot_be_sent_ends_the_stream(ping: str, reason: EndReason
                                                               ) -> None:
    async def one_then_quiet() -> AsyncIterator[object]:
        yield "a"
        await anyio.Event().wait()
        yield "never"

    server = PingServer(ping)
    app = EventSourceResponse(one_then_quiet(), ping=0.01, send_timeout=0.2)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(app, {"type": "http", "method": "GET", "headers": []},
                             server.receive, server.send)
            await server.pinged.wait()
            if ping == "wait-fail":
                server.release.set()
            outcome = await app.wait_for_outcome()
    assert outcome.reason is reason
    assert server.bodies == [b"data: a\n\n"]


async def test_a_keepalive_whose_send_waits_is_finished_before_the_stream_goes_on() -> None:
    go = anyio.Event()

    async def one_then_more() -> AsyncIterator[object]:
        yield "a"
        await go.wait()
        yield "b"

    server = PingServer("wait")
    app = EventSourceResponse(one_then_more(), ping=0.01, send_timeout=5)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(app, {"type": "http", "method": "GET", "headers": []},
                             server.receive, server.send)
            await server.pinged.wait()
            assert not server.ping_done.is_set()
            server.release.set()
            await server.ping_done.wait()  # the rest of the send ran
            go.set()
            outcome = await app.wait_for_outcome()
    assert outcome.reason is EndReason.COMPLETED
    assert server.bodies[:2] == [b"data: a\n\n", b"data: b\n\n"]


async def test_a_shield_in_the_send_wrapper_holds_off_the_send_timeout() -> None:
    """A shielded send is not cut by the send timeout, on asyncio as on trio
    (anyio's rule: the driver's own deadline on asyncio keeps it too); it is
    timed once it returns, and this one did return."""

    async def one_then_more(server: PingServer) -> AsyncIterator[object]:
        yield "a"
        await server.ping_done.wait()
        yield "b"

    server = PingServer("shielded")
    app = EventSourceResponse(one_then_more(server), ping=0.01, send_timeout=0.1)
    with anyio.fail_after(5):
        await app({"type": "http", "method": "GET", "headers": []}, server.receive, server.send)
        outcome = await app.wait_for_outcome()
    assert outcome.reason is EndReason.COMPLETED
    assert server.bodies[:2] == [b"data: a\n\n", b"data: b\n\n"]


# -- Last-Event-ID -----------------------------------------------------------------


def resumable(seen: list[str | None]) -> Callable[[str | None], AsyncIterator[object]]:
    def factory(last_event_id: str | None) -> AsyncIterator[object]:
        seen.append(last_event_id)
        start = int(last_event_id) + 1 if last_event_id and last_event_id.isdigit() else 0

        async def produce() -> AsyncIterator[object]:
            for i in range(start, start + 2):
                yield ServerSentEvent(data=f"tick {i}", id=str(i))

        return produce()

    return factory


@pytest.mark.parametrize(
    ("header", "handed"),
    [
        (None, None),
        ("41", "41"),
        ("", None),
        ("x" * 257, None),
        ("id\x00with-nul", None),
        ("tab\there", None),
        ("ünïcode-ïd", "ünïcode-ïd"),
    ],
)
async def test_last_event_id_is_validated_and_handed_to_the_producer(
    header: str | None, handed: str | None
) -> None:
    seen: list[str | None] = []
    app = EventSourceResponse(resumable(seen))
    headers = {} if header is None else {"Last-Event-ID": header}
    with anyio.fail_after(2):
        response = await StreamingClient(_utf8_headers(app)).get("/", headers=headers)
    assert response.status_code == 200  # never a 500, whatever the header holds
    assert seen == [handed]
    assert app.last_event_id == handed


async def test_resume_continues_after_the_last_id() -> None:
    seen: list[str | None] = []
    with anyio.fail_after(2):
        response = await StreamingClient(EventSourceResponse(resumable(seen))).get(
            "/", headers={"Last-Event-ID": "41"})
    assert [e.data for e in response.events()] == ["tick 42", "tick 43"]


def _utf8_headers(app: EventSourceResponse) -> ASGIApp:
    """The test client encodes headers as latin-1; a browser sends UTF-8 ids."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"] = [(k, v.decode("latin-1").encode("utf-8")) for k, v in scope["headers"]]
        await app(scope, receive, send)

    return wrapped


# -- drain ----------------------------------------------------------------------------


async def test_drain_ends_every_stream_with_the_final_event() -> None:
    drain = Drain(grace=2)
    finals: list[str] = []
    responses: list[TestResponse] = []
    apps: list[EventSourceResponse] = []

    async def endless(name: str) -> AsyncIterator[object]:
        try:
            yield ServerSentEvent(data=f"hello {name}", id="1")
            await anyio.sleep_forever()
        finally:
            finals.append(name)

    async def open_stream(name: str, ready: anyio.Event) -> None:
        app = EventSourceResponse(endless(name), drain=drain)
        apps.append(app)
        async with StreamingClient(app).stream("GET", "/") as response:
            async for _ in response.iter_chunks():
                ready.set()
            responses.append(response)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for name in ("a", "b"):
                ready = anyio.Event()
                group.start_soon(open_stream, name, ready)
                await ready.wait()
            assert drain.open_streams == 2
            report = await drain.drain()
    assert report == DrainReport(drained=2, late=0)
    assert sorted(finals) == ["a", "b"]
    for response in responses:
        events = response.events()
        assert events[-1].event == "shutdown"
        assert response.complete  # ended cleanly, terminator included
    assert {app.outcome.reason for app in apps if app.outcome} == {EndReason.DRAINED}


async def test_a_stream_that_starts_while_draining_gets_the_final_event_at_once() -> None:
    drain = Drain(final=ServerSentEvent(event="bye", data="come back later"))
    await drain.drain()
    started = False

    async def produce() -> AsyncIterator[object]:
        nonlocal started
        started = True
        yield "never"

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(produce(), drain=drain)).get("/")
    assert [e.event for e in response.events()] == ["bye"]
    assert not started


async def test_drain_gives_up_after_the_grace_period() -> None:
    drain = Drain(grace=0.05)

    async def produce() -> AsyncIterator[object]:
        yield "a"
        await anyio.sleep_forever()

    app = EventSourceResponse(produce(), drain=drain, send_timeout=None)
    # buffer=1 and nobody reading: the final event cannot be delivered in time.
    client = StreamingClient(app, buffer=1)
    with anyio.fail_after(5):
        async with client.stream("GET", "/"):
            await anyio.wait_all_tasks_blocked()
            report = await drain.drain()
    assert report.late == 1


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")
async def test_watch_signals_drains_then_calls_the_previous_handler() -> None:
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    old = signal.signal(signal.SIGUSR1, previous)
    drain = Drain(grace=1)
    try:
        with anyio.fail_after(5):
            async with drain.watch_signals((signal.SIGUSR1,)):
                signal.raise_signal(signal.SIGUSR1)
                assert await drain.wait_for_drain() == DrainReport(0, 0)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert calls == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) is old

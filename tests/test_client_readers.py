"""The client readers against a real uvicorn: resume with Last-Event-ID or a
position, 204 to stop, retry on 5xx, a clear error when the server keeps
failing or the deadline passes; the backoff as a pure table."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from streaming import (
    ReadDeadlineExceeded,
    ReconnectFailed,
    StreamingConfigError,
    StreamInterrupted,
    StreamReadError,
)
from streaming.client import Backoff, NDJSONReader, SSEReader
from tests.apps.resumable import make_app
from tests.servers import UvicornThread, _listening_socket

FAST = Backoff(initial=0.001, maximum=0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    with UvicornThread(make_app()) as running:
        yield running


@pytest.mark.parametrize(("failures", "base", "random", "expected"), [
    (0, None, 0.0, 0.5),     # the stream ended after data: the base wait
    (1, None, 0.0, 0.5),     # the first failure: still the base
    (2, None, 0.0, 1.0),     # then doubling
    (5, None, 0.0, 8.0),
    (9, None, 0.0, 30.0),    # capped
    (500, None, 0.0, 30.0),  # no overflow
    (1, 3.0, 0.0, 3.0),      # the server's retry is the base
    (2, 3.0, 0.0, 6.0),
    (2, None, 0.5, 0.75),    # jitter takes up to half off
    (2, None, 0.999, 0.5005),
])
def test_backoff(failures: int, base: float | None, random: float, expected: float) -> None:
    assert Backoff().delay(failures, base, lambda: random) == pytest.approx(expected)


@pytest.mark.parametrize("settings", [
    {"initial": 0}, {"maximum": float("inf")}, {"multiplier": 0.5}, {"jitter": 2},
    {"initial": 5, "maximum": 1},
])
def test_bad_backoff_is_refused(settings: dict[str, float]) -> None:
    with pytest.raises(StreamingConfigError):
        Backoff(**settings)


async def collect(reader: SSEReader | NDJSONReader, into: list[object]) -> None:
    async with reader:
        async for item in reader:
            into.append(item)


async def read_ids(reader: SSEReader) -> list[int]:
    async with reader:
        return [int(event.id or -1) async for event in reader]


async def test_sse_reads_every_event_and_stops_at_204(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, f"{server.url}/events?n=20", backoff=FAST)
        with anyio.fail_after(10):
            assert await read_ids(reader) == list(range(20))
    assert reader.attempts == 2  # the stream, then the 204 after it
    assert reader.retry == 0.02  # the server's retry field


@pytest.mark.parametrize("half", [0, 1], ids=["cut between events", "cut inside an event"])
async def test_sse_resumes_after_each_cut_with_last_event_id(server: UvicornThread,
                                                             half: int) -> None:
    async with httpx.AsyncClient() as client:
        url = f"{server.url}/events?n=30&cut_after=7&half={half}"
        reader = SSEReader(client, url, backoff=FAST)
        with anyio.fail_after(10):
            assert await read_ids(reader) == list(range(30))
    assert reader.attempts == 6  # five connections of up to 7 events, then the 204


async def test_sse_starts_from_a_given_last_event_id(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, f"{server.url}/events?n=10", last_event_id="6",
                           backoff=FAST)
        with anyio.fail_after(10):
            assert await read_ids(reader) == [7, 8, 9]


async def test_retryable_statuses_are_retried(server: UvicornThread,
                                              anyio_backend: str) -> None:
    async with httpx.AsyncClient() as client:
        url = f"{server.url}/flaky?fail=2&n=5&key={anyio_backend}"
        reader = SSEReader(client, url, backoff=FAST)
        with anyio.fail_after(10):
            assert await read_ids(reader) == list(range(5))
    assert reader.attempts == 4


async def test_a_server_that_keeps_failing_is_a_clear_error(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, f"{server.url}/status/503?token=SECRET", backoff=FAST,
                           max_failures=3)
        with anyio.fail_after(10), pytest.raises(ReconnectFailed) as caught:
            await read_ids(reader)
    assert caught.value.attempts == 3
    assert caught.value.status_code == 503
    assert "SECRET" not in str(caught.value)  # the query may hold credentials
    assert reader.attempts == 3


async def test_a_server_that_is_gone_is_a_clear_error() -> None:
    closed = _listening_socket()
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/events"
    closed.close()  # nothing listens there now: connection refused
    async with httpx.AsyncClient() as client:
        reader = NDJSONReader(client, url, backoff=FAST, max_failures=2)
        with anyio.fail_after(10), pytest.raises(ReconnectFailed) as caught:
            async for _ in reader:
                pass
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(("path", "status"), [("/status/404", 404), ("/wrong-type", 200)])
async def test_refusals_are_not_retried(server: UvicornThread, path: str, status: int) -> None:
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, server.url + path, backoff=FAST)
        with anyio.fail_after(10), pytest.raises(StreamReadError) as caught:
            await read_ids(reader)
    assert caught.value.status_code == status
    assert reader.attempts == 1
    assert "\x1b" not in str(caught.value)  # the server's body is quoted, escaped


async def test_the_deadline_ends_a_stream_that_runs_too_long(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, f"{server.url}/events?n=1000&pace_ms=20", deadline=0.2)
        seen: list[object] = []
        with anyio.fail_after(10), pytest.raises(ReadDeadlineExceeded):
            await collect(reader, seen)
    assert 0 < len(seen) < 1000


async def test_ndjson_reads_every_line(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client, \
            NDJSONReader(client, f"{server.url}/lines?n=25") as reader:
        with anyio.fail_after(10):
            items = [item async for item in reader]
    assert items == [{"i": i} for i in range(25)]
    assert reader.attempts == 1  # a clean end: no reconnection


@pytest.mark.parametrize("half", [0, 1], ids=["cut between lines", "cut inside a line"])
async def test_ndjson_resumes_from_its_position(server: UvicornThread, half: int) -> None:
    async with httpx.AsyncClient() as client:
        url = f"{server.url}/lines?n=25&cut_after=6&half={half}"
        reader = NDJSONReader(client, url, backoff=FAST,
                              resume=lambda received, last: {"after": str(last["i"] + 1)})
        with anyio.fail_after(10):
            items = [item["i"] async for item in reader]
    assert items == list(range(25))
    assert reader.attempts == 5


async def test_ndjson_cut_without_resume_is_interrupted(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = NDJSONReader(client, f"{server.url}/lines?n=25&cut_after=6", backoff=FAST)
        items: list[object] = []
        with anyio.fail_after(10), pytest.raises(StreamInterrupted):
            await collect(reader, items)
    assert len(items) == 6


async def test_ndjson_malformed_line_is_an_error(server: UvicornThread) -> None:
    async with httpx.AsyncClient() as client:
        reader = NDJSONReader(client, f"{server.url}/bad-json")
        items: list[object] = []
        with anyio.fail_after(10), pytest.raises(StreamReadError, match="line 2"):
            await collect(reader, items)
    assert items in ([], [{"i": 0}])  # both lines may come in one chunk

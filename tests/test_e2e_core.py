"""The core against a real uvicorn on 127.0.0.1 and a real HTTP client (httpx)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import count

import anyio
import httpx
import pytest

from streaming import EndReason, Outcome, StreamingResponse, StreamRefused
from streaming._types import ASGIApp, Receive, Scope, Send
from tests.servers import Probe, UvicornThread


def make_app(probe: Probe, outcomes: list[Outcome]) -> ASGIApp:
    # Endless: the producers' ``finally`` can only run because the client left.
    async def slow_lines() -> AsyncIterator[str]:
        try:
            for i in count():
                yield f"line {i}\n"
                await anyio.sleep(0.01)
        finally:
            probe.mark("async finally")

    def blocking_lines() -> Iterator[str]:
        try:
            for i in count():
                yield f"line {i}\n"
                time.sleep(0.01)
        except GeneratorExit:
            probe.mark("closed at a yield")  # the only place a thread can be stopped
            raise
        finally:
            probe.mark("sync finally")

    async def fails_midway() -> AsyncIterator[str]:
        yield "partial\n"
        raise RuntimeError("broken upstream")

    async def refuses() -> AsyncIterator[str]:
        raise StreamRefused(429, "slow down", headers={"Retry-After": "3"})
        yield ""

    routes: dict[str, Callable[[], AsyncIterator[str] | Iterator[str]]] = {
        "/async": slow_lines, "/sync": blocking_lines, "/cut": fails_midway,
        "/refused": refuses}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        content = routes[scope["path"]]()
        def record(outcome: Outcome) -> None:
            outcomes.append(outcome)
            probe.mark("outcome")

        response = StreamingResponse(content, media_type="text/plain", on_outcome=record)
        await response(scope, receive, send)

    return app


@pytest.fixture
def server() -> Iterator[tuple[UvicornThread, Probe, list[Outcome]]]:
    probe = Probe()
    outcomes: list[Outcome] = []
    with UvicornThread(make_app(probe, outcomes)) as running:
        yield running, probe, outcomes


@pytest.mark.parametrize(("path", "mark"), [("/async", "async finally"), ("/sync", "sync finally")])
async def test_client_leaves_mid_stream_and_the_endless_producer_is_stopped(
    server: tuple[UvicornThread, Probe, list[Outcome]], path: str, mark: str
) -> None:
    running, probe, outcomes = server
    async with httpx.AsyncClient(base_url=running.url) as client:
        with anyio.fail_after(5):
            async with client.stream("GET", path) as response:
                assert response.status_code == 200
                received = b""
                async for chunk in response.aiter_raw():
                    received += chunk
                    if received.count(b"\n") >= 3:
                        break
    # No time is asserted: the producers never end on their own, so a finally
    # within the deadline was brought on by the client leaving (measured: the
    # async one before the client's context had exited, the sync one at its
    # next yield, 10 ms later; benchmarks/ measures how soon).
    await anyio.to_thread.run_sync(probe.wait_for, mark, 2.0)
    if path == "/sync":
        assert "closed at a yield" in probe
    await anyio.to_thread.run_sync(probe.wait_for, "outcome", 2.0)
    assert outcomes[0].reason is EndReason.CLIENT_DISCONNECTED


async def test_error_after_headers_cuts_the_chunked_body(
    server: tuple[UvicornThread, Probe, list[Outcome]],
) -> None:
    running, _, _ = server
    async with httpx.AsyncClient(base_url=running.url) as client:
        with anyio.fail_after(5):
            async with client.stream("GET", "/cut") as response:
                assert response.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError):
                    await response.aread()  # no terminating zero-length chunk


async def test_error_before_first_chunk_is_a_real_status(
    server: tuple[UvicornThread, Probe, list[Outcome]],
) -> None:
    running, _, _ = server
    async with httpx.AsyncClient(base_url=running.url) as client:
        with anyio.fail_after(5):
            response = await client.get("/refused")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.text == "slow down"

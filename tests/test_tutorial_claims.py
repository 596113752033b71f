"""Each claim of the tutorial's scenario 1 (and card 10), checked on both layers.

What the tutorial says, and what these tests show really happens:

* "except GeneratorExit runs when the client disconnects": on uvicorn (ASGI
  2.3) neither layer runs it. Both cancel the generator at its ``await``, so the
  cancellation exception arrives instead, and ``finally`` runs at once. On an
  ASGI 2.4 server the raw layer still closes the generator before the response
  returns; Starlette leaves it to the garbage collector.
* "finally ensures the release even when the client leaves": true on both; the
  ``yield`` inside that ``finally`` is never delivered (the raw layer also warns).
* "a sync generator makes ten concurrent requests take 50 s": no, both layers run
  it in worker threads; ``time.sleep`` inside an *async* generator is what
  serialises every request.
* Card 10, ``background=``: runs after a completed stream on both layers; after a
  client left, Starlette runs it on uvicorn and the raw layer does not.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import anyio
import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.scenario1 import LAYERS, Layer, build_app
from streaming import StreamingWarning
from streaming.testing import StreamingClient
from streaming.testing.client import SpecVersion
from tests.servers import Probe, UvicornThread

#: Asserts peers' behaviour (pinned in tests/constraints.txt).
pytestmark = pytest.mark.peer

BRANCHES = {
    "disconnect": ["start", "except GeneratorExit", "except cancelled", "finally"],
    "cleanup": ["acquire", "except GeneratorExit", "except cancelled", "release",
                "final yield", "resumed after final yield"],
    "background": ["producer finally", "ran"],
}


def branches(probe: Probe, layer: Layer, endpoint: str) -> set[str]:
    """The branches of ``endpoint``'s producer that reported to ``probe``."""
    return {name for name in BRANCHES[endpoint] if f"{layer}:{endpoint}:{name}" in probe}


async def wait_for_mark(probe: Probe, name: str, within: float = 5.0) -> float:
    # Probe.wait_for blocks a worker thread with its own deadline; the event
    # loop keeps running meanwhile (the uvicorn thread does not need it).
    return await anyio.to_thread.run_sync(probe.wait_for, name, within)


def marking_returns(app: Starlette, probe: Probe) -> ASGIApp:
    """Mark ``returned`` when the app returns: after that, a background task
    that has not run never will."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            probe.mark("returned")

    return wrapped


async def read_lines_then_leave(url: str, lines: int, on_leave: Callable[[], None]) -> None:
    """Read ``lines`` lines from a real server, then close the connection."""
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as response:
        seen = 0
        async for _ in response.aiter_lines():
            seen += 1
            if seen == lines:
                break
        on_leave()


# -- /disconnect: which branches run, and when -------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
async def test_disconnect_on_uvicorn_cancels_the_producer_at_its_await(layer: Layer) -> None:
    probe = Probe()
    with UvicornThread(build_app(layer, scale=0.1, recorder=probe)) as server:
        await read_lines_then_leave(f"{server.url}/disconnect", 3, lambda: probe.mark("left"))
        cleaned = await wait_for_mark(probe, f"{layer}:disconnect:finally")
    assert branches(probe, layer, "disconnect") == {"start", "except cancelled", "finally"}
    # How soon cleanup runs is part of the claim: measured well under 10 ms; the
    # producer's own 10 ms sleep is not waited out.
    assert cleaned - probe.wait_for("left", 0) < 1.0


async def leave_in_process(app: Starlette, path: str, spec: SpecVersion
                           ) -> type[BaseException] | None:
    """Leave ``path`` after 3 chunks, as a client closing its connection; return
    the type of what the app raised, once it has returned. Keeps no reference
    to the response, so the garbage collector may finalize it afterwards."""
    client = StreamingClient(app, spec_version=spec, raise_app_exceptions=False)
    async with client.stream("GET", path, disconnect_after=3) as response:
        await response.read()
    raised = response.app_exception
    return None if raised is None else type(raised)


async def test_disconnect_on_an_asgi_2_4_server_raw_closes_before_returning() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        raised = await leave_in_process(build_app("raw", scale=0.1, recorder=probe),
                                           "/disconnect", "2.4")
    assert raised is None
    assert "raw:disconnect:finally" in probe  # before the response returned


async def test_disconnect_on_an_asgi_2_4_server_starlette_leaves_it_to_the_gc() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        raised = await leave_in_process(build_app("starlette", scale=0.1, recorder=probe),
                                           "/disconnect", "2.4")
    assert raised is not None
    assert raised.__name__ == "ClientDisconnect"
    # Starlette 1.10 on a 2.4 server never listens for http.disconnect and
    # never closes the generator: it is still suspended at its yield.
    assert branches(probe, "starlette", "disconnect") == {"start"}
    # Only the garbage collector's async-generator finalizer closes it, at its
    # yield: the one way the tutorial's `except GeneratorExit` branch runs.
    gc.collect()
    await wait_for_mark(probe, "starlette:disconnect:finally")
    assert "starlette:disconnect:except GeneratorExit" in probe


# -- /cleanup left early: the yield inside finally -------------------------------


@pytest.mark.parametrize("layer", LAYERS)
async def test_cleanup_releases_when_the_client_leaves_early(layer: Layer) -> None:
    probe = Probe()
    client = StreamingClient(build_app(layer, scale=0.1, recorder=probe))
    with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with client.stream("GET", "/cleanup", disconnect_after=2) as response:
            await response.read()
    assert "资源已释放".encode() not in response.body
    ran = branches(probe, layer, "cleanup")
    common = {"acquire", "except cancelled", "release", "final yield"}
    if layer == "raw":
        # The driver drops the late chunk, warns, and aclose() stops the
        # generator at that yield: nothing after it runs.
        assert ran == common
        assert any(issubclass(w.category, StreamingWarning) for w in caught)
    else:
        # Starlette hands the chunk to send(), which a 2.3 server drops
        # silently, and resumes the generator once more.
        assert ran == common | {"resumed after final yield"}


# -- sync vs async producers: "50 s vs 5 s" ---------------------------------------


async def wall_time(app: Starlette, path: str, requests: int = 10) -> float:
    client = StreamingClient(app)
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        for _ in range(requests):
            group.start_soon(client.get, path)
    return anyio.current_time() - started


@pytest.mark.parametrize("layer", LAYERS)
async def test_ten_concurrent_requests_sync_async_and_the_anti_pattern(layer: Layer) -> None:
    app = build_app(layer, scale=0.04)  # 5 lines x 20 ms: one request alone is 0.1 s
    with anyio.fail_after(30):
        sync = await wall_time(app, "/sync")
        async_ = await wall_time(app, "/async")
        blocking = await wall_time(app, "/async-blocking")
    # Ratios, not absolute times. A sync generator runs in worker threads: ten
    # requests take about one request's time, like the async ones. time.sleep in
    # an async generator blocks the loop: about ten requests' time.
    assert sync < 3 * async_
    assert blocking > 5 * async_


# -- card 10: streaming vs a background task --------------------------------------

BACKGROUND_AFTER_LEAVING = [("raw", "2.3", False), ("raw", "2.4", False),
                            ("starlette", "2.3", True), ("starlette", "2.4", False)]


@pytest.mark.parametrize(("layer", "spec", "runs"), BACKGROUND_AFTER_LEAVING)
async def test_background_task_in_process(layer: Layer, spec: SpecVersion, runs: bool) -> None:
    complete, leaving = Probe(), Probe()
    with anyio.fail_after(5):
        await StreamingClient(build_app(layer, scale=0.1, recorder=complete),
                              spec_version=spec).get("/background")
        await leave_in_process(build_app(layer, scale=0.1, recorder=leaving),
                               "/background", spec)
    # After a complete stream it runs on both layers, once the producer is done.
    ran = await wait_for_mark(complete, f"{layer}:background:ran", 0)
    assert ran >= complete.wait_for(f"{layer}:background:producer finally", 0)
    # After the client left: the stream block above returns only once the app
    # has returned, so a task that has not run by now never will.
    assert (f"{layer}:background:ran" in leaving) is runs


@pytest.mark.parametrize("layer", LAYERS)
async def test_background_task_on_uvicorn(layer: Layer) -> None:
    probe = Probe()
    app = marking_returns(build_app(layer, scale=0.1, recorder=probe), probe)
    with UvicornThread(app) as server:
        await read_lines_then_leave(f"{server.url}/background", 2, lambda: None)
        await wait_for_mark(probe, "returned")
        after_leaving = f"{layer}:background:ran" in probe
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{server.url}/background")
        assert response.text.count("\n") == 5
        await wait_for_mark(probe, f"{layer}:background:ran")
    # uvicorn advertises ASGI 2.3: Starlette's listener task ends the stream
    # and its __call__ goes on to run the background task anyway.
    assert after_leaving is (layer == "starlette")


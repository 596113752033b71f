"""streaming.testing: what users rely on when they test their own streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import count

import anyio
import anyio.lowlevel
import pytest

from streaming import StreamingResponse
from streaming.testing import StreamingClient


async def endless() -> AsyncIterator[bytes]:
    for i in count():
        yield b"%d\n" % i
        await anyio.lowlevel.checkpoint()


async def test_reads_an_endless_stream_chunk_by_chunk() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:
            chunks = []
            async for chunk in response.iter_chunks():
                chunks.append(chunk)
                if len(chunks) == 5:
                    break
    assert chunks == [b"0\n", b"1\n", b"2\n", b"3\n", b"4\n"]
    assert response.disconnected  # leaving the block with the body unfinished


async def test_disconnect_after_n_chunks() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=3) as response:
            assert await response.read() == b"0\n1\n2\n"
    assert response.messages[-1].message["type"] in ("http.disconnect", "http.response.body")
    assert {"direction": "receive", "type": "http.disconnect"} in [
        {"direction": m.direction, "type": m.message["type"]} for m in response.messages]


@pytest.mark.parametrize(("spec", "raises"), [("2.3", False), ("2.4", True)])
async def test_send_after_disconnect_imitates_the_spec_version(spec: str, raises: bool) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        assert (await receive())["type"] == "http.request"  # type: ignore[operator]
        assert (await receive())["type"] == "http.disconnect"  # type: ignore[operator]
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})  # type: ignore[operator]
            seen.append("silent")
        except OSError:
            seen.append("OSError")

    client = StreamingClient(app, spec_version=spec)  # type: ignore[arg-type]
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:
            await response.disconnect()
            await response.wait_for_app()
    assert seen == (["OSError"] if raises else ["silent"])
    assert response.messages[1].message == {"type": "http.request", "body": b"", "more_body": False}


async def test_scope_carries_method_path_query_headers_and_spec_version() -> None:
    scopes: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        scopes.append(scope)
        await StreamingResponse(iter([b"ok"]))(scope, receive, send)  # type: ignore[arg-type]

    client = StreamingClient(app, spec_version="2.4")
    with anyio.fail_after(2):
        await client.request("POST", "/p/a?x=1", headers={"X-Test": "yes"}, body=b"{}")
    scope = scopes[0]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/p/a", b"x=1")
    assert (b"x-test", b"yes") in scope["headers"]  # type: ignore[operator]
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}


async def test_app_exception_before_start_is_raised() -> None:
    async def broken(scope: object, receive: object, send: object) -> None:
        raise LookupError("nothing here")

    with anyio.fail_after(2), pytest.raises(LookupError):
        await StreamingClient(broken).get("/")  # type: ignore[arg-type]


async def test_app_exception_can_be_kept_instead_of_raised() -> None:
    async def produce() -> AsyncIterator[bytes]:
        yield b"a"
        raise ValueError("mid-stream")

    client = StreamingClient(StreamingResponse(produce()), raise_app_exceptions=False)
    with anyio.fail_after(2):
        response = await client.get("/")
    assert isinstance(response.app_exception, ValueError)
    assert not response.complete


async def test_a_test_failure_inside_the_block_is_not_wrapped() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2), pytest.raises(AssertionError, match="mine"):
        async with client.stream("GET", "/"):
            raise AssertionError("mine")


async def test_slow_client_backpressure_blocks_the_app() -> None:
    sent = 0

    async def produce() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x"

    client = StreamingClient(StreamingResponse(produce()), buffer=2)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await anyio.wait_all_tasks_blocked()
            assert sent < 10  # the app waits for the reader instead of racing ahead
            await response.read()

"""The same StreamingResponse as a bare ASGI app, a Starlette endpoint's return
value and a FastAPI path operation's return value."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from fastapi import BackgroundTasks, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import EndReason, Outcome, StreamingResponse
from streaming.testing import StreamingClient

#: Asserts peers' behaviour (pinned in tests/constraints.txt).
pytestmark = pytest.mark.peer


async def lines(count: int) -> AsyncIterator[str]:
    for i in range(count):
        yield f"数据 {i}\n"


EXPECTED = "".join(f"数据 {i}\n" for i in range(3)).encode()


async def test_bare_asgi_app() -> None:
    with anyio.fail_after(2):
        app = StreamingResponse(lines(3), media_type="text/plain")
        response = await StreamingClient(app).get("/")
    assert (response.status_code, response.body) == (200, EXPECTED)


async def test_starlette_endpoint() -> None:
    async def endpoint(request: Request) -> StreamingResponse:
        return StreamingResponse(lines(int(request.path_params["n"])), media_type="text/plain")

    app = Starlette(routes=[Route("/lines/{n}", endpoint)])
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/lines/3")
    assert response.body == EXPECTED
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_fastapi_path_operation_returns_it_untouched() -> None:
    outcomes: list[Outcome] = []
    app = FastAPI()

    @app.get("/simple")
    async def simple() -> StreamingResponse:
        return StreamingResponse(lines(3), media_type="text/plain",
                                 headers={"X-Custom-Header": "CustomValue"},
                                 on_outcome=outcomes.append)

    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/simple")
    assert response.body == EXPECTED
    assert response.headers["x-custom-header"] == "CustomValue"
    assert outcomes[0].reason is EndReason.COMPLETED


async def test_fastapi_error_before_first_chunk_is_a_real_status() -> None:
    """FastAPI's own StreamingResponse answers 200 with an empty body here."""
    app = FastAPI()

    async def refuse() -> AsyncIterator[str]:
        raise HTTPException(status_code=404, detail="no such stream")
        yield ""

    @app.get("/missing")
    async def missing() -> StreamingResponse:
        return StreamingResponse(refuse())

    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/missing")
    assert (response.status_code, response.body) == (404, b"no such stream")


async def test_fastapi_background_tasks_run_after_the_stream() -> None:
    done: list[str] = []
    app = FastAPI()

    @app.get("/with-task")
    async def with_task(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(done.append, "saved")
        return StreamingResponse(lines(2))

    with anyio.fail_after(2):
        await StreamingClient(app).get("/with-task")
    assert done == ["saved"]

"""The README's porting table, one test per row, against a real uvicorn.

Each row takes the peer's documented example, makes the change the table says
(most often one import), serves the original and the port side by side and
compares what a client gets: status, headers, bytes or parsed events. The
differences the table lists are asserted too, so the table cannot go stale.

The sse-starlette row reads its example from the installed package's own
README (its Quick Start); the other peers do not ship their documentation, so
those rows follow the examples of their documentation pages: Starlette's
"Responses / StreamingResponse", FastAPI's "Custom Response / StreamingResponse",
"Server-Sent Events" and "Stream JSON Lines".
"""

from __future__ import annotations

import json
import re
import runpy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from streaming import SSEParser
from streaming._types import ASGIApp
from tests.servers import ROOT, UvicornThread

#: Asserts peers' behaviour (pinned in tests/constraints.txt).
pytestmark = pytest.mark.peer

README = (ROOT / "README.md").read_text()

STARLETTE = '''\
import asyncio

from starlette.responses import StreamingResponse


async def slow_numbers(minimum, maximum):
    yield "<html><body><ul>"
    for number in range(minimum, maximum + 1):
        yield f"<li>{number}</li>"
        await asyncio.sleep(0.01)
    yield "</ul></body></html>"


async def app(scope, receive, send):
    response = StreamingResponse(slow_numbers(1, 5), media_type="text/html")
    await response(scope, receive, send)
'''

FASTAPI_STREAM = '''\
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


async def fake_video_streamer():
    for _ in range(10):
        yield b"some fake video bytes"


@app.get("/")
async def main():
    return StreamingResponse(fake_video_streamer())
'''

ITEMS = '''\
from collections.abc import AsyncIterable

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


items = [Item(name="Plumbus", price=32.99), Item(name="Portal Gun", price=999.99)]
'''

FASTAPI_SSE = ITEMS + '''
from fastapi.sse import EventSourceResponse, ServerSentEvent


@app.get("/items", response_class=EventSourceResponse)
async def stream_items() -> AsyncIterable[Item]:
    for item in items:
        yield item


@app.get("/events", response_class=EventSourceResponse)
async def stream_events():
    yield ServerSentEvent(comment="item updates")
    for i, item in enumerate(items):
        yield ServerSentEvent(data=item, event="item_update", id=str(i + 1), retry=5000)
'''

# The ports as the README shows them: the generator stays, the path operation
# returns our response around it.
FASTAPI_SSE_PORT = ITEMS + '''
from fastapi.sse import ServerSentEvent
from streaming import EventSourceResponse


async def items_as_json():
    for item in items:
        yield item.model_dump_json()   # FastAPI sends each plain item as its JSON


async def item_updates():
    yield ServerSentEvent(comment="item updates")
    for i, item in enumerate(items):
        yield ServerSentEvent(data=item, event="item_update", id=str(i + 1), retry=5000)


@app.get("/items")
async def stream_items():
    return EventSourceResponse(items_as_json())


@app.get("/events")
async def stream_events():
    return EventSourceResponse(item_updates())
'''

FASTAPI_JSONL = ITEMS + '''

@app.get("/items")
async def stream_items() -> AsyncIterable[Item]:
    for item in items:
        yield item
'''

FASTAPI_JSONL_PORT = ITEMS + '''
from streaming import NDJSONResponse


async def all_items():
    for item in items:
        yield item


@app.get("/items")
async def stream_items():
    return NDJSONResponse(all_items(), media_type="application/jsonl",
                          json_default=lambda item: item.model_dump(mode="json"))
'''


def sse_starlette_quick_start() -> str:
    """The Quick Start example of the installed sse-starlette's own README,
    its one-second pause between events made 10 ms."""
    readme = metadata.distribution("sse-starlette").read_text("METADATA") or ""
    section = readme.split("## Quick Start", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "sse-starlette's README has no Quick Start example"
    assert "await asyncio.sleep(1)" in example[1]
    return example[1].replace("await asyncio.sleep(1)", "await asyncio.sleep(0.01)")


def ported(source: str, old: str, new: str) -> str:
    """The example with one import changed (and nothing else)."""
    assert source.count(old) == 1, old
    return source.replace(old, new)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def load(source: str, folder: Path, name: str) -> ASGIApp:
    path = folder / f"{name}.py"
    path.write_text(source)
    app: ASGIApp = runpy.run_path(str(path))["app"]
    return app


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every example and its port, each under its own uvicorn (in this process)."""
    folder = tmp_path_factory.mktemp("porting")
    quick_start = sse_starlette_quick_start()
    sources = {
        "starlette": STARLETTE,
        "starlette-port": ported(STARLETTE, "from starlette.responses import StreamingResponse",
                                 "from streaming import StreamingResponse"),
        "fastapi": FASTAPI_STREAM,
        "fastapi-port": ported(FASTAPI_STREAM, "from fastapi.responses import StreamingResponse",
                               "from streaming import StreamingResponse"),
        "fastapi-sse": FASTAPI_SSE,
        "fastapi-sse-port": FASTAPI_SSE_PORT,
        "fastapi-jsonl": FASTAPI_JSONL,
        "fastapi-jsonl-port": FASTAPI_JSONL_PORT,
        "sse-starlette": quick_start,
        "sse-starlette-port": ported(quick_start, "from sse_starlette import EventSourceResponse",
                                     "from streaming import EventSourceResponse"),
    }
    servers = {name: UvicornThread(load(source, folder, name.replace("-", "_")))
               for name, source in sources.items()}
    for server in servers.values():
        server.__enter__()
    try:
        yield {name: server.url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)


async def get(url: str) -> Answer:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return Answer(response.status_code, headers, response.content)


def events(body: bytes) -> list[tuple[str | None, str, str | None, int | None]]:
    parser = SSEParser()
    return [(e.event, e.data, e.id, e.retry) for e in parser.feed(body) + parser.close()]


async def test_starlette_streaming_response(serve: dict[str, str]) -> None:
    theirs, ours = await get(serve["starlette"]), await get(serve["starlette-port"])
    assert ours == theirs
    assert theirs.body.startswith(b"<html><body><ul><li>1</li>")
    assert theirs.headers["content-type"] == "text/html; charset=utf-8"


async def test_fastapi_streaming_response(serve: dict[str, str]) -> None:
    theirs, ours = await get(serve["fastapi"] + "/"), await get(serve["fastapi-port"] + "/")
    assert ours == theirs
    assert theirs.body == b"some fake video bytes" * 10


async def test_fastapi_native_sse(serve: dict[str, str]) -> None:
    for path in ("/items", "/events"):
        theirs = await get(serve["fastapi-sse"] + path)
        ours = await get(serve["fastapi-sse-port"] + path)
        assert (ours.status, events(ours.body)) == (theirs.status, events(theirs.body)), path
        assert ours.headers == theirs.headers, path
    assert events(theirs.body)[0] == (
        "item_update", '{"name":"Plumbus","price":32.99}', "1", 5000)
    assert theirs.headers["content-type"] == "text/event-stream; charset=utf-8"


async def test_fastapi_json_lines(serve: dict[str, str]) -> None:
    theirs = await get(serve["fastapi-jsonl"] + "/items")
    ours = await get(serve["fastapi-jsonl-port"] + "/items")
    assert ours == theirs
    assert [json.loads(line) for line in theirs.body.splitlines()] == [
        {"name": "Plumbus", "price": 32.99}, {"name": "Portal Gun", "price": 999.99}]


async def test_sse_starlette_quick_start(serve: dict[str, str]) -> None:
    theirs = await get(serve["sse-starlette"] + "/events")
    ours = await get(serve["sse-starlette-port"] + "/events")
    assert events(ours.body) == events(theirs.body)
    assert [data for _, data, _, _ in events(theirs.body)] == [f"Event {i}" for i in range(10)]
    # What differs, as the porting table says: sse-starlette forces
    # "Connection: keep-alive" (illegal over HTTP/2) and "Cache-Control: no-store".
    assert theirs.headers.pop("connection") == "keep-alive"
    assert (theirs.headers.pop("cache-control"), ours.headers.pop("cache-control")) == (
        "no-store", "no-cache")
    assert ours.headers == theirs.headers


def test_the_readme_shows_these_ports() -> None:
    for port in (FASTAPI_SSE_PORT, FASTAPI_JSONL_PORT):
        body = port.removeprefix(ITEMS).strip()
        assert body in README, body[:60]


# -- commit_deadline: the one difference a one-import port shows at once ---------

TUTORIAL = '''\
import threading

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
gate = threading.Event()
first_yield = threading.Event()


async def simple_stream():
    await anyio.to_thread.run_sync(gate.wait, 10)   # the tutorial sleeps 0.5 s here
    first_yield.set()
    yield "数据 0\\n"


@app.get("/simple")
async def simple_endpoint():
    return StreamingResponse(simple_stream(), media_type="text/plain")
'''

CALL = 'StreamingResponse(simple_stream(), media_type="text/plain")'
DEADLINE_ROWS = [
    pytest.param(False, CALL, False, id="fastapi"),
    pytest.param(True, CALL, True, id="ours"),
    pytest.param(True, 'StreamingResponse(simple_stream(), media_type="text/plain", '
                 'commit_deadline=0)', False, id="ours-commit_deadline-0"),
]


@pytest.mark.parametrize(("ours", "call", "waits"), DEADLINE_ROWS)
async def test_headers_wait_for_the_first_chunk_unless_commit_deadline_is_0(
        tmp_path: Path, ours: bool, call: str, waits: bool) -> None:
    source = ported(TUTORIAL, CALL, call) if call != CALL else TUTORIAL
    if ours:
        source = ported(source, "from fastapi.responses import StreamingResponse",
                        "from streaming import StreamingResponse")
    module = runpy.run_path(str(_write(tmp_path / "tutorial.py", source)))
    gate: threading.Event = module["gate"]
    first_yield: threading.Event = module["first_yield"]
    with UvicornThread(module["app"]) as server:
        async with httpx.AsyncClient(timeout=10) as client:
            if waits:  # no headers before the first chunk: let it come
                threading.Timer(0.05, gate.set).start()
            async with client.stream("GET", server.url + "/simple") as response:
                # Ours: the first chunk was produced before the headers went
                # out. Theirs and commit_deadline=0: the producer is still held.
                assert first_yield.is_set() is waits
                gate.set()
                assert await response.aread() == "数据 0\n".encode()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path

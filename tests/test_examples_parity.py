"""Parity: every scenario 1 endpoint answers the same on the raw layer
(``streaming.StreamingResponse``) and on Starlette's ``StreamingResponse``:
status, content type, custom headers and body bytes (NDJSON timestamps aside).
In-process with ``streaming.testing`` for every endpoint, then once against a
real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import pytest

from examples.app import build_demo_app
from examples.scenario1 import LAYERS
from streaming.testing import StreamingClient
from tests.servers import Probe, UvicornThread

#: Asserts peers' behaviour (pinned in tests/constraints.txt).
pytestmark = pytest.mark.peer

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def lines(template: str, count: int) -> bytes:
    return "".join(template.format(i=i, n=i + 1) for i in range(count)).encode()


def json_lines(count: int) -> bytes:
    return "".join(f'{{"id": {i}, "message": "数据项 {i}", "timestamp": 0}}\n'
                   for i in range(count)).encode()


@dataclass(frozen=True)
class Case:
    path: str
    status: int
    content_type: str
    body: bytes
    custom: tuple[tuple[str, str], ...] = ()


def detail(message: str) -> bytes:
    return json.dumps({"detail": message}, ensure_ascii=False, separators=(",", ":")).encode()


CASES = [
    Case("/simple", 200, TEXT, lines("数据 {i}\n", 10)),
    Case("/parameterized/3?delay=0", 200, TEXT, lines("第 {n}/3 条数据\n", 3)),
    Case("/parameterized/0", 200, TEXT, b""),
    Case("/json/3", 200, "application/x-ndjson", json_lines(3)),
    Case("/cleanup", 200, TEXT,
         lines("使用 数据库连接 获取数据 {i}\n", 5) + "资源已释放\n".encode()),
    Case("/disconnect", 200, TEXT, lines("数据 {i}\n", 100)),
    Case("/sync", 200, TEXT, lines("同步数据 {i}\n", 5)),
    Case("/async", 200, TEXT, lines("异步数据 {i}\n", 5)),
    Case("/async-blocking", 200, TEXT, lines("阻塞数据 {i}\n", 5)),
    Case("/headers", 200, TEXT, lines("数据 {i}\n", 5),
         (("x-custom-header", "CustomValue"), ("cache-control", "no-cache"))),
    Case("/background", 200, TEXT, lines("后台示例 {i}\n", 5)),
    Case("/parameterized/-1", 422, JSON, detail("count must be between 0 and 10000, got -1")),
    Case("/parameterized/10001", 422, JSON,
         detail("count must be between 0 and 10000, got 10001")),
    Case("/parameterized/many", 422, JSON, detail("count must be an integer, got 'many'")),
    Case("/parameterized/3?delay=-1", 422, JSON,
         detail("delay must be between 0 and 10 seconds, got -1")),
    Case("/parameterized/3?delay=1e9", 422, JSON,
         detail("delay must be a number of seconds, got '1e9'")),
    Case("/parameterized/3?delay=nan", 422, JSON,
         detail("delay must be a number of seconds, got 'nan'")),
    Case("/parameterized/3?delay=11", 422, JSON,
         detail("delay must be between 0 and 10 seconds, got 11")),
    Case("/parameterized/3?delay=soon", 422, JSON,
         detail("delay must be a number of seconds, got 'soon'")),
    Case("/json/-5", 422, JSON, detail("count must be between 0 and 10000, got -5")),
]


def without_timestamps(body: bytes) -> bytes:
    """NDJSON lines with each ``timestamp`` replaced by 0 (it is a clock reading);
    the field must be there and be a number."""
    out = []
    for line in body.decode().splitlines(keepends=True):
        item = json.loads(line)
        assert isinstance(item.pop("timestamp"), float)
        out.append(json.dumps({**item, "timestamp": 0}, ensure_ascii=False) + "\n")
    return "".join(out).encode()


@dataclass(frozen=True)
class Seen:
    """What parity compares: everything but the server's own headers."""

    status: int
    content_type: str
    custom: tuple[tuple[str, str], ...]
    body: bytes


def seen(status: int, headers: dict[str, str], body: bytes) -> Seen:
    if headers.get("content-type") == "application/x-ndjson":
        body = without_timestamps(body)
    own = {"content-type", "content-length", "date", "server", "transfer-encoding"}
    custom = tuple(sorted((k, v) for k, v in headers.items() if k not in own))
    return Seen(status, headers.get("content-type", ""), custom, body)


def expected(case: Case) -> Seen:
    return Seen(case.status, case.content_type, tuple(sorted(case.custom)), case.body)


@pytest.mark.parametrize("case", CASES, ids=[case.path for case in CASES])
async def test_in_process_every_layer_answers_as_the_tutorial(case: Case) -> None:
    client = StreamingClient(build_demo_app(scale=0))
    answers = {}
    with anyio.fail_after(10):
        for prefix in ("", "/raw", "/starlette"):
            response = await client.get(prefix + case.path)
            assert response.status_code is not None
            answers[prefix] = seen(response.status_code, response.headers, response.body)
    assert answers[""] == answers["/raw"] == answers["/starlette"] == expected(case)


async def test_the_layers_send_the_same_header_list() -> None:
    # Beyond the fields parity needs: the whole list, as ASGI carries it.
    client = StreamingClient(build_demo_app(scale=0))
    sent = []
    for layer in LAYERS:
        async with client.stream("GET", f"/{layer}/headers") as response:
            sent.append(sorted(response.raw_headers))
    assert sent[0] == sent[1]


@pytest.mark.parametrize("path", ["/cleanup", "/raw/cleanup", "/starlette/cleanup"])
async def test_the_tutorial_paths_answer_with_the_raw_layer(path: str) -> None:
    # The observable difference: on HEAD the raw layer never starts the
    # producer; Starlette's response runs it (a real server drops the body).
    probe = Probe()
    client = StreamingClient(build_demo_app(scale=0, recorder=probe))
    with anyio.fail_after(10):
        response = await client.request("HEAD", path)
    assert response.status_code == 200
    started = {"raw:cleanup:acquire" in probe, "starlette:cleanup:acquire" in probe}
    assert started == ({True, False} if path.startswith("/starlette") else {False})


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    with UvicornThread(build_demo_app(scale=0)) as running:
        yield running


async def test_against_a_real_uvicorn(server: UvicornThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for case in CASES:
            answers = []
            for prefix in ("", "/raw", "/starlette"):
                response = await client.get(prefix + case.path)
                answers.append(seen(response.status_code, dict(response.headers),
                                    response.content))
                chunked = response.headers.get("transfer-encoding") == "chunked"
                assert chunked == (case.status == 200), (prefix, case.path)
            assert answers == [expected(case)] * 3, case.path

"""One log line per ended stream from a real uvicorn, and each error's
traceback logged once: before the headers by us (the client got a 500),
after them by the server (it cut the connection), never by both."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx

from tests.servers import uvicorn_process


def stream_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line)["stream"] for line in log.splitlines()
            if line.startswith("{") and '"stream"' in line]


async def test_one_line_per_stream_and_each_traceback_once(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as stderr, uvicorn_process(
            "tests.apps.observed:app", env={"STREAM_LOG_LEVEL": "INFO"},
            stderr=stderr) as (server, url):
        async with httpx.AsyncClient(timeout=10) as client:
            ok = await client.get(url + "/text?n=3&size=10")
            before = await client.get(url + "/fail-before-headers")
            try:
                await client.get(url + "/fail-after-headers")
                raise AssertionError("the cut body read as whole")
            except httpx.RemoteProtocolError:
                pass  # the server cut it: no terminating chunk
            async with client.stream("GET", url + "/endless") as endless:
                await anext(endless.aiter_bytes())
        server.send_signal(signal.SIGTERM)  # the endless stream ends; lines flushed
        await anyio.to_thread.run_sync(server.wait, 10)
    log = log_file.read_text()
    lines = {line["path"]: line for line in stream_lines(log)}
    assert set(lines) == {"/text", "/fail-before-headers", "/fail-after-headers", "/endless"}
    assert len(stream_lines(log)) == 4  # one each
    assert (ok.status_code, before.status_code) == (200, 500)
    assert lines["/text"]["bytes"] == 30 and lines["/text"]["chunks"] == 3
    assert lines["/text"]["reason"] == "completed"
    assert lines["/fail-before-headers"]["error"] == "ValueError"
    assert lines["/fail-before-headers"]["status"] == 500
    assert lines["/fail-after-headers"]["error"] == "ValueError"
    assert lines["/fail-after-headers"]["chunks"] == 1
    assert lines["/endless"]["reason"] == "client_disconnected"
    # Each error's traceback exactly once in the whole log.
    assert log.count("Traceback") == 2
    assert log.count("ValueError: the producer broke before the headers") == 1
    assert log.count("ValueError: the producer broke after the headers") == 1

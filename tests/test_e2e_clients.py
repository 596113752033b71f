"""Real clients against a real uvicorn: curl -N, headless Chromium running the
demo page, and the httpx client example.

The curl and Chromium tests are plain sync tests: curl is a child process, and
playwright's sync API runs its own event loop, which must not be nested in the
test's (its async API would also tie the test to asyncio). The httpx client
test is async and runs on asyncio and trio.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from examples.app import build_demo_app
from examples.client import Arrival, read_stream
from tests.browser import chromium
from tests.servers import ROOT, UvicornThread

#: /simple's ten lines 0.1 s apart (the tutorial's 0.5 s x 0.2): a whole
#: stream takes one second, and "incremental" is still unmistakable.
SCALE = 0.2
SIMPLE = "".join(f"数据 {i}\n" for i in range(10))


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    with UvicornThread(build_demo_app(scale=SCALE)) as running:
        yield running


def read_lines(child: subprocess.Popen[bytes], within: float) -> list[tuple[float, bytes]]:
    """Every line ``child`` writes until it exits, each with the monotonic time
    it was read. Waits with ``select`` and one overall deadline: never hangs."""
    assert child.stdout is not None
    fd, pending = child.stdout.fileno(), b""
    lines: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + within
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no end of output within {within} s; got {lines!r}")
        data = os.read(fd, 65536)
        if not data:
            return lines
        now = time.monotonic()
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            lines.append((now, line + b"\n"))


@pytest.mark.parametrize("prefix", ["", "/starlette"])
def test_curl_sees_simple_arrive_line_by_line(server: UvicornThread, prefix: str) -> None:
    # A missing tool is a failure, not a skip: .ci/run installs it.
    assert shutil.which("curl"), "curl is not installed (.ci/run installs it)"
    with subprocess.Popen(["curl", "-sSN", f"{server.url}{prefix}/simple"],
                          stdout=subprocess.PIPE) as child:
        try:
            lines = read_lines(child, within=15)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(5)
    assert child.returncode == 0
    assert b"".join(line for _, line in lines) == SIMPLE.encode()
    # Incremental arrival is the point: nine gaps of 0.1 s separate the
    # first line from the last; more than half of that must show.
    assert lines[-1][0] - lines[0][0] > 0.45


def test_chromium_page_shows_the_text_as_it_arrives(server: UvicornThread) -> None:
    with chromium() as browser:
        # Both layers' pages stream at the same time; each is then checked.
        pages = []
        for src in ("/simple", "/starlette/simple"):
            page = browser.new_page()
            page.goto(f"{server.url}/page/stream?src={src}", timeout=10_000)
            pages.append(page)
        for page in pages:
            page.wait_for_function("!['loading', 'streaming']"
                                   ".includes(document.body.dataset.state)",
                                   timeout=15_000)
            assert page.evaluate("document.body.dataset.state") == "done"
            assert page.text_content("#output") == SIMPLE
            log = page.evaluate("window.streamLog")
            check_arrivals([entry["ms"] / 1000 for entry in log],
                           "".join(entry["text"] for entry in log))


def check_arrivals(times: list[float], text: str) -> None:
    """The text came whole and in order, in several reads spread over the stream."""
    assert text == SIMPLE
    assert times == sorted(times)
    assert len(times) >= 5  # ten lines 0.1 s apart cannot all share one read
    assert times[-1] - times[0] > 0.45


async def test_httpx_client_example_reads_chunk_by_chunk(server: UvicornThread) -> None:
    seen: list[Arrival] = []
    arrivals = await read_stream(f"{server.url}/simple", on_text=seen.append)
    assert arrivals == seen
    check_arrivals([a.seconds for a in arrivals], "".join(a.text for a in arrivals))


def test_httpx_client_example_command(server: UvicornThread) -> None:
    done = subprocess.run([sys.executable, "-m", "examples.client", f"{server.url}/json/2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert len(printed) == 2
    assert all(" ms  '{\"id\": " in line for line in printed)
    refused = subprocess.run([sys.executable, "-m", "examples.client",
                              f"{server.url}/parameterized/-1"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1
    assert "422" in refused.stderr
    assert "count must be between 0 and 10000" in refused.stderr

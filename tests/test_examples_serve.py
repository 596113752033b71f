"""The examples start the way the README says: ``uvicorn examples.<module>:app``
and ``python -m examples`` (which prints the endpoints and curl commands first).
Plain sync tests: each runs a child process and reads it with a deadline."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from examples.__main__ import banner
from examples.scenario1 import TUTORIAL_ENDPOINTS
from tests.servers import ROOT, uvicorn_process


@pytest.mark.parametrize("module", ["examples.scenario1", "examples.app"])
def test_uvicorn_serves_the_module(module: str) -> None:
    with uvicorn_process(f"{module}:app") as (_, url):
        response = httpx.get(f"{url}/parameterized/2?delay=0", timeout=10)
        assert response.text == "第 1/2 条数据\n第 2/2 条数据\n"
        assert httpx.get(f"{url}/parameterized/-2", timeout=10).status_code == 422
        if module == "examples.app":
            assert "/page/stream" in httpx.get(f"{url}/", timeout=10).text
            assert "getReader()" in httpx.get(f"{url}/page/stream", timeout=10).text


def test_the_banner_lists_every_endpoint_and_curl() -> None:
    text = banner("http://127.0.0.1:8000")
    for path, _ in TUTORIAL_ENDPOINTS:
        assert f"http://127.0.0.1:8000{path}" in text
    assert "curl -N http://127.0.0.1:8000/simple" in text
    assert "python -m streaming wire http://127.0.0.1:8000/simple" in text


def wait_for_text(fd: int, wanted: str, within: float) -> str:
    """Read ``fd`` until ``wanted`` appears; one deadline, never hangs."""
    seen = b""
    deadline = time.monotonic() + within
    while wanted.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        data = os.read(fd, 65536) if ready else b""
        if not data:
            raise TimeoutError(f"{wanted!r} did not appear within {within} s: {seen!r}")
        seen += data
    return seen.decode()


def free_port() -> int:
    # The port is free now; the child binds it a moment later. (uvicorn.run has
    # no option to inherit a bound socket through `python -m examples`.)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_python_m_examples_prints_the_endpoints_then_serves() -> None:
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "examples", "--port", str(port),
                           "--scale", "0.01"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        check_the_demo(child, port)


def check_the_demo(child: subprocess.Popen[bytes], port: int) -> None:
    assert child.stdout is not None
    assert child.stderr is not None
    try:
        printed = wait_for_text(child.stdout.fileno(), "Press Ctrl+C", within=20)
        assert f"curl -N http://127.0.0.1:{port}/simple" in printed
        wait_for_text(child.stderr.fileno(), "Uvicorn running on", within=20)
        response = httpx.get(f"http://127.0.0.1:{port}/simple", timeout=10)
        assert response.text == "".join(f"数据 {i}\n" for i in range(10))
    finally:
        child.send_signal(signal.SIGINT)  # as Ctrl+C: uvicorn shuts down cleanly
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)

"""The ASGI servers of the matrix as child processes on 127.0.0.1, each
started as a user would type it and stopped by its PIDs (never by name).
Shared by the tests (``tests/servers.py``) and the reliability suite
(``python -m benchmarks.load``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The ASGI servers of the matrix, each as the command a user would type
#: (versions pinned in tests/constraints.txt). hypercorn runs in its default
#: mode: one worker process under a parent, as in a container.
SERVERS = ("uvicorn-httptools", "uvicorn-h11", "hypercorn-asyncio", "hypercorn-trio",
           "granian", "daphne")


def server_command(server: str, app_spec: str, fd: int, port: int, grace: int,
                   backlog: int) -> list[str]:
    kind, _, flavour = server.partition("-")
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", app_spec, "--fd", str(fd), "--http", flavour,
                "--timeout-graceful-shutdown", str(grace), "--backlog", str(backlog),
                "--log-level", "warning"]
    if kind == "hypercorn":
        return [sys.executable, "-m", "hypercorn", app_spec, "--bind", f"fd://{fd}",
                "--worker-class", flavour, "--graceful-timeout", str(grace),
                "--backlog", str(backlog), "--log-level", "warning"]
    if kind == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--backlog", str(backlog), "--log-level", "warning",
                app_spec]
    if kind == "daphne":  # Twisted adopts the socket as it is: its backlog is ours
        return [sys.executable, "-m", "daphne", "--fd", str(fd), "-v", "0", app_spec]
    raise ValueError(f"unknown server {server!r}")


class ServerProcess:
    """A running server: its process, its base URL, and its worker processes."""

    def __init__(self, child: subprocess.Popen[bytes], url: str) -> None:
        self.child = child
        self.url = url

    def descendants(self) -> list[int]:
        """Every process under the server (workers of hypercorn and Granian)."""
        pids, frontier = [], [self.child.pid]
        while frontier:
            pid = frontier.pop()
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    children = [int(found) for found in task.read_text().split()]
                    pids += children
                    frontier += children
        return pids

    def workers(self) -> list[int]:
        """The processes that run the app: the descendants, or the server itself."""
        return self.descendants() or [self.child.pid]


def listening_socket(backlog: int = 128) -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    return listener


def free_port() -> int:
    with listening_socket() as probe:
        return int(probe.getsockname()[1])


@contextmanager
def server_process(server: str, app_spec: str, *args: str, grace: int = 5,
                   env: dict[str, str] | None = None, backlog: int = 128,
                   log: Path | None = None) -> Iterator[ServerProcess]:
    """Start ``server`` (one of ``SERVERS``) serving ``app_spec`` on 127.0.0.1,
    its output to ``log`` if given.

    uvicorn, hypercorn and Daphne get a socket bound here (by fd), so the port
    is known and connections queue until they serve. Granian cannot take a
    socket: it gets a free port, and this waits (at most 20 s) until it
    accepts connections. Every process of the server is killed by pid at the end.
    """
    listener = listening_socket(backlog)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    command = [*server_command(server, app_spec, fd, port, grace, backlog), *args]
    if server == "granian":
        listener.close()  # a race for the port: the price of a server that takes no fd
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("ab")) if log is not None else None
        child = subprocess.Popen(command, cwd=ROOT, pass_fds=[] if server == "granian" else [fd],
                                 env={**os.environ, **(env or {})}, stdout=output,
                                 stderr=subprocess.STDOUT if output else None)
    listener.close()
    running = ServerProcess(child, f"http://127.0.0.1:{port}")
    try:
        if server == "granian":
            wait_until_listening(port, child, 20)
        yield running
    finally:
        kill_tree(running)


def wait_until_listening(port: int, child: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port: the server has no other way to say it is up
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def kill_tree(running: ServerProcess, timeout: float = 10) -> None:
    """SIGKILL the server and every process under it, by pid, and wait (at
    most ``timeout``) until they are gone: the workers are not our children,
    so they cannot be waited for, only looked for."""
    pids = running.descendants()
    if running.child.poll() is None:
        running.child.send_signal(signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    running.child.wait(timeout)
    deadline = time.monotonic() + timeout
    while any(map(is_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel tells a grandparent nothing: look again


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

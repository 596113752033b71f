"""Real uvicorn servers for end-to-end tests, on 127.0.0.1 only.

``UvicornThread`` runs uvicorn in a thread with its own asyncio loop, whatever
backend the test runs on, so the app and the test can share thread-safe probes.
``UvicornProcess`` runs it as a child process (for signals such as SIGTERM); it
is stopped by its own pid, never by name.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import uvicorn

from benchmarks.servers import (
    SERVERS,
    ServerProcess,
    free_port,
    kill_tree,
    server_process,
    wait_until_listening,
)
from streaming._types import ASGIApp

__all__ = ["SERVERS", "Probe", "ServerProcess", "UvicornThread", "nginx_process",
           "no_gc_pause", "server_process", "uvicorn_process"]

ROOT = Path(__file__).resolve().parent.parent


class Probe:
    """A thread-safe record of named moments, for tests to wait on.

    The app calls ``mark("finally")`` from its producer; the test calls
    ``wait_for("finally", timeout)`` which blocks (in a worker thread when
    awaited through ``anyio.to_thread``) until the mark exists or the time is up.
    """

    def __init__(self) -> None:
        self._marks: dict[str, float] = {}
        self._changed = threading.Condition()

    def mark(self, name: str) -> None:
        with self._changed:
            self._marks.setdefault(name, time.monotonic())
            self._changed.notify_all()

    def wait_for(self, name: str, timeout: float) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: name in self._marks, timeout):
                raise TimeoutError(f"{name!r} was not marked within {timeout} s")
            return self._marks[name]

    def __contains__(self, name: str) -> bool:
        with self._changed:
            return name in self._marks


class UvicornThread:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a background thread.

    The socket is bound and listening before uvicorn starts, so the URL is known
    at once and early connections wait in the backlog: nothing polls for start-up.
    """

    def __init__(self, app: ASGIApp, **config: Any) -> None:
        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                     lifespan="off", **config)
        self.server = uvicorn.Server(self.config)
        self.socket = _listening_socket()
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],), daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def _listening_socket(port: int = 0, tcp_user_timeout: float | None = None) -> socket.socket:
    listener = socket.socket()
    if tcp_user_timeout is not None:
        # Inherited by every accepted connection (Linux): the kernel aborts one
        # whose sent data stays unacknowledged this long, zero window included.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                            int(tcp_user_timeout * 1000))
    # A restarted server takes its predecessor's port: the killed one's
    # connections may linger in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


@contextmanager
def uvicorn_process(app_spec: str, *args: str, env: dict[str, str] | None = None,
                    cwd: Path = ROOT, port: int = 0, stderr: IO[bytes] | None = None,
                    tcp_user_timeout: float | None = None,
                    ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``python -m uvicorn APP_SPEC`` on a socket bound here and passed by fd,
    so the port is known before the child starts and connections queue until it
    serves. Yields the process and its base URL; stops it by pid. ``port``
    restarts a server where a stopped one was (``0``: a free port); ``stderr``
    takes the server's log (a file); ``tcp_user_timeout`` (seconds) is set on
    the listening socket."""
    listener = _listening_socket(port, tcp_user_timeout)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", app_spec, "--fd", str(listener.fileno()),
               "--log-level", "warning", *args]
    child = subprocess.Popen(command, cwd=cwd, pass_fds=[listener.fileno()],
                             env={**os.environ, **(env or {})}, stderr=stderr)
    listener.close()
    try:
        yield child, f"http://127.0.0.1:{port}"
    finally:
        # With --workers, killing the supervisor alone would leave its
        # workers running, orphaned: every process under it goes, by pid.
        kill_tree(ServerProcess(child, f"http://127.0.0.1:{port}"))


@contextmanager
def no_gc_pause() -> Iterator[None]:
    """No garbage collection during a timed window: a full collection of this
    test process's heap (the SDK, pytest, hypothesis...) can stop every thread,
    the servers' included, for tens of milliseconds, and would time the heap
    rather than the code under test."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


NGINX_CONF = ROOT / "deploy" / "nginx.conf"


@contextmanager
def nginx_process(upstream: str, workdir: Path, *, read_timeout: str | None = None
                  ) -> Iterator[ServerProcess]:
    """Debian's nginx on 127.0.0.1:<free port> in front of ``upstream``
    (``host:port``), with ``deploy/nginx.conf`` as it is but for its LISTEN and
    UPSTREAM addresses (and ``proxy_read_timeout`` when given). Waits (at most
    10 s) until it accepts connections; kills its processes by pid."""
    port = free_port()
    conf = NGINX_CONF.read_text()
    for old, new in (("127.0.0.1:8000;", f"{upstream};"),
                     ("127.0.0.1:8080;", f"127.0.0.1:{port};")):
        assert old in conf, f"{NGINX_CONF} no longer has {old!r}"
        conf = conf.replace(old, new)
    if read_timeout is not None:
        conf = conf.replace("proxy_read_timeout 60s;", f"proxy_read_timeout {read_timeout};")
    conf_path = workdir / "nginx.conf"
    conf_path.write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [nginx, "-p", str(workdir), "-c", str(conf_path), "-e", "stderr",
               "-g", f"daemon off; pid {workdir / 'nginx.pid'};"]
    child = subprocess.Popen(command)
    running = ServerProcess(child, f"http://127.0.0.1:{port}")
    try:
        wait_until_listening(port, child, 10)
        yield running
    finally:
        kill_tree(running)

"""A real ``redis-server`` for tests: 127.0.0.1, a free port, a temp directory.

``RedisServer`` starts Debian's ``redis-server`` (``scripts/test.sh`` installs
it when missing) with its data directory in a temp folder, waits until the
server's own log says it is ready (read from its stdout by a thread, no
polling), and stops it by its pid. ``kill()`` and ``start()`` simulate a crash
and a restart on the same port; ``persistent=True`` turns the append-only file
on (fsync on every write), so a killed server comes back with its data, and
``start(empty=True)`` brings it back with none.

Use the ``redis_server`` fixture (a fresh server per test), or the class
directly for a server shared by several tests.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
READY_LINE = b"Ready to accept connections"


class RedisServer:
    """One ``redis-server`` child process, stopped by pid."""

    def __init__(self, persistent: bool = False, start_timeout: float = 10.0) -> None:
        assert Path(REDIS_SERVER).exists(), "redis-server is missing (scripts/test.sh installs it)"
        self.persistent = persistent
        self.start_timeout = start_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="redis-"))
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, empty: bool = False) -> None:
        """Start (or restart) the server on the same port; ``empty`` deletes
        its data files first."""
        assert self.process is None, "already running"
        if empty:
            for item in self.directory.iterdir():
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.directory), "--save", "", "--logfile", "",
                   "--daemonize", "no", "--protected-mode", "yes",
                   "--appendonly", "yes" if self.persistent else "no",
                   "--appendfsync", "always"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        ready = threading.Event()
        log: list[bytes] = []
        threading.Thread(target=_read_log, args=(process, ready, log), daemon=True).start()
        if not ready.wait(self.start_timeout) or process.poll() is not None:
            process.kill()
            process.wait(5)
            raise RuntimeError("redis-server did not start:\n" + b"".join(log[-20:]).decode())
        self.process = process

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown save) and reap it."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_log(process: subprocess.Popen[bytes], ready: threading.Event, log: list[bytes]) -> None:
    # Keeps reading until the server exits, so a chatty server never blocks on
    # a full pipe; only the last lines are kept, for a start-up failure message.
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        del log[:-50]
        if READY_LINE in line:
            ready.set()
    ready.set()  # exited: start() sees poll() is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty redis-server for one test (no persistence)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def persistent_redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server whose data survives ``kill()`` + ``start()``."""
    with RedisServer(persistent=True) as server:
        yield server


@pytest.fixture(scope="session")
def shared_redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session: tests that only read and write
    share it, each under a key prefix of its own."""
    with RedisServer() as server:
        yield server

"""After a send timeout, on uvicorn: the app's part ends at the cut, and the
socket is the kernel's. uvicorn closes the connection with ``transport.close()``,
which first waits for the unsent buffer to drain: for a reader that never
reads, that is forever. ``TCP_USER_TIMEOUT`` on the listening socket (the
README's recipe) makes the kernel abort it instead."""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import uvicorn_process

ESTABLISHED = "01"  # /proc/net/tcp's code for the state


def server_side_states(server_port: int) -> list[str]:
    """The TCP states of the connections whose local port is the server's."""
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == server_port and fields[3] != "0A":  # not the listener
            states.append(fields[3])
    return states


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling the kernel's table against a deadline
    return False


@pytest.mark.parametrize("user_timeout", [None, 2.5])  # after the 1 s send timeout
def test_the_socket_after_a_send_timeout(user_timeout: float | None) -> None:
    with tempfile.TemporaryFile() as log, uvicorn_process(
            "tests.send_timeout_app:app", stderr=log, tcp_user_timeout=user_timeout) as (_, url):
        port = int(url.rsplit(":", 1)[1])
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with reader:
            reader.connect(("127.0.0.1", port))
            reader.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")  # and never reads

            def cut() -> bool:
                log.seek(0)
                return b"returned without completing response" in log.read()

            assert wait_for(cut, 15)  # the send timeout fired; the app returned
            if user_timeout is None:
                time.sleep(3)  # longer than the kernel takes below: still there
                assert server_side_states(port) == [ESTABLISHED]
            else:
                assert wait_for(lambda: server_side_states(port) == [], 15)

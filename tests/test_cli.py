"""``python -m streaming trace``: every mistake is one line on stderr and exit
status 2; a timeout prints the timeline so far. Run in-process (``main``), and
once as a child process to see exactly what a terminal gets."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import anyio
import pytest

from streaming._types import Message, Receive, Scope, Send
from streaming.cli import main
from tests.servers import ROOT


def run_trace(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["trace", *args])
        except SystemExit as exit_:
            status = int(exit_.code or 0)
    return status, out.getvalue(), err.getvalue()


def not_awaitable(scope: Scope, receive: Receive, send: Send) -> None:
    """Takes the three arguments, but returns None: not an ASGI app."""


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    message: Message = await receive()
    headers = [(b"x-got", b"%r" % dict(scope["headers"]).get(b"x-a", b""))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": message.get("body", b"")})


async def stuck(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts, then never sends again and never listens for the disconnect."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await anyio.sleep_forever()


async def raises(scope: Scope, receive: Receive, send: Send) -> None:
    raise LookupError("\x1b[2Jbroken")


@pytest.mark.parametrize(("args", "says"), [
    (["nosuch_module_xyz:app", "/"], "cannot import 'nosuch_module_xyz'"),
    (["tests.test_cli:nope", "/"], "has no attribute 'nope'"),
    (["tests.test_cli", "/"], "expected MODULE:APP"),
    (["tests.test_cli:ROOT", "/"], "not an ASGI app"),
    (["builtins:len", "/"], "not an ASGI app"),
    (["tests.test_cli:not_awaitable", "/"], "returned NoneType, not an awaitable"),
    (["tests.test_cli:echo", "/", "-H", "X-A: 数"], "is not latin-1"),
    (["tests.test_cli:echo", "/", "-H", "X-A"], "must look like 'Name: value'"),
    (["tests.test_cli:echo", "/", "--timeout", "nan"], "seconds > 0"),
    (["tests.test_cli:echo", "/", "--timeout", "-1"], "seconds > 0"),
    (["tests.test_cli:echo", "/", "--disconnect-after", "-1"], "whole number"),
    (["tests.test_cli:echo", "/", "--preview", "٣"], "whole number"),
])
def test_a_mistake_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    status, out, err = run_trace(*args)
    assert status == 2
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert out == ""


def test_a_body_that_is_not_utf8_is_sent_as_typed() -> None:
    # argv holds undecodable bytes as surrogate escapes; they go out as the bytes.
    status, out, err = run_trace("tests.test_cli:echo", "/", "-d", "caf\udce9", "-H", "X-A: é")
    assert status == 0, err
    assert "http.request 4 B" in out and "x-got: b'\\\\xe9'" in out


def test_a_timeout_prints_the_timeline_so_far() -> None:
    status, out, err = run_trace("tests.test_cli:stuck", "/", "--timeout", "0.2")
    assert status == 1
    assert "http.response.start status=200" in out and "'first'" in out
    assert err.count("\n") == 1 and "gave up after 0.2 s" in err


def test_an_app_error_is_one_line_and_terminal_safe() -> None:
    status, _, err = run_trace("tests.test_cli:raises", "/")
    assert status == 1
    assert err == "trace: the app raised LookupError: \\x1b[2Jbroken\n"


def test_the_command_in_a_child_process() -> None:
    done = subprocess.run([sys.executable, "-m", "streaming", "trace", "tests.test_cli:nope",
                           "/"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

"""The wire view against hostile servers: a real socket server on 127.0.0.1
answers with scripted (or random) bytes, and ``python -m streaming wire``
must print nothing a terminal acts on, lose nothing decoded before an error,
and always end within its timeout with a result or a one-line error."""

from __future__ import annotations

import contextlib
import io
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming import HeaderValidationError
from streaming.cli import main
from streaming.tracing.terminal import terminal_safe
from streaming.tracing.wire import (
    Chunk,
    ResponseHead,
    WireDecoder,
    WireFormatError,
    format_event,
    request_bytes,
)
from tests.servers import ROOT


@dataclass(frozen=True)
class Script:
    """What the server writes to one connection: each part in its own send,
    then a close, or (``hold``) nothing more until the client closes."""

    parts: Sequence[bytes]
    hold: bool = False


class ScriptedServer:
    """A TCP server on 127.0.0.1:<free port>, one connection at a time, each
    answered by the next queued ``Script``. Keeps the request heads it read."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.scripts: queue.Queue[Script] = queue.Queue()
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection, contextlib.suppress(OSError, queue.Empty):
                connection.settimeout(10)
                self.requests.append(_read_head(connection))
                script = self.scripts.get(timeout=10)
                for part in script.parts:
                    connection.sendall(part)
                if script.hold:
                    while connection.recv(4096):
                        pass


def _read_head(connection: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = connection.recv(4096)
        if not data:
            break
        head += data
    return head


@pytest.fixture(scope="module")
def hostile() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def run_wire(*args: str) -> tuple[int, str, str]:
    """``python -m streaming wire ARGS`` in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["wire", *args])
        except SystemExit as exit_:  # argparse's way out
            status = int(exit_.code or 0)
    return status, out.getvalue(), err.getvalue()


#: What a terminal acts on: C0 controls but the newline between our lines,
#: DEL, C1 controls (0x9b is CSI on its own), bidi and other format characters.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


# -- terminal safety ---------------------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text: é 数据", "plain text: é 数据"),
    ("\x1b[2J", "\\x1b[2J"),
    ("a\rb", "a\\rb"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("\x9b31m", "\\x9b31m"),
    ("\u202eevil", "\\u202eevil"),
    ("nb\xa0sp", "nb\\xa0sp"),
    ("back\\x1b", "back\\\\x1b"),
])
def test_terminal_safe(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown
    assert UNSAFE.search(terminal_safe(raw)) is None


def test_every_network_field_is_escaped_when_shown() -> None:
    head = ResponseHead("HTTP/1.1 200 \x1b]0;pwned\x07", 200,
                        (("x-\x1b", "\x1b[2J\rfake: header"),))
    shown = format_event(1.0, head)
    assert UNSAFE.search(shown) is None
    assert "\\x1b[2J\\rfake: header" in shown


def test_the_command_prints_nothing_a_terminal_acts_on(hostile: ScriptedServer) -> None:
    hostile.scripts.put(Script([
        b"HTTP/1.1 200 \x1b]0;pwned\x07OK\r\n",
        b"X-Evil: \x1b[2J\x1b[H\rcontent-type: fake\r\n"
        b"X-C1: \xc2\x9b31m\x9b31m\r\ntransfer-encoding: chunked\r\n\r\n",
        b"3\r\n\x1b[H\r\n0\r\nX-Trailer: \x1b[2J\x07\r\n\r\n"]))
    status, out, err = run_wire(hostile.url + "/", "--timeout", "10")
    assert status == 0, err
    assert UNSAFE.search(out + err) is None
    assert "X-Evil".lower() in out and "trailer x-trailer: \\x1b[2J\\x07" in out


def test_events_decoded_before_a_framing_error_are_shown(hostile: ScriptedServer) -> None:
    hostile.scripts.put(Script([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                b"2\r\nok\r\nzz\r\n"]))
    status, out, err = run_wire(hostile.url + "/", "--timeout", "10")
    assert status == 2
    assert "HTTP/1.1 200 OK" in out and "'ok'" in out
    assert err.count("\n") == 1 and "invalid chunk size line" in err


def test_the_decoder_keeps_what_it_decoded_before_the_error() -> None:
    decoder = WireDecoder()
    with pytest.raises(WireFormatError) as caught:
        decoder.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n")
    assert [type(e) for e in caught.value.events] == [ResponseHead, Chunk]
    assert decoder.done


@pytest.mark.parametrize(("head", "message"), [
    (b"HTTP/1.1 \xb200 OK\r\n\r\n", "not an HTTP/1.x status line"),   # '²00'.isdigit()
    (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: \xb2\r\n\r\n", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: " + b"9" * 5000 + b"\r\n\r\n",
     "invalid Content-Length"),
])
def test_digits_are_ascii_digits(head: bytes, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        WireDecoder().feed(head)


def test_a_header_with_a_line_break_is_never_sent(hostile: ScriptedServer) -> None:
    before = len(hostile.requests)
    status, _, err = run_wire(hostile.url + "/", "-H", "X-A: 1\r\nInjected: yes")
    assert status == 2 and err.count("\n") == 1 and "control character" in err
    assert len(hostile.requests) == before  # refused before connecting
    with pytest.raises(HeaderValidationError):
        request_bytes("http://127.0.0.1:1/", [("X-A", "1\r\nInjected: yes")])


def test_a_url_with_a_space_or_non_ascii_is_percent_encoded() -> None:
    sent = request_bytes("http://127.0.0.1:1/a b/数?q=x y&r=%20#frag")
    assert sent.startswith(b"GET /a%20b/%E6%95%B0?q=x%20y&r=%20 HTTP/1.1\r\n")


@pytest.mark.parametrize("args", [["http://127.0.0.1:1/", "--timeout", "nan"],
                                  ["http://127.0.0.1:1/", "--preview", "-1"],
                                  ["http://127.0.0.1:99999/"], ["http://exa mple/"]])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str]) -> None:
    status, _, err = run_wire(*args)
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_the_real_command_is_terminal_safe_in_a_child_process(hostile: ScriptedServer) -> None:
    hostile.scripts.put(Script([b"HTTP/1.1 200 \x1b[2J\r\ncontent-length: 2\r\n\r\n\x1bX"]))
    done = subprocess.run([sys.executable, "-m", "streaming", "wire", hostile.url + "/x",
                           "--timeout", "10"], cwd=ROOT, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert UNSAFE.search(done.stdout.decode()) is None


# -- fuzz: random bytes from a real socket server -----------------------------------

GIVE_UP = 0.3

status_lines = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 204 No", b"HTTP/1.1 100 Go",
                                b"HTTP/2 200", b"HTTP/1.1 \xb200 X", b"", b"HTTP/1.1 304"])
fields = st.lists(st.tuples(st.sampled_from([b"transfer-encoding", b"content-length", b"x",
                                              b"Transfer-Encoding", b" bad"]),
                            st.one_of(st.sampled_from([b"chunked", b"0", b"5", b"-1",
                                                       b"gzip, chunked", b"\xb2"]),
                                      st.binary(max_size=12))), max_size=4)
chunks = st.lists(st.one_of(
    st.binary(max_size=20).map(lambda d: b"%x\r\n%s\r\n" % (len(d), d)),
    st.sampled_from([b"0\r\n\r\n", b"0\r\nT: v\r\n\r\n", b"ffffffffff\r\n", b"\r\n"]),
    st.binary(max_size=24)), max_size=6)


@st.composite
def responses(draw: st.DrawFn) -> Script:
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.binary(max_size=400))
    else:
        head = draw(status_lines) + b"".join(b"\r\n%s: %s" % f for f in draw(fields))
        data = head + b"\r\n\r\n" + b"".join(draw(chunks))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return Script([p for p in parts if p], hold=draw(st.integers(0, 9)) == 0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=responses())
def test_fuzz_wire_always_ends_with_a_result_or_one_line(hostile: ScriptedServer,
                                                         script: Script) -> None:
    hostile.scripts.put(script)
    outcome: list[tuple[int, str, str]] = []
    runner = threading.Thread(target=lambda: outcome.append(
        run_wire(hostile.url + "/", "--timeout", str(GIVE_UP))), daemon=True)
    runner.start()
    runner.join(GIVE_UP + 10)
    assert not runner.is_alive(), "the wire view did not end within its timeout"
    assert outcome, "the wire view raised instead of answering"
    status, out, err = outcome[0]
    assert status in (0, 1, 2)
    assert UNSAFE.search(out + err) is None
    if status == 2:
        assert err.count("\n") == 1 and "Traceback" not in err

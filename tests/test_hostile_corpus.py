"""A hostile-input corpus against the demo app (``uvicorn examples.app:app``,
a child process, so its memory is its own): oversized, slow, never-ending and
malformed bodies; hostile query values, ``Last-Event-ID`` values and headers;
clients that never read.

Asserted for every request: the server answers (or closes) without a 5xx, and
no body holds a traceback. Asserted for the run: the server's resident memory
grows by less than ``RSS_BOUND`` (measured after a warm-up; the same corpus
with unbounded reads grew it by hundreds of MiB).

Requests go over raw sockets: httpx refuses to send much of this corpus.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import uvicorn_process

#: What the server's RSS may grow by over the whole corpus.
RSS_BOUND = 40 * 1024 * 1024

CHAT_PATHS = ["/chat/stream", "/chat/ndjson", "/proxy/v1/chat/completions",
              "/v1/chat/completions"]


@dataclass(frozen=True)
class Case:
    """One hostile request: the bytes of its head and body, and optionally a
    body that keeps coming (``endless``) or stalls after ``head``."""

    name: str
    head: bytes
    endless: bytes | None = None


@dataclass
class Answer:
    status: int | None
    text: bytes


def post(path: str, body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return (b"POST %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
            % (path.encode(), len(body), extra, body))


def get(target: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n%s\r\n" % (target, extra)


def body_cases() -> list[Case]:
    prompt_body = {"/v1/chat/completions": b'{"model": "m", "messages": [{"role": "user", '
                                           b'"content": %s}]}',
                   "/proxy/v1/chat/completions": b'{"model": "local-echo", "messages": '
                                                 b'[{"role": "user", "content": %s}]}'}
    cases = []
    for path in CHAT_PATHS:
        shape = prompt_body.get(path, b'{"prompt": %s}')
        bodies = {
            "deep": shape % (b"[" * 40_000 + b"]" * 40_000),
            "lone-surrogate": shape % b'"\\ud800"',
            "nan": shape % b"NaN",
            "digits": shape % (b"9" * 5000),
            "not-utf8": shape % b'"\xff\xfe"',
            "bom": b"\xef\xbb\xbf" + shape % b'"x"',
            "not-json": b"{",
            "empty": b"",
            "array": b"[]",
            "wrong-type": shape % b"12",
            "oversized": shape % (b'"' + b"x" * 3_000_000 + b'"'),
        }
        cases += [Case(f"{path} {name}", post(path, body)) for name, body in bodies.items()]
        cases.append(Case(f"{path} declared 10 GB", (
            b"POST %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            b"content-length: 10000000000\r\n\r\n" % path.encode())))
        cases.append(Case(f"{path} endless chunked", (
            b"POST %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            b"transfer-encoding: chunked\r\n\r\n" % path.encode()),
            endless=b"1000\r\n" + b" " * 4096 + b"\r\n"))
    return cases


def query_cases() -> list[Case]:
    values = [b"1e9", b"nan", b"inf", b"-0", b"%00", b"%D9%A1", b"1_0", b"+5", b"%20", b"9" * 5000,
              b"%FF%FE", b"0x10", b"1.5"]
    cases = []
    for value in values:
        for target in (b"/parameterized/%s" % value, b"/parameterized/2?delay=%s" % value,
                       b"/json/%s" % value, b"/starlette/parameterized/%s" % value,
                       b"/page/stream?src=%s" % value, b"/sse/ours/ticker/%s" % value):
            cases.append(Case(f"GET {target[:60]!r}", get(target)))
    return cases


def header_cases() -> list[Case]:
    ids = [b"\xff\xfe", b"-1", b"99999999999999999999", b"1e5", b"\xe2\x80\xae1", b"a" * 7000,
           b"%00", b"0", b" 3", b"3\t"]
    cases = [Case(f"Last-Event-ID {value[:20]!r}",
                  get(b"/sse/ours/ticker/corpus", b"last-event-id: " + value)) for value in ids]
    hostile = [b"cookie: chat_reader=" + b"A" * 8000, b"cookie: chat_reader=\xff\xfe",
               b"x-local-prefill: inf", b"x-local-fail: 500", b"x-local-prefill: nan",
               b"accept: " + b"*/*," * 1000, b"content-type: \xff",
               b"range: bytes=0-1,1-2,2-3", b"x-" + b"a" * 4000 + b": 1"]
    for header in hostile:
        cases.append(Case(f"header {header[:30]!r} GET", get(b"/chat/transcripts", header)))
        cases.append(Case(f"header {header[:30]!r} POST", post(
            "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", '
            b'"content": "hi"}]}', header)))
    return cases


def exchange(url: str, case: Case, *, read_for: float = 5.0) -> Answer:
    """Send ``case``; read until the server closes or ``read_for`` seconds pass
    without a byte (endless streams are cut there)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        stop = threading.Event()
        sender = None
        with contextlib.suppress(OSError):
            connection.sendall(case.head)
        if case.endless is not None:
            endless = case.endless

            def feed() -> None:
                with contextlib.suppress(OSError):
                    for _ in range(10_000):  # bounded: 40 MB at most
                        if stop.is_set():
                            return
                        connection.sendall(endless)

            sender = threading.Thread(target=feed, daemon=True)
            sender.start()
        received = b""
        connection.settimeout(read_for)
        with contextlib.suppress(OSError):
            while len(received) < 1 << 20:
                data = connection.recv(65536)
                if not data:
                    break
                received += data
        stop.set()
        if sender is not None:
            sender.join(10)
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", received)
    return Answer(int(match[1]) if match else None, received)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[int, str]]:
    with uvicorn_process("examples.app:app", "--timeout-keep-alive", "2") as (child, url):
        yield child.pid, url


def run(url: str, cases: list[Case], *, read_for: float = 5.0, workers: int = 8
        ) -> dict[str, Answer]:
    """Every case, ``workers`` at a time (the corpus is bounded: each case ends)."""
    answers: dict[str, Answer] = {}
    pending = list(cases)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                case = pending.pop()
            answer = exchange(url, case, read_for=read_for)
            with lock:
                answers[case.name] = answer

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "the corpus did not finish"
    return answers


def check(answers: dict[str, Answer]) -> None:
    bad = {name: (a.status, a.text[:200]) for name, a in answers.items()
           if (a.status is not None and a.status >= 500) or b"Traceback" in a.text}
    assert bad == {}


def test_the_demo_survives_the_hostile_corpus(demo: tuple[int, str]) -> None:
    pid, url = demo
    warm = run(url, [Case("warm", post("/chat/stream", b'{"prompt": "hi"}'))] * 4)
    assert {a.status for a in warm.values()} == {200}
    before = rss(pid)

    # Clients that never read: 20 streams of a 0.9 MB prompt, held open meanwhile.
    prompt = json.dumps({"model": "m", "stream": True,
                         "messages": [{"role": "user", "content": "word " * 180_000}]})
    idle = []
    for _ in range(20):
        host, port = url.removeprefix("http://").split(":")
        connection = socket.create_connection((host, int(port)), timeout=10)
        connection.sendall(post("/v1/chat/completions", prompt.encode()))
        idle.append(connection)
    try:
        answers = run(url, body_cases() + query_cases() + header_cases())
        stalled = run(url, [Case(f"{path} stalled", post(path, b'{"prompt": "x"}')[:-5])
                            for path in CHAT_PATHS], read_for=30)
        grown = rss(pid) - before
    finally:
        for connection in idle:
            connection.close()
    check(answers)
    check(stalled)
    assert {a.status for a in stalled.values()} == {408}
    refused = {name: a.status for name, a in answers.items() if "oversized" in name
               or "declared" in name or "endless" in name}
    assert set(refused.values()) == {413}, refused
    assert grown < RSS_BOUND, f"RSS grew by {grown / 2**20:.0f} MiB"

"""The load client: raw sockets in a process of their own, checking what they count.

Run as ``python -m benchmarks.client '<job as JSON>'``; it prints one JSON object
(the result, or ``{"error": ...}`` and exit status 1). It speaks just enough
HTTP/1.1 for the job: one ``GET``, the status line and headers, then the body,
decoding the chunked transfer coding itself (RFC 9112 section 7.1)
incrementally from large ``recv()``s. Every byte, event and line is checked
against :mod:`benchmarks.workload`; any mismatch raises :class:`ProtocolError`,
so a broken implementation fails loudly instead of scoring well.

Jobs (``"job"`` key):

- ``stream``: ``conns`` concurrent GETs of ``path``; wall time, exact counts,
  and the server's CPU time (``/proc/<pid>/task/*/schedstat``) over it;
- ``ttfb``: sequential fresh connections, time from sending the request to the
  first body byte;
- ``cleanup``: open an idle stream, close the socket once its first chunk is
  in, and ask the server (long poll) when the producer's ``finally`` ran;
- ``hold``: open idle SSE connections in batches up to each count, each having
  received its first event, reading the server's ``VmRSS`` at each count;
- ``pings``: hold connections to ``/ping-sse`` and time the keep-alives; with
  ``sources`` (several 127.0.0.x addresses, for more connections than one
  address has ephemeral ports) and ``"pings": false`` (``/idle-sse``, for an
  implementation without keep-alives) it is also the idle-streams job of
  :mod:`benchmarks.curve`: the server's ``VmRSS`` around the opening, then its
  CPU while they idle.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import selectors
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.workload import NDJSON_ITEM, text_chunk

RECV_SIZE = 1 << 20
#: The most the throughput jobs ask the kernel to gather before waking them
#: (``SO_RCVLOWAT``, socket(7)): one wake-up per 16 KiB rather than per 22-byte
#: chunk keeps the client cheap (about a quarter of a core at 300k chunks/s)
#: and off the server's back.
LOWAT_CAP = 16 * 1024
MAX_HEAD = 64 * 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK")

Job = dict[str, Any]
Result = dict[str, Any]


class ProtocolError(Exception):
    """Raised by the client when the server's bytes differ from the expected ones:
    bad framing, a wrong status, or a wrong byte, event or line count."""


# -- decoding ------------------------------------------------------------------


class ChunkedBody:
    """Incremental decoder of a chunked body.

    ``collect=False`` only counts payload bytes and newlines (large streams);
    ``collect=True`` keeps the payload pieces for exact checks afterwards.
    """

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.pieces: list[bytes] = []
        self.body_bytes = 0
        self.newlines = 0
        self.chunks = 0
        self.done = False
        self._buf = b""
        self._remaining = 0
        self._need_crlf = False
        self._last_chunk_seen = False

    def feed(self, data: bytes) -> None:
        if self.done:
            raise ProtocolError(f"{len(data)} bytes after the end of the chunked body")
        buf = self._buf + data if self._buf else data
        if self._last_chunk_seen:
            self._finish(buf)
            return
        pos, end = 0, len(buf)
        remaining, need_crlf = self._remaining, self._need_crlf
        collect, pieces = self.collect, self.pieces
        while True:
            if remaining:
                stop = pos + remaining if end - pos > remaining else end
                if collect:
                    pieces.append(buf[pos:stop])
                else:
                    self.newlines += buf.count(b"\n", pos, stop)
                self.body_bytes += stop - pos
                remaining -= stop - pos
                pos = stop
                if remaining:
                    break
                need_crlf = True
            if need_crlf:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ProtocolError(f"chunk data not followed by CRLF: {buf[pos : pos + 8]!r}")
                pos += 2
                need_crlf = False
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if end - pos > 64:
                    raise ProtocolError(f"chunk size line too long: {buf[pos : pos + 64]!r}")
                break
            line = buf[pos:line_end]
            try:
                # Fast path: bare hex digits (int() would also take "0x", "_", spaces).
                size = int(line, 16) if line.isalnum() and line[:2] != b"0x" else _chunk_size(line)
            except ValueError:
                raise ProtocolError(f"bad chunk size line: {line[:32]!r}") from None
            pos = line_end + 2
            if size == 0:
                self._last_chunk_seen = True
                self._finish(buf[pos:])
                return
            self.chunks += 1
            remaining = size
        self._buf = buf[pos:]
        self._remaining, self._need_crlf = remaining, need_crlf

    def _finish(self, rest: bytes) -> None:
        # No trailer fields are expected: the last chunk is followed by one CRLF.
        if rest == b"\r\n":
            self.done = True
        elif b"\r\n".startswith(rest):
            self._buf = rest  # the CRLF has not (all) arrived yet
        else:
            raise ProtocolError(f"unexpected bytes after the last chunk: {rest[:32]!r}")

    def body(self) -> bytes:
        return b"".join(self.pieces)


def _chunk_size(line: bytes) -> int:
    digits = line.split(b";", 1)[0].strip()
    if not digits or digits.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError(f"bad chunk size line: {line[:32]!r}")
    return int(digits, 16)


class FixedBody:
    """A ``Content-Length`` body (the harness endpoints)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.pieces: list[bytes] = []
        self.body_bytes = 0
        self.done = length == 0

    def feed(self, data: bytes) -> None:
        self.pieces.append(data)
        self.body_bytes += len(data)
        if self.body_bytes > self.length:
            raise ProtocolError(f"body longer than Content-Length {self.length}")
        self.done = self.body_bytes == self.length

    def body(self) -> bytes:
        return b"".join(self.pieces)


class Response:
    """One HTTP/1.1 response, fed the bytes of one connection."""

    def __init__(self, collect: bool, expected_min: int = 0) -> None:
        self.collect = collect
        #: A lower bound on the body bytes still to come when nothing is read yet;
        #: 0 reads whatever arrives (latency jobs).
        self.expected_min = expected_min
        self.lowat = 1
        self.status = 0
        self.headers: dict[str, str] = {}
        self.decoder: ChunkedBody | FixedBody | None = None
        self._head = b""

    @property
    def done(self) -> bool:
        return self.decoder is not None and self.decoder.done

    @property
    def body_bytes(self) -> int:
        return 0 if self.decoder is None else self.decoder.body_bytes

    def feed(self, data: bytes) -> None:
        if self.decoder is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    raise ProtocolError("response head too long")
                return
            data = self._head[end + 4 :]
            self._parse_head(self._head[:end])
            self._head = b""
            if not data:
                return
        assert self.decoder is not None
        self.decoder.feed(data)

    def _parse_head(self, head: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if version != "HTTP/1.1":
            raise ProtocolError(f"bad status line {status_line!r}")
        self.status = int(rest[:3])
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            self.decoder = ChunkedBody(self.collect)
        elif "content-length" in self.headers:
            self.decoder = FixedBody(int(self.headers["content-length"]))
        else:
            raise ProtocolError(f"neither chunked nor Content-Length: {self.headers}")

    def body(self) -> bytes:
        assert self.decoder is not None
        return self.decoder.body()


# -- checks ----------------------------------------------------------------------


def check_text(response: Response, n: int, size: int) -> dict[str, int]:
    decoder = _chunked(response)
    newlines = decoder.body().count(b"\n") if decoder.collect else decoder.newlines
    if decoder.body_bytes != n * size or newlines != n:
        raise ProtocolError(
            f"text: got {decoder.body_bytes} bytes and {newlines} lines, "
            f"expected {n * size} bytes and {n} lines of {size} bytes"
        )
    if decoder.collect and decoder.body() != text_chunk(size) * n:
        raise ProtocolError("text: the bytes differ from the expected chunks")
    return {"bytes": decoder.body_bytes, "chunks": decoder.chunks}


def check_sse(response: Response, n: int, data: str) -> dict[str, int]:
    """Count the events of an SSE body (WHATWG HTML "event stream interpretation":
    CRLF, CR and LF all end a line; a blank line dispatches; ``:`` starts a comment),
    requiring exactly ``n`` events, each with exactly ``data``."""
    decoder = _chunked(response)
    text = decoder.body().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not text.endswith(b"\n\n"):
        raise ProtocolError(f"sse: the body does not end with a complete event: {text[-40:]!r}")
    expected = data.encode()
    events = 0
    for block, count in Counter(text.split(b"\n\n")[:-1]).items():
        values = _sse_data(block)
        if values is None:
            continue  # a keep-alive comment, not an event
        if values != expected:
            raise ProtocolError(f"sse: event data {values[:60]!r}, expected {expected!r}")
        events += count
    if events != n:
        raise ProtocolError(f"sse: got {events} events, expected {n}")
    return {"bytes": decoder.body_bytes, "chunks": decoder.chunks, "events": events}


def _sse_data(block: bytes) -> bytes | None:
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field not in (b"event", b"id", b"retry"):
            raise ProtocolError(f"sse: unknown field in {line[:60]!r}")
    return b"\n".join(data) if data else None


def check_ndjson(response: Response, n: int) -> dict[str, int]:
    decoder = _chunked(response)
    body = decoder.body()
    if n and not body.endswith(b"\n"):
        raise ProtocolError(f"ndjson: the body does not end with a newline: {body[-40:]!r}")
    lines = body[:-1].split(b"\n") if body else []
    if len(lines) != n:
        raise ProtocolError(f"ndjson: got {len(lines)} lines, expected {n}")
    for line in Counter(lines):
        if json.loads(line) != NDJSON_ITEM:
            raise ProtocolError(f"ndjson: line {line[:60]!r}, expected {NDJSON_ITEM}")
    return {"bytes": decoder.body_bytes, "chunks": decoder.chunks, "lines": n}


def least_body_bytes(expect: dict[str, Any]) -> int:
    """A lower bound on the body of a correct response, whatever the encoder's
    choices (``data:`` without the space, compact JSON)."""
    kind, n = expect["kind"], expect["n"]
    if kind == "text":
        return int(n * expect["size"])
    if kind == "sse":
        return int(n * len(b"data:" + expect["data"].encode() + b"\n\n"))
    compact = json.dumps(NDJSON_ITEM, separators=(",", ":"), ensure_ascii=False)
    return int(n) * (len(compact.encode()) + 1)


def check(response: Response, expect: dict[str, Any]) -> dict[str, int]:
    if response.status != 200:
        raise ProtocolError(f"status {response.status}: {response.body()[:200]!r}")
    kind = expect["kind"]
    if kind == "text":
        return check_text(response, expect["n"], expect["size"])
    if kind == "sse":
        return check_sse(response, expect["n"], expect["data"])
    if kind == "ndjson":
        return check_ndjson(response, expect["n"])
    raise ValueError(f"unknown expectation {kind!r}")


def _chunked(response: Response) -> ChunkedBody:
    if not isinstance(response.decoder, ChunkedBody):
        raise ProtocolError(f"expected a chunked body, got headers {response.headers}")
    return response.decoder


# -- sockets -----------------------------------------------------------------------


def request_bytes(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def connect(port: int, timeout: float = 10.0, source: str | None = None) -> socket.socket:
    """A connection to 127.0.0.1, from ``source`` (another 127.0.0.x) if given:
    each source address has its own ephemeral ports (about 28,000)."""
    if source is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The port is picked at connect() (ip(7)), so bind() cannot run out first.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


#: ``IP_BIND_ADDRESS_NO_PORT`` from linux/in.h (not in the socket module).
IP_BIND_ADDRESS_NO_PORT = 24


def close_with_reset(sock: socket.socket) -> None:
    """Close with an RST (``SO_LINGER`` 0): no TIME_WAIT holds the ports of
    100,000 connections for a minute after the job."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def read_response(sock: socket.socket, response: Response, deadline: float) -> None:
    """Read ``sock`` until ``response`` is complete (blocking, with a deadline)."""
    while not response.done:
        tune_lowat(sock, response)
        sock.settimeout(_left(deadline))
        data = sock.recv(RECV_SIZE)
        if not data:
            raise ProtocolError("the server closed the connection before the end")
        response.feed(data)


def tune_lowat(sock: socket.socket, response: Response) -> None:
    """Wake only once ``LOWAT_CAP`` bytes are in, but never ask for more than
    are certainly still to come (the body bytes not yet seen), so the end of the
    stream is never waited for in vain."""
    if not response.expected_min:
        return
    want = max(1, min(LOWAT_CAP, response.expected_min - response.body_bytes))
    if want != response.lowat:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
        response.lowat = want


def read_all(socks: list[socket.socket], responses: list[Response], deadline: float) -> None:
    """Read every socket until its response is complete, whichever comes first."""
    if len(socks) == 1:
        read_response(socks[0], responses[0], deadline)
        return
    with selectors.DefaultSelector() as selector:
        for sock, response in zip(socks, responses, strict=True):
            sock.setblocking(False)
            tune_lowat(sock, response)
            selector.register(sock, selectors.EVENT_READ, response)
        pending = len(socks)
        while pending:
            for key, _ in selector.select(_left(deadline)):
                response = key.data
                data = key.fileobj.recv(RECV_SIZE)  # type: ignore[union-attr]
                if not data:
                    raise ProtocolError("the server closed a connection before the end")
                response.feed(data)
                tune_lowat(key.fileobj, response)  # type: ignore[arg-type]
                if response.done:
                    selector.unregister(key.fileobj)
                    pending -= 1


def get(port: int, path: str, deadline: float) -> Response:
    """One complete GET on a fresh connection (harness endpoints)."""
    with connect(port) as sock:
        sock.sendall(request_bytes(path))
        response = Response(collect=True)
        read_response(sock, response, deadline)
    return response


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the job's deadline passed")
    return left


def server_cpu_seconds(pid: int) -> float:
    """CPU time of a process (user and system, all its threads), in seconds.

    ``/proc/<pid>/task/<tid>/schedstat`` counts nanoseconds on the CPU; the
    utime + stime of ``/proc/<pid>/stat`` (proc(5)) count clock ticks of 10 ms,
    too coarse for a run of a fraction of a second, so they are the fallback.
    """
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # fields 14 and 15


def server_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ProtocolError(f"no VmRSS for pid {pid}")


# -- jobs --------------------------------------------------------------------------


def run_stream(job: Job) -> Result:
    deadline = time.monotonic() + job["timeout"]
    expect = job["expect"]
    socks = [connect(job["port"]) for _ in range(job["conns"])]
    least = least_body_bytes(expect)
    responses = [Response(expect["kind"] != "text", least) for _ in socks]
    request = request_bytes(job["path"])
    try:
        cpu_before, client_before = server_cpu_seconds(job["pid"]), time.process_time()
        started = time.perf_counter()
        for sock in socks:
            sock.sendall(request)
        try:
            read_all(socks, responses, deadline)
        except TimeoutError:
            got = sum(response.body_bytes for response in responses)
            raise TimeoutError(
                f"timed out with {got} body bytes in, expected at least {least * len(socks)}"
            ) from None
        elapsed = time.perf_counter() - started
        cpu = server_cpu_seconds(job["pid"]) - cpu_before
        client_cpu = time.process_time() - client_before
    finally:
        for sock in socks:
            sock.close()
    counts = [check(response, expect) for response in responses]
    return {
        "elapsed": elapsed,
        "units": expect["n"] * len(socks),
        "bytes": sum(c["bytes"] for c in counts),
        "chunks": sum(c["chunks"] for c in counts),
        "server_cpu": cpu,
        "client_cpu": client_cpu,
        "content_type": responses[0].headers.get("content-type", ""),
    }


def run_ttfb(job: Job) -> Result:
    deadline = time.monotonic() + job["timeout"]
    request = request_bytes(job["path"])
    samples = []
    for _ in range(job["samples"]):
        with connect(job["port"]) as sock:
            response = Response(collect=True)
            started = time.perf_counter()
            sock.sendall(request)
            while response.body_bytes == 0:
                sock.settimeout(_left(deadline))
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise ProtocolError("closed before the first body byte")
                response.feed(data)
            samples.append(time.perf_counter() - started)
            read_response(sock, response, deadline)
        check(response, job["expect"])
    return {"samples": samples}


def run_cleanup(job: Job) -> Result:
    """Disconnect-to-cleanup latency: ``time.monotonic()`` is ``CLOCK_MONOTONIC``,
    one clock for every process on Linux, so the server's and ours subtract."""
    deadline = time.monotonic() + job["timeout"]
    samples: list[float] = []
    prefix = uuid.uuid4().hex[:12]
    for i in range(job["samples"]):
        token = f"{prefix}-{i}"
        sock = connect(job["port"])
        try:
            sock.sendall(request_bytes(f"{job['path']}?token={token}"))
            response = Response(collect=True)
            while response.body_bytes == 0:
                sock.settimeout(_left(deadline))
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise ProtocolError("closed before the first body byte")
                response.feed(data)
        finally:
            closed_at = time.monotonic()
            sock.close()
        wait = min(job["wait"], _left(deadline))
        answer = get(job["port"], f"/cleanup?token={token}&timeout={wait}", deadline + 1)
        finally_at = json.loads(answer.body())["finally_at"]
        if finally_at is None:
            return {"samples": samples, "never": True, "waited": wait}
        samples.append(finally_at - closed_at)
    return {"samples": samples, "never": False}


@contextmanager
def held_connections(opened: list[tuple[socket.socket, Response]], reset: bool = False
                     ) -> Iterator[None]:
    try:
        yield
    finally:
        for sock, _ in opened:
            close_with_reset(sock) if reset else sock.close()


def open_idle(
    port: int,
    path: str,
    count: int,
    batch: int,
    deadline: float,
    opened: list[tuple[socket.socket, Response]],
    sources: list[str] | None = None,
) -> None:
    """Open ``count`` more connections to ``path`` into ``opened``, in batches (so
    the listen backlog never overflows), each read until its first SSE event;
    from each of ``sources`` in turn, if given."""
    request = request_bytes(path)
    target = len(opened) + count
    while len(opened) < target:
        with selectors.DefaultSelector() as selector:
            waiting = min(batch, target - len(opened))
            for _ in range(waiting):
                source = sources[len(opened) % len(sources)] if sources else None
                sock = connect(port, source=source)
                response = Response(collect=True)
                opened.append((sock, response))  # the caller closes whatever is opened
                sock.sendall(request)
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ, response)
            while waiting:
                for key, _ in selector.select(_left(deadline)):
                    response = key.data
                    data = key.fileobj.recv(RECV_SIZE)  # type: ignore[union-attr]
                    if not data:
                        raise ProtocolError("an idle connection was closed by the server")
                    response.feed(data)
                    if response.status and response.status != 200:
                        raise ProtocolError(f"status {response.status} for {path}")
                    if first_event_in(response):
                        selector.unregister(key.fileobj)
                        waiting -= 1


def first_event_in(response: Response) -> bool:
    if response.body_bytes == 0:
        return False
    body = response.body().replace(b"\r\n", b"\n")
    return b"\n\n" in body


def run_hold(job: Job) -> Result:
    """Server RSS per held idle SSE connection, at each count in ``counts``."""
    deadline = time.monotonic() + job["timeout"]
    pid, port = job["pid"], job["port"]
    warm_up_idle(port, job["path"], deadline)
    before = server_rss_kib(pid)
    at: dict[str, int] = {}
    opened: list[tuple[socket.socket, Response]] = []
    try:
        for count in sorted(job["counts"]):
            open_idle(port, job["path"], count - len(opened), job["batch"], deadline, opened)
            at[str(count)] = server_rss_kib(pid)
    finally:
        for sock, _ in opened:
            sock.close()
    per_conn = {count: (rss - before) / int(count) for count, rss in at.items()}
    return {"rss_before_kib": before, "rss_kib": at, "kib_per_conn": per_conn}


def run_traced(job: Job) -> Result:
    """What ``count`` idle SSE connections allocate in a traced server, by line
    (the server's ``/tracemalloc`` endpoint), with its ``VmRSS`` for scale."""
    deadline = time.monotonic() + job["timeout"]
    pid, port, count = job["pid"], job["port"], job["count"]
    warm_up_idle(port, job["path"], deadline)
    get(port, "/tracemalloc?action=snapshot", deadline)
    before = server_rss_kib(pid)
    opened: list[tuple[socket.socket, Response]] = []
    with held_connections(opened):
        open_idle(port, job["path"], count, job["batch"], deadline, opened)
        rss = (server_rss_kib(pid) - before) / count
        answer = json.loads(get(port, f"/tracemalloc?action=diff&n={count}", deadline).body())
    return {"kib_per_conn": rss, "lines": answer["lines"]}


def run_fanout(job: Job) -> Result:
    """Deliveries of a published event to ``count`` subscribers: open them (from
    ``sources``), ask the server to publish ``n`` events ``interval`` s apart
    (each ``data`` the ``time.monotonic()`` of its publish), read until every
    subscriber has every event; the server's CPU over it, and each delivery's
    latency (arrival minus publish; one clock for all processes on Linux)."""
    deadline = time.monotonic() + job["timeout"]
    port, pid, count, n = job["port"], job["pid"], job["count"], job["n"]
    opened: list[tuple[socket.socket, Response]] = []
    with held_connections(opened, reset=True):
        open_idle(port, "/subscribe", count, job["batch"], deadline, opened, job.get("sources"))
        for sock, response in opened:
            drain(sock, response)
        cpu_before, started = server_cpu_seconds(pid), time.monotonic()
        with connect(port) as publisher:
            publisher.sendall(request_bytes(f"/publish?n={n}&interval={job['interval']}"))
            latencies = watch_events(opened, n, deadline)
            elapsed = time.monotonic() - started
            cpu = server_cpu_seconds(pid) - cpu_before
            read_response(publisher, Response(collect=True), deadline)
    latencies.sort()
    return {"deliveries": count * n, "server_cpu": cpu, "elapsed": elapsed,
            "latency_median": latencies[len(latencies) // 2],
            "latency_p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def watch_events(opened: list[tuple[socket.socket, Response]], n: int, deadline: float
                 ) -> list[float]:  # fmt: skip
    """Read every subscriber until it has ``n`` events; each one's latency."""
    latencies: list[float] = []
    tails = [b""] * len(opened)
    seen = [0] * len(opened)
    with selectors.DefaultSelector() as selector:
        for index, (sock, _) in enumerate(opened):
            selector.register(sock, selectors.EVENT_READ, index)
        pending = len(opened)
        while pending:
            for key, _ in selector.select(_left(deadline)):
                index = key.data
                data = key.fileobj.recv(RECV_SIZE)  # type: ignore[union-attr]
                arrived = time.monotonic()
                if not data:
                    raise ProtocolError("a subscriber was closed by the server")
                *lines, tails[index] = (tails[index] + data).split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        latencies.append(arrived - float(line[6:]))
                        seen[index] += 1
                if seen[index] >= n:
                    if seen[index] > n:
                        raise ProtocolError(f"a subscriber got {seen[index]} events, not {n}")
                    selector.unregister(key.fileobj)
                    pending -= 1
    return latencies


def warm_up_idle(port: int, path: str, deadline: float) -> None:
    """Open and close a few idle connections and wait until their producers are
    cleaned up, so one-time allocations are not counted per connection. An
    implementation that never closes an idle producer (aiohttp by default)
    keeps these four: negligible next to thousands."""
    prefix = uuid.uuid4().hex[:12]
    tokens = [f"{prefix}-warm-{i}" for i in range(4)]
    opened: list[tuple[socket.socket, Response]] = []
    try:
        for token in tokens:
            joiner = "&" if "?" in path else "?"
            open_idle(port, f"{path}{joiner}token={token}", 1, 1, deadline, opened)
    finally:
        for sock, _ in opened:
            sock.close()
    for token in tokens:
        answer = get(port, f"/cleanup?token={token}&timeout=2", deadline)
        if json.loads(answer.body())["finally_at"] is None:
            return  # never closed: the others will not be either


def run_pings(job: Job) -> Result:
    """Keep-alive timeliness: hold ``count`` streams pinging every ``ping``
    seconds, then watch them for ``window`` seconds. Lateness is each gap between
    two keep-alives seen in the window, minus the interval: a late or bunched
    ping shows, and so does drift (a sleep after each send)."""
    deadline = time.monotonic() + job["timeout"]
    interval, pid = job["ping"], job["pid"]
    pings, sources = job.get("pings", True), job.get("sources")
    path = f"{job['path']}?ping={interval}"
    opened: list[tuple[socket.socket, Response]] = []
    with held_connections(opened, reset=bool(sources)):
        if sources:  # the idle-streams job also reports memory per connection
            warm_up_idle(job["port"], path, deadline)
        rss_before = server_rss_kib(pid)
        cpu_before, open_start = server_cpu_seconds(pid), time.monotonic()
        try:
            open_by = min(deadline, open_start + job["open_budget"])
            open_idle(job["port"], path, job["count"], job["batch"], open_by, opened, sources)
        except TimeoutError:
            seconds = time.monotonic() - open_start
            busy = (server_cpu_seconds(pid) - cpu_before) / seconds
            return {"overloaded": True, "opened": len(opened), "seconds": seconds,
                    "server_busy": busy}  # fmt: skip
        opening = time.monotonic() - open_start
        rss_after = server_rss_kib(pid)
        # Keep-alives sent while later connections were being opened sat unread
        # in socket buffers: read them now, so none is timed as if just arrived.
        for sock, response in opened:
            drain(sock, response)
        cpu_before, watch_start = server_cpu_seconds(pid), time.monotonic()
        arrivals = watch_keepalives(opened, watch_start + job["window"], deadline)
        busy = (server_cpu_seconds(pid) - cpu_before) / (time.monotonic() - watch_start)
    lateness = sorted(
        later - earlier - interval
        for times in arrivals
        for earlier, later in itertools.pairwise(times)
    )
    held = {"kib_per_conn": (rss_after - rss_before) / len(opened), "opening_s": opening}
    if not pings:
        return {**held, "server_busy": busy, "overloaded": False}
    if not lateness:
        raise ProtocolError(f"no two keep-alives arrived within {job['window']} s")
    return {
        **held,
        "late_100ms": sum(1 for value in lateness if value > 0.1) / len(lateness),
        "pings": sum(len(times) for times in arrivals),
        "lateness_median": lateness[len(lateness) // 2],
        "lateness_p99": lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))],
        "lateness_max": lateness[-1],
        "connections_without_ping": sum(1 for times in arrivals if not times),
        "server_busy": busy,
        "overloaded": False,
    }


def drain(sock: socket.socket, response: Response) -> None:
    """Read whatever is already buffered on a non-blocking socket."""
    while True:
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        if not data:
            raise ProtocolError("a pinging connection was closed by the server")
        response.feed(data)


def count_comments(response: Response) -> int:
    """How many comment lines (keep-alives) the body holds. A keep-alive is one
    comment line, blank-line terminated or not (both are valid WHATWG SSE)."""
    return response.body().replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n:")


def watch_keepalives(
    opened: list[tuple[socket.socket, Response]], until: float, deadline: float
) -> list[list[float]]:
    """Read every connection until ``until``; return, per connection, the
    arrival time of every keep-alive that arrived meanwhile."""
    comments_seen = [count_comments(response) for _, response in opened]
    arrivals: list[list[float]] = [[] for _ in opened]
    with selectors.DefaultSelector() as selector:
        for index, (sock, response) in enumerate(opened):
            selector.register(sock, selectors.EVENT_READ, (index, response))
        while (now := time.monotonic()) < until:
            for key, _ in selector.select(min(until - now, _left(deadline))):
                index, response = key.data
                data = key.fileobj.recv(RECV_SIZE)  # type: ignore[union-attr]
                arrived = time.monotonic()
                if not data:
                    raise ProtocolError("a pinging connection was closed by the server")
                response.feed(data)
                comments = count_comments(response)
                arrivals[index].extend([arrived] * (comments - comments_seen[index]))
                comments_seen[index] = comments
    return arrivals


JOBS: dict[str, Callable[[Job], Result]] = {
    "stream": run_stream,
    "ttfb": run_ttfb,
    "cleanup": run_cleanup,
    "hold": run_hold,
    "pings": run_pings,
    "traced": run_traced,
    "fanout": run_fanout,
}


def raise_nofile_limit() -> None:
    """Raise the soft open-files limit to the hard one (10,000 sockets)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str]) -> int:
    raise_nofile_limit()
    job = json.loads(argv[1])
    try:
        result = JOBS[job["job"]](job)
    except (ProtocolError, TimeoutError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Does batching hold a chunk back? The latency it adds when the producer pauses.

``python -m benchmarks.batch_latency`` starts one uvicorn process (httptools,
uvloop, 127.0.0.1) serving a producer that yields a chunk stamped with
``time.monotonic()`` and then sleeps ``pause`` ms, ``count`` times. A raw-socket
client in this process notes each chunk's arrival (``CLOCK_MONOTONIC`` is
system-wide on Linux) and reports the median and p99 of arrival minus stamp,
interleaved, for four producers:

- async, ``batch=False`` and ``batch=True``: what the driver's batching adds;
- sync (``time.sleep``), through our ``StreamingResponse``, whose worker-thread
  round trips pull several items while ``next()`` is quick, and through
  Starlette's, which makes one round trip per item: what pulling several adds.

The target is nothing above 1 ms in either comparison.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote

import anyio

from streaming import StreamingResponse
from streaming._types import Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent


async def stamped(count: int, pause: float) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"%.9f\n" % time.monotonic()
        await anyio.sleep(pause)


def stamped_sync(count: int, pause: float) -> Iterator[bytes]:
    for _ in range(count):
        yield b"%.9f\n" % time.monotonic()
        time.sleep(pause)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    query = dict(parse_qsl(scope["query_string"].decode()))
    count, pause, variant = int(query["count"]), float(query["pause"]) / 1000, query["variant"]
    if variant == "sync, Starlette":
        from starlette.responses import StreamingResponse as Peer

        await Peer(stamped_sync(count, pause))(scope, receive, send)
        return
    if variant == "sync, ours":
        content: AsyncIterator[bytes] | Iterator[bytes] = stamped_sync(count, pause)
    else:
        content = stamped(count, pause)
    response = StreamingResponse(content, batch=variant == "async, batch=True", commit_deadline=0)
    await response(scope, receive, send)


VARIANTS = ("async, batch=False", "async, batch=True", "sync, Starlette", "sync, ours")


def latencies(port: int, count: int, pause_ms: float, variant: str) -> list[float]:
    """Arrival minus stamp for every chunk, in ms; reads until the terminator."""
    path = f"/?count={count}&pause={pause_ms}&variant={quote(variant)}"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        found: list[float] = []
        buffer = b""
        while not buffer.endswith(b"\r\n0\r\n\r\n"):
            data = conn.recv(65536)
            if not data:
                raise RuntimeError("the server closed the connection early")
            now = time.monotonic()
            buffer += data
            for line in data.split(b"\n"):  # stamps are whole lines inside chunks
                if line.count(b".") == 1 and len(line) > 10 and line[:1].isdigit():
                    found.append((now - float(line)) * 1000)
    if len(found) != count:
        raise RuntimeError(f"read {len(found)} stamps, expected {count}")
    return found


def serve() -> tuple[subprocess.Popen[bytes], int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "benchmarks.batch_latency:app", "--fd",
               str(listener.fileno()), "--loop", "uvloop", "--http", "httptools",
               "--lifespan", "off", "--no-access-log", "--log-level", "warning"]
    child = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()])
    listener.close()
    return child, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args(argv)
    child, port = serve()
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    try:
        for _ in range(args.repetitions):
            for variant in VARIANTS:
                samples[variant] += latencies(port, args.count, args.pause_ms, variant)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(10)
    print(f"{args.repetitions} x {args.count} chunks, producer pausing {args.pause_ms} ms")
    medians, p99s = {}, {}
    for variant, values in samples.items():
        values.sort()
        medians[variant] = statistics.median(values)
        p99s[variant] = values[int(len(values) * 0.99) - 1]
        print(f"{variant:20} median {medians[variant]:.3f} ms  p99 {p99s[variant]:.3f} ms")
    for label, batched, plain in (
        ("added by batching", "async, batch=True", "async, batch=False"),
        ("added by pulling several per thread round trip", "sync, ours", "sync, Starlette"),
    ):
        print(f"{label}: median {medians[batched] - medians[plain]:+.3f} ms, "
              f"p99 {p99s[batched] - p99s[plain]:+.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

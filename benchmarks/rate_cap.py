"""Is the byte-rate cap accurate? Downloads through ``max_bytes_per_second``.

``python -m benchmarks.rate_cap`` starts one uvicorn process (httptools,
uvloop, 127.0.0.1) serving ``StreamLimiter(app, max_bytes_per_second=RATE)``
around a ``StreamingResponse`` of 64 KiB chunks and a ``FileResponse`` of a
temporary file, downloads each ``repetitions`` times with a raw socket, and
prints the measured rate (bytes over the time from sending the request to the
last byte) as a ratio of the cap. The target: every ratio within 5% of 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from streaming import FileResponse, StreamingResponse, StreamLimiter
from streaming._types import Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    size = int(os.environ["RATE_CAP_SIZE"])
    if scope["path"] == "/file":
        await FileResponse(os.environ["RATE_CAP_FILE"])(scope, receive, send)
        return

    async def produce() -> AsyncIterator[bytes]:
        chunk = b"s" * 65536
        for _ in range(size // len(chunk)):
            yield chunk

    await StreamingResponse(produce())(scope, receive, send)


#: The served app (the server process reads its settings from the environment).
app = StreamLimiter(_serve, max_bytes_per_second=float(os.environ.get("RATE_CAP_RATE", "1")))


def download(port: int, path: str) -> tuple[int, float]:
    """Bytes of the body and seconds from the request to its last byte."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        started = time.perf_counter()
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
                     .encode())
        received = bytearray()
        while data := conn.recv(1 << 20):
            received += data
        elapsed = time.perf_counter() - started
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"{path}: {head[:80]!r}")
    if b"chunked" in head.lower():
        body = _unchunk(body)
    return len(body), elapsed


def _unchunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2:]


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "benchmarks.rate_cap:app", "--fd",
               str(listener.fileno()), "--loop", "uvloop", "--http", "httptools",
               "--lifespan", "off", "--no-access-log", "--log-level", "warning"]
    child = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()],
                             env={**os.environ, **env})
    listener.close()
    return child, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2 * 1024 * 1024, help="bytes/s")
    parser.add_argument("--seconds", type=float, default=2.0, help="per download")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    size = int(args.rate * args.seconds) // 65536 * 65536
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.bin"
        data.write_bytes(b"f" * size)
        child, port = serve({"RATE_CAP_SIZE": str(size), "RATE_CAP_FILE": str(data),
                             "RATE_CAP_RATE": str(args.rate)})
        ratios: dict[str, list[float]] = {"/stream": [], "/file": []}
        try:
            download(port, "/stream")  # warm up: imports, first connection
            for _ in range(args.repetitions):
                for path, found in ratios.items():
                    got, elapsed = download(port, path)
                    if got != size:
                        raise RuntimeError(f"{path}: {got} bytes, expected {size}")
                    found.append(got / elapsed / args.rate)
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(10)
    print(f"cap {args.rate:,.0f} B/s, {size:,} B per download, {args.repetitions} each")
    worst = 0.0
    for path, found in ratios.items():
        worst = max(worst, *(abs(r - 1) for r in found))
        print(f"{path:8} measured/cap: median {statistics.median(found):.4f}  "
              f"min {min(found):.4f}  max {max(found):.4f}")
    print(f"worst deviation {worst:.2%} (target: within 5%)")
    return 0 if worst <= 0.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())

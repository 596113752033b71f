"""File downloads: MB/s and server CPU per GiB, ours against the peers.

``python -m benchmarks.files [--big-mib 1024] [--small 1000] [--repeat 3]``
writes a big file (random bytes) and many small 50 KB files to a temporary
directory, then downloads them with curl (the cheapest client: its CPU is not
the server's) from each server, one at a time:

- ``FileResponse`` (ours) and Starlette's on uvicorn (httptools, uvloop): no
  zero-copy extension, so both read chunks in worker threads;
- the same two on anycorn, which offers ``http.response.zerocopysend`` (ours
  uses it for whole files and ranges) and ``pathsend`` (Starlette uses it for
  whole files);
- aiohttp's ``web.FileResponse`` on aiohttp's server: ``sendfile``, the
  practical limit.

Server CPU is ``utime + stime`` of the server process from ``/proc``, before
and after. Targets: ours >= 1.0x Starlette on uvicorn; within 1.2x of aiohttp's
sendfile (MB/s) where zero-copy is offered. ``--rss`` also serves a 4 GiB
sparse file whole and prints the server's peak RSS growth (target: < 10 MiB).
Every loop is bounded; the servers are stopped by their pids.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")

SERVERS = {
    "ours/uvicorn": ["uvicorn", "create_ours"],
    "starlette/uvicorn": ["uvicorn", "create_starlette"],
    "ours/anycorn": ["anycorn", "create_ours"],
    "starlette/anycorn": ["anycorn", "create_starlette"],
    "aiohttp/sendfile": ["aiohttp", ""],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(name: str, root: Path) -> Iterator[tuple[str, int]]:
    server, factory = SERVERS[name]
    port = _free_port()
    spec = f"benchmarks.apps.files_peers:{factory}"
    if server == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "--factory", spec, "--port", str(port),
                   "--log-level", "warning", "--no-access-log", "--http", "httptools",
                   "--loop", "uvloop"]
    elif server == "anycorn":
        # The trio worker: anycorn 0.20.1's asyncio worker cuts zero-copy
        # bodies larger than the socket buffer (tests/test_files_zerocopy.py).
        command = [sys.executable, "-m", "anycorn", spec + "()", "--bind",
                   f"127.0.0.1:{port}", "--worker-class", "trio"]
    else:
        command = [sys.executable, "-m", "benchmarks.apps.files_peers", "--port", str(port),
                   str(root)]
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "STREAMING_FILES_DIR":
                                                     str(root)}, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (anycorn serves from a worker process)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def peak_rss_kib(pid: int) -> dict[int, int]:
    """The peak RSS of each process of the tree."""
    peaks = {}
    for member in _tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[member] = int(line.split()[1])
    return peaks


def fetch(urls: list[str], config: Path) -> None:
    config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
    subprocess.run(["curl", "-sS", "--no-progress-meter", "--fail", "--parallel",
                    "--parallel-max", "4", "-K", str(config)], check=True, timeout=600)


def measure(names: list[str], root: Path, urls: list[str], total_bytes: int, repeat: int,
            ) -> dict[str, tuple[float, float]]:
    """Median MB/s and server CPU seconds per GiB of each server, over
    ``repeat`` rounds that take the servers in turn (all running at once, idle
    but for the one measured), so a noisy neighbour hits them all alike."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    with ExitStack() as stack:
        running = {name: stack.enter_context(serve(name, root)) for name in names}
        for url, _ in running.values():
            fetch([url + u for u in urls[:2]], root.parent / "warm.cfg")
        for _ in range(repeat):
            for name, (url, pid) in running.items():
                cpu, started = cpu_seconds(pid), time.monotonic()
                fetch([url + u for u in urls], root.parent / "run.cfg")
                elapsed = time.monotonic() - started
                rates[name].append(total_bytes / elapsed / 1e6)
                cpus[name].append((cpu_seconds(pid) - cpu) / (total_bytes / 1024**3))
    return {name: (statistics.median(rates[name]), statistics.median(cpus[name]))
            for name in names}


def write_files(root: Path, big_mib: int, small: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(root / "big.bin", "wb") as f:
        for _ in range(big_mib):
            f.write(block)
    for i in range(small):
        (root / f"small{i}.bin").write_bytes(os.urandom(50_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="also serve a 4 GiB sparse file")
    parser.add_argument("--only", nargs="*", default=list(SERVERS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-files-") as scratch:
        root = Path(scratch) / "files"
        root.mkdir()
        write_files(root, args.big_mib, args.small)
        workloads = {
            f"{args.big_mib} MiB file": (["/big.bin"], args.big_mib * 1024 * 1024),
            f"{args.small} x 50 KB": ([f"/small{i}.bin" for i in range(args.small)],
                                      args.small * 50_000),
        }
        print("| server | workload | MB/s | server CPU s per GiB |")
        print("|---|---|---|---|")
        results: dict[tuple[str, str], tuple[float, float]] = {}
        for workload, (urls, size) in workloads.items():
            for name, (rate, cpu) in measure(args.only, root, urls, size, args.repeat).items():
                results[name, workload] = (rate, cpu)
                print(f"| {name} | {workload} | {rate:.0f} | {cpu:.2f} |", flush=True)
        for workload in workloads:
            _ratios(results, workload)
        if args.rss:
            _rss(root)


def _ratios(results: dict[tuple[str, str], tuple[float, float]], workload: str) -> None:
    def ratio(a: str, b: str) -> str:
        if (a, workload) not in results or (b, workload) not in results:
            return "n/a"
        return f"{results[a, workload][0] / results[b, workload][0]:.2f}x"
    print(f"{workload}: ours/starlette on uvicorn {ratio('ours/uvicorn', 'starlette/uvicorn')} "
          f"(target >= 1.0x); ours on anycorn / aiohttp sendfile "
          f"{ratio('ours/anycorn', 'aiohttp/sendfile')} (target >= 0.83x, within 1.2x)")


def _rss(root: Path) -> None:
    sparse = root / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(4 * 1024**3)
    for name in ("ours/uvicorn", "ours/anycorn"):
        with serve(name, root) as (url, pid):
            fetch([url + "/small0.bin"], root.parent / "warm.cfg")
            before = peak_rss_kib(pid)
            fetch([url + "/sparse.bin"], root.parent / "run.cfg")
            after = peak_rss_kib(pid)
            growth = max(after[p] - before.get(p, after[p]) for p in after)
            print(f"{name}: 4 GiB sparse file, server peak RSS grew "
                  f"{growth / 1024:.1f} MiB (target < 10 MiB)")


if __name__ == "__main__":
    main()

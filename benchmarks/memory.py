"""Where the memory of an idle SSE connection goes: ``python -m benchmarks.memory``.

For each implementation (``--only``), a server started with
``PYTHONTRACEMALLOC=12`` holds ``--count`` idle SSE connections (``/idle-sse``,
each having received its first event, after a warm-up); the server's
``/tracemalloc`` harness endpoint answers what was allocated meanwhile, per
connection, by allocating line and by the innermost line of the response
layer's own code that led to it. Printed: the server's ``VmRSS`` per
connection, the traced bytes per connection by package, and the largest
causes. Tracing slows the server; only bytes are measured here, and the
untraced rest of ``VmRSS`` is allocator overhead and C allocations that do
not go through Python's allocator.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.run import BENCH_DIR, Server, run_client, select

#: Package folders an allocating line is attributed to, first match wins.
PACKAGES = (
    ("/streaming/", "streaming (ours)"),
    ("/sse_starlette/", "sse-starlette"),
    ("/fastapi/", "FastAPI"),
    ("/starlette/", "Starlette"),
    ("/litestar/", "Litestar"),
    ("/aiohttp_sse/", "aiohttp-sse"),
    ("/aiohttp/", "aiohttp"),
    ("/anyio/", "anyio"),
    ("/uvicorn/", "uvicorn"),
    ("/asyncio/", "asyncio"),
    ("/benchmarks/", "the benchmark app (producer, harness)"),
)


def package_of(where: str) -> str:
    for folder, name in PACKAGES:
        if folder in where:
            return name
    if where.startswith("<"):
        return "no Python frame (uvloop, httptools)"
    return "other: " + Path(where.split(":")[0]).name


def measure(impl_name: str, count: int, log_dir: Path) -> dict[str, Any]:
    [impl] = select(impl_name)[-1:]
    server = Server(impl, log_dir / f"memory-{impl.name}.log", env={"PYTHONTRACEMALLOC": "12"})
    server.start()
    try:
        return run_client({"job": "traced", "port": server.port, "pid": server.pid,
                           "path": "/idle-sse", "count": count, "batch": 500,
                           "timeout": 120 + count / 50})  # fmt: skip
    finally:
        server.stop()


def render(name: str, result: dict[str, Any], top: int) -> list[str]:
    by_package: dict[str, float] = defaultdict(float)
    for line in result["lines"]:
        by_package[package_of(line["where"])] += line["bytes"]
    traced = sum(by_package.values())
    lines = [f"### {name}: {result['kib_per_conn']:.1f} KiB of VmRSS per connection, "
             f"{traced / 1024:.1f} KiB traced", "", "| where | bytes per connection |",
             "|---|---|"]  # fmt: skip
    for package, size in sorted(by_package.items(), key=lambda kv: -kv[1]):
        if abs(size) >= 16:
            lines.append(f"| {package} | {size:,.0f} |")
    by_caller: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in result["lines"]:
        by_caller[line["caller"]][0] += line["bytes"]
        by_caller[line["caller"]][1] += line["blocks"]
    lines += ["", "| caused by (innermost line of the layer's code) | bytes | blocks |",
              "|---|---|---|"]  # fmt: skip
    for caller, (size, blocks) in sorted(by_caller.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"| `{_short(caller)}` | {size:,.0f} | {blocks:.1f} |")
    return [*lines, ""]


def _short(where: str) -> str:
    for marker in ("site-packages/", "/streaming/", "/benchmarks/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where.rsplit("/lib/", 1)[-1]  # the standard library: python3.11/asyncio/...


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                     description=(__doc__ or "").split("\n")[0])  # fmt: skip
    parser.add_argument("--only", default="raw,streaming")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    log_dir = args.results_dir / "memory-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out: list[str] = [f"## Idle SSE connection memory, {args.count:,} connections, traced", ""]
    for name in args.only.split(","):
        out += render(name, measure(name.strip(), args.count, log_dir), args.top)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost curve: ``python -m benchmarks.curve [--quick | --smoke] [--only NAMES]``.

How the cost grows with the work, for every implementation of
:mod:`benchmarks.run` (same apps, same uvicorn settings, same client):

1. **Concurrency.** Aggregate 16 B chunks/s and server CPU per chunk with 1,
   10, 100, 1,000 and 10,000 concurrent streams on one server process, every
   stream checked byte for byte. Each connection streams ``total / conns``
   chunks (at least ``min_per_conn``), so the per-stream setup weighs in as it
   does for a real server with that many clients. Interleaved: for each
   repetition, for each count, every implementation in turn.
2. **Idle streams.** ``idle_count`` (100,000 in the full run) idle SSE streams
   held in one server process, opened from several 127.0.0.x source addresses
   (one address has about 28,000 ephemeral ports), each having received its
   first event: the server's memory per connection (``VmRSS``), its CPU while
   they idle, and, where the implementation sends keep-alives, how late each
   one is against its interval (p99, against a 100 ms target). One fresh
   server per implementation. Holding N connections needs N file descriptors
   in the server: the run raises ``RLIMIT_NOFILE``, and where the hard limit
   cannot be raised (no ``CAP_SYS_RESOURCE``) it holds as many as the limit
   allows and says so.
3. **Fan-out.** The hub's delivery path: ``hub_subscribers`` subscribers (1,000
   and 10,000) of one topic, ``hub_events`` events published 10 per second:
   deliveries per CPU-second of the server and delivery latency (publish to
   arrival, p50 and p99), for ``streaming.hub`` and for a hand-written loop
   that writes the same pre-encoded bytes to every subscriber (the ceiling;
   ``benchmarks/apps/fanout.py``).

Outputs: JSON, markdown and a PNG chart in ``benchmarks/results/``, and
``benchmarks/curve.md`` / ``curve.png`` unless ``--smoke`` or ``--no-latest``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import curve_report
from benchmarks.run import (
    BENCH_DIR,
    ClientFailed,
    Impl,
    Server,
    ServerFailed,
    _git_commit,
    environment,
    run_client,
    running,
    select,
    stop_on_sigterm,
)
from benchmarks.workload import SMALL_CHUNK_SIZE

#: File descriptors a server needs beyond its connections (listener, pipes, epoll).
FD_MARGIN = 200
#: The keep-alive target: every ping within this of its due time.
LATE_TARGET = 0.1


@dataclass(frozen=True, slots=True)
class CurveSizes:
    reps: int
    conns: tuple[int, ...]
    total_chunks: int
    min_per_conn: int
    idle_count: int
    idle_sources: int
    idle_ping: float
    idle_window: float
    idle_open_budget: float
    hub_subscribers: tuple[int, ...] = (1000, 10_000)
    hub_events: int = 20
    idle_batch: int = 500


MODES = {
    "full": CurveSizes(reps=3, conns=(1, 10, 100, 1000, 10_000), total_chunks=300_000,
                       min_per_conn=50, idle_count=100_000, idle_sources=8, idle_ping=10.0,
                       idle_window=25.0, idle_open_budget=240),
    "quick": CurveSizes(reps=1, conns=(1, 10, 100, 1000, 10_000), total_chunks=60_000,
                        min_per_conn=10, idle_count=10_000, idle_sources=2, idle_ping=5.0,
                        idle_window=11.0, idle_open_budget=60),
    "smoke": CurveSizes(reps=1, conns=(1, 10), total_chunks=200, min_per_conn=5,
                        idle_count=40, idle_sources=2, idle_ping=0.5, idle_window=1.3,
                        idle_open_budget=20, idle_batch=10, hub_subscribers=(20,),
                        hub_events=3),
}  # fmt: skip


@dataclass
class Curve:
    """Everything measured, as it is written to JSON."""

    mode: str
    sizes: CurveSizes
    impls: list[Impl]
    #: implementation -> key -> list of samples
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    status: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    idle_held: int = 0
    idle_note: str = ""
    started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr)

    def add(self, impl: str, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.samples.setdefault(impl, {}).setdefault(key, []).append(value)

    def fail(self, impl: str, what: str, error: str) -> None:
        self.log(f"FAILED {impl} / {what}: {error}")
        self.failures.append({"impl": impl, "step": what, "error": error})


# -- 1. concurrency ---------------------------------------------------------------


def per_conn(sizes: CurveSizes, conns: int) -> int:
    return max(sizes.min_per_conn, sizes.total_chunks // conns)


def concurrent_streams(server: Server, sizes: CurveSizes, conns: int) -> dict[str, float]:
    n = per_conn(sizes, conns)
    job = {"job": "stream", "port": server.port, "pid": server.pid, "conns": conns,
           "path": f"/text?n={n}&size={SMALL_CHUNK_SIZE}",
           "expect": {"kind": "text", "n": n, "size": SMALL_CHUNK_SIZE},
           "timeout": 60 + n * conns / 2000}  # fmt: skip
    result = run_client(job)
    return {f"chunks_{conns}": result["units"] / result["elapsed"],
            f"cpu_{conns}": result["server_cpu"] / result["units"] * 1e6}  # fmt: skip


def run_concurrency(curve: Curve, log_dir: Path) -> None:
    servers: list[Server] = []
    try:
        for impl in curve.impls:
            server = Server(impl, log_dir / f"curve-{impl.name}.log")
            try:
                server.start()
            except ServerFailed as exc:
                curve.fail(impl.name, "start", str(exc))
                continue
            servers.append(server)
        for rep in range(curve.sizes.reps):
            for conns in curve.sizes.conns:
                curve.log(f"repetition {rep + 1}/{curve.sizes.reps}, {conns:,} streams")
                for server in servers:
                    measure_concurrency(curve, server, conns)
    finally:
        for server in servers:
            server.stop()


def measure_concurrency(curve: Curve, server: Server, conns: int) -> None:
    name = server.impl.name
    if server.supports("/text") != "ok":
        curve.status.setdefault(name, {})[f"chunks_{conns}"] = server.supports("/text")
        curve.status[name][f"cpu_{conns}"] = server.supports("/text")
        return
    if curve.status.get(name, {}).get(f"chunks_{conns}") == "FAILED":
        return
    try:
        server.check_alive()
        values = concurrent_streams(server, curve.sizes, conns)
    except (ClientFailed, ServerFailed) as exc:
        curve.fail(name, f"{conns} streams", str(exc))
        curve.status.setdefault(name, {})[f"chunks_{conns}"] = "FAILED"
        return
    curve.add(name, values)
    curve.log(f"  {name:14} {values[f'chunks_{conns}']:>10,.0f} chunks/s "
              f"{values[f'cpu_{conns}']:6.2f} µs CPU/chunk")  # fmt: skip


# -- 2. idle streams ------------------------------------------------------------------


def fd_capacity(wanted: int) -> tuple[int, str]:
    """Raise this process's open-files limit for ``wanted`` connections (servers
    and clients inherit it); return how many can be held, and why not more."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_MARGIN
    if hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return wanted, ""
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = min(wanted, hard - FD_MARGIN)
    if held == wanted:
        return wanted, ""
    return held, (f"{wanted:,} requested, {held:,} held: the open-files hard limit is "
                  f"{hard:,} and raising it needs CAP_SYS_RESOURCE, which this machine "
                  "does not grant")  # fmt: skip


def idle_streams(server: Server, sizes: CurveSizes, count: int) -> dict[str, float]:
    pings = server.supports("/ping-sse") == "ok"
    sources = [f"127.0.0.{2 + i}" for i in range(sizes.idle_sources)]
    job = {"job": "pings", "port": server.port, "pid": server.pid,
           "path": "/ping-sse" if pings else "/idle-sse", "pings": pings,
           "count": count, "batch": sizes.idle_batch, "ping": sizes.idle_ping,
           "window": sizes.idle_window, "open_budget": sizes.idle_open_budget,
           "sources": sources,
           "timeout": 120 + sizes.idle_open_budget + sizes.idle_window}  # fmt: skip
    result = run_client(job)
    if result["overloaded"]:
        raise ClientFailed(f"opened only {result['opened']:,} of {count:,} streams in "
                           f"{result['seconds']:.0f} s")  # fmt: skip
    values = {"idle_kib": result["kib_per_conn"], "idle_cpu": result["server_busy"] * 100,
              "idle_open_s": result["opening_s"]}  # fmt: skip
    if pings:
        values |= {"idle_p99": result["lateness_p99"] * 1e3,
                   "idle_median": result["lateness_median"] * 1e3,
                   "idle_late": result["late_100ms"] * 100}  # fmt: skip
    return values


def run_idle(curve: Curve, log_dir: Path) -> None:
    held, note = fd_capacity(curve.sizes.idle_count)
    curve.idle_held, curve.idle_note = held, note
    if note:
        curve.log(note)
    for impl in curve.impls:
        curve.log(f"{held:,} idle SSE streams: {impl.name}")
        try:
            with running(impl, log_dir) as server:
                if server.supports("/idle-sse") != "ok":
                    curve.status.setdefault(impl.name, {})["idle_kib"] = "n/a"
                    continue
                values = idle_streams(server, curve.sizes, held)
        except (ClientFailed, ServerFailed) as exc:
            curve.fail(impl.name, "idle streams", str(exc))
            continue
        curve.add(impl.name, values)
        curve.log("  " + ", ".join(f"{k}={v:,.3g}" for k, v in values.items()))


# -- 3. fan-out ----------------------------------------------------------------------

FANOUT = (
    Impl("raw-fanout", "benchmarks.apps.fanout:loop_app", "hand-written fan-out loop",
         lifespan=True),
    Impl("streaming-hub", "benchmarks.apps.fanout:hub_app", "streaming.hub, memory backend",
         lifespan=True),
)  # fmt: skip
#: Events per second the fan-out publishes.
HUB_RATE = 10


def fan_out(server: Server, sizes: CurveSizes, count: int) -> dict[str, float]:
    job = {"job": "fanout", "port": server.port, "pid": server.pid, "count": count,
           "n": sizes.hub_events, "interval": 1 / HUB_RATE, "batch": sizes.idle_batch,
           "timeout": 120 + count / 100 + sizes.hub_events / HUB_RATE}  # fmt: skip
    result = run_client(job)
    return {f"hub_rate_{count}": result["deliveries"] / result["server_cpu"],
            f"hub_p50_{count}": result["latency_median"] * 1e3,
            f"hub_p99_{count}": result["latency_p99"] * 1e3}  # fmt: skip


def run_fanout(curve: Curve, log_dir: Path) -> None:
    for impl in FANOUT:
        try:
            with running(impl, log_dir) as server:
                for rep in range(curve.sizes.reps):
                    for count in curve.sizes.hub_subscribers:
                        curve.log(f"fan-out {rep + 1}/{curve.sizes.reps}: {impl.name}, "
                                  f"{count:,} subscribers")  # fmt: skip
                        values = fan_out(server, curve.sizes, count)
                        curve.add(impl.name, values)
                        curve.log("  " + ", ".join(f"{k}={v:,.4g}" for k, v in values.items()))
        except (ClientFailed, ServerFailed) as exc:
            curve.fail(impl.name, "fan-out", str(exc))


# -- the run --------------------------------------------------------------------------


def summarize(curve: Curve) -> dict[str, Any]:
    medians = {
        impl: {key: statistics.median(values) for key, values in by_key.items()}
        for impl, by_key in curve.samples.items()
    }
    return {
        "mode": curve.mode,
        "sizes": asdict(curve.sizes),
        "implementations": [asdict(impl) for impl in curve.impls],
        "fanout": [asdict(impl) for impl in FANOUT],
        "samples": curve.samples,
        "medians": medians,
        "status": curve.status,
        "failures": curve.failures,
        "per_conn": {str(c): per_conn(curve.sizes, c) for c in curve.sizes.conns},
        "idle_held": curve.idle_held,
        "idle_note": curve.idle_note,
        "late_target_ms": LATE_TARGET * 1e3,
        "duration_s": time.monotonic() - curve.started,
        "environment": environment(),
    }


def execute(mode: str, impls: list[Impl], out_dir: Path, write_latest: bool,
            parts: set[str]) -> int:  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = out_dir / f"{stamp}-curve-{mode}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_at_start, commit_at_start = os.getloadavg(), _git_commit()
    curve = Curve(mode, MODES[mode], impls)
    fd_capacity(max(MODES[mode].conns))
    if "concurrency" in parts:
        run_concurrency(curve, log_dir)
    if "idle" in parts:
        run_idle(curve, log_dir)
    if "fanout" in parts:
        run_fanout(curve, log_dir)
    results = summarize(curve)
    results["environment"] |= {"loadavg_at_start": load_at_start,
                               "commit_at_start": commit_at_start}  # fmt: skip
    stem = out_dir / f"{stamp}-curve-{mode}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    targets = [stem] + ([BENCH_DIR / "curve"] if write_latest else [])
    for target in targets:
        chart = curve_report.render_chart(results, target.with_suffix(".png"))
        name = target.with_suffix(".png").name if chart else None
        target.with_suffix(".md").write_text(curve_report.render_markdown(results, name))
    print(curve_report.render_markdown(results, None))
    print(f"results: {stem.with_suffix('.json')}", file=sys.stderr)
    return 1 if curve.failures else 0


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curve",
                                     description=(__doc__ or "").split("\n")[0])  # fmt: skip
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="10,000 idle streams, one repetition")
    speed.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite runs")
    parser.add_argument("--only", help="comma-separated implementations (raw is always included)")
    parser.add_argument("--parts", default="concurrency,idle,fanout",
                        help="which parts to run: concurrency, idle, fanout (default: all)")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--no-latest", action="store_true",
                        help="do not write benchmarks/curve.md and curve.png")  # fmt: skip
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    write_latest = not (args.smoke or args.no_latest)
    return execute(mode, select(args.only), args.results_dir, write_latest, parts)


if __name__ == "__main__":
    sys.exit(main())

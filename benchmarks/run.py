"""The benchmark suite: ``python -m benchmarks.run [--quick | --smoke] [--only NAMES]``.

Every implementation runs under a real uvicorn (httptools, uvloop, one worker,
127.0.0.1) in a server process of its own, started and stopped here by PID.
The load comes from :mod:`benchmarks.client`, a separate process per job. The
throughput and latency scenarios are interleaved (for each repetition, for each
scenario, every implementation in turn: A B C, A B C, ...) so drift on a shared
machine hits them all alike; memory and keep-alive timeliness use a fresh
server per measurement, because a process that once held 10,000 connections
keeps its arenas. Medians are reported with ratios against the hand-written
ASGI loop measured in the same run: absolute numbers drift between machines and
runs, ratios much less.

Outputs: a markdown table on stdout, and JSON, markdown and a PNG chart in
``benchmarks/results/`` (git-ignored); the markdown and chart also go to
``benchmarks/latest.md`` and ``benchmarks/latest.png`` unless ``--smoke`` or
``--no-latest``. The exit status is 1 if any measurement failed its checks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.client import ProtocolError, get
from benchmarks.workload import LARGE_CHUNK_SIZE, SMALL_CHUNK_SIZE

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
BASELINE = "raw"


@dataclass(frozen=True, slots=True)
class Impl:
    name: str
    #: ``module:app`` for uvicorn, or a module run with ``--port`` (``server="module"``)
    target: str
    label: str
    server: str = "uvicorn"
    lifespan: bool = False

    def command(self, port: int) -> list[str]:
        if self.server == "module":  # a server of its own (aiohttp)
            return [sys.executable, "-m", self.target, "--port", str(port)]
        return [
            sys.executable, "-m", "uvicorn", self.target,
            "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--workers", "1",
            "--lifespan", "on" if self.lifespan else "off",
            "--no-access-log", "--log-level", "warning",
            "--backlog", "4096", "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip


IMPLEMENTATIONS = (
    Impl("raw", "benchmarks.apps.raw:app", "hand-written ASGI loop"),
    Impl("streaming", "benchmarks.apps.ours:app", "streaming (ours)"),
    Impl("streaming-batch", "benchmarks.apps.ours:batched_app", "streaming, batch=True"),
    Impl("starlette", "benchmarks.apps.starlette_peer:app", "Starlette StreamingResponse"),
    Impl("sse-starlette", "benchmarks.apps.sse_starlette_peer:app", "sse-starlette"),
    Impl("fastapi", "benchmarks.apps.fastapi_peer:app", "FastAPI path operations"),
    Impl("litestar", "benchmarks.apps.litestar_peer:app", "Litestar Stream / ServerSentEvent"),
    Impl("aiohttp", "benchmarks.apps.aiohttp_peer", "aiohttp StreamResponse / aiohttp-sse",
         server="module"),
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each measurement does; one instance per mode."""

    reps: int
    small_n: int  # 16-byte chunks on one connection
    small8_n: int  # 16-byte chunks per connection, eight connections
    sync_n: int  # 16-byte chunks from a sync generator
    large_n: int  # 64 KiB chunks
    sse_n: int
    ndjson_n: int
    ttfb_samples: int
    cleanup_samples: int
    hold_counts: tuple[int, ...]
    hold_reps: int
    ping_count: int
    ping_interval: float
    ping_window: float
    ping_open_budget: float
    batch: int = 500
    warmup_n: int = 2000
    #: How long to wait for an idle producer's cleanup before reporting "never".
    cleanup_wait: float = 5.0


MODES = {
    "full": Sizes(
        reps=5,
        small_n=300_000,
        small8_n=60_000,
        sync_n=60_000,
        large_n=20_000,
        sse_n=100_000,
        ndjson_n=100_000,
        ttfb_samples=200,
        cleanup_samples=40,
        hold_counts=(2000, 10_000),
        hold_reps=3,
        ping_count=10_000,
        ping_interval=5.0,
        ping_window=20.5,
        ping_open_budget=90,
    ),
    "quick": Sizes(
        reps=3,
        small_n=60_000,
        small8_n=10_000,
        sync_n=20_000,
        large_n=4000,
        sse_n=20_000,
        ndjson_n=20_000,
        ttfb_samples=40,
        cleanup_samples=10,
        hold_counts=(2000, 10_000),
        hold_reps=1,
        ping_count=10_000,
        ping_interval=5.0,
        ping_window=10.5,
        ping_open_budget=40,
    ),
    "smoke": Sizes(
        reps=1,
        small_n=200,
        small8_n=50,
        sync_n=200,
        large_n=4,
        sse_n=200,
        ndjson_n=200,
        ttfb_samples=3,
        cleanup_samples=2,
        hold_counts=(10,),
        hold_reps=1,
        ping_count=10,
        ping_interval=0.5,
        ping_window=1.3,
        ping_open_budget=20,
        batch=10,
        warmup_n=20,
        cleanup_wait=1.0,
    ),
}


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    #: False where a ratio means nothing (a lateness can be zero or negative).
    has_ratio: bool = True


def figures(sizes: Sizes) -> list[Figure]:
    held = [
        Figure(f"memory_{n}", f"idle SSE connection memory, {n:,} open", "KiB/conn", False)
        for n in sizes.hold_counts
    ]
    pinging = f"{sizes.ping_count:,} streams pinging every {sizes.ping_interval:g} s"
    return [
        Figure("small_1", "16 B text chunks/s, 1 connection", "chunks/s", True),
        Figure("small_8", "16 B text chunks/s, 8 connections", "chunks/s", True),
        Figure("sync_1", "16 B text chunks/s from a sync generator", "chunks/s", True),
        Figure("large", "64 KiB chunks", "MB/s", True),
        Figure("sse", "SSE events/s", "events/s", True),
        Figure("ndjson", "NDJSON lines/s", "lines/s", True),
        Figure("cpu", "server CPU per million 16 B chunks", "CPU s", False),
        Figure("cpu_sync", "server CPU per million 16 B chunks, sync generator", "CPU s",
               False),
        Figure("cpu_large", "server CPU per GB in 64 KiB chunks", "CPU s", False),
        Figure("cpu_sse", "server CPU per million SSE events", "CPU s", False),
        Figure("cpu_ndjson", "server CPU per million NDJSON lines", "CPU s", False),
        Figure("ttfb", "time to first byte", "ms", False),
        Figure("cleanup", "disconnect to cleanup, idle text stream", "ms", False),
        Figure("cleanup_sse", "disconnect to cleanup, idle SSE stream", "ms", False),
        *held,
        Figure("ping_median", f"keep-alive lateness, median, {pinging}", "ms", False, False),
        Figure("ping_p99", f"keep-alive lateness, p99, {pinging}", "ms", False, False),
        Figure("ping_cpu", f"server CPU, {pinging}", "% of a core", False),
    ]


# -- server processes -------------------------------------------------------------


class ServerFailed(Exception):
    """Raised by the suite when a server process does not start or dies."""


class Server:
    """One uvicorn process serving one implementation, stopped by its PID."""

    def __init__(self, impl: Impl, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.impl = impl
        self.log_path = log_path
        self.env = env
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.meta: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        self.port = free_port()
        command = self.impl.command(self.port)
        with open(self.log_path, "ab") as log:
            env = {**os.environ, **self.env} if self.env else None
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env=env)  # fmt: skip
        try:
            self.meta = self._wait_until_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, deadline: float) -> dict[str, Any]:
        """Poll ``/meta`` (connect, then GET) until it answers or the deadline passes."""
        while True:
            self.check_alive()
            try:
                answer = get(self.port, "/meta", min(deadline, time.monotonic() + 5))
            except OSError:
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise ServerFailed(f"{self.impl.name} did not start: {tail}") from None
                time.sleep(0.05)
                continue
            except ProtocolError as exc:
                raise ServerFailed(f"{self.impl.name}: /meta failed: {exc}") from None
            if answer.status != 200:
                raise ServerFailed(f"{self.impl.name}: /meta answered {answer.status}")
            return dict(json.loads(answer.body()))

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServerFailed(
                f"{self.impl.name} exited with {self.proc.returncode}: {self.log_tail()}"
            )

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def supports(self, path: str) -> str:
        """``"ok"``, or why this implementation has no ``path``."""
        return str(self.meta.get("paths", {}).get(path, "n/a"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(impl: Impl, log_dir: Path) -> Iterator[Server]:
    server = Server(impl, log_dir / f"server-{impl.name}.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- client jobs -------------------------------------------------------------------


class ClientFailed(Exception):
    """Raised by the suite when a client job reports an error (a check failed)."""


class NoFigure(Exception):
    """Raised by a step when what the implementation did leaves no number to
    report (its idle producer was never closed; it could not hold the streams):
    a finding about the implementation, reported in the table, not a failure."""


def run_client(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a client process of its own and return its JSON result."""
    command = [sys.executable, "-m", "benchmarks.client", json.dumps(job)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=job["timeout"] + 20
        )
    except subprocess.TimeoutExpired:
        raise ClientFailed(f"client job {job['job']} {job.get('path')} hung") from None
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-2000:]}
    if done.returncode != 0 or "error" in result:
        raise ClientFailed(result.get("error") or done.stderr.strip()[-2000:])
    return dict(result)


# -- scenarios ----------------------------------------------------------------------

Samples = dict[str, float]
Scenario = Callable[[Server, Sizes], Samples]


def _stream(server: Server, path: str, conns: int, expect: dict[str, Any]) -> dict[str, Any]:
    timeout = 30 + expect["n"] * conns / 2000  # a generous floor of 2,000 units/s
    job = {"job": "stream", "port": server.port, "pid": server.pid, "path": path,
           "conns": conns, "expect": expect, "timeout": timeout}  # fmt: skip
    result = run_client(job)
    busy = result["client_cpu"] / result["elapsed"]
    if busy > 0.9:
        print(f"  warning: the client was {busy:.0%} busy: {server.impl.name} {path}",
              file=sys.stderr)  # fmt: skip
    return result


def small_1(server: Server, sizes: Sizes) -> Samples:
    n = sizes.small_n
    r = _stream(server, f"/text?n={n}&size={SMALL_CHUNK_SIZE}", 1,
                {"kind": "text", "n": n, "size": SMALL_CHUNK_SIZE})  # fmt: skip
    return {"small_1": r["units"] / r["elapsed"], "cpu": r["server_cpu"] / r["units"] * 1e6}


def small_8(server: Server, sizes: Sizes) -> Samples:
    n = sizes.small8_n
    r = _stream(server, f"/text?n={n}&size={SMALL_CHUNK_SIZE}", 8,
                {"kind": "text", "n": n, "size": SMALL_CHUNK_SIZE})  # fmt: skip
    return {"small_8": r["units"] / r["elapsed"]}


def small_sync(server: Server, sizes: Sizes) -> Samples:
    n = sizes.sync_n
    r = _stream(server, f"/text-sync?n={n}&size={SMALL_CHUNK_SIZE}", 1,
                {"kind": "text", "n": n, "size": SMALL_CHUNK_SIZE})  # fmt: skip
    return {"sync_1": r["units"] / r["elapsed"], "cpu_sync": r["server_cpu"] / r["units"] * 1e6}


def large(server: Server, sizes: Sizes) -> Samples:
    n = sizes.large_n
    r = _stream(server, f"/text?n={n}&size={LARGE_CHUNK_SIZE}", 1,
                {"kind": "text", "n": n, "size": LARGE_CHUNK_SIZE})  # fmt: skip
    return {
        "large": r["bytes"] / r["elapsed"] / 1e6,
        "cpu_large": r["server_cpu"] / r["bytes"] * 1e9,
    }


def sse(server: Server, sizes: Sizes) -> Samples:
    n = sizes.sse_n
    expect = {"kind": "sse", "n": n, "data": server.meta["sse_data_on_wire"]}
    r = _stream(server, f"/sse?n={n}", 1, expect)
    return {"sse": r["units"] / r["elapsed"], "cpu_sse": r["server_cpu"] / r["units"] * 1e6}


def ndjson(server: Server, sizes: Sizes) -> Samples:
    n = sizes.ndjson_n
    r = _stream(server, f"/ndjson?n={n}", 1, {"kind": "ndjson", "n": n})
    return {"ndjson": r["units"] / r["elapsed"], "cpu_ndjson": r["server_cpu"] / r["units"] * 1e6}


def ttfb(server: Server, sizes: Sizes) -> Samples:
    job = {"job": "ttfb", "port": server.port, "path": f"/text?n=1&size={SMALL_CHUNK_SIZE}",
           "samples": sizes.ttfb_samples, "timeout": 60,
           "expect": {"kind": "text", "n": 1, "size": SMALL_CHUNK_SIZE}}  # fmt: skip
    return {"ttfb": statistics.median(run_client(job)["samples"]) * 1e3}


def _cleanup(server: Server, sizes: Sizes, path: str, key: str) -> Samples:
    wait = sizes.cleanup_wait
    job = {"job": "cleanup", "port": server.port, "path": path, "wait": wait,
           "samples": sizes.cleanup_samples, "timeout": 30 + sizes.cleanup_samples}  # fmt: skip
    result = run_client(job)
    if result["never"]:
        raise NoFigure(f"never: the producer was not closed {wait:g} s after the disconnect")
    return {key: statistics.median(result["samples"]) * 1e3}


def cleanup(server: Server, sizes: Sizes) -> Samples:
    return _cleanup(server, sizes, "/idle", "cleanup")


def cleanup_sse(server: Server, sizes: Sizes) -> Samples:
    return _cleanup(server, sizes, "/idle-sse", "cleanup_sse")


def hold(server: Server, sizes: Sizes) -> Samples:
    job = {"job": "hold", "port": server.port, "pid": server.pid, "path": "/idle-sse",
           "counts": list(sizes.hold_counts), "batch": sizes.batch,
           "timeout": 60 + max(sizes.hold_counts) / 100}  # fmt: skip
    per_conn = run_client(job)["kib_per_conn"]
    return {f"memory_{count}": float(kib) for count, kib in per_conn.items()}


def pings(server: Server, sizes: Sizes) -> Samples:
    job = {"job": "pings", "port": server.port, "pid": server.pid, "path": "/ping-sse",
           "count": sizes.ping_count, "batch": sizes.batch, "ping": sizes.ping_interval,
           "window": sizes.ping_window, "open_budget": sizes.ping_open_budget,
           "timeout": 60 + sizes.ping_open_budget + sizes.ping_window}  # fmt: skip
    result = run_client(job)
    if result["overloaded"]:
        raise NoFigure(
            f"overloaded: opened {result['opened']:,} of {sizes.ping_count:,} streams in "
            f"{result['seconds']:.0f} s, server CPU {result['server_busy']:.0%} busy"
        )
    if result["connections_without_ping"]:
        print(f"  warning: {result['connections_without_ping']} connections got no "
              f"keep-alive from {server.impl.name}", file=sys.stderr)  # fmt: skip
    print(f"  {server.impl.name}: {result['pings']} keep-alives, server CPU "
          f"{result['server_busy']:.0%} busy while watched", file=sys.stderr)  # fmt: skip
    return {"ping_median": result["lateness_median"] * 1e3,
            "ping_p99": result["lateness_p99"] * 1e3,
            "ping_cpu": result["server_busy"] * 100}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    path: str  # the scenario path an implementation must serve
    measure: Scenario
    keys: tuple[str, ...]


INTERLEAVED = (
    Step("16 B chunks, 1 connection", "/text", small_1, ("small_1", "cpu")),
    Step("16 B chunks, 8 connections", "/text", small_8, ("small_8",)),
    Step("16 B chunks, sync generator", "/text-sync", small_sync, ("sync_1", "cpu_sync")),
    Step("64 KiB chunks", "/text", large, ("large", "cpu_large")),
    Step("SSE events", "/sse", sse, ("sse", "cpu_sse")),
    Step("NDJSON lines", "/ndjson", ndjson, ("ndjson", "cpu_ndjson")),
    Step("time to first byte", "/text", ttfb, ("ttfb",)),
    Step("cleanup, idle text", "/idle", cleanup, ("cleanup",)),
    Step("cleanup, idle SSE", "/idle-sse", cleanup_sse, ("cleanup_sse",)),
)


def fresh_steps(sizes: Sizes) -> tuple[Step, ...]:
    held = tuple(f"memory_{n}" for n in sizes.hold_counts)
    return (
        Step("idle SSE memory", "/idle-sse", hold, held),
        Step("keep-alive timeliness", "/ping-sse", pings, ("ping_median", "ping_p99", "ping_cpu")),
    )


# -- the run ------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured, as it is written to JSON."""

    mode: str
    sizes: Sizes
    impls: list[Impl]
    #: implementation -> figure -> repetition -> value
    samples: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    status: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    rep: int = 0
    started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr)

    def add(self, impl: str, values: Samples) -> None:
        for key, value in values.items():
            self.samples.setdefault(impl, {}).setdefault(key, {})[self.rep] = value

    def mark(self, impl: str, keys: tuple[str, ...], status: str) -> None:
        for key in keys:
            self.status.setdefault(impl, {}).setdefault(key, status)

    def fail(self, impl: str, step: Step, error: str) -> None:
        self.log(f"FAILED {impl} / {step.name}: {error}")
        self.failures.append({"impl": impl, "step": step.name, "error": error})
        for key in step.keys:
            self.status.setdefault(impl, {})[key] = "FAILED"


def measure(run: Run, server: Server, step: Step) -> None:
    name = server.impl.name
    support = server.supports(step.path)
    if support != "ok":
        run.mark(name, step.keys, support)
        return
    if run.status.get(name, {}).get(step.keys[0]) == "FAILED":
        return  # failed once already: do not retry every repetition
    try:
        server.check_alive()
        values = step.measure(server, run.sizes)
    except (ClientFailed, ServerFailed) as exc:
        run.fail(name, step, str(exc))
        return
    except NoFigure as exc:
        run.mark(name, step.keys, str(exc))
        run.log(f"  {name:14} {step.name:28} {exc}")
        return
    run.add(name, values)
    shown = ", ".join(f"{k}={v:,.3g}" for k, v in values.items())
    run.log(f"  {name:14} {step.name:28} {shown}")


def warm_up(run: Run, servers: list[Server]) -> None:
    """One small request per scenario per server: imports, caches, first-call costs."""
    sizes = run.sizes
    small = replace(sizes, small_n=sizes.warmup_n, small8_n=sizes.warmup_n // 8 or 1,
                    sync_n=sizes.warmup_n // 8 or 1,
                    large_n=4, sse_n=sizes.warmup_n, ndjson_n=sizes.warmup_n,
                    ttfb_samples=2, cleanup_samples=1)  # fmt: skip
    scratch = Run("warm-up", small, [])
    for server in servers:
        for step in INTERLEAVED:
            measure_quietly(scratch, server, step)
    for failure in scratch.failures:
        run.log(f"  (warm-up failure, will be retried: {failure})")


def measure_quietly(run: Run, server: Server, step: Step) -> None:
    if server.supports(step.path) != "ok":
        return
    try:
        run.add(server.impl.name, step.measure(server, run.sizes))
    except NoFigure:
        pass
    except (ClientFailed, ServerFailed) as exc:
        run.failures.append({"impl": server.impl.name, "step": step.name, "error": str(exc)})


def run_interleaved(run: Run, log_dir: Path) -> dict[str, dict[str, Any]]:
    servers: list[Server] = []
    metas: dict[str, dict[str, Any]] = {}
    try:
        for impl in run.impls:
            server = Server(impl, log_dir / f"server-{impl.name}.log")
            try:
                server.start()
            except ServerFailed as exc:
                run.log(f"UNAVAILABLE {impl.name}: {exc}")
                metas[impl.name] = {"error": str(exc)}
                for step in (*INTERLEAVED, *fresh_steps(run.sizes)):
                    run.mark(impl.name, step.keys, f"unavailable: server did not start ({exc})")
                continue
            servers.append(server)
            metas[impl.name] = server.meta
        run.log("warming up")
        warm_up(run, servers)
        for rep in range(run.sizes.reps):
            run.rep = rep
            run.log(f"repetition {rep + 1}/{run.sizes.reps}")
            for step in INTERLEAVED:
                for server in servers:
                    measure(run, server, step)
    finally:
        for server in servers:
            server.stop()
    return metas


def run_fresh(run: Run, log_dir: Path, metas: dict[str, dict[str, Any]]) -> None:
    """Memory and keep-alive steps, each on a server started for it alone."""
    for step in fresh_steps(run.sizes):
        impls = []
        for impl in run.impls:
            support = metas.get(impl.name, {}).get("paths", {}).get(step.path, "n/a")
            if support == "ok":
                impls.append(impl)
            elif "error" not in metas.get(impl.name, {}):
                run.mark(impl.name, step.keys, support)
        reps = run.sizes.hold_reps if step.measure is hold else 1
        for rep in range(reps):
            run.rep = rep
            run.log(f"{step.name}, repetition {rep + 1}/{reps}")
            for impl in impls:
                try:
                    with running(impl, log_dir) as server:
                        measure(run, server, step)
                except ServerFailed as exc:
                    run.fail(impl.name, step, str(exc))


def execute(mode: str, impls: list[Impl], out_dir: Path, write_latest: bool) -> int:
    sizes = MODES[mode]
    raise_nofile_limit()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = out_dir / f"{stamp}-{mode}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_at_start, commit_at_start = os.getloadavg(), _git_commit()
    run = Run(mode, sizes, impls)
    metas = run_interleaved(run, log_dir)
    run_fresh(run, log_dir, metas)
    results = summarize(run, metas, time.monotonic() - run.started)
    results["environment"]["loadavg_at_start"] = load_at_start
    results["environment"]["commit_at_start"] = commit_at_start
    latest = BENCH_DIR / "latest" if write_latest else None
    write_outputs(results, out_dir / f"{stamp}-{mode}", latest)
    return 1 if run.failures else 0


def summarize(run: Run, metas: dict[str, dict[str, Any]], duration: float) -> dict[str, Any]:
    """Medians per implementation and figure, and ratios against the baseline.

    The ratio is the median of the per-repetition ratios, each against the
    baseline's sample of the same repetition (measured moments apart), which
    cancels slow drift on a shared machine better than a ratio of medians.
    """
    table = []
    base_samples = run.samples.get(BASELINE, {})
    for fig in figures(run.sizes):
        row: dict[str, Any] = {**asdict(fig), "values": {}}
        base = base_samples.get(fig.key, {})
        for impl in run.impls:
            samples = run.samples.get(impl.name, {}).get(fig.key, {})
            status = run.status.get(impl.name, {}).get(fig.key)
            if status == "FAILED" or not samples:
                row["values"][impl.name] = {"status": status or "not measured"}
                continue
            ratios = [v / base[r] for r, v in sorted(samples.items()) if base.get(r)]
            row["values"][impl.name] = {
                "median": statistics.median(samples.values()),
                "samples": [samples[r] for r in sorted(samples)],
                "ratio": statistics.median(ratios) if fig.has_ratio and ratios else None,
                "ratios": ratios if fig.has_ratio else [],
            }
        table.append(row)
    return {
        "mode": run.mode,
        "sizes": asdict(run.sizes),
        "duration_s": duration,
        "baseline": BASELINE,
        "implementations": [
            {**asdict(impl), "meta": metas.get(impl.name, {})} for impl in run.impls
        ],
        "figures": table,
        "failures": run.failures,
        "environment": environment(),
    }


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("asgi-streaming", "uvicorn", "uvloop", "httptools", "starlette", "sse-starlette",
                 "fastapi", "litestar", "aiohttp", "aiohttp-sse", "anyio"):  # fmt: skip
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "versions": versions,
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def write_outputs(results: dict[str, Any], stem: Path, latest: Path | None) -> None:
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    chart = report.render_chart(results, stem.with_suffix(".png"))
    markdown = report.render_markdown(results, stem.with_suffix(".png").name if chart else None)
    stem.with_suffix(".md").write_text(markdown)
    if latest is not None:
        if chart:
            report.render_chart(results, latest.with_suffix(".png"))
        name = latest.with_suffix(".png").name if chart else None
        latest.with_suffix(".md").write_text(report.render_markdown(results, name))
    print(markdown)
    print(f"results: {stem.with_suffix('.json')}", file=sys.stderr)


def raise_nofile_limit() -> None:
    """Raise the soft open-files limit to the hard one; the servers and clients
    this process starts inherit it (10,000 held connections need 10,000 fds)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=summary)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="smaller sizes, under three minutes")
    speed.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite runs")
    parser.add_argument("--only", help="comma-separated implementations (raw is always included): "
                        + ", ".join(i.name for i in IMPLEMENTATIONS))  # fmt: skip
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--no-latest", action="store_true",
                        help="do not write benchmarks/latest.md and latest.png")  # fmt: skip
    return parser.parse_args(argv)


def select(only: str | None) -> list[Impl]:
    if not only:
        return list(IMPLEMENTATIONS)
    names = {name.strip() for name in only.split(",") if name.strip()} | {BASELINE}
    unknown = names - {impl.name for impl in IMPLEMENTATIONS}
    if unknown:
        raise SystemExit(f"unknown implementations: {', '.join(sorted(unknown))}")
    return [impl for impl in IMPLEMENTATIONS if impl.name in names]


def stop_on_sigterm(signum: int, frame: object) -> None:
    # Unwind like Ctrl-C, so the ``finally`` blocks stop every server by its PID.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    write_latest = not (args.smoke or args.no_latest)
    return execute(mode, select(args.only), args.results_dir, write_latest)


if __name__ == "__main__":
    sys.exit(main())

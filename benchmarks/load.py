"""The reliability suite: load, faults and a soak against real servers.

Run ``python -m benchmarks.load`` (the full run: 2,000 streams, a 10-minute
soak) or ``--ci`` (small, with a 60 s soak: what the test suite runs). Each
layer (``benchmarks/load_app.py``: ours, Starlette's ``StreamingResponse``,
sse-starlette) is served by its own server process started here on
127.0.0.1 and stopped by its PID; the client is this process (asyncio,
raw sockets). Figures are printed, saved as JSON under ``benchmarks/results/``
and written to ``benchmarks/load.md`` (with the soak's RSS plot,
``benchmarks/load.png``, when matplotlib is installed).

Scenarios, each bounded in count and in time:

- **rounds**: ``--streams`` concurrent streams, an even mix of the four kinds
  (async text, sync text, SSE, NDJSON); 30% of the clients leave abruptly after
  the first piece, half with a FIN (``close()``), half with a RST
  (``SO_LINGER`` 0). After each round: producers still live (must be back to
  0), threads (back to where they were), RSS (round-over-round growth).
- **saturated threads**: ``--saturated`` clients of a sync producer whose
  ``next()`` holds a worker thread for 2 s (more clients than anyio's 40
  threads), half leaving after the first piece: are the leavers' producers
  closed (live back to 0, how long it took) and did any ``finally`` run on
  the event loop thread?
- **stalled reader**: clients that stop reading an endless 64 KiB-chunk
  stream: ours are cut by ``send_timeout``; when, and RSS before and after.
- **sigterm**: ``--sigterm-streams`` open event streams, then SIGTERM to the
  server's own process, on every server of the matrix for ours (uvicorn
  httptools and h11, hypercorn asyncio and trio in their default mode,
  Granian, Daphne) and on uvicorn for the peers: how many got a final event,
  how many ended cleanly, how long it took.
- **soak**: ``--soak`` seconds of churn (streams opened, read, left in every
  way) with the server's RSS sampled every second.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import SERVERS, ServerProcess, server_process

ROOT = Path(__file__).resolve().parent.parent
APP = "benchmarks.load_app:app"
LAYERS = ("streaming", "starlette", "sse-starlette")
KINDS = ("/async", "/sync", "/sse", "/ndjson")
TERMINATOR = b"\r\n0\r\n\r\n"


@dataclass
class Settings:
    streams: int = 2000
    rounds: int = 3
    leave: float = 0.3
    items: int = 10
    every: float = 0.1
    stalled: int = 20
    saturated: int = 400
    send_timeout: float = 2.0
    sigterm_streams: int = 200
    sigterm_grace: int = 8
    soak: float = 600.0
    soak_clients: int = 100
    soak_peers: bool = False
    servers: tuple[str, ...] = SERVERS
    layers: tuple[str, ...] = LAYERS


CI = Settings(streams=200, rounds=3, stalled=5, saturated=60, send_timeout=1.0,
              sigterm_streams=50, sigterm_grace=3, soak=60.0, soak_clients=40,
              servers=("uvicorn-httptools",), layers=("streaming", "starlette"))


# -- a tiny HTTP/1.1 client ----------------------------------------------------

@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    head: bytes = b""
    body: bytes = b""

    async def request(self, path: str) -> None:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = await self.reader.readuntil(b"\r\n\r\n")
        self.head = data
        if not data.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"status: {data[:40]!r}")

    async def read_some(self) -> bytes:
        data = await self.reader.read(65536)
        if not data:
            raise EOFError
        self.body += data
        return data

    async def read_to_end(self) -> str:
        """"complete" (the terminating chunk came) or "cut" (EOF before it)."""
        while not self.body.endswith(TERMINATOR) and self.body != b"0\r\n\r\n":
            try:
                await self.read_some()
            except (EOFError, ConnectionError):
                return "cut"
        return "complete"

    def leave(self, how: str) -> None:
        if how == "rst":
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()


async def connect(port: int, path: str) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    connection = Connection(reader, writer)
    await connection.request(path)
    return connection


async def one_stream(port: int, path: str, fate: str) -> str:
    """Open ``path``; read it to the end ("stay") or leave after the first
    piece ("fin", "rst"). Returns what happened."""
    try:
        connection = await connect(port, path)
        if fate == "stay":
            end = await connection.read_to_end()
            connection.leave("fin")
            return end
        await connection.read_some()
        connection.leave(fate)
        return fate
    except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
        return f"error: {type(exc).__name__}"


def get_json(port: int, path: str, timeout: float = 10) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return dict(json.loads(body))


def wait_for_idle(port: int, timeout: float) -> tuple[dict[str, Any], float]:
    """Poll ``/stats`` until no producer is live (or ``timeout``); the stats
    and how long it took."""
    started = time.monotonic()
    stats: dict[str, Any] = {"live": None}
    while True:
        try:
            stats = get_json(port, "/stats")
        except OSError as exc:  # a server too busy to answer is not idle either
            stats = {**stats, "unresponsive": repr(exc)}
        waited = time.monotonic() - started
        if stats["live"] == 0 or waited > timeout:
            return stats, waited
        time.sleep(0.1)


def settle_threads(port: int, target: int) -> dict[str, Any]:
    """The server's threads once its worker-thread pool has shrunk back.
    anyio ends a worker idle for 10 s only when new work arrives, so: wait
    10.5 s, run one sync stream (one worker, which then stays), and count
    (for at most 3 s, as the ended workers exit)."""
    time.sleep(10.5)
    asyncio.run(one_stream(port, "/sync?n=1&every=0", "stay"))
    started = time.monotonic()
    while True:
        threads = get_json(port, "/stats")["threads"]
        if threads <= target + 1 or time.monotonic() - started > 3:
            return {"threads": threads, "target": target + 1}
        time.sleep(0.1)


def port_of(running: ServerProcess) -> int:
    return int(running.url.rsplit(":", 1)[1])


# -- scenarios -------------------------------------------------------------------

def rounds(running: ServerProcess, settings: Settings, seed: int) -> dict[str, Any]:
    port = port_of(running)
    rng = random.Random(seed)
    before = get_json(port, "/stats")
    results: list[dict[str, Any]] = []
    for number in range(1, settings.rounds + 1):
        plan = []
        for index in range(settings.streams):
            kind = KINDS[index % len(KINDS)]
            roll = rng.random()
            fate = "stay" if roll >= settings.leave else ("fin" if roll < settings.leave / 2
                                                           else "rst")
            plan.append((f"{kind}?n={settings.items}&every={settings.every}", fate))
        started = time.monotonic()
        outcomes = asyncio.run(_run_all(port, plan, timeout=60))
        duration = time.monotonic() - started
        stats, waited = wait_for_idle(port, 30)
        counts = Counter(outcome.split(":")[0] for outcome in outcomes)
        results.append({"round": number, "seconds": round(duration, 2),
                        "outcomes": dict(Counter(outcomes)), "errors": counts["error"],
                        "cut": counts["cut"], "live_after": stats["live"],
                        "waited_for_idle": round(waited, 2), "threads": stats["threads"],
                        "rss_kib": stats["rss_kib"], "fds": stats["fds"]})
        print(f"  round {number}: {dict(Counter(outcomes))} in {duration:.1f} s; "
              f"live after {stats['live']}, threads {stats['threads']}, "
              f"RSS {stats['rss_kib'] / 1024:.1f} MiB", flush=True)
    growth = [(later["rss_kib"] - earlier["rss_kib"]) / earlier["rss_kib"] * 100
              for earlier, later in itertools.pairwise(results)]
    return {"threads_before": before["threads"], "rss_before_kib": before["rss_kib"],
            "rounds": results, "rss_growth_pct": [round(g, 2) for g in growth]}


async def _run_all(port: int, plan: list[tuple[str, str]], timeout: float) -> list[str]:
    async def bounded(path: str, fate: str) -> str:
        try:
            return await asyncio.wait_for(one_stream(port, path, fate), timeout)
        except asyncio.TimeoutError:
            return "error: timeout"

    return list(await asyncio.gather(*(bounded(path, fate) for path, fate in plan)))


def saturated_threads(running: ServerProcess, settings: Settings) -> dict[str, Any]:
    port = port_of(running)
    before = get_json(port, "/stats")
    plan = [("/sync?n=2&every=2", "fin" if index % 2 else "stay")
            for index in range(settings.saturated)]
    started = time.monotonic()
    outcomes = asyncio.run(_run_all(port, plan, timeout=120))
    duration = time.monotonic() - started
    stats, waited = wait_for_idle(port, 60)
    result = {"streams": settings.saturated, "outcomes": dict(Counter(outcomes)),
              "seconds": round(duration, 1), "live_after": stats["live"],
              "waited_for_idle": round(waited, 2), "threads": stats["threads"],
              "finally_on_loop": stats["finally_on_loop"] - before["finally_on_loop"]}
    print(f"  saturated threads: {result}", flush=True)
    return result


def stalled_readers(running: ServerProcess, settings: Settings) -> dict[str, Any]:
    port = port_of(running)
    before = get_json(port, "/stats")

    async def stall() -> dict[str, Any]:
        connections = [await connect(port, "/firehose") for _ in range(settings.stalled)]
        for connection in connections:
            await connection.read_some()
        started = time.monotonic()
        peak = get_json(port, "/stats")
        deadline = started + settings.send_timeout * 3 + 5
        live = peak["live"]
        while live and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            live = get_json(port, "/stats")["live"]
        cut_after = time.monotonic() - started
        for connection in connections:
            connection.leave("rst")
        return {"live_at_start": peak["live"], "live_at_end": live,
                "cut_after_s": round(cut_after, 2) if not live else None,
                "rss_peak_kib": peak["rss_kib"]}

    result = asyncio.run(stall())
    after, _ = wait_for_idle(port, 10)
    result.update(streams=settings.stalled, rss_before_kib=before["rss_kib"],
                  live_after_leaving=after["live"],
                  rss_after_kib=after["rss_kib"], send_timeout=settings.send_timeout)
    print(f"  stalled readers: {result}", flush=True)
    return result


def sigterm(server: str, layer: str, settings: Settings) -> dict[str, Any]:
    grace = settings.sigterm_grace
    env = {"LOAD_LAYER": layer}
    with server_process(server, APP, grace=grace, env=env, backlog=4096) as running:
        port = port_of(running)

        async def hold_then_terminate() -> dict[str, Any]:
            connections = await asyncio.gather(*(connect(port, "/ticks")
                                                 for _ in range(settings.sigterm_streams)))
            for connection in connections:
                await connection.read_some()
            sent = time.monotonic()
            running.child.send_signal(signal.SIGTERM)

            async def end_of(connection: Connection) -> tuple[str, float]:
                try:
                    end = await asyncio.wait_for(connection.read_to_end(), grace + 5)
                except asyncio.TimeoutError:
                    end = "still open"
                return end, time.monotonic() - sent

            ends = await asyncio.gather(*(end_of(connection) for connection in connections))
            finals = sum(b"event: shutdown" in connection.body for connection in connections)
            for connection in connections:
                connection.leave("fin")
            return {"streams": len(connections), "final_event": finals,
                    "ends": dict(Counter(end for end, _ in ends)),
                    "last_end_ms": round(max(at for _, at in ends) * 1000)}

        result = asyncio.run(hold_then_terminate())
        exit_started = time.monotonic()
        try:
            running.child.wait(grace + 5)
            result["exit_code"] = running.child.returncode
        except subprocess.TimeoutExpired:
            result["exit_code"] = None
        result["exit_after_last_end_ms"] = round((time.monotonic() - exit_started) * 1000)
    result.update(server=server, layer=layer)
    print(f"  SIGTERM {server} ({layer}): {result}", flush=True)
    return result


def soak(running: ServerProcess, settings: Settings, seed: int) -> dict[str, Any]:
    port = port_of(running)
    rng = random.Random(seed)
    samples: list[tuple[float, int, int]] = []
    counts: Counter[str] = Counter()

    async def client(deadline: float) -> None:
        while time.monotonic() < deadline:
            kind = rng.choice(KINDS)
            fate = rng.choice(["stay"] * 7 + ["fin"] * 3 + ["rst"] * 3)
            path = f"{kind}?n={rng.randint(2, 8)}&every=0.05"
            try:
                counts[await asyncio.wait_for(one_stream(port, path, fate), 30)] += 1
            except asyncio.TimeoutError:
                counts["error: timeout"] += 1

    async def sampler(started: float, deadline: float) -> None:
        while time.monotonic() < deadline:
            stats = await asyncio.to_thread(get_json, port, "/stats")
            samples.append((round(time.monotonic() - started, 1), stats["rss_kib"],
                            stats["live"]))
            await asyncio.sleep(1)

    async def run() -> None:
        started = time.monotonic()
        deadline = started + settings.soak
        await asyncio.gather(sampler(started, deadline),
                             *(client(deadline) for _ in range(settings.soak_clients)))

    asyncio.run(run())
    stats, _ = wait_for_idle(port, 30)
    half = samples[len(samples) // 2:] or samples
    result = {"seconds": settings.soak, "clients": settings.soak_clients,
              "streams": sum(counts.values()), "outcomes": dict(counts),
              "errors": sum(n for what, n in counts.items() if what.startswith("error")),
              "live_after": stats["live"], "threads_after": stats["threads"],
              "rss_first_kib": samples[0][1] if samples else None,
              "rss_last_kib": stats["rss_kib"],
              "rss_second_half_growth_pct": round((half[-1][1] - half[0][1]) / half[0][1] * 100, 2)
              if half else None,
              "samples": samples}
    print(f"  soak: {result['streams']} streams in {settings.soak:.0f} s, "
          f"{result['errors']} errors, live after {stats['live']}, RSS "
          f"{(result['rss_first_kib'] or 0) / 1024:.1f} -> {stats['rss_kib'] / 1024:.1f} MiB",
          flush=True)
    return result


# -- the run -----------------------------------------------------------------------

def late_yield_warnings(log: Path) -> int:
    """How many "yielded after the client disconnected" warnings the server
    printed so far (every one of them, in these producers, is a false alarm:
    none yields in its finally)."""
    return log.read_text(errors="replace").count("yielded after the client") if log.exists() else 0


def run(settings: Settings, seed: int, settings_log_dir: Path) -> dict[str, Any]:
    raise_nofile_limit()
    results: dict[str, Any] = {"settings": settings.__dict__ | {"servers": list(settings.servers),
                                                                "layers": list(settings.layers)},
                               "layers": {}, "sigterm": []}
    for layer in settings.layers:
        print(f"{layer}:", flush=True)
        env = {"LOAD_LAYER": layer, "LOAD_SEND_TIMEOUT": str(settings.send_timeout)}
        log = settings_log_dir / f"{layer}.log"
        with server_process("uvicorn-httptools", APP, env=env, backlog=4096,
                            log=log) as running:
            layer_results = {"rounds": rounds(running, settings, seed)}
            layer_results["rounds"]["late_yield_warnings"] = late_yield_warnings(log)
            layer_results["saturated"] = saturated_threads(running, settings)
            layer_results["stalled"] = stalled_readers(running, settings)
            if layer == "streaming" or settings.soak_peers:
                warned = late_yield_warnings(log)
                layer_results["soak"] = soak(running, settings, seed)
                layer_results["soak"]["late_yield_warnings"] = late_yield_warnings(log) - warned
            target = layer_results["rounds"]["threads_before"]
            layer_results["threads_settled"] = settle_threads(port_of(running), target)
            print(f"  threads, once idle: {layer_results['threads_settled']}", flush=True)
        results["layers"][layer] = layer_results
    for server in settings.servers:
        results["sigterm"].append(sigterm(server, "streaming", settings))
    for layer in settings.layers:
        if layer != "streaming":
            results["sigterm"].append(sigterm("uvicorn-httptools", layer, settings))
    return results


def raise_nofile_limit() -> None:
    """Soft open-files limit up to the hard one; the servers started here
    inherit it (2,000 streams are 2,000 fds on each side)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the report --------------------------------------------------------------------

def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "# Reliability suite: latest run",
        "",
        f"`python -m benchmarks.load {results['argv']}` on {results['when']} "
        f"(commit {results['commit']}); uvicorn httptools unless the row says otherwise.",
        "",
        f"## Rounds: {settings['streams']} concurrent streams x {settings['rounds']}, "
        f"{settings['leave']:.0%} leaving (half FIN, half RST)",
        "",
        "| layer | round | outcomes | errors | producers live after (waited) | threads | "
        "RSS MiB | RSS growth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for layer, found in results["layers"].items():
        data = found["rounds"]
        growth = [""] + [f"{g:+.2f}%" for g in data["rss_growth_pct"]]
        for row, grow in zip(data["rounds"], growth, strict=False):
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()))
            lines.append(f"| {layer} | {row['round']} | {outcomes} | {row['errors']} | "
                         f"{row['live_after']} ({row['waited_for_idle']} s) | "
                         f"{row['threads']} (before: "
                         f"{data['threads_before']}) | {row['rss_kib'] / 1024:.1f} | {grow} |")
    lines += ["", "Threads once the pool has shrunk back (anyio ends workers idle for 10 s "
              "when new work comes; one worker then stays): " + ", ".join(
                  f"{layer} {found['threads_settled']['threads']} (the loop and one worker: "
                  f"{found['threads_settled']['target']})"
                  for layer, found in results["layers"].items()) + "."]
    lines += ["", "False \"yielded after the client disconnected\" warnings over the rounds "
              "(no producer here yields in its finally): " + ", ".join(
                  f"{layer} {found['rounds']['late_yield_warnings']}"
                  for layer, found in results["layers"].items()) + ".",
              "", f"## Every worker thread busy: {settings['saturated']} clients of a sync "
              "producer holding a thread 2 s per item, half leaving", "",
              "| layer | outcomes | producers live after | time until none live | "
              "finally run on the event loop |", "|---|---|---|---|---|"]
    for layer, found in results["layers"].items():
        t = found["saturated"]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(t["outcomes"].items()))
        lines.append(f"| {layer} | {outcomes} | {t['live_after']} | {t['waited_for_idle']} s "
                     f"(after {t['seconds']} s of streaming) | {t['finally_on_loop']} |")
    lines += ["", "## A reader that stops reading (64 KiB chunks, endless)", "",
              "| layer | streams | send timeout | cut after | producers live at the end | "
              "live once the readers reset | RSS before / peak / after MiB |",
              "|---|---|---|---|---|---|---|"]
    for layer, found in results["layers"].items():
        s = found["stalled"]
        cut = f"{s['cut_after_s']} s" if s["cut_after_s"] is not None else "never"
        timeout = f"{s['send_timeout']} s" if layer == "streaming" else "none"
        lines.append(f"| {layer} | {s['streams']} | {timeout} | {cut} | {s['live_at_end']} | "
                     f"{s['live_after_leaving']} | {s['rss_before_kib'] / 1024:.1f} / "
                     f"{s['rss_peak_kib'] / 1024:.1f} / {s['rss_after_kib'] / 1024:.1f} |")
    lines += ["", "## SIGTERM to the server's process with open event streams", "",
              "| server | layer | streams | got the final event | how they ended | "
              "last end after SIGTERM | exit code |", "|---|---|---|---|---|---|---|"]
    for row in results["sigterm"]:
        ends = ", ".join(f"{k} {v}" for k, v in sorted(row["ends"].items()))
        lines.append(f"| {row['server']} | {row['layer']} | {row['streams']} | "
                     f"{row['final_event']} | {ends} | {row['last_end_ms']} ms | "
                     f"{row['exit_code']} |")
    lines += ["", "## Soak", "", "| layer | seconds | clients | streams | errors | "
              "producers live after | RSS first / last MiB | growth over the second half |",
              "|---|---|---|---|---|---|---|---|"]
    for layer, found in results["layers"].items():
        if "soak" in found:
            k = found["soak"]
            lines.append(f"| {layer} | {k['seconds']:.0f} | {k['clients']} | {k['streams']} | "
                         f"{k['errors']} | {k['live_after']} | "
                         f"{(k['rss_first_kib'] or 0) / 1024:.1f} / {k['rss_last_kib'] / 1024:.1f}"
                         f" | {k['rss_second_half_growth_pct']}% |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 4))
    for layer, found in results["layers"].items():
        if "soak" in found and found["soak"]["samples"]:
            at, rss, _ = zip(*found["soak"]["samples"], strict=True)
            axes.plot(at, [kib / 1024 for kib in rss], label=layer)
    axes.set_xlabel("seconds")
    axes.set_ylabel("server RSS (MiB)")
    axes.set_ylim(bottom=0)  # flat is flat against zero, not against a zoomed axis
    axes.set_title("Soak: server RSS under churn")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--ci", action="store_true",
                        help="the small run of the test suite (60 s soak, uvicorn only)")
    parser.add_argument("--streams", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--soak", type=float, help="soak duration in seconds")
    parser.add_argument("--soak-peers", action="store_true", help="soak the peers too")
    parser.add_argument("--sigterm-streams", type=int)
    parser.add_argument("--servers", help="comma-separated, from: " + ", ".join(SERVERS))
    parser.add_argument("--layers", help="comma-separated, from: " + ", ".join(LAYERS))
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-latest", action="store_true",
                        help="do not overwrite benchmarks/load.md and load.png")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="write load.md and load.png again from a saved run, and stop")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    settings = CI if args.ci else Settings()
    changes: dict[str, Any] = {}
    for name in ("streams", "rounds", "soak", "sigterm_streams"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.soak_peers:
        changes["soak_peers"] = True
    if args.servers:
        changes["servers"] = tuple(args.servers.split(","))
    if args.layers:
        changes["layers"] = tuple(args.layers.split(","))
    return Settings(**(settings.__dict__ | changes))


def render(saved: Path) -> int:
    results = json.loads(saved.read_text())
    (ROOT / "benchmarks" / "load.md").write_text(markdown(results))
    plot(results, ROOT / "benchmarks" / "load.png")
    print(f"rendered {saved} to benchmarks/load.md and load.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    settings = settings_from(args)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"load-{time.strftime('%Y%m%d-%H%M%S')}"
    log_dir = stem.with_suffix(".logs")
    log_dir.mkdir()
    results = run(settings, args.seed, log_dir)
    results.update(argv=" ".join(sys.argv[1:] if argv is None else argv),
                   when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   commit=git_commit(), seconds=round(time.monotonic() - started, 1))
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    report = markdown(results)
    stem.with_suffix(".md").write_text(report)
    plotted = plot(results, stem.with_suffix(".png"))
    if not args.no_latest:
        (ROOT / "benchmarks" / "load.md").write_text(report)
        if plotted:
            plot(results, ROOT / "benchmarks" / "load.png")
    print(report)
    print(f"saved {stem}.json ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

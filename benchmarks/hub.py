"""Fan-out: publish -> arrival latency and server CPU per delivery.

    python -m benchmarks.hub                      # 1,000 and 10,000 subscribers
    python -m benchmarks.hub --subscribers 1000 --seconds 5 --repeat 1
    python -m benchmarks.hub --redis              # + 4 workers on one Redis

One process, real sockets: uvicorn (uvloop, httptools) serves one setup of
``benchmarks.hub_apps`` at a time, publishing 10 events/s to N subscribers
held open by this process (a raw asyncio protocol per connection, so the
client costs little). Measured over a window after every subscriber has its
first event: server CPU seconds (``/proc``) per delivered event, and publish
-> arrival latency from the time stamp inside each event (sampled on up to
300 connections). Setups, in one run, alternating: the hand-written loop (the
ceiling), ours (``Hub`` + ``EventSourceResponse``; and with
``Hub(inline_sends=True)``, which sends from the publisher's task), and
broadcaster + sse-starlette. ``--redis``: 4 uvicorn workers on one redis-server, the
publisher in this process, 4,000 subscribers, latency only.

Absolute figures drift on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUPS = ("loop", "ours", "ours-inline", "peer")
SAMPLED = 300
#: Seconds between the last subscriber starting and the measured window.
WARMUP = float(os.environ.get("HUB_BENCH_WARMUP", "1.0"))
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Connection(asyncio.Protocol):
    sampled: bool
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)
    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"GET /events HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        count = data.count(b"data: ")
        if count:
            self.events += count
            self.first.set()
            if self.sampled:
                self._stamp(data, arrived)
        elif b": hi" in data or b"id: " in data:
            self.first.set()

    def itself(self) -> Connection:
        """The protocol factory ``create_connection`` wants, for this one."""
        return self

    def _stamp(self, data: bytes, arrived: float) -> None:
        start = 0
        while (index := data.find(b'{"t":', start)) >= 0:
            end = data.find(b"}", index)
            self.latencies.append(arrived - json.loads(data[index:end + 1])["t"])
            start = end


def server_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def connect_all(port: int, count: int) -> list[Connection]:
    """Connect in batches, each started (first bytes in) before the next: a
    burst past the server's accept queue would leave connections waiting for
    SYN-ACK retransmits, seconds apart."""
    loop = asyncio.get_running_loop()
    sampled = set(random.sample(range(count), min(SAMPLED, count)))
    connections: list[Connection] = []
    for start in range(0, count, 250):
        batch = [Connection(i in sampled) for i in range(start, min(count, start + 250))]
        await asyncio.gather(*(loop.create_connection(c.itself, "127.0.0.1", port)
                               for c in batch))
        try:
            await asyncio.wait_for(asyncio.gather(*(c.first.wait() for c in batch)), 60)
        except asyncio.TimeoutError:  # wait_for's, not yet TimeoutError on Python 3.10
            started = sum(c.first.is_set() for c in connections + batch)
            raise TimeoutError(f"{started} of {count} subscribers started") from None
        connections += batch
    return connections


@dataclass
class Result:
    setup: str
    subscribers: int
    deliveries: int
    cpu: float
    latencies: list[float]

    @property
    def cpu_per_delivery_us(self) -> float:
        return self.cpu / max(1, self.deliveries) * 1e6

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_server(setup: str, workers: int, redis_url: str | None
                 ) -> tuple[subprocess.Popen[bytes], int]:
    """uvicorn on a socket bound here (the port is known before it starts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    env = {**os.environ, "HUB_BENCH_APP": setup, "PYTHONPATH": str(ROOT)}
    if redis_url:
        env["HUB_BENCH_REDIS"] = redis_url
    command = [sys.executable, "-m", "uvicorn", "benchmarks.hub_apps:app", "--fd",
               str(listener.fileno()), "--log-level", "warning", "--loop", "uvloop",
               "--http", "httptools", "--backlog", "4096", "--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()], env=env)
    listener.close()
    return server, port


async def measure(setup: str, subscribers: int, seconds: float, workers: int = 1,
                  redis_url: str | None = None) -> Result:
    server, port = start_server(setup, workers, redis_url)
    publisher = None
    try:
        if redis_url:
            publisher = asyncio.create_task(publish_to_redis(redis_url))
        connections = await connect_all(port, subscribers)
        await asyncio.sleep(WARMUP)
        pids = [server.pid, *children_of(server.pid)]
        cpu0, events0 = server_cpu(pids), sum(c.events for c in connections)
        for c in connections:
            c.latencies.clear()
        await asyncio.sleep(seconds)
        cpu1, events1 = server_cpu(pids), sum(c.events for c in connections)
        latencies = [x for c in connections for x in c.latencies]
        for c in connections:
            if c.transport is not None:
                c.transport.close()
        return Result(setup, subscribers, events1 - events0, cpu1 - cpu0, latencies)
    finally:
        if publisher is not None:
            publisher.cancel()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


async def publish_to_redis(url: str) -> None:
    import anyio

    from benchmarks.hub_apps import TOPIC, payload
    from streaming.hub import Hub, RedisBackend

    async with Hub(RedisBackend(url), history=100) as hub:
        n = 0
        while True:
            await anyio.sleep(0.1)
            await hub.publish(TOPIC, payload(n))
            n += 1


def report(results: list[Result]) -> str:
    lines = ["| subscribers | setup | p50 ms | p99 ms | CPU µs / delivery | vs loop | "
             "deliveries / CPU-s vs peer |", "|---|---|---|---|---|---|---|"]
    for subscribers in sorted({r.subscribers for r in results}):
        group = [r for r in results if r.subscribers == subscribers]

        def median(setup: str, attribute: str, group: list[Result] = group) -> float:
            values = [getattr(r, attribute) for r in group if r.setup == setup]
            return statistics.median(values) if values else float("nan")

        loop_cpu = median("loop", "cpu_per_delivery_us")
        peer_cpu = median("peer", "cpu_per_delivery_us")
        for setup in SETUPS:
            runs = [r for r in group if r.setup == setup]
            if not runs:
                continue
            cpu = median(setup, "cpu_per_delivery_us")
            p50 = statistics.median(r.percentile(0.50) for r in runs)
            p99 = statistics.median(r.percentile(0.99) for r in runs)
            lines.append(f"| {subscribers:,} | {setup} | {p50:.1f} | {p99:.1f} | {cpu:.1f} | "
                         f"{_ratio(cpu, loop_cpu):.2f}x | {_ratio(peer_cpu, cpu):.1f}x |")
    return "\n".join(lines)


def _ratio(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is 0 (too short a run to see any CPU time)."""
    return a / b if b else float("nan")


async def main(arguments: argparse.Namespace) -> None:
    results: list[Result] = []
    for subscribers in arguments.subscribers:
        for _ in range(arguments.repeat):
            for setup in arguments.setups:
                result = await measure(setup, subscribers, arguments.seconds)
                print(f"{setup:5} {subscribers:6} subscribers: "
                      f"{result.cpu_per_delivery_us:6.1f} µs CPU/delivery, "
                      f"p99 {result.percentile(0.99):7.1f} ms, "
                      f"{result.deliveries} deliveries", flush=True)
                results.append(result)
    print(report(results))
    if arguments.redis:
        sys.path.insert(0, str(ROOT))
        from tests.redis_server import RedisServer

        with RedisServer() as server:
            result = await measure("ours-redis", arguments.redis_subscribers, arguments.seconds,
                                   workers=4, redis_url=server.url)
        print(f"\n4 workers on one Redis, {arguments.redis_subscribers:,} subscribers: "
              f"p50 {result.percentile(0.5):.1f} ms, p99 {result.percentile(0.99):.1f} ms, "
              f"{result.deliveries} deliveries, {result.cpu_per_delivery_us:.1f} µs "
              "CPU/delivery (all workers)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--redis-subscribers", type=int, default=4000)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    arguments = parser.parse_args()
    import uvloop

    uvloop.run(main(arguments))

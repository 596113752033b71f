"""In process: what one short response costs, setup to the last byte.

    python -m benchmarks.setup_cost [--responses 2000 --repeat 5]

Calls each implementation's one-chunk ``/text`` handler (16 B; the same
handlers ``benchmarks.run`` serves) directly, with a ``receive`` that, like
uvicorn's, waits until the response is complete and then reports a
disconnect, and a ``send`` that notes when the first body byte and the last
message were handed to it. No server, no socket: what is left is the
response's own setup and teardown (the part of time to first byte, and of a
back-to-back request's wait, that is ours). Medians of every response,
implementations interleaved; absolute figures move with the machine: read
the ratios. The README's Performance section quotes a run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from benchmarks.apps import ours, raw, starlette_peer
from benchmarks.apps.common import Params

Handler = Callable[[Params, dict[str, Any], Any, Any], Awaitable[None]]
HANDLERS: dict[str, Handler] = {"loop": raw.text, "ours": ours.text,
                                "starlette": starlette_peer.text}
SCOPE = {"type": "http", "method": "GET", "path": "/text", "headers": [],
         "http_version": "1.1", "query_string": b"n=1&size=16"}


class Connection:
    """One response's server side: request, then a disconnect once it is complete."""

    def __init__(self) -> None:
        self.complete = anyio.Event()
        self.asked = False
        self.first_byte = 0.0

    async def receive(self) -> dict[str, Any]:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if not self.first_byte and message.get("body"):
            self.first_byte = time.perf_counter()
        if not message.get("more_body"):
            self.complete.set()


async def one(handler: Handler) -> tuple[float, float]:
    """Seconds to the first body byte and to the return of the handler."""
    connection = Connection()
    started = time.perf_counter()
    await handler(Params(n=1, size=16), SCOPE, connection.receive, connection.send)
    return connection.first_byte - started, time.perf_counter() - started


async def measure(responses: int, repeat: int) -> dict[str, tuple[float, float]]:
    samples: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in HANDLERS}
    for _ in range(repeat):
        for name, handler in HANDLERS.items():
            for _ in range(responses // 10):  # warm up
                await one(handler)
            for _ in range(responses):
                first, whole = await one(handler)
                samples[name][0].append(first)
                samples[name][1].append(whole)
    return {name: (statistics.median(first) * 1e6, statistics.median(whole) * 1e6)
            for name, (first, whole) in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    import uvloop

    figures = uvloop.run(measure(arguments.responses, arguments.repeat))
    loop_first, loop_whole = figures["loop"]
    print("| implementation | to the first byte, µs | to the end, µs | vs the loop |")
    print("|---|---|---|---|")
    for name, (first, whole) in figures.items():
        print(f"| {name} | {first:.1f} | {whole:.1f} | "
              f"{first / loop_first:.2f}x / {whole / loop_whole:.2f}x |")


if __name__ == "__main__":
    main()

"""The tutorial's httpx client: read a streamed response chunk by chunk.

``python -m examples.client http://127.0.0.1:8000/simple`` prints each piece of
text as it arrives, with its arrival time, so you can see that the lines come
0.5 s apart rather than all at the end. ``read_stream()`` is the same code as a
function (tests call it). Runs on asyncio or trio (``--backend trio``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import httpx


@dataclass(frozen=True, slots=True)
class Arrival:
    """One piece of decoded text and when it arrived, in seconds since the
    request was sent."""

    seconds: float
    text: str


def print_arrival(arrival: Arrival) -> None:
    print(f"{arrival.seconds * 1000:9.1f} ms  {arrival.text!r}", flush=True)


async def read_stream(url: str, *, on_text: Callable[[Arrival], None] = print_arrival,
                      read_timeout: float = 30.0) -> list[Arrival]:
    """GET ``url`` and return its body as text pieces, in arrival order.

    ``aiter_text()`` yields text as the network delivers it (one piece per
    chunk here, but a slow reader may get several chunks at once) and decodes
    incrementally, so a multi-byte character split across chunks stays whole.
    ``read_timeout`` bounds the wait for each piece, not the whole stream.
    Raises ``httpx.HTTPStatusError`` for an error status (a 422, say).
    """
    timeout = httpx.Timeout(10.0, read=read_timeout)
    arrivals: list[Arrival] = []
    async with httpx.AsyncClient(timeout=timeout) as client:
        started = anyio.current_time()
        async with client.stream("GET", url) as response:
            if response.is_error:
                await response.aread()
                response.raise_for_status()
            async for text in response.aiter_text():
                arrival = Arrival(anyio.current_time() - started, text)
                arrivals.append(arrival)
                on_text(arrival)
    return arrivals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.client", description=__doc__)
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000/simple")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(argv)
    try:
        anyio.run(read_stream, args.url, backend=args.backend)
    except httpx.HTTPStatusError as error:
        print(f"{error.response.status_code}: {error.response.text}", file=sys.stderr)
        return 1
    except httpx.TransportError as error:
        print(f"request failed: {error!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

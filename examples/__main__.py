"""``python -m examples``: serve the demo and print its endpoints, as the
tutorial's ``__main__`` block does (on 127.0.0.1 by default, not 0.0.0.0: a demo
should not listen on every interface unless asked)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from examples.app import build_demo_app
from examples.scenario1 import EXTRA_ENDPOINTS, LAYERS, TUTORIAL_ENDPOINTS
from streaming import Drain

#: The help text: plain words for a terminal (the docstring above is reST).
DESCRIPTION = ("Serve the demo (every example) with uvicorn and print its endpoints and "
               "curl commands. It listens on 127.0.0.1 unless --host says otherwise: a demo "
               "should not listen on every interface unless asked.")


def banner(base_url: str) -> str:
    """The endpoint list and curl commands for a server at ``base_url``."""
    rule = "=" * 60
    lines = [rule, "scenario 1: basic streaming responses", rule, "",
             "Endpoints (tutorial paths, answered by streaming.StreamingResponse):"]
    lines += [f"  GET  {base_url}{path:<30} {what}"
              for path, what in TUTORIAL_ENDPOINTS + EXTRA_ENDPOINTS]
    lines += ["", "The same producers on each layer: "
              + ", ".join(f"{base_url}/{layer}/..." for layer in LAYERS),
              f"Browser page (fetch + ReadableStream): {base_url}/page/stream",
              f"Server-Sent Events (ours, Starlette, sse-starlette): {base_url}/sse/ours/progress",
              f"EventSource page (ticker that resumes): {base_url}/page/events",
              f"LLM chat (local OpenAI-compatible model, no key): {base_url}/chat",
              "", "Try with curl (-N turns off curl's output buffering):",
              f"  curl -N {base_url}/simple",
              f"  curl -N {base_url}/json/5",
              f"  curl -N {base_url}/starlette/simple",
              f"  curl -N {base_url}/sse/ours/progress",
              f"  curl -i {base_url}/parameterized/-1      # 422",
              "See the chunked framing on the wire:",
              f"  python -m streaming wire {base_url}/simple",
              "Read a stream with httpx:",
              f"  python -m examples.client {base_url}/simple",
              "", "Press Ctrl+C to stop.", rule]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for every one)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every built-in delay (0.1 = ten times faster)")
    args = parser.parse_args(argv)
    print(banner(f"http://{args.host}:{args.port}"), flush=True)
    # The drain ends open event streams with a "shutdown" event on Ctrl+C or
    # SIGTERM; uvicorn's graceful timeout must outlast the drain's grace.
    app = build_demo_app(scale=args.scale, drain=Drain(grace=3.0))
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()

"""The ``python -m streaming`` command: tools for studying streams.

``trace MODULE:APP PATH`` runs an ASGI app in-process and prints its message
timeline; ``wire URL`` shows a live server's chunked framing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import anyio

from streaming._types import ASGIApp
from streaming.testing import StreamingClient
from streaming.tracing import format_timeline
from streaming.tracing.wire import watch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_trace(commands)
    _add_wire(commands)
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except BrokenPipeError:
        # The reader of our output left (``| head``): not an error. Point stdout
        # at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


def _add_trace(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trace = commands.add_parser("trace", help="print the ASGI message timeline of one request")
    trace.add_argument("app", help="the ASGI app as MODULE:ATTRIBUTE, e.g. examples.scenario1:app")
    trace.add_argument("path", help="request path with query, e.g. /json/3")
    trace.add_argument("-X", "--method", default="GET")
    trace.add_argument("-H", "--header", action="append", default=[], metavar="NAME: VALUE")
    trace.add_argument("-d", "--data", default="", help="request body")
    trace.add_argument("--disconnect-after", type=int, metavar="N",
                       help="leave after N body chunks, as a client that goes away")
    trace.add_argument("--spec-version", choices=["2.3", "2.4"], default="2.3")
    trace.add_argument("--preview", type=int, default=40, help="body preview length")
    trace.add_argument("--timeout", type=float, default=60.0, help="give up after this long")
    trace.set_defaults(run=_run_trace)


def _run_trace(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    headers = dict(_split_header(h) for h in args.header)

    async def trace() -> int:
        client = StreamingClient(app, spec_version=args.spec_version, raise_app_exceptions=False)
        with anyio.fail_after(args.timeout):
            async with client.stream(args.method, args.path, headers=headers,
                                     body=args.data.encode(),
                                     disconnect_after=args.disconnect_after) as response:
                await response.read()
        print(format_timeline(response.messages, args.preview))
        if response.app_exception is not None:
            print(f"app raised {response.app_exception!r}", file=sys.stderr)
            return 1
        return 0

    return anyio.run(trace)


def _add_wire(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wire = commands.add_parser(
        "wire", help="show the chunked framing of a live server's response",
        description="Send one GET over HTTP/1.1 and print each chunk as it arrives: "
                    "arrival time in ms, the size line as sent (hex), the byte count and "
                    "a preview; then the terminating 0 chunk, or a cut stream. Exit "
                    "status 0 when the body ended properly, 1 when it was cut, 2 when "
                    "no response could be read.")
    wire.add_argument("url", help="an http:// URL, e.g. http://127.0.0.1:8000/simple")
    wire.add_argument("-H", "--header", action="append", default=[], metavar="NAME: VALUE")
    wire.add_argument("--preview", type=int, default=40, help="body preview length")
    wire.add_argument("--timeout", type=float, default=60.0, help="give up after this long")
    wire.set_defaults(run=_run_wire)


def _run_wire(args: argparse.Namespace) -> int:
    headers = [_split_header(h) for h in args.header]
    try:
        result = anyio.run(lambda: watch(args.url, give_up_after=args.timeout,
                                         preview=args.preview, headers=headers))
    except BrokenPipeError:
        raise  # handled in main()
    except (OSError, ValueError) as error:
        print(f"wire: {error}", file=sys.stderr)
        return 2
    return 0 if result.complete else 1


def load_app(spec: str) -> ASGIApp:
    """Import ``module:attribute`` (dotted attributes allowed) and return it."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"expected MODULE:APP, got {spec!r}")
    target: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise SystemExit(f"{spec} is not callable")
    return target


def _split_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise SystemExit(f"a header must look like 'Name: value', got {text!r}")
    return name.strip(), value.strip()

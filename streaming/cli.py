"""The ``python -m streaming`` command: tools for studying streams.

``trace MODULE:APP PATH`` runs an ASGI app in-process and prints its message
timeline; ``wire URL`` shows a live server's chunked framing.

Exit status: 0 when the response ended properly, 1 when the app failed, the
body was cut or the time ran out (what was seen is still printed), 2 for a
usage error or a response that could not be read, always as one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import anyio

from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.exceptions import StreamingError
from streaming.responses.headers import encode_header
from streaming.testing import StreamingClient
from streaming.tracing import format_timeline
from streaming.tracing.terminal import terminal_safe
from streaming.tracing.wire import watch


class UsageError(Exception):
    """A command line that cannot run: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the help is one -h away.
        self.exit(2, f"{self.prog}: error: {terminal_safe(message)} (see -h)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m streaming", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    except UsageError as error:
        _say(f"{args.command}: {error}")
        return 2
    return result


def _say(text: str) -> None:
    """One line on stderr, whatever the text holds."""
    print(terminal_safe(" ".join(text.split("\n"))), file=sys.stderr)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, not {text!r}")
    return value


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def _add_trace(commands: argparse._SubParsersAction[_Parser]) -> None:
    trace = commands.add_parser("trace", help="print the ASGI message timeline of one request")
    trace.add_argument("app", help="the ASGI app as MODULE:ATTRIBUTE, e.g. examples.scenario1:app")
    trace.add_argument("path", help="request path with query, e.g. /json/3")
    trace.add_argument("-X", "--method", default="GET")
    trace.add_argument("-H", "--header", action="append", default=[], metavar="NAME: VALUE")
    trace.add_argument("-d", "--data", default="", help="request body")
    trace.add_argument("--disconnect-after", type=_count, metavar="N",
                       help="leave after N body chunks, as a client that goes away")
    trace.add_argument("--spec-version", choices=["2.3", "2.4"], default="2.3")
    trace.add_argument("--preview", type=_count, default=40, help="body preview length")
    trace.add_argument("--timeout", type=_seconds, default=60.0,
                       help="give up after this long and print the timeline so far")
    trace.set_defaults(run=_run_trace)


def _run_trace(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    headers = dict(_split_header(h) for h in args.header)
    # argv arrives decoded with surrogateescape: fsencode gives back the bytes typed.
    body = os.fsencode(args.data)
    return anyio.run(_trace, _awaited(app, args.app), args, headers, body)


async def _trace(app: ASGIApp, args: argparse.Namespace, headers: dict[str, str],
                 body: bytes) -> int:
    client = StreamingClient(app, spec_version=args.spec_version, raise_app_exceptions=False)
    failure = None
    with anyio.move_on_after(args.timeout) as scope:
        async with client.stream(args.method, args.path, headers=headers, body=body,
                                 disconnect_after=args.disconnect_after,
                                 wait_for_start=False) as response:
            try:
                await response.read()
            except Exception as error:  # the app's own, kept in app_exception too
                failure = error
    if isinstance(response.app_exception, _NotASGI):
        raise UsageError(str(response.app_exception))
    print(format_timeline(response.messages, args.preview))
    if scope.cancelled_caught:
        _say(f"trace: gave up after {args.timeout:g} s; above is the timeline so far")
        return 1
    raised = response.app_exception or failure
    if raised is not None:
        _say(f"trace: the app raised {type(raised).__name__}: {raised}")
        return 1
    return 0


class _NotASGI(Exception):
    pass


def _awaited(app: ASGIApp, spec: str) -> ASGIApp:
    """``app``, checked at its first call: an ASGI app returns an awaitable."""
    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        result = app(scope, receive, send)
        if not inspect.isawaitable(result):
            raise _NotASGI(f"{spec} is not an ASGI app: calling it with (scope, receive, "
                           f"send) returned {type(result).__name__}, not an awaitable")
        await result

    return checked


def _add_wire(commands: argparse._SubParsersAction[_Parser]) -> None:
    wire = commands.add_parser(
        "wire", help="show the chunked framing of a live server's response",
        description="Send one GET over HTTP/1.1 and print each chunk as it arrives: "
                    "arrival time in ms, the size line as sent (hex), the byte count and "
                    "a preview; then the terminating 0 chunk, or a cut stream. Exit "
                    "status 0 when the body ended properly, 1 when it was cut, 2 when "
                    "no response could be read.")
    wire.add_argument("url", help="an http:// URL, e.g. http://127.0.0.1:8000/simple")
    wire.add_argument("-H", "--header", action="append", default=[], metavar="NAME: VALUE")
    wire.add_argument("--preview", type=_count, default=40, help="body preview length")
    wire.add_argument("--timeout", type=_seconds, default=60.0, help="give up after this long")
    wire.set_defaults(run=_run_wire)


def _run_wire(args: argparse.Namespace) -> int:
    headers = [_split_header(h) for h in args.header]
    try:
        result = anyio.run(lambda: watch(args.url, give_up_after=args.timeout,
                                         preview=args.preview, headers=headers))
    except BrokenPipeError:
        raise  # handled in main()
    except (OSError, ValueError, StreamingError) as error:
        _say(f"wire: {error}")
        return 2
    return 0 if result.complete else 1


def load_app(spec: str) -> ASGIApp:
    """Import ``module:attribute`` (dotted attributes allowed) and return it, or
    raise ``UsageError`` saying what is missing or why it is not an ASGI app."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"expected MODULE:APP, got {spec!r}")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:  # a bug elsewhere in the module keeps its traceback
        raise UsageError(f"cannot import {module_name!r}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{spec}: {type(target).__name__} {getattr(target, '__name__', '')!r} "
                             f"has no attribute {part!r}") from None
    _check_asgi_signature(target, spec)
    return target  # type: ignore[return-value]  # checked as far as it can be


def _check_asgi_signature(target: object, spec: str) -> None:
    if not callable(target):
        raise UsageError(f"{spec} is a {type(target).__name__}, not an ASGI app")
    try:
        inspect.signature(target).bind(None, None, None)
    except TypeError:
        raise UsageError(f"{spec} is not an ASGI app: it cannot be called with "
                         "(scope, receive, send)") from None
    except ValueError:
        pass  # no signature to read (some builtins): the first call will tell


def _split_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise UsageError(f"a header must look like 'Name: value', got {text!r}")
    name, value = name.strip(), value.strip()
    try:
        encode_header(name, value)
    except StreamingError as error:
        raise UsageError(f"-H {text!r}: {error}") from None
    return name, value

"""The tutorial's scenario 1 ("基础流式响应"): its producers, written once, and
its routes built on either response layer.

The producers are the tutorial's code with three changes, each for a reason:

* ``anyio.sleep`` instead of ``asyncio.sleep``, so they also run on trio;
* every delay is an argument (with the tutorial's value as default), so tests
  can run the same code with tiny delays;
* each branch that matters reports itself to an optional ``Recorder`` (and
  still prints, as the tutorial does), so tests can see which branches really
  ran. Branches not in the tutorial only observe and re-raise.

``build_app(layer)`` serves them through ``streaming.StreamingResponse``
(``"raw"``) or ``starlette.responses.StreamingResponse`` (``"starlette"``, taken
from the comparison layer ``streaming.compare.starlette_layer``), both routed
by plain Starlette: the response class is the only difference.
``app`` is the raw variant at the tutorial's full delays.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import streaming
from examples.params import DECIMAL, INTEGER
from streaming.compare.starlette_layer import starlette_response

Layer = Literal["raw", "starlette"]
LAYERS: tuple[Layer, ...] = ("raw", "starlette")

#: Bounds of the path and query parameters: a stream of ten thousand lines or a
#: ten-second gap is already more than a demo needs, and a bound turns a typo
#: (``/parameterized/1e9``) into a 422 instead of a connection that never ends.
MAX_COUNT = 10_000
MAX_DELAY = 10.0

#: The tutorial's banner, in its order: (example path, what it shows).
TUTORIAL_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("/simple", "ten lines '数据 i', 0.5 s apart"),
    ("/parameterized/10?delay=0.5", "count lines, delay seconds apart (validated)"),
    ("/json/5", "NDJSON, application/x-ndjson, 0.3 s apart"),
    ("/cleanup", "acquire, stream, release in finally, final line"),
    ("/disconnect", "100 lines 0.1 s apart; leave early to see the cleanup"),
    ("/sync", "sync generator (time.sleep), run in a worker thread"),
    ("/async", "async generator (anyio.sleep)"),
    ("/headers", "X-Custom-Header and Cache-Control"),
)

#: Endpoints added to check the tutorial's claims (not in the tutorial).
EXTRA_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("/async-blocking", "anti-pattern: time.sleep inside an async generator"),
    ("/background", "five lines, then a background task (card 10)"),
)


class Recorder(Protocol):
    """Where producers report the branches they run (thread-safe: the sync
    producer runs in a worker thread). ``tests.servers.Probe`` is one."""

    def mark(self, name: str) -> None: ...


class _Silent:
    def mark(self, name: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Prefixed:
    """Prefixes every mark with the layer, so one recorder can watch both."""

    recorder: Recorder
    prefix: str

    def mark(self, name: str) -> None:
        self.recorder.mark(f"{self.prefix}:{name}")


SILENT: Recorder = _Silent()


def ending(exc: BaseException) -> str:
    """Name the exception that ended a producer in a backend-neutral way:
    asyncio's ``CancelledError`` and trio's ``Cancelled`` are both ``cancelled``."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return type(exc).__name__


# -- the producers (the tutorial's code) ---------------------------------------


async def simple_stream(delay: float = 0.5) -> AsyncIterator[str]:
    """1. The simplest stream: ten lines, ``delay`` seconds apart."""
    for i in range(10):
        await anyio.sleep(delay)
        yield f"数据 {i}\n"


async def parameterized_stream(count: int, delay: float) -> AsyncIterator[str]:
    """2. ``count`` lines, ``delay`` seconds apart."""
    for i in range(count):
        await anyio.sleep(delay)
        yield f"第 {i + 1}/{count} 条数据\n"


async def json_stream(count: int, delay: float = 0.3) -> AsyncIterator[str]:
    """3. NDJSON: one JSON object per line. ``timestamp`` is the event loop's
    clock, as the tutorial's ``asyncio.get_event_loop().time()`` is."""
    for i in range(count):
        await anyio.sleep(delay)
        data = {"id": i, "message": f"数据项 {i}", "timestamp": anyio.current_time()}
        # ensure_ascii=False: the tutorial's sample output shows "数据项 0", which
        # plain json.dumps would have written as "\u6570\u636e\u9879 0".
        yield json.dumps(data, ensure_ascii=False) + "\n"


async def stream_with_cleanup(delay: float = 0.2, recorder: Recorder = SILENT
                              ) -> AsyncIterator[str]:
    """4. Acquire a resource, stream, release it in ``finally`` and say so in a
    final line. The ``yield`` inside ``finally`` is the tutorial's; when the
    client has left it cannot be delivered (see the claims tests)."""
    resource = "数据库连接"
    print(f"获取资源: {resource}")
    recorder.mark("cleanup:acquire")
    try:
        for i in range(5):
            await anyio.sleep(delay)
            yield f"使用 {resource} 获取数据 {i}\n"
    except BaseException as exc:  # not in the tutorial: observes, then re-raises
        recorder.mark(f"cleanup:except {ending(exc)}")
        raise
    finally:
        print(f"释放资源: {resource}")
        recorder.mark("cleanup:release")
        recorder.mark("cleanup:final yield")
        yield "资源已释放\n"
        recorder.mark("cleanup:resumed after final yield")


async def stream_with_disconnect_handling(delay: float = 0.1, recorder: Recorder = SILENT
                                          ) -> AsyncIterator[str]:
    """5. 100 lines; the tutorial expects ``except GeneratorExit`` to run when
    the client leaves. Whether it does depends on where the generator is
    suspended when the layer stops it: cancelled at its ``await`` (the
    cancellation exception arrives) or closed at its ``yield`` (GeneratorExit)."""
    recorder.mark("disconnect:start")
    try:
        for i in range(100):
            await anyio.sleep(delay)
            yield f"数据 {i}\n"
    except GeneratorExit:
        recorder.mark("disconnect:except GeneratorExit")
        print("客户端断开连接，停止生成数据")
    except anyio.get_cancelled_exc_class():
        # Not in the tutorial: what a cancelled await raises. Re-raised, as
        # cancellation always must be.
        recorder.mark("disconnect:except cancelled")
        raise
    finally:
        recorder.mark("disconnect:finally")
        print("生成器结束，资源已清理")


def sync_generator(delay: float = 0.5) -> Iterator[str]:
    """6a. A sync generator that blocks its thread. Both layers iterate it in a
    worker thread, so it does not block the event loop (contrary to the tutorial)."""
    for i in range(5):
        time.sleep(delay)
        yield f"同步数据 {i}\n"


async def async_generator(delay: float = 0.5) -> AsyncIterator[str]:
    """6b. The async generator the tutorial recommends."""
    for i in range(5):
        await anyio.sleep(delay)
        yield f"异步数据 {i}\n"


async def blocking_async_generator(delay: float = 0.5) -> AsyncIterator[str]:
    """6c. Not in the tutorial: the real anti-pattern. ``time.sleep`` inside an
    *async* generator runs on the event loop and stalls every other request."""
    for i in range(5):
        time.sleep(delay)  # noqa: ASYNC251  (on purpose: this is the anti-pattern)
        yield f"阻塞数据 {i}\n"


async def stream_with_headers(delay: float = 0.3) -> AsyncIterator[str]:
    """7. Five lines, sent with custom response headers."""
    for i in range(5):
        await anyio.sleep(delay)
        yield f"数据 {i}\n"


async def background_stream(delay: float = 0.1, recorder: Recorder = SILENT
                            ) -> AsyncIterator[str]:
    """Card 10: a stream whose response also carries a background task."""
    try:
        for i in range(5):
            await anyio.sleep(delay)
            yield f"后台示例 {i}\n"
    finally:
        recorder.mark("background:producer finally")


async def send_report(recorder: Recorder = SILENT) -> None:
    """The background task of card 10 (sending an email, say)."""
    recorder.mark("background:ran")
    print("后台任务：发送邮件")


# -- parameters ------------------------------------------------------------------


class ParameterError(ValueError):
    """A path or query parameter outside its bounds; answered with 422."""


def parse_count(text: str) -> int:
    """Return ``text`` as a count in ``0..MAX_COUNT`` or raise ``ParameterError``.

    The route takes ``{count}`` as a string on purpose: ``{count:int}`` would
    not match ``-1`` at all and answer 404, which hides the real mistake.
    """
    if INTEGER.fullmatch(text) is None:
        raise ParameterError(f"count must be an integer, got {text!r}")
    count = int(text)
    if not 0 <= count <= MAX_COUNT:
        raise ParameterError(f"count must be between 0 and {MAX_COUNT}, got {count}")
    return count


def parse_delay(text: str | None, default: float) -> float:
    """Return the ``delay`` query parameter in seconds (``default`` when absent),
    in ``0..MAX_DELAY``, or raise ``ParameterError``: a plain decimal only (no
    exponent, NaN or infinity)."""
    if text is None:
        return default
    if DECIMAL.fullmatch(text) is None:
        raise ParameterError(f"delay must be a number of seconds, got {text!r}")
    delay = float(text)
    if not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
        raise ParameterError(f"delay must be between 0 and {MAX_DELAY:g} seconds, got {text}")
    return delay


def unprocessable(error: ParameterError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=422)


# -- the response layer: the one thing that differs ------------------------------

Content = AsyncIterator[str] | Iterable[str]


def stream_response(layer: Layer, content: Content, *, media_type: str = "text/plain",
                    headers: dict[str, str] | None = None,
                    background: BackgroundTask | None = None) -> Response:
    """Wrap ``content`` in the chosen layer's ``StreamingResponse``, same arguments.

    The raw layer holds the headers back until the first chunk (or its
    ``commit_deadline``, 1 s by default), so an error before the first line can
    still become an error status; Starlette sends them at once.
    """
    if layer == "raw":
        return streaming.StreamingResponse(content, headers=headers, media_type=media_type,
                                           background=background)
    return starlette_response(content, headers=headers, media_type=media_type,
                              background=background)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Scenario 1's endpoints on one layer, named as in the tutorial. ``scale``
    multiplies every built-in delay (an explicit ``?delay=`` is taken as given)."""

    layer: Layer
    scale: float = 1.0
    recorder: Recorder = SILENT

    def respond(self, content: Content, *, media_type: str = "text/plain",
                headers: dict[str, str] | None = None,
                background: BackgroundTask | None = None) -> Response:
        return stream_response(self.layer, content, media_type=media_type, headers=headers,
                               background=background)

    async def simple_endpoint(self, request: Request) -> Response:
        return self.respond(simple_stream(0.5 * self.scale))

    async def parameterized_endpoint(self, request: Request) -> Response:
        try:
            count = parse_count(request.path_params["count"])
            delay = parse_delay(request.query_params.get("delay"), 0.5 * self.scale)
        except ParameterError as error:
            return unprocessable(error)
        return self.respond(parameterized_stream(count, delay))

    async def json_endpoint(self, request: Request) -> Response:
        try:
            count = parse_count(request.path_params["count"])
        except ParameterError as error:
            return unprocessable(error)
        return self.respond(json_stream(count, 0.3 * self.scale),
                            media_type="application/x-ndjson")

    async def cleanup_endpoint(self, request: Request) -> Response:
        return self.respond(stream_with_cleanup(0.2 * self.scale, self.recorder))

    async def disconnect_endpoint(self, request: Request) -> Response:
        return self.respond(stream_with_disconnect_handling(0.1 * self.scale, self.recorder))

    def sync_endpoint(self, request: Request) -> Response:
        # A plain `def` endpoint, as the tutorial's: Starlette calls it in a worker thread.
        return self.respond(sync_generator(0.5 * self.scale))

    async def async_endpoint(self, request: Request) -> Response:
        return self.respond(async_generator(0.5 * self.scale))

    async def async_blocking_endpoint(self, request: Request) -> Response:
        return self.respond(blocking_async_generator(0.5 * self.scale))

    async def headers_endpoint(self, request: Request) -> Response:
        # The tutorial also sets "Connection: keep-alive"; it is left out on
        # purpose: HTTP/1.1 keeps connections alive by default, and the header
        # is illegal over HTTP/2 (RFC 9113 section 8.2.2).
        custom = {"X-Custom-Header": "CustomValue", "Cache-Control": "no-cache"}
        return self.respond(stream_with_headers(0.3 * self.scale), headers=custom)

    async def background_endpoint(self, request: Request) -> Response:
        task = BackgroundTask(send_report, self.recorder)
        return self.respond(background_stream(0.1 * self.scale, self.recorder), background=task)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/simple", self.simple_endpoint),
            Route("/parameterized/{count}", self.parameterized_endpoint),
            Route("/json/{count}", self.json_endpoint),
            Route("/cleanup", self.cleanup_endpoint),
            Route("/disconnect", self.disconnect_endpoint),
            Route("/sync", self.sync_endpoint),
            Route("/async", self.async_endpoint),
            Route("/headers", self.headers_endpoint),
            Route("/async-blocking", self.async_blocking_endpoint),
            Route("/background", self.background_endpoint),
        ]


def build_routes(layer: Layer, *, scale: float = 1.0, recorder: Recorder | None = None
                 ) -> list[BaseRoute]:
    """Scenario 1's routes on ``layer``. Marks reach ``recorder`` as
    ``"<layer>:<endpoint>:<branch>"``, e.g. ``"raw:disconnect:finally"``."""
    prefixed: Recorder = SILENT if recorder is None else _Prefixed(recorder, layer)
    return Endpoints(layer, scale, prefixed).routes()


def build_app(layer: Layer, *, scale: float = 1.0, recorder: Recorder | None = None
              ) -> Starlette:
    """A Starlette app serving scenario 1 on ``layer`` at the tutorial's paths."""
    return Starlette(routes=build_routes(layer, scale=scale, recorder=recorder))


app = build_app("raw")

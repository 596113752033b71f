"""``StreamLimiter``: ASGI middleware that holds a slot for the whole stream.

A slot is taken before the app runs, so a refusal is a complete ``429`` with
``Retry-After`` (RFC 9110 15.5.21 / RFC 6585 4, RFC 9110 10.2.3) before any
header of the stream exists; it is held until the app returns, which for a
streamed response is when the stream has ended (whatever the ``EndReason``)
and its producer is closed; it is released exactly once. Wrapping the app
rather than the response is what makes it work for every response type:
sse-starlette's README example takes a semaphore inside the endpoint and
releases it when the endpoint returns the response, before the stream starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections import deque
from collections.abc import Callable

import anyio

from streaming._types import ASGIApp, Message, Receive, Scope, Send
from streaming.exceptions import SlotStoreUnavailable, StreamingConfigError
from streaming.limits.rate import PacedSend, check_rate, without_bypasses
from streaming.limits.slots import Claim, MemorySlots, SlotStore
from streaming.observe import WATCH_KEY
from streaming.responses import send_whole

logger = logging.getLogger("streaming")

KeyFunction = Callable[[Scope], "str | None"]

#: Request body bytes held for the app while a request waits for a slot; past
#: this the wait stops reading (TCP pushes back) rather than buffer more.
_MAX_HELD_BODY = 64 * 1024

_REFUSAL = b"Too many open streams; retry later.\n"


class StreamLimiter:
    """Limit how many streams run at once, in total and per key.

    ``max_streams``: streams at once through this middleware (``None``: no
    total limit). ``key(scope)`` names the slot group of a request (a client
    address, an API key, a route: see ``client_address``, ``header_value``,
    ``route_path``); ``None`` from it exempts the request from ``per_key``.
    ``per_key``: streams at once per key. ``queue_timeout``: seconds a request
    may wait for a slot before it is refused (``0``: refuse at once); a client
    that leaves while waiting gives up its place. ``retry_after``: seconds
    advertised in ``Retry-After`` (rounded up to whole seconds).
    ``max_bytes_per_second``: cap each response's body at this rate.
    ``slots``: where slots are counted (``MemorySlots()``, this process, by
    default; ``streaming.limits.redis.RedisSlots`` across workers and hosts).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_streams: int | None = None,
        *,
        key: KeyFunction | None = None,
        per_key: int | None = None,
        queue_timeout: float = 0.0,
        retry_after: float = 1.0,
        max_bytes_per_second: float | None = None,
        slots: SlotStore | None = None,
    ) -> None:
        _check_limit("max_streams", max_streams)
        _check_limit("per_key", per_key)
        if per_key is not None and key is None:
            raise StreamingConfigError("per_key needs a key function to group requests by")
        if max_streams is None and per_key is None and max_bytes_per_second is None:
            raise StreamingConfigError(
                "give max_streams, per_key or max_bytes_per_second: nothing to limit")
        self.app = app
        self.max_streams = max_streams
        self.key = key
        self.per_key = per_key
        self.queue_timeout = _check_seconds("queue_timeout", queue_timeout)
        self.retry_after = _check_seconds("retry_after", retry_after)
        self.rate = None if max_bytes_per_second is None else check_rate(max_bytes_per_second)
        self.slots: SlotStore = MemorySlots() if slots is None else slots
        self._retry_header = {"retry-after": str(math.ceil(self.retry_after))}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.rate is not None:
            without_bypasses(scope)
            send = PacedSend(send, self.rate)
        claims = self.claims(scope)
        if not claims:
            await self.app(scope, receive, send)
            return
        try:
            lease, receive = await self._wait_for_slot(claims, receive)
        except SlotStoreUnavailable as exc:
            logger.warning("stream limits unavailable, answering 503: %s", exc)
            _report_refusal(scope, "unavailable")
            await self._refuse(send, 503, b"Stream limits cannot be checked; retry later.\n")
            return
        if lease is _CLIENT_LEFT:
            return  # nobody to answer
        if lease is None:
            _report_refusal(scope, "limit")
            await self._refuse(send, 429, _REFUSAL)
            return
        await self.slots.keep(lease, lambda: self.app(scope, receive, send))

    def claims(self, scope: Scope) -> list[Claim]:
        """The limits this request counts against."""
        claims = [] if self.max_streams is None else [Claim("all", self.max_streams)]
        if self.per_key is not None:
            assert self.key is not None
            name = self.key(scope)
            if name is not None:
                # Keys come from the network: store a fixed-size digest, never
                # the value itself (a Redis key name, a dict key of any length).
                digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"),
                                         digest_size=16).hexdigest()
                claims.append(Claim("key:" + digest, self.per_key))
        return claims

    async def _wait_for_slot(self, claims: list[Claim], receive: Receive
                             ) -> tuple[object | None, Receive]:
        lease = await self.slots.acquire(claims, 0)
        if lease is not None or not self.queue_timeout:
            return lease, receive
        # Waiting: listen meanwhile, or a client that left would still get a
        # slot (and an app run) when its turn came.
        early = _EarlyMessages(receive)
        error: SlotStoreUnavailable | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(early.watch, group.cancel_scope)
            try:
                lease = await self.slots.acquire(claims, self.queue_timeout)
            except SlotStoreUnavailable as exc:  # raised outside the group, ungrouped
                error = exc
            group.cancel_scope.cancel()
        if error is not None:
            raise error
        if early.client_left:
            return _CLIENT_LEFT, receive
        return lease, early.receive

    async def _refuse(self, send: Send, status: int, body: bytes) -> None:
        with contextlib.suppress(OSError):  # an ASGI 2.4 server: the client has gone
            await send_whole(send, status, body, "text/plain; charset=utf-8", self._retry_header)


#: ``_wait_for_slot``'s answer when the client disconnected while waiting.
_CLIENT_LEFT = object()


class _EarlyMessages:
    """The messages read from ``receive`` while a request waited for a slot;
    the app gets them first, so reading them loses nothing."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._held: deque[Message] = deque()
        self.client_left = False

    async def watch(self, wait: anyio.CancelScope) -> None:
        held_body = 0
        while held_body <= _MAX_HELD_BODY:
            try:
                message = await self._receive()
            except OSError:
                message = {"type": "http.disconnect"}
            self._held.append(message)
            if message["type"] == "http.disconnect":
                self.client_left = True
                wait.cancel()
                return
            held_body += len(message.get("body", b""))

    async def receive(self) -> Message:
        if self._held:
            return self._held.popleft()
        return await self._receive()


def _report_refusal(scope: Scope, why: str) -> None:
    watch = scope.get(WATCH_KEY)
    if watch is not None:
        watch.refused(scope, why)


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise StreamingConfigError(f"{name} must be an int >= 1 or None, not {value!r}")


def _check_seconds(name: str, value: float) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise StreamingConfigError(f"{name} must be a finite number of seconds >= 0, "
                                   f"not {value!r}")
    return float(value)


# -- key functions -------------------------------------------------------------


def client_address(scope: Scope) -> str | None:
    """The client's host (no port): one slot group per client address. Behind a
    proxy this is the proxy's address unless the server rewrites it (uvicorn's
    ``--proxy-headers`` with ``--forwarded-allow-ips``)."""
    client = scope.get("client")
    return None if not client else str(client[0])


def header_value(name: str) -> KeyFunction:
    """A key function reading one request header (an API key, a tenant id);
    requests without it are exempt from ``per_key``."""
    wanted = name.lower().encode("latin-1")

    def key(scope: Scope) -> str | None:
        for header, value in scope.get("headers", ()):
            if header == wanted:
                return bytes(value).decode("latin-1")
        return None

    return key


def route_path(scope: Scope) -> str | None:
    """The matched route's path template (``/files/{name}``) when a router has
    matched one (Starlette and FastAPI set ``scope["route"]``), else the path.
    Outside the router, wrap each route's app in its own limiter instead."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else str(scope.get("path", ""))

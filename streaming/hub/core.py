"""``Hub``: publish once, deliver to every subscriber, resume exactly.

One hub per process. ``publish`` encodes the event once and hands it to the
backend, which stores it in the topic's bounded history and notifies every
process watching the topic (one reader per process, whatever the number of
subscribers). Each process frames the event once and queues the same bytes
for each of its subscribers; a subscriber is an ``EventSourceResponse``
producer (``hub.subscriber(topic)``) that sends its queue. With
``inline_sends=True``, on asyncio, a subscriber waiting for a frame is not
woken to send it: the delivering task sends it through the stream's driver
(``Driver.offer``, ``driver/offers.py``).

Resuming: a subscriber registers with its topics *before* reading the history
it missed, at a known position, so the history read covers exactly the
events up to that position and the queue holds exactly the ones after it: no
gap and no duplicate at the seam. A position the history cannot serve (too
old, another epoch, malformed) gets ``RESET_EVENT``; a malformed or foreign
id is a fresh start.

Watching and unwatching topics in the backend happens in one task per hub,
in order, so a topic dropped and taken again at once is never left unwatched.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from streaming._types import Scope
from streaming.drain import Drain
from streaming.driver import Offer
from streaming.exceptions import (
    EventTooLargeError,
    HubClosedError,
    HubUnavailable,
    InvalidTopicError,
    StreamingConfigError,
    StreamRefused,
    SubscriberOverflow,
)
from streaming.hub.backend import Backend, Entry
from streaming.hub.frames import (
    check_topic,
    drain_frame,
    encode_body,
    framed,
    id_only,
    reset_frame,
    spread_retry,
)
from streaming.hub.memory import MemoryBackend
from streaming.hub.position import MAX_TOPICS, Position, format_id, parse_last_event_id
from streaming.hub.topics import Ended, LocalTopic, Subscription

if TYPE_CHECKING:
    from streaming.observe import HubObserver

#: ``authorize(scope, topic)``: may this request subscribe to this topic?
Authorize = Callable[[Scope, str], "bool | Awaitable[bool]"]

_Operation = tuple[Literal["watch", "unwatch"], LocalTopic]

#: Frames sent at once when replaying history: one ASGI message, bounded.
_BATCH_BYTES = 65536

logger = logging.getLogger("streaming")


class Hub:
    """Fan-out of events to subscribers across processes and hosts.

    ``backend``: ``MemoryBackend()`` (the default, one process) or
    ``RedisBackend(url)``. ``history`` events per topic are kept for resuming,
    for ``history_ttl`` seconds after the topic's last publish (``None``:
    forever). Each subscriber queues at most ``max_queued_events`` events and
    ``max_queued_bytes`` bytes; past that it is disconnected (it resumes from
    history). ``timeout`` bounds every backend call a request waits for
    (``HubUnavailable`` after it). ``authorize(scope, topic)`` refuses a
    subscription with a 403 before any event. On a drain every subscriber
    gets ``drain.final`` with a ``retry`` drawn from ``retry_spread`` (ms).
    ``observer`` (a ``HubObserver``, such as ``streaming.metrics.StreamMetrics``)
    is told, under the label ``name``, of subscribers coming and going, of
    overflows, and of the deepest queue every ``report_every`` seconds.
    ``inline_sends=True``: on asyncio, send each event to the subscribers
    waiting for one from the task that delivers it (one pass, no task woken
    per subscriber: about half the CPU per delivery; ``streaming/driver/offers.py``).
    It needs a ``send`` that does not depend on the task calling it: the
    server's own, or wrappers without task-bound state (a send wrapped in an
    anyio cancel scope or lock, or ``asyncio.timeout``, belongs to the task
    that entered it, which would be the publisher's). The default queues
    every event and wakes each subscriber's task to send it.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        history: int = 1000,
        history_ttl: float | None = 3600.0,
        max_queued_events: int = 1000,
        max_queued_bytes: int = 1 << 20,
        timeout: float = 5.0,
        authorize: Authorize | None = None,
        drain: Drain | None = None,
        retry_spread: tuple[int, int] = (1000, 10000),
        observer: HubObserver | None = None,
        name: str = "hub",
        report_every: float = 1.0,
        inline_sends: bool = False,
    ) -> None:
        _check_settings(history, history_ttl, max_queued_events, max_queued_bytes, timeout,
                        retry_spread, report_every)
        if type(name) is not str or not name:
            raise StreamingConfigError(f"name must be a non-empty str, not {name!r:.80}")
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self.history, self.history_ttl = history, history_ttl
        self.max_queued_events, self.max_queued_bytes = max_queued_events, max_queued_bytes
        self.timeout = timeout
        self.authorize = authorize
        self.drain = drain if drain is not None else Drain()
        self.retry_spread = retry_spread
        self.observer, self.name, self.report_every = observer, name, report_every
        self.inline_sends = bool(inline_sends)
        self._rng = random.Random()
        self._topics: dict[str, LocalTopic] = {}
        self._subscriptions: set[Subscription] = set()
        self._operations: MemoryObjectSendStream[_Operation] | None = None
        self._event_class: Callable[[], anyio.Event] = anyio.Event
        self._context: AbstractAsyncContextManager[None] | None = None

    # -- running ---------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        if self._context is not None:
            raise HubClosedError("this hub is already running")
        context = self._run()
        await context.__aenter__()
        self._context = context
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        context, self._context = self._context, None
        assert context is not None
        await context.__aexit__(kind, error, traceback)

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """A Starlette ``lifespan``: run the hub, and drain its subscribers on
        SIGTERM / SIGINT (``Drain.watch_signals``)."""
        async with self, self.drain.watch_signals():
            yield

    @property
    def running(self) -> bool:
        return self._operations is not None

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        send, receive = anyio.create_memory_object_stream[_Operation](math.inf)
        failure: Exception | None = None
        async with (self.backend.open(self, self.history, self.history_ttl),
                    anyio.create_task_group() as group):
            group.start_soon(self._carry_out, receive)
            if self.observer is not None:
                self._tell("hub_subscribers", 0)  # the series exist from the start
                group.start_soon(self._report_depth)
            # anyio.Event() looks up the running event loop on every call; the
            # class it returns is the loop's own and can be called directly.
            self._event_class = type(anyio.Event())
            self._operations = send
            try:
                yield
            except Exception as error:  # raised as it is, not inside an ExceptionGroup
                failure = error
            finally:
                self._operations = None
                for subscription in list(self._subscriptions):
                    subscription.end(Ended.CLOSED)
                self._topics.clear()
                group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    # -- publishing --------------------------------------------------------------

    async def publish(self, topic: str, data: object, *, event: str | None = None) -> str:
        """Publish ``data`` (``str`` as it is, anything else as JSON) to every
        subscriber of ``topic``; return the event's id (its position).

        Raises ``HubUnavailable`` when the backend does not take it within
        ``timeout`` (it may still have been stored: as with any write over a
        network, a timeout does not say)."""
        check_topic(topic)
        body = encode_body(data, event)
        if len(body) + 64 > self.max_queued_bytes:
            raise EventTooLargeError(
                f"a {len(body)}-byte event cannot fit a subscriber's queue of "
                f"{self.max_queued_bytes} bytes (max_queued_bytes)")
        self._require_running()
        try:
            with anyio.fail_after(self.timeout):
                position = await self.backend.publish(topic, body)
        except TimeoutError:
            raise HubUnavailable(f"publish did not complete within {self.timeout} s") from None
        return position.format()

    # -- subscribing -------------------------------------------------------------

    def subscriber(self, topics: str | list[str] | tuple[str, ...], *, announce: bool = True
                   ) -> Subscriber:
        """A producer factory for ``EventSourceResponse``: called with the
        request's ``Last-Event-ID`` (and scope), it streams the topics' events.

        ``announce``: a fresh subscriber first gets a block holding only an id
        (browsers dispatch nothing for it), so that reconnecting before any
        event still resumes from where it started."""
        names = (topics,) if isinstance(topics, str) else tuple(topics)
        if not names or len(names) > MAX_TOPICS or len(set(names)) != len(names):
            raise InvalidTopicError(
                f"subscribe to 1-{MAX_TOPICS} distinct topics, not {len(names)} ({names!r:.80})")
        for name in names:
            check_topic(name)
        return Subscriber(self, names, announce)

    async def _stream(self, topics: tuple[str, ...], last_event_id: str | None,
                      scope: Scope | None, announce: bool, offer: Offer | None
                      ) -> AsyncIterator[bytes]:
        self._require_running()
        await self._check_allowed(scope, topics)
        resume = parse_last_event_id(last_event_id, topics)
        subscription = Subscription(topics, self.max_queued_events, self.max_queued_bytes,
                                    self._event_class, offer)
        held = [self._acquire(name) for name in topics]
        try:
            tops = await self._register(subscription, held)
            first = await self._catch_up_frames(held, resume, tops)
            if not first and not resume and announce:
                first = [id_only(format_id(topics, tops))]
            with self.drain.track(subscription.stop_for_drain):
                for batch in _batched(first):
                    yield batch
                # Until it ends and what was queued went out (an overflow
                # empties the queue: those frames come from history). A wake-up
                # in the same tick as a disconnect yields once more: the driver
                # drops that item, silently (a race, not a mistake:
                # driver/closing.py).
                while subscription.ended is None or subscription.frames:
                    if not subscription.frames:
                        await subscription.wake_up()
                        if (finish := subscription.finish) is not None:
                            subscription.finish = None
                            await finish  # an offered frame whose send had to wait
                    if frames := subscription.take():
                        yield b"".join(frames)
                if subscription.ended is Ended.DRAINED:
                    retry = spread_retry(self.retry_spread, self._rng)
                    yield drain_frame(subscription.final, retry)
            if subscription.ended is Ended.OVERFLOW:
                raise SubscriberOverflow(
                    f"a subscriber of {', '.join(topics)} fell more than "
                    f"{self.max_queued_events} events or {self.max_queued_bytes} bytes behind")
        finally:
            if subscription in self._subscriptions:
                self._subscriptions.discard(subscription)
                self._tell("hub_subscribers", -1)
            if subscription.ended is Ended.OVERFLOW:  # also if it left before it could say
                self._tell("hub_overflow")
            for topic in held:
                topic.discard(subscription)
                self._release(topic)

    async def _check_allowed(self, scope: Scope | None, topics: tuple[str, ...]) -> None:
        if self.authorize is None:
            return
        for topic in topics:
            allowed: Any = scope is not None and self.authorize(scope, topic)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise StreamRefused(403, "not allowed to subscribe to this topic")

    async def _register(self, subscription: Subscription, held: list[LocalTopic]
                        ) -> dict[str, Position]:
        """Wait until every topic is watched, then, in one step, join them all
        and note their positions: events after these go to the queue."""
        try:
            with anyio.fail_after(self.timeout):
                for topic in held:
                    await topic.ready.wait()
        except TimeoutError:
            raise HubUnavailable(f"subscribing took more than {self.timeout} s") from None
        tops: dict[str, Position] = {}
        for topic in held:
            if topic.error is not None:
                raise HubUnavailable(str(topic.error))
            assert topic.position is not None
            tops[topic.name] = topic.position
        for topic in held:
            topic.add(subscription)
        subscription.view = dict(tops)
        self._subscriptions.add(subscription)
        self._tell("hub_subscribers", 1)
        return tops

    async def _catch_up_frames(self, held: list[LocalTopic], resume: dict[str, Position],
                               tops: dict[str, Position]) -> list[bytes]:
        """The frames a resuming client missed, topic after topic, each with
        the id the client holds once it has it."""
        if not resume:
            return []
        topics = tuple(topic.name for topic in held)
        view = dict(resume)
        frames: list[bytes] = []
        for topic in held:
            start, top = resume[topic.name], tops[topic.name]
            if start == top:
                continue
            missed, complete = await self._missed(topic, start, top)
            if not complete:
                first = missed[0][0].position.offset - 1 if missed else top.offset
                view[topic.name] = Position(top.epoch, first)
                frames.append(reset_frame(format_id(topics, view), topic.name))
            for entry, frame in missed:
                view[topic.name] = entry.position
                frames.append(frame if frame and len(topics) == 1
                              else framed(format_id(topics, view), entry.body))
        return frames

    async def _missed(self, topic: LocalTopic, start: Position, top: Position
                      ) -> tuple[list[tuple[Entry, bytes]], bool]:
        cached = topic.cached_between(start, top)
        if cached is not None:
            return cached, True
        try:
            with anyio.fail_after(self.timeout):
                history = await self.backend.read(topic.name, start)
        except TimeoutError:
            raise HubUnavailable(f"reading history took more than {self.timeout} s") from None
        missed = [(entry, b"") for entry in history.entries
                  if entry.position.epoch == top.epoch and entry.position.offset <= top.offset]
        return missed, history.complete and history.top.epoch == top.epoch

    # -- topics: watched while someone here subscribes ---------------------------

    def _acquire(self, name: str) -> LocalTopic:
        operations = self._require_running()
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = LocalTopic(name, self.backend.local_cache)
            operations.send_nowait(("watch", topic))
        topic.refs += 1
        return topic

    def _release(self, topic: LocalTopic) -> None:
        topic.refs -= 1
        if topic.refs:
            return
        if self._topics.get(topic.name) is topic:
            del self._topics[topic.name]
        if self._operations is not None:
            self._operations.send_nowait(("unwatch", topic))

    async def _carry_out(self, operations: MemoryObjectReceiveStream[_Operation]) -> None:
        async for kind, topic in operations:
            if kind == "watch":
                await self._watch(topic)
            else:
                await self._unwatch(topic)

    async def _watch(self, topic: LocalTopic) -> None:
        try:
            with anyio.fail_after(self.timeout):
                await self.backend.watch(topic.name)
                history = await self.backend.read(topic.name, None)
        except (HubUnavailable, TimeoutError) as error:
            if self._topics.get(topic.name) is topic:
                del self._topics[topic.name]  # the next subscriber tries again
            topic.fail(error if isinstance(error, HubUnavailable)
                       else HubUnavailable(f"watching a topic took more than {self.timeout} s"))
            return
        if not topic.start(history.top):
            await self.resync(topic.name)

    async def _unwatch(self, topic: LocalTopic) -> None:
        # A lost connection watches nothing anyway: HubUnavailable is fine here.
        with anyio.move_on_after(self.timeout), contextlib.suppress(HubUnavailable):
            await self.backend.unwatch(topic.name)

    # -- the feed: what the backend calls ------------------------------------------

    def deliver(self, topic: str, entry: Entry) -> bool:
        local = self._topics.get(topic)
        return True if local is None else local.apply(entry)

    async def resync(self, topic: str) -> None:
        local = self._topics.get(topic)
        if local is None or local.position is None:
            return
        history = await self.backend.read(topic, local.position)
        local.catch_up(history)

    # -- what the observer is told ---------------------------------------------------

    def _tell(self, event: str, *args: int) -> None:
        """Call the observer, if any; one that raises is logged and skipped (the
        hub and its subscribers never fail for it)."""
        if self.observer is None:
            return
        try:
            getattr(self.observer, event)(self.name, *args)
        except Exception:
            logger.exception("hub observer %r failed in %s", self.observer, event)

    async def _report_depth(self) -> None:
        """Report the deepest queue when it changed since the last look: one
        pass over the subscriptions a second, nothing on the delivery path."""
        reported = None
        try:
            while True:
                depth = max((len(s.frames) for s in self._subscriptions), default=0)
                if depth != reported:
                    self._tell("hub_queue_depth", depth)
                    reported = depth
                await anyio.sleep(self.report_every)
        finally:
            if reported:
                self._tell("hub_queue_depth", 0)  # the hub stops: nothing is queued

    def watched(self) -> tuple[str, ...]:
        return tuple(name for name, topic in self._topics.items() if topic.position is not None)

    def _require_running(self) -> MemoryObjectSendStream[_Operation]:
        if self._operations is None:
            raise HubClosedError(
                "the hub is not running: use `async with hub:` or `lifespan=hub.lifespan`")
        return self._operations


class Subscriber:
    """What ``Hub.subscriber`` returns: an ``EventSourceResponse`` producer
    factory. Each call (one per request) makes a new subscription."""

    __slots__ = ("announce", "hub", "topics")

    def __init__(self, hub: Hub, topics: tuple[str, ...], announce: bool) -> None:
        self.hub, self.topics, self.announce = hub, topics, announce

    @property
    def takes_offers(self) -> bool:
        """Whether ``EventSourceResponse`` should pass its driver's ``offer``
        (``Hub(inline_sends=True)``; driver/offers.py)."""
        return self.hub.inline_sends

    def __call__(self, last_event_id: str | None, scope: Scope | None = None, *,
                 offer: Offer | None = None) -> AsyncIterator[bytes]:
        return self.hub._stream(self.topics, last_event_id, scope, self.announce, offer)


def _batched(frames: list[bytes]) -> list[bytes]:
    batches: list[bytes] = []
    start = size = 0
    for index, frame in enumerate(frames):
        size += len(frame)
        if size >= _BATCH_BYTES:
            batches.append(b"".join(frames[start:index + 1]))
            start, size = index + 1, 0
    if start < len(frames):
        batches.append(b"".join(frames[start:]))
    return batches


def _check_settings(history: int, history_ttl: float | None, max_events: int, max_bytes: int,
                    timeout: float, retry_spread: tuple[int, int], report_every: float) -> None:
    def positive_int(name: str, value: object, low: int) -> None:
        if type(value) is not int or value < low:
            raise StreamingConfigError(f"{name} must be an int >= {low}, not {value!r}")

    def seconds(name: str, value: object) -> None:
        if type(value) not in (int, float) or not 0 < value < math.inf:  # type: ignore[operator]
            raise StreamingConfigError(f"{name} must be a finite number of seconds, not {value!r}")

    positive_int("history", history, 0)
    positive_int("max_queued_events", max_events, 1)
    positive_int("max_queued_bytes", max_bytes, 1024)
    seconds("timeout", timeout)
    seconds("report_every", report_every)
    if history_ttl is not None:
        seconds("history_ttl", history_ttl)
    low, high = retry_spread if len(retry_spread) == 2 else (-1, -1)
    if type(low) is not int or type(high) is not int or not 0 <= low <= high:
        raise StreamingConfigError(
            f"retry_spread must be two ints 0 <= low <= high (ms), not {retry_spread!r}")

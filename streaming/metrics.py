"""Prometheus metrics for streams (the ``metrics`` extra: prometheus-client).

``StreamMetrics`` is a ``StreamWatch`` observer (and a hub observer): it
counts what the driver counted (body bytes and chunks handed to ``send()``,
never ``Content-Length``; the time to the first *body* byte, not to the
start message) and why each stream ended. ``metrics.app`` is an ASGI app to
mount at ``/metrics``.

Several workers (``uvicorn --workers N``, gunicorn): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server starts
(prometheus-client's multiprocess mode); every worker then writes its
figures there and ``/metrics``, whichever worker answers, adds them up.
Gauges of live state (open streams, hub subscribers) count live workers
only ("livesum"); the deepest hub queue is the deepest of any live worker
("livemax"). A worker that died without a word (SIGKILL) leaves its files
behind: before each scrape the app drops the live gauges of processes that
no longer exist, which gunicorn users otherwise do in a ``child_exit`` hook.

Series (labels in brackets):

- ``streaming_active_streams`` [route, response_type]
- ``streaming_stream_duration_seconds`` histogram [route, response_type, reason]
- ``streaming_time_to_first_byte_seconds`` histogram [route, response_type]
- ``streaming_sent_bytes_total``, ``streaming_sent_chunks_total`` [route, response_type]
- ``streaming_streams_total`` [route, response_type, reason]: outcomes by ``EndReason``
- ``streaming_send_timeouts_total``, ``streaming_drained_streams_total`` [route]
- ``streaming_refused_streams_total`` [route, why]: ``StreamLimiter`` refusals
  (``limit``, or ``unavailable`` when its store could not be reached)
- ``streaming_hub_subscribers``, ``streaming_hub_queue_depth``,
  ``streaming_hub_overflows_total`` [hub]
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence

import anyio.to_thread
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from streaming._types import Receive, Scope, Send
from streaming.observe import StreamRecord, route_of
from streaming.outcome import EndReason
from streaming.responses import send_whole

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    600.0, 1800.0, 3600.0)
TTFB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_STREAM = ("route", "response_type")
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus-client uses, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class StreamMetrics:
    """The stream series, registered in ``registry`` (a new one by default:
    no global state; pass ``prometheus_client.REGISTRY`` to share the
    default one)."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 duration_buckets: Sequence[float] = DURATION_BUCKETS,
                 ttfb_buckets: Sequence[float] = TTFB_BUCKETS) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self.active = Gauge("streaming_active_streams", "Streams open now.", _STREAM,
                            registry=r, multiprocess_mode="livesum")
        self.duration = Histogram(
            "streaming_stream_duration_seconds", "From the start of the response to the "
            "end of the stream.", (*_STREAM, "reason"), registry=r, buckets=duration_buckets)
        self.ttfb = Histogram(
            "streaming_time_to_first_byte_seconds", "From the start of the response to "
            "the first body byte handed to the server.", _STREAM, registry=r,
            buckets=ttfb_buckets)
        self.bytes = Counter("streaming_sent_bytes", "Body bytes handed to the server.",
                             _STREAM, registry=r)
        self.chunks = Counter("streaming_sent_chunks", "Body chunks handed to the server.",
                              _STREAM, registry=r)
        self.outcomes = Counter("streaming_streams", "Ended streams, by why they ended.",
                                (*_STREAM, "reason"), registry=r)
        self.send_timeouts = Counter("streaming_send_timeouts", "Streams ended because "
                                     "the client stopped reading.", ("route",), registry=r)
        self.drained = Counter("streaming_drained_streams", "Streams ended by a drain "
                               "(server shutdown) with a final message.", ("route",), registry=r)
        self.refused = Counter("streaming_refused_streams", "Requests StreamLimiter "
                               "turned away.", ("route", "why"), registry=r)
        self.hub_subscribers_gauge = Gauge("streaming_hub_subscribers", "Hub subscribers "
                                           "connected now.", ("hub",), registry=r,
                                           multiprocess_mode="livesum")
        self.hub_queue_gauge = Gauge("streaming_hub_queue_depth", "The deepest subscriber "
                                     "queue of the hub.", ("hub",), registry=r,
                                     multiprocess_mode="livemax")
        self.hub_overflows = Counter("streaming_hub_overflows", "Subscribers dropped "
                                     "because their queue overflowed.", ("hub",), registry=r)

    # -- StreamObserver ---------------------------------------------------------

    def stream_opened(self, stream: StreamRecord) -> None:
        self.active.labels(stream.route, stream.response_type).inc()

    def stream_closed(self, stream: StreamRecord) -> None:
        labels = (stream.route, stream.response_type)
        self.active.labels(*labels).dec()
        outcome = stream.outcome
        if outcome is None:
            return
        reason = outcome.reason.value
        self.outcomes.labels(*labels, reason).inc()
        self.duration.labels(*labels, reason).observe(outcome.duration)
        if outcome.first_byte_after is not None:
            self.ttfb.labels(*labels).observe(outcome.first_byte_after)
        if outcome.bytes_sent:
            self.bytes.labels(*labels).inc(outcome.bytes_sent)
        if outcome.chunks_sent:
            self.chunks.labels(*labels).inc(outcome.chunks_sent)
        if outcome.reason is EndReason.SEND_TIMEOUT:
            self.send_timeouts.labels(stream.route).inc()
        elif outcome.reason is EndReason.DRAINED:
            self.drained.labels(stream.route).inc()

    def stream_refused(self, scope: Scope, why: str) -> None:
        self.refused.labels(route_of(scope), why).inc()

    # -- HubObserver ------------------------------------------------------------

    def hub_subscribers(self, hub: str, change: int) -> None:
        self.hub_subscribers_gauge.labels(hub).inc(change)

    def hub_queue_depth(self, hub: str, depth: int) -> None:
        self.hub_queue_gauge.labels(hub).set(depth)

    def hub_overflow(self, hub: str) -> None:
        self.hub_overflows.labels(hub).inc()

    # -- /metrics ---------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app to mount at ``/metrics`` (the text exposition format)."""
        if scope["type"] != "http":
            return
        body = await anyio.to_thread.run_sync(self.exposition)  # reads files: not on the loop
        await send_whole(send, 200, body, CONTENT_TYPE_LATEST)

    def exposition(self) -> bytes:
        """The current figures: this process's, or every worker's in
        multiprocess mode."""
        folder = multiprocess_dir()
        if folder is None:
            return bytes(generate_latest(self.registry))
        forget_dead_workers(folder)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))


def forget_dead_workers(folder: str) -> None:
    """Drop the live gauges of processes that no longer exist (killed workers)."""
    pids = {int(m.group(1)) for path in glob.glob(os.path.join(folder, "gauge_live*_*.db"))
            if (m := _LIVE_GAUGE_FILE.search(path))}
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True

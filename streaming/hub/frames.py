"""The bytes a hub sends, and its two random spreads: pure functions.

An event is encoded once, when it is published (``encode_body``: its
``event`` and ``data`` lines and the blank line, WHATWG HTML 9.2.6); a
process puts the ``id`` line in front once per event (``framed``) and the
same bytes go to every subscriber of that topic. SSE fields may come in any
order within a block, so the id line can lead.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace

from streaming.encoders.sse import ServerSentEvent, encode_event
from streaming.exceptions import InvalidTopicError
from streaming.resume import RESET_EVENT

_TOPIC = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,128}")


def check_topic(topic: object) -> str:
    """Return ``topic`` if it is a valid topic name, else raise
    ``InvalidTopicError``. Topics become Redis keys and SSE ids: a short,
    plain alphabet keeps both unambiguous."""
    if type(topic) is not str or not _TOPIC.fullmatch(topic):
        raise InvalidTopicError(
            f"a topic is 1-128 letters, digits or '_.:@/+=-', not {topic!r:.80}")
    return topic


def encode_body(data: object, event: str | None) -> bytes:
    """The event's SSE block without its id: ``str`` data as it is, anything
    else as compact JSON. Raises ``SSEEncodingError`` for an event name the
    format cannot carry, ``TypeError``/``ValueError`` for data JSON cannot."""
    text = data if type(data) is str else json.dumps(
        data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return encode_event(ServerSentEvent(data=text, event=event))


def framed(event_id: str, body: bytes) -> bytes:
    """``body`` with its ``id`` line in front."""
    return b"id: " + event_id.encode() + b"\n" + body


def id_only(event_id: str) -> bytes:
    """A block with only an id: browsers set ``lastEventId`` and dispatch
    nothing (9.2.6 "dispatch the event": an empty data buffer returns after
    the last event ID is set), so a client that reconnects before any event
    still resumes from where it started."""
    return b"id: " + event_id.encode() + b"\n\n"


def reset_frame(event_id: str, topic: str) -> bytes:
    """The ``RESET_EVENT`` for ``topic``: events were lost, rebuild from the
    current state. Its id is the position the following events continue."""
    return framed(event_id, encode_event(ServerSentEvent(data=topic, event=RESET_EVENT)))


def drain_frame(final: object, retry_ms: int) -> bytes:
    """The drain's final item with a ``retry`` hint (milliseconds); a final
    that is not an event is sent as it is (bytes) or as its data."""
    if isinstance(final, ServerSentEvent):
        return encode_event(replace(final, retry=retry_ms))
    if isinstance(final, bytes):
        return final
    return encode_event(ServerSentEvent(data=str(final), retry=retry_ms))


def spread_retry(spread: tuple[int, int], rng: random.Random) -> int:
    """A reconnection delay (ms) drawn uniformly from ``spread``, so the
    subscribers of a restarting fleet come back over a window rather than
    all at once."""
    low, high = spread
    return rng.randint(low, high)


def backoff(attempt: int, rng: random.Random, base: float = 0.1, cap: float = 10.0) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 first): exponential up
    to ``cap``, half of it fixed and half random ("equal jitter"), so processes
    that lost the same server neither hammer it nor retry in step."""
    delay = min(cap, base * 2.0 ** min(attempt, 32))
    return delay / 2 + rng.uniform(0.0, delay / 2)

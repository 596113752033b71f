"""Where a client is in a topic: positions, and the SSE ids that carry them.

Pure values, no I/O. A topic is a contiguous sequence of events: the first one
published has offset 1, the next 2, and so on, inside an *epoch*, a random name
the topic gets when its history is created. When the history is lost (the
Redis server restarted empty or was flushed, the topic expired) the next
publish starts a new epoch, so an old position can never be mistaken for a
new one: Centrifugo's (offset, epoch) stream position, kept here as a small
frozen dataclass with its own text form.

The SSE ``id`` of an event is the text form of the position after it. For a
subscription to one topic that is ``Position.format()`` (so the id an event
arrives with is the id ``Hub.publish`` returned); for several topics it is a
``Cursor``: one position per topic plus a tag naming the topic list, so an id
minted for another subscription is recognised as foreign. Ids come back in the
``Last-Event-ID`` request header, i.e. from the network: they are parsed once,
here, and anything malformed or foreign parses to ``None`` (a fresh start).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from streaming.exceptions import StreamingConfigError

#: Epoch names: up to 8 lower-case letters and digits (``new_epoch`` makes 8).
_EPOCH = r"[0-9a-z]{1,8}"
#: Offsets: decimal, no sign, no leading zero, below 2**63 (Redis' integer range).
_OFFSET = r"0|[1-9][0-9]{0,18}"
_POSITION = re.compile(rf"({_EPOCH})-({_OFFSET})")
_MAX_OFFSET = 2**63 - 1
_EPOCH_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

#: Topics per subscription: every topic's position rides in one SSE id, and a
#: ``Last-Event-ID`` is at most ``MAX_LAST_EVENT_ID`` (256) characters long.
MAX_TOPICS = 8


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """The offset of the last event a reader has, in a topic's ``epoch``.

    ``offset`` 0 means "before the first event". Positions compare by epoch
    and offset, but only positions of one epoch are comparable in meaning:
    callers check ``epoch`` first.
    """

    epoch: str
    offset: int

    def __post_init__(self) -> None:
        if not re.fullmatch(_EPOCH, self.epoch):
            raise StreamingConfigError(
                f"an epoch is 1-8 lower-case letters or digits, not {self.epoch!r}")
        if type(self.offset) is not int or not 0 <= self.offset <= _MAX_OFFSET:
            raise StreamingConfigError(f"an offset is an int in 0..2**63-1, not {self.offset!r}")

    def format(self) -> str:
        return f"{self.epoch}-{self.offset}"

    @classmethod
    def parse(cls, text: str | None) -> Position | None:
        """The position ``text`` names, or ``None`` when it is not one."""
        if text is None or len(text) > 28:
            return None
        match = _POSITION.fullmatch(text)
        if match is None:
            return None
        offset = int(match[2])
        return cls(match[1], offset) if offset <= _MAX_OFFSET else None

    def next(self) -> Position:
        return Position(self.epoch, self.offset + 1)


def new_epoch() -> str:
    """A fresh random epoch name: 8 characters, about 41 bits."""
    return "".join(secrets.choice(_EPOCH_ALPHABET) for _ in range(8))


@dataclass(frozen=True, slots=True)
class Cursor:
    """Positions in several topics: the SSE id of a multi-topic subscription.

    Text form: ``<tag>~<position>,<position>...`` in the subscription's topic
    order, where the tag is a short hash of the topic list: an id from a
    subscription to other topics (or the same topics in another order) has
    another tag and parses to ``None``.
    """

    topics: tuple[str, ...]
    positions: tuple[Position, ...]

    def format(self) -> str:
        joined = ",".join(position.format() for position in self.positions)
        return f"{topics_tag(self.topics)}~{joined}"

    @classmethod
    def parse(cls, text: str | None, topics: tuple[str, ...]) -> Cursor | None:
        if text is None:
            return None
        tag, separator, joined = text.partition("~")
        if not separator or tag != topics_tag(topics):
            return None
        parts = joined.split(",")
        if len(parts) != len(topics):
            return None
        positions = tuple(Position.parse(part) for part in parts)
        if any(position is None for position in positions):
            return None
        return cls(topics, positions)  # type: ignore[arg-type]  # None ruled out above

    def as_mapping(self) -> Mapping[str, Position]:
        return dict(zip(self.topics, self.positions, strict=True))


def topics_tag(topics: tuple[str, ...]) -> str:
    """8 hex characters naming an ordered topic list."""
    return hashlib.blake2b("\0".join(topics).encode(), digest_size=4).hexdigest()


def parse_last_event_id(text: str | None, topics: tuple[str, ...]) -> dict[str, Position]:
    """The client's position in each of ``topics`` according to its
    ``Last-Event-ID``; empty (a fresh start) for a missing, malformed or
    foreign id. One topic: a bare position; several: a ``Cursor``."""
    if len(topics) == 1:
        position = Position.parse(text)
        return {} if position is None else {topics[0]: position}
    cursor = Cursor.parse(text, topics)
    return {} if cursor is None else dict(cursor.as_mapping())


def format_id(topics: tuple[str, ...], positions: Mapping[str, Position]) -> str:
    """The SSE id for ``positions`` (one per topic) in a subscription to ``topics``."""
    if len(topics) == 1:
        return positions[topics[0]].format()
    return Cursor(topics, tuple(positions[topic] for topic in topics)).format()

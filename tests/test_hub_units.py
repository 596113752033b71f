"""The hub's pure parts: positions and ids, history completeness, frames,
backoff and the retry spread, settings. Table tests, no event loop."""

from __future__ import annotations

import random

import pytest

from streaming import SSEParser
from streaming.exceptions import InvalidTopicError, SSEEncodingError, StreamingConfigError
from streaming.hub import Cursor, Entry, Hub, Position
from streaming.hub.backend import history_after
from streaming.hub.frames import (
    backoff,
    check_topic,
    drain_frame,
    encode_body,
    framed,
    id_only,
    reset_frame,
    spread_retry,
)
from streaming.hub.position import MAX_TOPICS, format_id, parse_last_event_id
from streaming.resume import MAX_LAST_EVENT_ID, RESET_EVENT


@pytest.mark.parametrize(("text", "expected"), [
    ("abc123-0", Position("abc123", 0)),
    ("k-42", Position("k", 42)),
    ("abcdefgh-9223372036854775807", Position("abcdefgh", 2**63 - 1)),
    ("abcdefgh-9223372036854775808", None),   # past Redis' integer range
    ("abcdefghi-1", None),                    # epoch too long
    ("ABC-1", None),                          # upper case is never minted
    ("abc-01", None),                         # leading zero: one text per position
    ("abc--1", None), ("abc-+1", None), ("abc- 1", None), ("abc-1 ", None),
    ("abc-١", None),                          # a non-ASCII digit
    ("-1", None), ("abc-", None), ("abc", None), ("", None), (None, None),
    ("a" * 300, None),
])
def test_position_parse(text: str | None, expected: Position | None) -> None:
    assert Position.parse(text) == expected
    if expected is not None:
        assert expected.format() == text


def test_position_refuses_values_it_could_not_format() -> None:
    for epoch, offset in (("", 1), ("a b", 1), ("abc", -1), ("abc", 2**63), ("abc", True)):
        with pytest.raises(ValueError, match=r"an (epoch|offset) is"):
            Position(epoch, offset)


def test_cursor_round_trip_and_foreign_ids() -> None:
    topics = ("room:1", "alerts")
    cursor = Cursor(topics, (Position("aaaa", 3), Position("bbbb", 0)))
    text = cursor.format()
    assert Cursor.parse(text, topics) == cursor
    assert Cursor.parse(text, ("alerts", "room:1")) is None      # another order
    assert Cursor.parse(text, ("room:1", "other")) is None       # other topics
    assert Cursor.parse(text.replace("aaaa-3", "aaaa-x"), topics) is None
    assert Cursor.parse(text + ",cccc-1", topics) is None
    assert Cursor.parse("aaaa-3", topics) is None


def test_the_longest_id_fits_a_last_event_id() -> None:
    topics = tuple(f"t{i}" for i in range(MAX_TOPICS))
    widest = {topic: Position("zzzzzzzz", 2**63 - 1) for topic in topics}
    assert len(format_id(topics, widest)) <= MAX_LAST_EVENT_ID


def test_parse_last_event_id_for_one_and_several_topics() -> None:
    assert parse_last_event_id("abc-5", ("a",)) == {"a": Position("abc", 5)}
    assert parse_last_event_id("garbage", ("a",)) == {}
    assert parse_last_event_id(None, ("a", "b")) == {}
    ids = format_id(("a", "b"), {"a": Position("e", 1), "b": Position("f", 2)})
    assert parse_last_event_id(ids, ("a", "b")) == {"a": Position("e", 1), "b": Position("f", 2)}
    assert parse_last_event_id(ids, ("a",)) == {}


def _entries(epoch: str, *offsets: int) -> list[Entry]:
    return [Entry(Position(epoch, offset), b"data: x\n\n") for offset in offsets]


@pytest.mark.parametrize(("after", "top", "held", "complete"), [
    (None, Position("e", 5), [], True),
    (Position("e", 5), Position("e", 5), [], True),              # up to date
    (Position("e", 3), Position("e", 5), _entries("e", 4, 5), True),
    (Position("e", 1), Position("e", 5), _entries("e", 3, 4, 5), False),   # 2 trimmed
    (Position("e", 9), Position("e", 5), [], False),              # past the top: forged
    (Position("old", 3), Position("e", 2), _entries("e", 1, 2), False),    # another epoch
    (Position("old", 0), Position("e", 2), _entries("e", 1, 2), True),     # had seen nothing
    (Position("old", 0), Position("e", 0), [], True),
    (Position("old", 0), Position("e", 5), _entries("e", 4, 5), False),
])
def test_history_completeness(after: Position | None, top: Position, held: list[Entry],
                              complete: bool) -> None:
    history = history_after(after, top, held)
    assert history.complete is complete
    assert history.top == top
    assert list(history.entries) == (held if after is not None else [])


@pytest.mark.parametrize("topic", ["room:1", "a", "user/42@eu", "x" * 128, "a.b_c+d=e-f"])
def test_valid_topics(topic: str) -> None:
    assert check_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "x" * 129, "a b", "a\nb", "{a}", "é", 5, None, b"a"])
def test_invalid_topics(topic: object) -> None:
    with pytest.raises(InvalidTopicError):
        check_topic(topic)


def test_frames_parse_as_the_events_they_stand_for() -> None:
    parser = SSEParser()
    body = encode_body({"text": "hi\nthere", "n": 1}, "message")
    events = parser.feed(framed("e-1", body) + id_only("e-2") + reset_frame("f-0", "room:1")
                         + framed("f-1", encode_body("two\nlines", None)))
    assert [(e.event, e.data, e.id) for e in events] == [
        ("message", '{"text":"hi\\nthere","n":1}', "e-1"),
        (RESET_EVENT, "room:1", "f-0"),
        (None, "two\nlines", "f-1"),
    ]


def test_encode_body_refuses_what_the_format_cannot_carry() -> None:
    with pytest.raises(SSEEncodingError):
        encode_body("x", "bad\nname")
    with pytest.raises(ValueError, match="Out of range float"):
        encode_body({"n": float("nan")}, None)


def test_drain_frame_carries_the_retry_hint() -> None:
    from streaming.drain import SHUTDOWN_EVENT

    events = SSEParser().feed(drain_frame(SHUTDOWN_EVENT, 4321))
    assert [(e.event, e.retry) for e in events] == [("shutdown", 4321)]
    assert drain_frame(b": bye\n", 5) == b": bye\n"


def test_retry_spread_covers_the_window() -> None:
    rng = random.Random(7)
    draws = [spread_retry((1000, 3000), rng) for _ in range(2000)]
    assert min(draws) >= 1000 and max(draws) <= 3000
    assert len(set(draws)) > 500                   # spread, not one value
    assert spread_retry((5, 5), rng) == 5


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (20, 10.0), (10_000, 10.0)]:
        draws = [backoff(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert max(draws) - min(draws) > ceiling / 10   # jittered


@pytest.mark.parametrize("settings", [
    {"history": -1}, {"history": 1.5}, {"history_ttl": 0}, {"history_ttl": float("inf")},
    {"max_queued_events": 0}, {"max_queued_bytes": 10}, {"timeout": 0},
    {"timeout": float("nan")}, {"retry_spread": (5, 1)}, {"retry_spread": (-1, 5)},
    {"retry_spread": (1.5, 2)}, {"name": ""}, {"name": 7}, {"report_every": 0},
    {"report_every": float("inf")},
])
def test_settings_that_cannot_work(settings: dict[str, object]) -> None:
    with pytest.raises(StreamingConfigError):
        Hub(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("topics", [[], ["a", "a"], [f"t{i}" for i in range(MAX_TOPICS + 1)],
                                    ["ok", "not ok"]])
def test_subscriptions_that_cannot_work(topics: list[str]) -> None:
    with pytest.raises(InvalidTopicError):
        Hub().subscriber(topics)


def test_the_hub_needs_no_redis_client_until_a_redis_backend_is_made() -> None:
    import subprocess
    import sys

    from tests.servers import ROOT

    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'coredis':\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from streaming.exceptions import StreamingConfigError\n"
        "from streaming.hub import Hub, RedisBackend\n"
        "Hub()\n"
        "try:\n"
        "    RedisBackend()\n"
        "except StreamingConfigError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert "the 'redis' extra" in result.stdout, result.stderr


async def test_a_local_topic_applies_entries_in_order_once() -> None:
    from streaming.hub.backend import History
    from streaming.hub.topics import LocalTopic, Subscription

    topic = LocalTopic("t", cache=8)
    one, both = Subscription(("t",), 100, 1 << 20), Subscription(("t", "u"), 100, 1 << 20)
    both.view = {"t": Position("e", 0), "u": Position("f", 4)}
    topic.add(one)
    topic.add(both)
    assert topic.start(Position("e", 0))
    entries = {n: Entry(Position("e", n), f"data: {n}\n\n".encode()) for n in range(1, 6)}
    assert [topic.apply(entries[n]) for n in (1, 2, 2, 1, 3)] == [True] * 5   # duplicates dropped
    assert topic.apply(entries[5]) is False                                   # a gap: resync
    assert topic.apply(Entry(Position("x", 1), b"data: new\n\n")) is False    # another epoch
    topic.catch_up(History(Position("e", 5), (entries[4], entries[5]), True))
    topic.catch_up(History(Position("g", 9), (Entry(Position("g", 9), b"data: g\n\n"),), False))
    parsed = SSEParser().feed(b"".join(one.frames))
    assert [(e.event, e.id, e.data) for e in parsed] == [
        (None, "e-1", "1"), (None, "e-2", "2"), (None, "e-3", "3"), (None, "e-4", "4"),
        (None, "e-5", "5"), (RESET_EVENT, "g-8", "t"), (None, "g-9", "g")]
    ids = [e.id for e in SSEParser().feed(b"".join(both.frames))]
    assert [parse_last_event_id(i, ("t", "u"))["t"].format() for i in ids] == [
        "e-1", "e-2", "e-3", "e-4", "e-5", "g-8", "g-9"]
    assert {parse_last_event_id(i, ("t", "u"))["u"] for i in ids} == {Position("f", 4)}
    # A topic that had seen nothing adopts a new epoch without a reset.
    fresh = LocalTopic("n", cache=0)
    fresh.start(Position("old", 0))
    assert fresh.apply(Entry(Position("new", 1), b"data: x\n\n"))
    assert fresh.position == Position("new", 1)


async def test_a_subscription_queue_overflows_by_events_and_by_bytes() -> None:
    from streaming.hub.topics import Ended, Subscription

    by_events, by_bytes = Subscription(("t",), 3, 1 << 20), Subscription(("t",), 100, 1024)
    for _ in range(3):
        by_events.push(b"x" * 10)
    assert by_events.ended is None and len(by_events.frames) == 3
    by_events.push(b"x")
    by_bytes.push(b"x" * 1000)
    by_bytes.push(b"x" * 100)
    for queue in (by_events, by_bytes):
        assert queue.ended is Ended.OVERFLOW and queue.frames == [] and queue.size == 0
        queue.push(b"late")                          # ignored once ended
        assert queue.frames == [] and queue.take() == []

"""Resuming, pure: ``read_last_event_id`` on hand-made scopes, and ``ReplayBuffer``
bounded by count and by age on an injected clock. Through a response:
test_sse_response.py; through the example ticker: test_sse_ticker.py."""

from __future__ import annotations

import logging

import pytest

from streaming import (
    MissingEventIdError,
    Replay,
    ReplayBuffer,
    ServerSentEvent,
    StreamingConfigError,
    read_last_event_id,
)
from streaming._types import Scope


def scope(*headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "headers": list(headers)}


@pytest.mark.parametrize(("value", "read"), [
    pytest.param(b"41", "41", id="an id"),
    pytest.param("x" * 256, "x" * 256, id="256 characters"),
    pytest.param("é" * 256, "é" * 256, id="256 characters, 512 bytes"),
    pytest.param("a b~", "a b~", id="space and tilde"),
    pytest.param("ünïcode", "ünïcode", id="UTF-8"),
    pytest.param(b"", None, id="empty"),
    pytest.param("x" * 257, None, id="257 characters"),
    pytest.param("a\x1fb", None, id="a C0 control"),
    pytest.param("a\x7fb", None, id="DEL"),
    pytest.param(b"\xff\xfe", None, id="not UTF-8"),
])
def test_last_event_id_is_validated(value: str | bytes, read: str | None) -> None:
    raw = value.encode() if isinstance(value, str) else value
    assert read_last_event_id(scope((b"accept", b"*/*"), (b"last-event-id", raw))) == read


def test_no_header_and_no_headers_are_a_fresh_start() -> None:
    assert read_last_event_id(scope((b"accept", b"*/*"))) is None
    assert read_last_event_id({"type": "http"}) is None


def test_the_first_last_event_id_header_counts() -> None:
    assert read_last_event_id(scope((b"last-event-id", b"1"), (b"last-event-id", b"2"))) == "1"


@pytest.mark.parametrize(("value", "problem"), [
    (b"\xff", "not UTF-8"),
    (b"x" * 257, "longer than 256 characters"),
    (b"a\nb", "holding a control character"),
])
def test_an_ignored_header_is_logged_with_the_reason(
        caplog: pytest.LogCaptureFixture, value: bytes, problem: str) -> None:
    with caplog.at_level(logging.INFO, logger="streaming"):
        assert read_last_event_id(scope((b"last-event-id", value))) is None
    assert caplog.messages == [f"ignoring a Last-Event-ID header that is {problem}; starting fresh"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> ServerSentEvent:
    return ServerSentEvent(data=f"tick {n}", id=str(n))


def held(buffer: ReplayBuffer) -> list[str | None]:
    return [e.id for e in buffer.since("no such id").events]


def test_events_older_than_the_max_age_are_dropped() -> None:
    clock = Clock()
    buffer = ReplayBuffer(max_age=10, clock=clock)
    buffer.append(event(1))
    clock.now += 6
    buffer.append(event(2))
    clock.now += 5  # event 1 is 11 s old, event 2 is 5 s old
    assert len(buffer) == 1
    assert held(buffer) == ["2"]
    assert buffer.since("1") == Replay((event(2),), gap=True)  # expired: a gap


def test_an_event_exactly_max_age_old_is_still_held() -> None:
    clock = Clock()
    buffer = ReplayBuffer(max_age=10, clock=clock)
    buffer.append(event(1))
    clock.now += 10
    assert buffer.since("1") == Replay((), gap=False)
    clock.now += 0.001
    assert buffer.since("1") == Replay((), gap=True)


def test_without_a_max_age_events_never_expire() -> None:
    clock = Clock()
    buffer = ReplayBuffer(max_age=None, clock=clock)
    buffer.append(event(1))
    clock.now += 1e9
    assert len(buffer) == 1
    assert buffer.since("1") == Replay((), gap=False)


def test_the_default_max_age_is_five_minutes() -> None:
    clock = Clock()
    buffer = ReplayBuffer(clock=clock)
    buffer.append(event(1))
    clock.now += 300
    assert len(buffer) == 1
    clock.now += 1
    assert len(buffer) == 0


def test_only_the_most_recent_max_events_are_held() -> None:
    buffer = ReplayBuffer(max_events=3, clock=Clock())
    for n in range(1, 6):
        buffer.append(event(n))
    assert held(buffer) == ["3", "4", "5"]
    assert buffer.since("4") == Replay((event(5),), gap=False)
    assert buffer.since("2") == Replay((event(3), event(4), event(5)), gap=True)


def test_the_default_holds_a_thousand_events() -> None:
    buffer = ReplayBuffer(clock=Clock())
    for n in range(1001):
        buffer.append(event(n))
    assert len(buffer) == 1000
    assert held(buffer)[0] == "1"


def test_since_replays_what_followed_the_id() -> None:
    buffer = ReplayBuffer(clock=Clock())
    for n in range(1, 4):
        buffer.append(event(n))
    assert buffer.since("1") == Replay((event(2), event(3)), gap=False)
    assert buffer.since("3") == Replay((), gap=False)  # up to date


def test_a_fresh_client_replays_nothing() -> None:
    buffer = ReplayBuffer(clock=Clock())
    buffer.append(event(1))
    assert buffer.since(None) == Replay((), gap=False)


def test_an_empty_buffer_is_a_gap_for_any_id() -> None:
    assert ReplayBuffer(clock=Clock()).since("7") == Replay((), gap=True)


@pytest.mark.parametrize("missing", [None, ""])
def test_an_event_without_an_id_is_refused(missing: str | None) -> None:
    buffer = ReplayBuffer(clock=Clock())
    with pytest.raises(MissingEventIdError, match=r"^only events with an id can be replayed$"):
        buffer.append(ServerSentEvent(data="x", id=missing))
    buffer.append(event(1))
    with pytest.raises(MissingEventIdError):
        buffer.append(ServerSentEvent(data="x", id=missing))
    assert held(buffer) == ["1"]  # the event before it was kept, and only it


@pytest.mark.parametrize("max_events", [0, -1, 1.5, True, "10"])
def test_max_events_must_be_a_positive_int(max_events: object) -> None:
    with pytest.raises(StreamingConfigError, match="max_events must be an int >= 1"):
        ReplayBuffer(max_events=max_events)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_age", [0, -1, "300", float("inf")])
def test_max_age_must_be_a_positive_number_of_seconds(max_age: object) -> None:
    with pytest.raises(StreamingConfigError, match=r"^max_age must be"):
        ReplayBuffer(max_age=max_age)  # type: ignore[arg-type]


def test_one_event_is_enough() -> None:
    buffer = ReplayBuffer(max_events=1, clock=Clock())
    buffer.append(event(1))
    buffer.append(event(2))
    assert held(buffer) == ["2"]

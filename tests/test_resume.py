"""``ReplayBuffer`` on its own: bounded by count and by age, on an injected clock."""

from __future__ import annotations

import pytest

from streaming import (
    MissingEventIdError,
    Replay,
    ReplayBuffer,
    ServerSentEvent,
    StreamingConfigError,
)


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
    buffer.extend(event(n) for n in range(1, 6))
    assert held(buffer) == ["3", "4", "5"]
    assert buffer.since("4") == Replay((event(5),), gap=False)
    assert buffer.since("2") == Replay((event(3), event(4), event(5)), gap=True)


def test_the_default_holds_a_thousand_events() -> None:
    buffer = ReplayBuffer(clock=Clock())
    buffer.extend(event(n) for n in range(1001))
    assert len(buffer) == 1000
    assert held(buffer)[0] == "1"


def test_since_replays_what_followed_the_id() -> None:
    buffer = ReplayBuffer(clock=Clock())
    buffer.extend(event(n) for n in range(1, 4))
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
    with pytest.raises(MissingEventIdError, match="only events with an id"):
        buffer.append(ServerSentEvent(data="x", id=missing))
    with pytest.raises(MissingEventIdError):
        buffer.extend([event(1), ServerSentEvent(data="x", id=missing)])
    assert held(buffer) == ["1"]  # the events before it were kept, and only them


@pytest.mark.parametrize("max_events", [0, -1, 1.5, True, "10"])
def test_max_events_must_be_a_positive_int(max_events: object) -> None:
    with pytest.raises(StreamingConfigError, match="max_events must be an int >= 1"):
        ReplayBuffer(max_events=max_events)  # type: ignore[arg-type]


def test_one_event_is_enough() -> None:
    buffer = ReplayBuffer(max_events=1, clock=Clock())
    buffer.extend([event(1), event(2)])
    assert held(buffer) == ["2"]

"""The keep-alive and slow-client decision, table-tested without a clock or a loop."""

from __future__ import annotations

import math

import pytest

from streaming.driver.watchdog import SLACK, Action, Stamp, Verdict, Watchdog

PING, TIMEOUT = 5.0, 8.0

#: (looks: (now, sent, busy, stamp)), then the verdict of the last look.
#: The stream starts at 0; ``PING`` and ``TIMEOUT`` as above.
CASES = [
    pytest.param([(1.0, 0, True, None)], Verdict(Action.WAIT, 5.0),
                 id="idle before the first chunk: next look by half the timeout"),
    pytest.param([(5.0, 0, True, None)], Verdict(Action.PING, 9.0),
                 id="idle from the start: a ping at 5 s"),
    pytest.param([(1.0, 1, True, Stamp(0.5, 0))], Verdict(Action.WAIT, 5.0),
                 id="the first chunk was stamped: the ping falls due 5 s after it"),
    pytest.param([(1.0, 1, True, Stamp(0.5, 0)), (5.5, 1, True, None)],
                 Verdict(Action.PING, 9.5), id="5 s after the stamped chunk: ping"),
    pytest.param([(1.0, 3, True, Stamp(0.5, 0))], Verdict(Action.WAIT, 5.0),
                 id="three sends since the stamp: the last one ended by now (1 s)"),
    pytest.param([(1.0, 1, True, None), (4.9, 2, True, Stamp(4.8, 1)), (5.5, 2, True, None)],
                 Verdict(Action.WAIT, 9.5), id="an event just before the ping was due: none"),
    pytest.param([(1.0, 0, False, None)], Verdict(Action.WAIT, 5.0),
                 id="sending, no progress yet: look again by half the timeout"),
    pytest.param([(1.0, 0, False, None), (7.0, 0, False, None)], Verdict(Action.WAIT, 9.0),
                 id="the same send still running: next look when it would time out"),
    pytest.param([(1.0, 0, False, None), (2.0, 0, False, None), (9.0, 0, False, None)],
                 Verdict(Action.TIME_OUT, math.inf), id="stuck for the timeout: give up"),
    pytest.param([(1.0, 0, True, None), (2.0, 0, False, Stamp(1.5, 0))], Verdict(Action.WAIT, 3.0),
                 id="the stamped send still runs: timed from its start"),
    pytest.param([(1.0, 0, True, None), (9.5, 0, False, Stamp(1.5, 0))],
                 Verdict(Action.TIME_OUT, math.inf),
                 id="a stamped send stuck for the timeout: give up at once"),
    pytest.param([(1.0, 0, True, None), (9.0, 0, False, Stamp(1.5, 0))],
                 Verdict(Action.WAIT, 9.5), id="not yet: exactly when it would be due"),
    pytest.param([(1.0, 4, False, None), (2.0, 9, False, Stamp(1.1, 4)), (3.0, 15, False, None)],
                 Verdict(Action.WAIT, 4.0), id="messages flowing: a look every timeout/8"),
    pytest.param([(1.0, 4, False, None), (2.0, 9, False, Stamp(1.1, 4)), (3.0, 9, False, None),
                  (7.0, 9, False, None)], Verdict(Action.WAIT, 10.0),
                 id="a stall after flowing: timed from the last look that saw progress"),
    pytest.param([(1.0, 4, False, None), (2.0, 9, False, Stamp(1.1, 4)), (3.0, 9, False, None),
                  (7.0, 9, False, None), (10.0, 9, False, None)],
                 Verdict(Action.TIME_OUT, math.inf),
                 id="then cut, at most timeout/8 after the stall began"),
    pytest.param([(1.0, 0, False, None), (2.0, 0, True, None), (9.5, 0, False, None)],
                 Verdict(Action.WAIT, 13.5),
                 id="busy in between: a send seen after that began no earlier"),
]


@pytest.mark.parametrize(("looks", "verdict"), CASES)
def test_watchdog(looks: list[tuple[float, int, bool, Stamp | None]], verdict: Verdict) -> None:
    watchdog = Watchdog(PING, TIMEOUT, 0.0)
    results = [watchdog.look(*look) for look in looks]
    assert results[-1] == verdict


def test_a_timer_that_fires_up_to_slack_early_still_counts() -> None:
    """Clock granularity: a look that comes ``SLACK`` before a ping or a
    timeout falls due acts as if on time, so it does not wait a whole step more."""
    assert Watchdog(PING, TIMEOUT, 0.0).look(PING - SLACK, 0, True, None).action is Action.PING
    sending = Watchdog(None, TIMEOUT, 0.0).look(TIMEOUT - SLACK, 0, False, Stamp(0.0, 0))
    assert sending.action is Action.TIME_OUT


def test_the_first_look() -> None:
    assert Watchdog(PING, TIMEOUT, 10.0).first_look() == 11.0  # timeout/8 before ping
    assert Watchdog(PING, None, 10.0).first_look() == 15.0
    assert Watchdog(None, TIMEOUT, 10.0).first_look() == 11.0
    assert not Watchdog(None, None, 10.0).active


def test_pings_only_keep_an_idle_stream_alive() -> None:
    """Without a send timeout, a producer parked at a yield never gets a ping."""
    watchdog = Watchdog(PING, None, 0.0)
    assert watchdog.look(5.0, 0, False, None) == Verdict(Action.WAIT, 10.0)
    assert watchdog.look(10.0, 0, True, None) == Verdict(Action.PING, 15.0)


def test_without_pings_an_idle_stream_is_looked_at_by_half_the_timeout() -> None:
    watchdog = Watchdog(None, TIMEOUT, 0.0)
    assert watchdog.look(1.0, 1, True, Stamp(0.5, 0)) == Verdict(Action.WAIT, 5.0)


def test_flowing_events_never_ping() -> None:
    """An event every second for a minute, pings every 5 s: each look sees
    progress, so the silence never lasts 5 s."""
    watchdog = Watchdog(PING, TIMEOUT, 0.0)
    due, pings = watchdog.first_look(), 0
    for sent, second in enumerate(range(1, 61), start=1):
        while due <= second:
            stamp = Stamp(math.floor(due) + 1.0, sent) if due < second else None
            verdict = watchdog.look(due, sent, True, stamp)
            pings += verdict.action is Action.PING
            due = verdict.next_look
    assert pings == 0


@pytest.mark.parametrize("timeout", [1.0, 2.0, 4.0, 30.0])
def test_a_reader_that_stops_at_once_is_cut_within_an_eighth_of_the_timeout(
        timeout: float) -> None:
    """A fast producer; the client stops reading at 0.01 s: every look sees the
    producer parked at its yield (the driver in send()), the count stops."""
    watchdog = Watchdog(None, timeout, 0.0)
    due, stalled_at, cut = watchdog.first_look(), 0.01, None
    while cut is None:
        sent = 1000 if due >= stalled_at else 0
        verdict = watchdog.look(due, sent, False, None)
        cut = due if verdict.action is Action.TIME_OUT else None
        due = verdict.next_look
    assert timeout <= cut - stalled_at <= timeout * 9 / 8

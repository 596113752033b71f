"""The reliability suite's small run (``python -m benchmarks.load --ci``):
200 streams x 3 rounds with 30% leaving abruptly, every worker thread busy,
stalled readers, SIGTERM with open streams, and a 60 s soak, against real
uvicorn processes, ours and Starlette's ``StreamingResponse`` side by side.

It asserts behaviour, never speed: no producer left running, no thread
leaked round over round, no error, stalled readers cut by the send timeout,
every stream drained on SIGTERM. The figures (RSS, timings, the peer's
leftovers) are printed; the full run is ``python -m benchmarks.load``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("load")
    done = subprocess.run([sys.executable, "-m", "benchmarks.load", "--ci", "--no-latest",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
    (saved,) = out.glob("load-*.json")
    return dict(json.loads(saved.read_text()))


def test_rounds_leave_no_producer_running_and_no_thread_behind(results: dict[str, Any]) -> None:
    ours = results["layers"]["streaming"]["rounds"]
    for row in ours["rounds"]:
        assert row["errors"] == 0, row
        assert row["cut"] == 0, row  # every stream that stayed got its terminator
        assert row["live_after"] == 0, row
    settled = results["layers"]["streaming"]["threads_settled"]
    assert settled["threads"] <= settled["target"], settled  # every worker thread ended
    print(f"\nfalse 'yielded after the client disconnected' warnings: "
          f"{ours['late_yield_warnings']}")


def test_with_every_thread_busy_leavers_are_closed_off_the_event_loop(
        results: dict[str, Any]) -> None:
    saturated = results["layers"]["streaming"]["saturated"]
    assert saturated["live_after"] == 0, saturated
    assert saturated["finally_on_loop"] == 0, saturated


def test_stalled_readers_are_cut_by_the_send_timeout(results: dict[str, Any]) -> None:
    stalled = results["layers"]["streaming"]["stalled"]
    assert stalled["live_at_start"] == stalled["streams"]
    assert stalled["live_at_end"] == 0, stalled  # cut, while the readers still held on
    starlette = results["layers"]["starlette"]["stalled"]
    assert starlette["live_at_end"] == starlette["streams"]  # no send timeout there


def test_sigterm_drains_every_open_stream(results: dict[str, Any]) -> None:
    for row in results["sigterm"]:
        if row["layer"] == "streaming":
            assert row["final_event"] == row["streams"], row
            assert row["ends"] == {"complete": row["streams"]}, row


def test_the_soak_ends_clean(results: dict[str, Any]) -> None:
    soak = results["layers"]["streaming"]["soak"]
    assert soak["seconds"] == 60
    assert soak["errors"] == 0, soak["outcomes"]
    assert soak["live_after"] == 0
    assert len(soak["samples"]) >= 50  # RSS sampled every second

"""The benchmark suite still runs end to end: tiny sizes, the baseline and ours.

It starts real uvicorn servers and a raw-socket client, so it runs the suite in a
subprocess (``python -m benchmarks.run --smoke``) and only checks that every
measurement passed its byte/event/line checks and produced a figure. It asserts
no speed: benchmarks measure, tests assert behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def run_smoke(results_dir: Path, only: str = "streaming", module: str = "benchmarks.run"
              ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, "--smoke", "--only", only,
               "--results-dir", str(results_dir)]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the suite stops its servers on SIGTERM
        try:
            stdout, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        raise AssertionError(f"the smoke run took over {TIMEOUT} s:\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def figure_values(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {figure["key"]: figure["values"] for figure in results["figures"]}


def test_smoke_run_measures_every_figure_for_the_baseline_and_ours(tmp_path: Path) -> None:
    done = run_smoke(tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    [results_file] = tmp_path.glob("*.json")
    results = json.loads(results_file.read_text())
    assert results["failures"] == []
    assert [impl["name"] for impl in results["implementations"]] == ["raw", "streaming"]
    values = figure_values(results)
    for key, by_impl in values.items():
        assert by_impl["raw"].get("median") is not None, (key, by_impl["raw"])
    for key in ("small_1", "small_8", "large", "ndjson", "ttfb", "cleanup"):
        assert values[key]["streaming"]["ratio"] > 0, (key, values[key]["streaming"])
    # Our SSE response is measured once it exists, and reported until then.
    sse = values["sse"]["streaming"]
    assert sse.get("ratio", 0) > 0 or sse["status"].startswith("unavailable"), sse
    assert "| figure |" in done.stdout
    assert results_file.with_suffix(".md").exists()


def test_smoke_run_checks_litestar_and_aiohttp(tmp_path: Path) -> None:
    done = run_smoke(tmp_path, "litestar,aiohttp")

    assert done.returncode == 0, done.stderr[-3000:]
    [results_file] = tmp_path.glob("*.json")
    results = json.loads(results_file.read_text())
    assert results["failures"] == []
    values = figure_values(results)
    for key in ("small_1", "sync_1", "large", "sse", "ndjson", "ttfb"):
        for name in ("litestar", "aiohttp"):
            assert values[key][name]["ratio"] > 0, (key, name, values[key][name])
    # aiohttp by default does not cancel a handler whose client left.
    assert values["cleanup"]["aiohttp"]["status"].startswith("never")
    assert values["ping_p99"]["litestar"]["status"].startswith("n/a")


def test_cost_curve_smoke_run(tmp_path: Path) -> None:
    done = run_smoke(tmp_path, "streaming", "benchmarks.curve")

    assert done.returncode == 0, done.stderr[-3000:]
    [results_file] = tmp_path.glob("*.json")
    results = json.loads(results_file.read_text())
    assert results["failures"] == []
    for name in ("raw", "streaming"):
        medians = results["medians"][name]
        for key in ("chunks_1", "chunks_10", "cpu_10", "idle_kib", "idle_cpu", "idle_p99"):
            assert medians[key] > 0 or key == "idle_kib", (name, key, medians)
    for name in ("raw-fanout", "streaming-hub"):  # every subscriber got every event
        assert results["medians"][name]["hub_rate_20"] > 0, results["medians"][name]
    assert "| 10 streams x" in done.stdout


def test_batch_latency_measurement_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch_latency", "--count", "5", "--pause-ms", "1",
         "--repetitions", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "added by batching: median" in done.stdout
    assert "added by pulling several per thread round trip: median" in done.stdout


def test_setup_cost_measurement_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.setup_cost", "--responses", "20", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| loop", "| ours", "| starlette"]

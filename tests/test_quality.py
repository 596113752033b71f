"""mypy --strict and ruff run as part of the tests, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import ROOT


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_mypy_strict() -> None:
    result = run("mypy")  # files and strictness come from setup.cfg
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    folders = [f for f in ("streaming", "examples", "tests", "benchmarks") if (ROOT / f).is_dir()]
    result = run("ruff", "check", *folders)
    assert result.returncode == 0, result.stdout + result.stderr

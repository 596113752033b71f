"""The README's snippets work as written: the Quickstart's Starlette app under
uvicorn, the "Test your streams" file under pytest, and the demo's help text.
Each snippet is taken from README.md itself, so the README cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from examples.__main__ import main as demo_main
from tests.servers import ROOT, uvicorn_process

README = (ROOT / "README.md").read_text()


def python_block(containing: str) -> str:
    """The README's one python code block that contains ``containing``."""
    blocks: list[str] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S)
                         if containing in b]
    assert len(blocks) == 1, f"{len(blocks)} README blocks contain {containing!r}"
    return blocks[0]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A folder holding the Quickstart's ``app.py``, as a reader would save it."""
    (tmp_path / "app.py").write_text(python_block('Route("/simple", simple)'))
    return tmp_path


def test_the_quickstart_app_serves_as_the_readme_says(app_dir: Path) -> None:
    assert ".venv/bin/uvicorn app:app" in README
    with uvicorn_process("app:app", cwd=app_dir) as (_, url), \
            httpx.stream("GET", f"{url}/simple", timeout=10) as response:
        first = next(response.iter_lines())
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert first == "数据 0"


def test_the_test_your_streams_file_passes_as_written(app_dir: Path) -> None:
    (app_dir / "test_app.py").write_text(python_block("async def test_leaving_early"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_app.py"], cwd=app_dir, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout  # asyncio and trio: anyio runs every installed backend


def test_the_demo_help_is_plain_text_and_names_the_port(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    with pytest.raises(SystemExit):
        demo_main(["--help"])
    text = capsys.readouterr().out
    assert "--port PORT" in text and "--host HOST" in text
    assert "``" not in text
    assert "python -m examples --port 8080" in README

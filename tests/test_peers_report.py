"""The peer drift report's pure parts: pins, what the scratch environment
installs, reading pytest's junit report, and which claims changed.
(The whole command builds a virtualenv: it runs outside the suite.)"""

from __future__ import annotations

import pytest

from benchmarks.peers import (
    CONSTRAINTS,
    TOOLS,
    Result,
    changed,
    claim,
    format_report,
    read_junit,
    read_pins,
    scratch_requirements,
)
from tests.servers import ROOT

SETUP = """
[options]
install_requires =
    anyio>=4.7
[options.extras_require]
test =
    sse-starlette>=2.0
    uvicorn[standard]>=0.30
    mypy>=1.10
"""


def test_the_pins_name_every_peer_the_comparison_tests_assert() -> None:
    pins = read_pins(CONSTRAINTS.read_text())
    assert {"starlette", "sse-starlette", "fastapi", "uvicorn", "httpx", "openai"} <= pins.keys()
    assert pins.keys() >= TOOLS


def test_read_pins_refuses_a_range() -> None:
    assert read_pins("# c\nSSE_Starlette==3.7.1  # why\n\n") == {"sse-starlette": "3.7.1"}
    with pytest.raises(ValueError, match="not a pin"):
        read_pins("starlette>=1\n")


def test_the_scratch_environment_takes_the_newest_peers_and_the_pinned_tools() -> None:
    pins = {"sse-starlette": "3.7.1", "uvicorn": "0.55.0", "h11": "0.16.0", "mypy": "2.4.1"}
    assert scratch_requirements(SETUP, pins, []) == [
        "anyio>=4.7", "h11", "mypy==2.4.1", "sse-starlette>=2.0", "uvicorn[standard]>=0.30"]
    assert "sse-starlette==3.7.0" in scratch_requirements(SETUP, pins, ["sse-starlette==3.7.0"])


SIGTERM_TEST = "test_on_sigterm_the_peers_end_without_a_final_event"
JUNIT = f"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>
<testcase classname="tests.test_drain_sigterm" name="{SIGTERM_TEST}"/>
<testcase classname="tests.test_compare_sse" name="test_header_differences[trio]">
  <failure message="AssertionError: assert 'no-cache' == 'no-store'&#10;more">text</failure>
</testcase>
<testcase classname="tests.test_x" name="test_skipped"><skipped message="why"/></testcase>
</testsuite></testsuites>"""


def test_read_junit() -> None:
    results = read_junit(JUNIT)
    assert results == {
        f"tests/test_drain_sigterm.py::{SIGTERM_TEST}": Result("passed"),
        "tests/test_compare_sse.py::test_header_differences[trio]":
            Result("failed", "AssertionError: assert 'no-cache' == 'no-store'"),
        "tests/test_x.py::test_skipped": Result("skipped", "why"),
    }


def test_only_changed_outcomes_are_claims_that_changed() -> None:
    sigterm = f"tests/test_drain_sigterm.py::{SIGTERM_TEST}"
    same = "tests/test_compare_sse.py::test_header_differences[trio]"
    pinned = {sigterm: Result("passed"), same: Result("passed")}
    newest = {sigterm: Result("failed", "assert 'incomplete chunked read' == 'complete'"),
              same: Result("passed")}
    changes = changed(pinned, newest)
    assert [c.test for c in changes] == [sigterm]
    assert changes[0].claim.startswith("The same shutdown with one stream per layer")
    report = format_report({"sse-starlette": "3.7.1", "mypy": "2.4.1"},
                           {"sse-starlette": "3.7.1"}, {"sse-starlette": "3.8.0"},
                           changes, (2, 2))
    assert "sse-starlette        3.7.1      3.7.1      3.8.0  <- differs" in report
    assert "1 claim(s) changed" in report and "passed -> failed" in report
    assert "incomplete chunked read" in report and "mypy" not in report
    assert "no claim changed" in format_report({}, {}, {}, changed(pinned, pinned), (2, 2))


def test_a_test_without_a_docstring_is_named_by_its_words() -> None:
    assert claim("tests/test_compare_sse.py::test_header_differences[asyncio]", ROOT) \
        == "header differences"

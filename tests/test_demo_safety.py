"""The demo is copied into production, so it must be safe to expose: strict
parameters, bounded per-request state, no fault injection from the outside,
a same-origin check done as the browser resolves the URL."""

from __future__ import annotations

import pytest

from examples.app import build_demo_app
from examples.scenario1 import ParameterError, parse_count, parse_delay
from streaming.testing import StreamingClient

# -- strict count and delay ---------------------------------------------------------

@pytest.mark.parametrize("text", ["١٢", "1_0", "+5", " 5", "5 ", "0x10", "5.0", "", "1e3",
                                  "²", "9" * 50])
def test_count_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(ParameterError, match="count must be"):
        parse_count(text)


@pytest.mark.parametrize("text", ["١.٥", "0_5", "+0.5", " 0.5", "0.5 ", "1e0", "inf", "nan",
                                  ".5", "5.", "0x1", "", "Infinity", "½"])
def test_delay_takes_a_plain_decimal_only(text: str) -> None:
    with pytest.raises(ParameterError, match="delay must be"):
        parse_delay(text, 0.5)


def test_what_the_docs_say_is_accepted() -> None:
    assert [parse_count(t) for t in ("0", "10", "10000")] == [0, 10, 10000]
    assert [parse_delay(t, 9.0) for t in ("0", "0.5", "10", None)] == [0, 0.5, 10, 9.0]


@pytest.mark.parametrize("path", ["/parameterized/%D9%A1%D9%A2", "/parameterized/1_0",
                                  "/parameterized/3?delay=1_0", "/parameterized/3?delay=%20+1",
                                  "/starlette/parameterized/+3", "/json/%EF%BC%93"])
async def test_the_endpoints_answer_422(path: str) -> None:
    client = StreamingClient(build_demo_app(scale=0.01))
    response = await client.get(path)
    assert response.status_code == 422

"""examples/production.py starts as its docstring says and each guard answers."""

from __future__ import annotations

import httpx

from tests.servers import uvicorn_process


def test_the_production_example_serves_its_guards() -> None:
    with uvicorn_process("examples.production:app") as (_, url), \
            httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/tokens?n=3").text == "token0 token1 token2 "
        assert len(client.get("/download?size=70000").content) == 70000
        with client.stream("GET", "/ticks?pace=0.01") as ticks:
            assert next(ticks.iter_lines()) == "data: tick 0"
        metrics = client.get("/metrics/").text
        assert 'streaming_streams_total{reason="completed",response_type="StreamingResponse"' \
               ',route="/tokens"} 1.0' in metrics
        assert "streaming inspector" in client.get("/inspector/").text

"""The relay against a hostile upstream (a real uvicorn on 127.0.0.1): its
error text never reaches readers (it goes to the log, credentials masked)
unless the relay is built to expose it; a line or event without end is cut at
``max_event_size`` and the upstream closed; a chunk without the shape the
relay reads is a 502, in every mode, and never forwarded."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streaming import StreamingResponse, UpstreamError
from streaming.integrations import ChatRelay, openai_wire, relay_events
from streaming.integrations.openai_relay import check_chunk, mask_secrets
from streaming.testing import StreamingClient
from tests.servers import Probe, UvicornThread

KEY = "sk-operator-secret-123456"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
LIMIT = 64 * 1024
GOOD = openai_wire.sse_data(openai_wire.chunk("c", 0, "m", {"content": "ok"}))


def hostile_upstream(probe: Probe) -> Starlette:
    """Each path is one way an upstream misbehaves."""

    async def leak(request: Request) -> Response:
        return JSONResponse({"error": {
            "message": f"Incorrect API key provided: Bearer {KEY} (Authorization: Bearer "
                       f"{KEY}, api_key={KEY})",
            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
            status_code=401)

    def stream(name: str, pieces: Any) -> StreamingResponse:
        async def produce() -> AsyncIterator[bytes]:
            try:
                async for piece in pieces():
                    yield piece
            finally:
                probe.mark(f"{name} closed")
        return StreamingResponse(produce(), media_type="text/event-stream")

    async def in_band() -> AsyncIterator[bytes]:
        yield GOOD
        yield openai_wire.sse_data({"error": {
            "message": "internal: shard db-7 password=hunter2 \x1b[2J", "type": "server_error",
            "param": None, "code": "Bearer sk-in-the-code-field"}})

    async def long_line() -> AsyncIterator[bytes]:
        yield b"data: "
        for _ in range(2000):  # bounded: 128 MiB at most; the relay leaves far earlier
            yield b"x" * 65536
            await anyio.lowlevel.checkpoint()

    async def big_event() -> AsyncIterator[bytes]:
        for _ in range(200_000):
            yield b"data: " + b"y" * 1000 + b"\n"
            await anyio.lowlevel.checkpoint()

    def fixed(*events: bytes) -> Any:
        async def pieces() -> AsyncIterator[bytes]:
            for event in events:
                yield event
        return pieces

    scenarios: dict[str, Any] = {
        "in-band": in_band, "long-line": long_line, "big-event": big_event,
        "malformed": fixed(b'data: {"choices":[{"delta":"str"}]}\n\n'),
        "bad-content": fixed(b'data: {"choices":[{"delta":{"content":7}}]}\n\n'),
        "not-json": fixed(b"data: {nope\n\n"),
        "deep": fixed(b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n\n"),
        "array": fixed(b"data: [1]\n\n"),
    }

    async def chat(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        if scenario == "leak":
            return await leak(request)
        return stream(scenario, scenarios[scenario])

    return Starlette(routes=[Route("/{scenario}/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Probe]]:
    probe = Probe()
    with UvicornThread(hostile_upstream(probe)) as running:
        yield running.url, probe


async def relay(url: str, scenario: str, mode: str = "sse", **options: Any
                ) -> tuple[int | None, bytes]:
    async with ChatRelay(base_url=f"{url}/{scenario}/v1", api_key=KEY, max_event_size=LIMIT,
                         first_token_timeout=10, inactivity_timeout=10, **options) as chat:
        body = {**BODY, "stream": True} if mode == "openai" else BODY
        client = StreamingClient(lambda s, r, se: chat.respond(body, mode)(s, r, se),  # type: ignore[arg-type]
                                 raise_app_exceptions=False)
        with anyio.fail_after(20):
            response = await client.get("/")
    return response.status_code, response.body


def error_of(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    return error


# -- secrets ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sse", "ndjson", "openai"])
async def test_an_upstream_error_that_quotes_the_key_never_reaches_readers(
        upstream: tuple[str, Probe], mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "streaming")
    status, body = await relay(upstream[0], "leak", mode)
    assert status == 401
    assert KEY.encode() not in body and b"Bearer" not in body
    assert error_of(body) == {"message": "The relay could not authenticate with the "
                                         "upstream API.", "type": "invalid_request_error",
                              "param": None, "code": "invalid_api_key"}
    logged = caplog.text
    assert "Incorrect API key provided: Bearer ***" in logged and KEY not in logged


async def test_exposed_for_trusted_readers_the_text_passes_with_the_key_masked(
        upstream: tuple[str, Probe]) -> None:
    status, body = await relay(upstream[0], "leak", expose_upstream_errors=True)
    assert status == 401
    assert error_of(body)["message"].startswith("Incorrect API key provided: Bearer ***")
    assert KEY.encode() not in body


@pytest.mark.parametrize("mode", ["sse", "ndjson", "openai"])
async def test_an_in_stream_error_is_told_generically_and_logged_masked(
        upstream: tuple[str, Probe], mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "streaming")
    status, body = await relay(upstream[0], "in-band", mode)
    assert status == 200  # a token went out first: the error is in band
    assert b"ok" in body
    for secret in (b"hunter2", b"db-7", b"sk-in-the-code", b"\x1b"):
        assert secret not in body
    assert b"The upstream API failed while streaming." in body
    assert "password=***" in caplog.text and "hunter2" not in caplog.text
    assert "\x1b" not in caplog.text  # escaped: \\x1b


# -- size limits --------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["long-line", "big-event"])
async def test_an_event_without_end_is_cut_and_the_upstream_closed(
        upstream: tuple[str, Probe], scenario: str) -> None:
    url, probe = upstream
    status, body = await relay(url, scenario)
    assert status == 502
    assert error_of(body)["code"] == "upstream_event_too_large"
    await anyio.to_thread.run_sync(probe.wait_for, f"{scenario} closed", 5.0)


# -- chunk shape ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sse", "ndjson", "openai"])
@pytest.mark.parametrize("scenario", ["malformed", "bad-content", "not-json", "deep", "array"])
async def test_a_malformed_chunk_is_a_502_and_never_forwarded(
        upstream: tuple[str, Probe], scenario: str, mode: str) -> None:
    status, body = await relay(upstream[0], scenario, mode)
    assert status == 502
    assert error_of(body)["code"] == "upstream_malformed_chunk"
    assert b'"delta":"str"' not in body and b"nope" not in body


@pytest.mark.parametrize("chunk", [
    {"choices": [{"delta": "str"}]}, {"choices": "x"}, {"choices": [7]},
    {"choices": [{"delta": {"content": ["a"]}}]}, {"choices": [{"finish_reason": 1}]},
    {"usage": "lots"},
])
async def test_relay_events_checks_the_chunks_of_any_source(chunk: dict[str, Any]) -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield chunk

    with pytest.raises(UpstreamError) as caught:
        [item async for item in relay_events(chunks(), "openai")]
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_malformed_chunk")


def test_check_chunk_accepts_what_the_api_sends() -> None:
    chunk: dict[str, Any]
    for chunk in ({"choices": []}, {"choices": [{"delta": {}, "finish_reason": "stop"}]},
                  {"choices": [{"delta": {"role": "assistant", "content": None}}]},
                  {"choices": None, "usage": {"total_tokens": 3}}, {}):
        assert check_chunk(chunk) is chunk


@pytest.mark.parametrize(("text", "shown"), [
    ("Bearer sk-abc.def", "Bearer ***"),
    ('{"Authorization": "Basic dXNlcjpwdw=="}', '{"Authorization": "***"}'),
    ("api_key=abcdef password: hunter2", "api_key=*** password: ***"),
    ("key sk-proj-XYZ123 leaked", "key sk-*** leaked"),
    ("nothing to hide", "nothing to hide"),
])
def test_mask_secrets(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown
    assert mask_secrets("the key is MYKEY", ["MYKEY"]) == "the key is ***"

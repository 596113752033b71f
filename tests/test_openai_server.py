"""The local OpenAI-compatible server, consumed by the official ``openai`` SDK
(sync and async) over real HTTP: uvicorn on 127.0.0.1 in a thread.

Async tests run on asyncio and trio: the SDK's ``AsyncOpenAI`` talks through
httpx2/httpcore2, which run on either through anyio.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming import StreamingConfigError
from streaming.integrations import openai_wire as wire
from streaming.testing import LocalOpenAI, RequestEnd, StreamingClient, TestResponse
from streaming.testing.openai_server import MAX_BODY, MAX_ECHO, echo_reply
from tests.servers import UvicornThread

KEY = "sk-local-test"
MESSAGES: list[Any] = [{"role": "user", "content": "你好, streaming! 🚀"}]


@pytest.fixture(scope="module")
def local() -> LocalOpenAI:
    return LocalOpenAI(api_key=KEY, token_delay=0.001, fault_headers=True)


@pytest.fixture(scope="module")
def server(local: LocalOpenAI) -> Iterator[UvicornThread]:
    with UvicornThread(local) as running:
        yield running


@pytest.fixture
def client(server: UvicornThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def async_client(server: UvicornThread) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def test_sync_sdk_reassembles_the_exact_text(client: openai.OpenAI, local: LocalOpenAI) -> None:
    stream = client.chat.completions.create(model="local-echo", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    reply = local.reply_for(MESSAGES)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert usage.completion_tokens == len(wire.tokenize(reply))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_async_sdk_reassembles_the_exact_text(server: UvicornThread,
                                                    local: LocalOpenAI) -> None:
    with anyio.fail_after(10):
        async with async_client(server) as sdk:
            stream = await sdk.chat.completions.create(model="local-echo", messages=MESSAGES,
                                                       stream=True)
            parts = [c.choices[0].delta.content or "" async for c in stream]
    assert "".join(parts) == local.reply_for(MESSAGES)


def test_non_streaming_completion(client: openai.OpenAI, local: LocalOpenAI) -> None:
    completion = client.chat.completions.create(model="local-echo", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == local.reply_for(MESSAGES)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None


def test_max_tokens_cuts_the_reply_with_finish_reason_length(client: openai.OpenAI,
                                                             local: LocalOpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                 max_tokens=5))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "".join(wire.tokenize(local.reply_for(MESSAGES))[:5])
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_character_is_cut_across_http_chunks_and_the_sdk_rejoins_it(
        server: UvicornThread, client: openai.OpenAI, local: LocalOpenAI) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body,
                      headers=headers) as response:
        pieces = list(response.iter_raw())
    # A piece ending in a lead byte (11xxxxxx), the next starting with a
    # continuation byte (10xxxxxx): a character cut in two on the wire.
    cuts = [i for i, p in enumerate(pieces[:-1]) if p[-1] >= 0xC0]
    assert cuts, "no HTTP chunk ended inside a character"
    assert all(0x80 <= pieces[i + 1][0] < 0xC0 for i in cuts)
    assert not any(_decodes(pieces[i]) for i in cuts)
    assert b"".join(pieces).decode().endswith("data: [DONE]\n\n")
    # The SDK meets the same cuts (test above): its text is exact.


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"model": "m"}, "messages", "missing_required_parameter"),
    ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
    ({"model": "m", "messages": []}, "messages", "empty_array"),
    ({"model": "m", "messages": [{"content": "hi"}]}, "messages[0].role",
     "missing_required_parameter"),
    ({"messages": MESSAGES}, None, None),
])
def test_a_bad_request_gets_the_api_error_shape(server: UvicornThread, client: openai.OpenAI,
                                                body: dict[str, Any], param: str | None,
                                                code: str | None) -> None:
    raw = httpx.post(f"{server.url}/v1/chat/completions", json=body,
                     headers={"authorization": f"Bearer {KEY}"})
    assert raw.status_code == 400
    error = raw.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param,
                                                              code)
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert (caught.value.param, caught.value.code) == (param, code)


@pytest.mark.parametrize(("status", "exception", "code"), [
    (401, openai.AuthenticationError, "invalid_api_key"),
    (429, openai.RateLimitError, "rate_limit_exceeded"),
    (500, openai.InternalServerError, None),
    (503, openai.InternalServerError, None),
])
def test_injected_statuses_raise_the_sdk_exceptions(client: openai.OpenAI, status: int,
                                                    exception: type[Exception],
                                                    code: str | None) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                       extra_headers={"X-Local-Fail": str(status)})
    error: Any = caught.value
    assert (error.status_code, error.code) == (status, code)
    if status == 429:
        assert error.response.headers["retry-after"] == "1"


def test_a_wrong_key_is_a_401(server: UvicornThread) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0) as sdk, \
            pytest.raises(openai.AuthenticationError) as caught:
        sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"


def test_an_unknown_path_is_a_404_in_the_api_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.post("/nothing/here", body={}, cast_to=object)
    assert caught.value.type == "invalid_request_error"


def test_models_lists_the_local_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["local-echo"]


def test_an_error_mid_stream_is_raised_by_the_sdk(client: openai.OpenAI,
                                                  local: LocalOpenAI) -> None:
    start = len(local.log)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                            extra_headers={"X-Local-Error-After": "3"})
    parts: list[str] = []
    with pytest.raises(openai.APIError, match="The server had an error"):
        parts.extend(c.choices[0].delta.content or "" for c in stream)
    assert len([p for p in parts if p]) == 3
    assert local.log.wait_for_end(start, 5).end is RequestEnd.ERROR_EVENT


def test_a_dropped_connection_is_a_connection_error(client: openai.OpenAI,
                                                    local: LocalOpenAI) -> None:
    start = len(local.log)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                            extra_headers={"X-Local-Drop-After": "3"})
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    assert local.log.wait_for_end(start, 5).end is RequestEnd.DROPPED


async def test_the_log_records_a_client_leaving_during_the_prefill(
        server: UvicornThread, local: LocalOpenAI) -> None:
    with anyio.fail_after(10):
        async with async_client(server) as sdk:
            start = len(local.log)
            # Headers come at once; the first token would take 30 s.
            stream = await sdk.chat.completions.create(
                model="m", messages=MESSAGES, stream=True,
                extra_headers={"X-Local-Prefill": "30"})
            left = time.monotonic()
            await stream.close()
            record = await anyio.to_thread.run_sync(local.log.wait_for_end, start, 5.0)
    # Ended within the deadline, 30 s before the first token: the close was
    # seen during the silence. No time is asserted (measured: 0.2 to 0.6 ms).
    assert record.end is RequestEnd.CLIENT_DISCONNECTED
    assert record.tokens_sent == 0
    assert record.ended_at is not None and record.ended_at >= left  # the close, not before


@given(st.text())
def test_tokens_join_back_to_the_text(text: str) -> None:
    tokens = wire.tokenize(text)
    assert "".join(tokens) == text
    assert all(tokens)


@given(st.text())
def test_a_split_event_rejoins_and_cuts_inside_a_character(text: str) -> None:
    data = text.encode()
    pieces = wire.split_inside_character(data)
    assert b"".join(pieces) == data
    if len(pieces) == 2:
        assert not _decodes(pieces[0])
    else:
        assert data.isascii()


# -- safe to expose: no outside fault injection, bounded work ---------------------

def chat_body(content: object = "hi", **extra: object) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": content}],
                       **extra}).encode()


async def post(app: LocalOpenAI, body: bytes, headers: dict[str, str] | None = None
               ) -> TestResponse:
    with anyio.fail_after(10):
        return await StreamingClient(app).request(
            "POST", "/v1/chat/completions", body=body,
            headers={"content-type": "application/json", **(headers or {})})


@pytest.mark.parametrize("headers", [{"X-Local-Fail": "500"}, {"X-Local-Prefill": "inf"},
                                     {"X-Local-Prefill": "nan"}, {"X-Local-Drop-After": "0"}])
async def test_built_for_the_public_the_fault_headers_are_ignored(
        headers: dict[str, str]) -> None:
    response = await post(LocalOpenAI(), chat_body(), headers)
    assert response.status_code == 200
    assert json.loads(response.body)["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("headers", [
    {"X-Local-Prefill": "inf"}, {"X-Local-Prefill": "nan"}, {"X-Local-Prefill": "1e9"},
    {"X-Local-Prefill": "-1"}, {"X-Local-Prefill": "1_0"},
    {"X-Local-Prefill": "٣".encode().decode("latin-1")},
    {"X-Local-Prefill": "61"}, {"X-Local-Token-Delay": "Infinity"},
    {"X-Local-Fail": "200"}, {"X-Local-Fail": "+500"}, {"X-Local-Fail": "5\xb2"},
    {"X-Local-Error-After": "-1"}, {"X-Local-Drop-After": "1.5"},
    {"X-Local-Split-Utf8": "maybe"},
])
async def test_built_for_tests_a_bad_fault_header_is_a_400(headers: dict[str, str]) -> None:
    response = await post(LocalOpenAI(fault_headers=True), chat_body(), headers)
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "status"), [
    (chat_body("[" * 50_000), 200),                        # a long prompt: a string
    (b'{"model": "m", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400),
    (chat_body("\ud800"), 400),                             # json.dumps writes "\\ud800"
    (chat_body([{"type": "text", "text": 7}]), 200),        # a text part that is no text
    (b'{"model": "m", "messages": [], "x": NaN}', 400),
    (chat_body("x" * (MAX_BODY + 1)), 413),
])
async def test_hostile_bodies_are_client_errors(body: bytes, status: int) -> None:
    response = await post(LocalOpenAI(), body)
    assert response.status_code == status
    if status != 200:
        assert json.loads(response.body)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_huge_prompt_gets_a_bounded_reply(stream: bool) -> None:
    prompt = "word " * 180_000  # 0.9 MB: echoed whole, about 90 MB of chunks
    response = await post(LocalOpenAI(), chat_body(prompt, stream=stream))
    assert response.status_code == 200
    assert len(response.body) < 2_000_000
    if not stream:
        assert json.loads(response.body)["choices"][0]["finish_reason"] in ("stop", "length")
    assert len(echo_reply([{"role": "user", "content": prompt}])) < MAX_ECHO + 500


async def test_the_log_keeps_only_the_latest_requests() -> None:
    local = LocalOpenAI(log_size=5)
    for _ in range(12):
        assert (await post(local, chat_body())).status_code == 200
    assert len(local.log) == 12
    assert [r.index for r in local.log.snapshot()] == [7, 8, 9, 10, 11]
    assert local.log[-1].index == 11 and local.log.wait_for_end(11, 1).end is not None
    with pytest.raises(IndexError, match="keeps the latest 5"):
        local.log[0]


@pytest.mark.parametrize("options", [{"prefill_delay": math.inf}, {"token_delay": math.nan},
                                     {"prefill_delay": -1}, {"fail_status": 200},
                                     {"error_after_tokens": -1}, {"max_reply_tokens": 0},
                                     {"log_size": 0}])
def test_settings_that_cannot_work_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        LocalOpenAI(**options)


async def test_every_reply_is_cut_at_max_reply_tokens() -> None:
    response = await post(LocalOpenAI("word " * 10_000, max_reply_tokens=10), chat_body())
    choice = json.loads(response.body)["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == " ".join(["word"] * 10)

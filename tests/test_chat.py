"""The chat demo (``examples.chat``) under a real uvicorn: the relay reaches the
local model server on the same port over real HTTP, as ``python -m examples``
runs it with no API key.

Card 10's contrast is checked with a streaming httpx client (asyncio and trio):
a completed answer is saved by the background task, a reader who leaves gets
nothing saved. The chat page is checked in headless Chromium: the answer grows
token by token, Stop aborts, and the model server sees its connection close.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any, cast

import anyio
import anyio.to_thread
import httpx
import openai
import pytest
from starlette.applications import Starlette

from examples.app import build_demo_app
from examples.chat import READER_COOKIE, ChatDemo
from streaming import EndReason, SSEParser
from streaming.testing import RequestEnd
from tests.browser import chromium
from tests.servers import UvicornThread, no_gc_pause

PROMPT = "你好, 流式响应!"
MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def demo() -> ChatDemo:
    # 30 ms per token: the ~45-token answer takes about 1.4 s, long enough
    # to watch it grow and press Stop half-way.
    return ChatDemo(scale=0.5)


@pytest.fixture(scope="module")
def server(demo: ChatDemo) -> Iterator[UvicornThread]:
    with UvicornThread(Starlette(routes=demo.routes())) as running:
        yield running


@pytest.fixture(scope="module")
def quick() -> Iterator[tuple[UvicornThread, ChatDemo]]:
    """The demo at 3 ms per token, for tests that read whole answers."""
    demo = ChatDemo(scale=0.05)
    with UvicornThread(Starlette(routes=demo.routes())) as running:
        yield running, demo


async def test_a_completed_answer_is_saved_after_the_stream(
        quick: tuple[UvicornThread, ChatDemo]) -> None:
    server, demo = quick
    before = demo.transcripts.saved_count
    parser, text, kinds = SSEParser(), "", []
    with anyio.fail_after(10):
        async with httpx.AsyncClient() as client:
            async with client.stream("POST", f"{server.url}/chat/stream",
                                     json={"prompt": PROMPT}) as response:
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        kinds.append(event.event)
                        text += json.loads(event.data).get("content", "")
            await anyio.to_thread.run_sync(demo.transcripts.wait_for_count, before + 1, 0, 5.0)
            reader = response.cookies[READER_COOKIE]
            shown = (await client.get(f"{server.url}/chat/transcripts")).json()["saved"]
        async with httpx.AsyncClient() as stranger:
            others = (await stranger.get(f"{server.url}/chat/transcripts")).json()
    assert kinds[-2:] == ["usage", "done"]
    [saved] = demo.transcripts.of(reader)
    assert (saved.prompt, saved.answer) == (PROMPT, text)
    assert [(t["prompt"], t["answer"]) for t in shown] == [(PROMPT, text)]
    assert others["saved"] == []  # another reader sees none of it
    assert text == demo.local.reply_for(MESSAGES)
    assert saved.finish_reason == "stop" and saved.usage is not None


def byte_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    # httpx annotates aiter_bytes() as AsyncIterator; it is an async generator.
    return cast("AsyncGenerator[bytes, None]", response.aiter_bytes())


async def test_a_reader_who_leaves_gets_nothing_saved(server: UvicornThread,
                                                      demo: ChatDemo) -> None:
    saved, discarded = demo.transcripts.saved_count, sum(demo.transcripts.discarded.values())
    left = demo.transcripts.discarded[EndReason.CLIENT_DISCONNECTED]
    index = len(demo.local.log)
    with anyio.fail_after(10):
        async with httpx.AsyncClient() as client, client.stream(
                "POST", f"{server.url}/chat/stream", json={"prompt": PROMPT}) as response, \
                aclosing(byte_chunks(response)) as chunks:
            async for chunk in chunks:
                if b"event: delta" in chunk:
                    break  # leave after the first token
        await anyio.to_thread.run_sync(demo.transcripts.wait_for_count, saved, discarded + 1,
                                       5.0)
        record = await anyio.to_thread.run_sync(demo.local.log.wait_for_end, index, 5.0)
    assert demo.transcripts.saved_count == saved
    assert demo.transcripts.discarded[EndReason.CLIENT_DISCONNECTED] == left + 1
    assert record.end is RequestEnd.CLIENT_DISCONNECTED


def test_a_bad_prompt_is_a_400(server: UvicornThread) -> None:
    response = httpx.post(f"{server.url}/chat/stream", json={"prompt": ""})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


HOSTILE_BODIES = [
    pytest.param(b'{"prompt": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", 400, id="deep"),
    pytest.param(b'{"prompt": "\\ud800"}', 400, id="lone-surrogate"),
    pytest.param(b'{"prompt": NaN}', 400, id="nan"),
    pytest.param(b'{"prompt": "' + b"x" * 300_000 + b'"}', 413, id="oversized"),
]


@pytest.mark.parametrize(("body", "status"), HOSTILE_BODIES)
@pytest.mark.parametrize("path", ["/chat/stream", "/chat/ndjson", "/proxy/v1/chat/completions"])
def test_hostile_bodies_are_client_errors(server: UvicornThread, path: str, body: bytes,
                                         status: int) -> None:
    response = httpx.post(server.url + path, content=body, timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_python_m_examples_serves_the_chat_with_no_api_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole demo app: the page, and the relay's proxy read by the SDK,
    with the local model server as the upstream."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with UvicornThread(build_demo_app(scale=0.05)) as running:
        page = httpx.get(f"{running.url}/chat")
        assert page.status_code == 200 and 'data-stream-url="/chat/stream"' in page.text
        with openai.OpenAI(base_url=f"{running.url}/proxy/v1", api_key="unused",
                           max_retries=0) as sdk:
            chunks = sdk.chat.completions.create(model="local-echo", messages=MESSAGES,
                                                 stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith(f"You said: {PROMPT}")


def test_chromium_streams_the_answer_and_stop_closes_the_upstream(
        server: UvicornThread, demo: ChatDemo) -> None:
    discarded = sum(demo.transcripts.discarded.values())
    left = demo.transcripts.discarded[EndReason.CLIENT_DISCONNECTED]
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/chat", timeout=10_000)
        page.fill("#prompt", PROMPT)
        index = len(demo.local.log)
        page.click("#send")
        # The text grows over time: two reads of it, the second strictly longer.
        page.wait_for_function("document.querySelector('#answer').textContent.length > 0",
                               timeout=10_000)
        first = page.text_content("#answer") or ""
        page.wait_for_function(f"document.querySelector('#answer').textContent.length"
                               f" > {len(first) + 10}", timeout=10_000)
        assert page.evaluate("document.body.dataset.state") == "streaming"
        with no_gc_pause():
            pressed = time.monotonic()
            page.click("#stop")
            record = demo.local.log.wait_for_end(index, 5.0)
        page.wait_for_function("document.body.dataset.state === 'stopped'", timeout=5_000)
        shown = page.text_content("#answer") or ""
        log = page.evaluate("window.chatLog")
    assert record.end is RequestEnd.CLIENT_DISCONNECTED
    # How soon is the point here (the page's Stop must not leave the upstream
    # running), and only a clock can say it through a browser: measured 39 to
    # 52 ms from the click (Playwright's round trip included), so 1 s is 20x.
    assert record.ended_at is not None and 0 <= record.ended_at - pressed < 1.0
    reply = demo.local.reply_for(MESSAGES)
    assert len(first) < len(shown) < len(reply) and reply.startswith(shown)
    times = [entry["ms"] for entry in log]
    assert times == sorted(times) and times[-1] - times[0] > 100  # token by token
    demo.transcripts.wait_for_count(0, discarded + 1, 5.0)
    assert demo.transcripts.discarded[EndReason.CLIENT_DISCONNECTED] == left + 1

"""The OpenAI-compatible relay, in front of the local server over real HTTP.

The upstream is ``LocalOpenAI`` under uvicorn on 127.0.0.1 (a thread); the relay
is the official SDK's ``AsyncOpenAI`` inside ``ChatRelay``. The relay runs in
the test's own event loop (asyncio and trio) behind the in-process
``StreamingClient``, whose ``disconnect()`` is a reader leaving; the proxy-mode
tests serve it under a second uvicorn so the official SDK can read it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import EndReason, ServerSentEvent, SSEParser, StreamingResponse
from streaming.integrations import ChatRelay, RelayResult, relay_events
from streaming.integrations import openai_wire as wire
from streaming.testing import LocalOpenAI, RequestEnd, StreamingClient, TestResponse
from tests.servers import ROOT, UvicornThread

MESSAGES: list[Any] = [{"role": "user", "content": "你好, relay! 🚀"}]
BODY = {"messages": MESSAGES}


@pytest.fixture(scope="module")
def local() -> LocalOpenAI:
    return LocalOpenAI(token_delay=0.001, fault_headers=True)


@pytest.fixture(scope="module")
def upstream(local: LocalOpenAI) -> Iterator[UvicornThread]:
    with UvicornThread(local) as running:
        yield running


def relay_to(url: str, **options: Any) -> ChatRelay:
    return ChatRelay(base_url=f"{url}/v1", api_key="test", model="local-echo", **options)


async def run(app: StreamingResponse) -> TestResponse:
    """The whole exchange; an error the app re-raises after a cut is kept, not raised."""
    with anyio.fail_after(10):
        async with StreamingClient(app, raise_app_exceptions=False).stream(
                "POST", "/", wait_for_start=False) as response:
            await response.read()
    return response


def events(response: TestResponse) -> list[ServerSentEvent]:
    return SSEParser().feed(response.body)


def deltas(seen: list[ServerSentEvent]) -> list[str]:
    return [_json(e)["content"] for e in seen if e.event == "delta"]


def _json(event: ServerSentEvent) -> Any:
    return json.loads(event.data)


# -- the three modes ---------------------------------------------------------------


async def test_sse_mode_relays_every_token_in_order(upstream: UvicornThread,
                                                    local: LocalOpenAI) -> None:
    async with relay_to(upstream.url) as relay:
        response = await run(relay.respond(BODY))
    seen = events(response)
    reply = local.reply_for(MESSAGES)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert deltas(seen) == wire.tokenize(reply)  # each token, whole, in order
    assert [e.event for e in seen[-2:]] == ["usage", "done"]
    assert _json(seen[-2])["completion_tokens"] == len(wire.tokenize(reply))
    assert _json(seen[-1]) == {"finish_reason": "stop"}
    assert response.complete


async def test_ndjson_mode(upstream: UvicornThread, local: LocalOpenAI) -> None:
    async with relay_to(upstream.url) as relay:
        response = await run(relay.respond(BODY, "ndjson"))
    lines = [json.loads(line) for line in response.body.decode().splitlines()]
    assert response.headers["content-type"] == "application/x-ndjson"
    text = "".join(line["content"] for line in lines if line["type"] == "delta")
    assert text == local.reply_for(MESSAGES)
    assert [line["type"] for line in lines[-2:]] == ["usage", "done"]


async def test_relay_events_takes_any_async_iterator_of_chunks() -> None:
    chunks = [wire.chunk("c1", 0, "m", {"role": "assistant", "content": ""}),
              wire.chunk("c1", 0, "m", {"content": "数据"}),
              wire.chunk("c1", 0, "m", {"content": " 1"}),
              wire.chunk("c1", 0, "m", {}, "stop")]

    async def source() -> AsyncIterator[dict[str, Any]]:
        for item in chunks:
            yield item

    result = RelayResult()
    proxied = [item async for item in relay_events(source(), "openai", result=result)]
    assert proxied == [wire.sse_data(c) for c in chunks] + [wire.DONE]
    assert (result.text, result.finish_reason, result.chunks) == ("数据 1", "stop", 4)
    sse = [item async for item in relay_events(source())]
    assert [(e.event, e.data) for e in sse] == [("delta", '{"content":"数据"}'),
                                                ("delta", '{"content":" 1"}'),
                                                ("done", '{"finish_reason":"stop"}')]


async def test_base_url_and_key_come_from_the_environment(
        upstream: UvicornThread, local: LocalOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    async with ChatRelay(model="local-echo") as relay:
        response = await run(relay.respond(BODY))
    assert "".join(deltas(events(response))) == local.reply_for(MESSAGES)


# -- the reader leaves: the upstream connection closes at once ----------------------


@pytest.mark.parametrize("phase", ["prefill", "tokens"])
async def test_a_reader_leaving_closes_the_upstream_while_it_is_silent(
        upstream: UvicornThread, local: LocalOpenAI, phase: str) -> None:
    """The upstream is 30 s away from its next write (the prefill, or the gap
    before its second token) when the reader leaves: its connection closing
    within the deadline is the relay closing it, not a failed write. No time is
    asserted (measured: 0.6 to 3 ms after the reader left)."""
    headers_in = anyio.Event()

    async def on_response(response: Any) -> None:
        headers_in.set()  # the upstream answered: we are now inside its prefill

    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [on_response]})
    sdk = openai.AsyncOpenAI(base_url=f"{upstream.url}/v1", api_key="test", max_retries=0,
                             http_client=http)
    slow = {"X-Local-Prefill": "30"} if phase == "prefill" else {"X-Local-Token-Delay": "30"}
    index = len(local.log)
    async with sdk, ChatRelay(sdk, model="local-echo") as relay:
        app = relay.respond(BODY, upstream_headers=slow)
        with anyio.fail_after(10):
            async with StreamingClient(app).stream("POST", "/", wait_for_start=False) as reader:
                if phase == "prefill":
                    await headers_in.wait()
                else:
                    await read_deltas(reader, 1)  # the first token comes without the delay
                left = time.monotonic()
                await reader.disconnect()
                record = await anyio.to_thread.run_sync(local.log.wait_for_end, index, 5.0)
            outcome = await app.wait_for_outcome()
    assert record.end is RequestEnd.CLIENT_DISCONNECTED
    assert record.ended_at is not None and record.ended_at >= left
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert record.tokens_sent == (0 if phase == "prefill" else 1)


async def read_deltas(reader: TestResponse, count: int) -> None:
    parser, seen = SSEParser(), 0
    async for chunk in reader.iter_chunks():
        seen += sum(e.event == "delta" for e in parser.feed(chunk))
        if seen >= count:
            return
    raise AssertionError(f"the stream ended after {seen} deltas")


# -- upstream failures -------------------------------------------------------------


@pytest.fixture(scope="module")
def refused_url() -> str:
    """A port nobody listens on: connecting is refused at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def blackhole_url() -> Iterator[str]:
    """A listener whose accept queue is full: the kernel drops further SYNs,
    so a connection attempt hangs until the client's connect timeout (a real
    connect timeout on loopback)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(8):  # bounded: Linux queues backlog + 1 connections
        filler = socket.socket()
        filler.settimeout(0.2)
        fillers.append(filler)
        try:
            filler.connect(address)
        except TimeoutError:
            break
    else:
        pytest.fail("could not fill the listener's accept queue")
    yield f"http://127.0.0.1:{address[1]}"
    for filler in fillers:
        filler.close()
    listener.close()


#: Failures before the first token: the status, error type and code the reader
#: gets, with the OpenAI error body.
BEFORE_FIRST_TOKEN = [
    ("401", "local", {"X-Local-Fail": "401"}, {}, 401, "invalid_request_error",
     "invalid_api_key"),
    ("429", "local", {"X-Local-Fail": "429"}, {}, 429, "requests", "rate_limit_exceeded"),
    ("500", "local", {"X-Local-Fail": "500"}, {}, 500, "server_error", None),
    ("503", "local", {"X-Local-Fail": "503"}, {}, 503, "server_error", None),
    ("refused", "refused", {}, {}, 502, "upstream_error", "upstream_connect_error"),
    ("connect-timeout", "blackhole", {}, {"connect_timeout": 0.2}, 504, "upstream_error",
     "upstream_connect_timeout"),
    ("first-token-timeout", "local", {"X-Local-Prefill": "30"}, {"first_token_timeout": 0.2},
     504, "timeout", "first_token_timeout"),
    ("dropped", "local", {"X-Local-Drop-After": "0"}, {}, 502, "upstream_error",
     "upstream_connection_lost"),
    ("error-object", "local", {"X-Local-Error-After": "0"}, {}, 502, "server_error", None),
]


@pytest.mark.parametrize(("case", "target", "headers", "options", "status", "kind", "code"),
                         BEFORE_FIRST_TOKEN, ids=[c[0] for c in BEFORE_FIRST_TOKEN])
async def test_a_failure_before_the_first_token_is_the_readers_status(
        upstream: UvicornThread, refused_url: str, blackhole_url: str, case: str,
        target: str, headers: dict[str, str], options: dict[str, float], status: int,
        kind: str, code: str | None) -> None:
    url = {"local": upstream.url, "refused": refused_url, "blackhole": blackhole_url}[target]
    async with relay_to(url, **options) as relay:
        response = await run(relay.respond(BODY, upstream_headers=headers))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = _body_error(response)
    assert (error["type"], error["code"]) == (kind, code)
    assert error["message"]
    if case == "429":
        assert response.headers["retry-after"] == "1"


def _body_error(response: TestResponse) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


#: Failures after tokens flowed: an ``error`` event after the tokens, then a cut.
AFTER_TOKENS = [
    ("error-object", {"X-Local-Error-After": "3"}, {}, 3, 502, "server_error", None),
    ("dropped", {"X-Local-Drop-After": "3"}, {}, 3, 502, "upstream_error",
     "upstream_connection_lost"),
    ("inactivity-timeout", {"X-Local-Token-Delay": "30"}, {"inactivity_timeout": 0.2}, 1, 504,
     "timeout", "inactivity_timeout"),
]


@pytest.mark.parametrize(("case", "headers", "options", "tokens", "status", "kind", "code"),
                         AFTER_TOKENS, ids=[c[0] for c in AFTER_TOKENS])
async def test_a_failure_after_tokens_is_an_error_event(
        upstream: UvicornThread, local: LocalOpenAI, case: str, headers: dict[str, str],
        options: dict[str, float], tokens: int, status: int, kind: str,
        code: str | None) -> None:
    index = len(local.log)
    async with relay_to(upstream.url, **options) as relay:
        response = await run(relay.respond(BODY, upstream_headers=headers))
    seen = events(response)
    assert response.status_code == 200
    assert deltas(seen) == wire.tokenize(local.reply_for(MESSAGES))[:tokens]
    assert seen[-1].event == "error"
    error = _json(seen[-1])
    assert (error["status"], error["type"], error["code"]) == (status, kind, code)
    assert not response.complete  # cut: no terminating chunk, the reader can tell
    # Whatever the failure, the relay is done with the upstream.
    assert (await anyio.to_thread.run_sync(local.log.wait_for_end, index, 5.0)).end is not None


async def test_ndjson_mode_reports_a_late_failure_as_an_error_line(
        upstream: UvicornThread) -> None:
    async with relay_to(upstream.url) as relay:
        response = await run(relay.respond(BODY, "ndjson",
                                           upstream_headers={"X-Local-Drop-After": "2"}))
    last = json.loads(response.body.decode().splitlines()[-1])
    assert last == {"type": "error", "error": {
        "status": 502, "message": "The upstream API closed the connection mid-response.",
        "type": "upstream_error", "param": None, "code": "upstream_connection_lost"}}


# -- openai mode: the relay as a proxy, read by the official SDK ------------------------


@pytest.fixture(scope="module")
def proxy(upstream: UvicornThread) -> Iterator[UvicornThread]:
    """The relay in openai mode under uvicorn; ``X-Local-*`` headers are passed
    upstream so a test can pick the upstream's failure through the proxy."""
    relay = relay_to(upstream.url)  # used only in the proxy's own event loop

    async def completions(request: Request) -> StreamingResponse:
        forwarded = {k: v for k, v in request.headers.items() if k.startswith("x-local-")}
        return relay.respond(await request.json(), "openai", upstream_headers=forwarded)

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with UvicornThread(app) as running:
        yield running


@pytest.fixture
def proxied(proxy: UvicornThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="k", max_retries=0) as sdk:
        yield sdk


def test_the_sync_sdk_reads_the_proxy(proxied: openai.OpenAI, local: LocalOpenAI) -> None:
    stream = proxied.chat.completions.create(model="local-echo", messages=MESSAGES,
                                             stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == local.reply_for(MESSAGES)
    assert chunks[-1].usage is not None
    assert {c.id for c in chunks} == {f"chatcmpl-local-{_last_index(local)}"}


def _last_index(local: LocalOpenAI) -> int:
    return len(local.log) - 1


async def test_the_async_sdk_reads_the_proxy(proxy: UvicornThread, local: LocalOpenAI) -> None:
    with anyio.fail_after(10):
        async with openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key="k",
                                      max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="local-echo", messages=MESSAGES,
                                                       stream=True)
            parts = [c.choices[0].delta.content or "" async for c in stream]
    assert "".join(parts) == local.reply_for(MESSAGES)


def test_the_sdk_gets_the_upstreams_error_through_the_proxy(proxied: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        proxied.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                        extra_headers={"X-Local-Fail": "429"})
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body == wire.error_object(
        caught.value.body["message"], "requests", None, "rate_limit_exceeded")["error"]  # type: ignore[index]
    assert caught.value.response.headers["retry-after"] == "1"


def test_the_sdk_gets_a_mid_stream_error_through_the_proxy(proxied: openai.OpenAI) -> None:
    stream = proxied.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                             extra_headers={"X-Local-Error-After": "2"})
    with pytest.raises(openai.APIError, match="The upstream API failed while streaming"):
        list(stream)


def test_the_proxy_refuses_a_non_streaming_request(proxied: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxied.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.param == "stream"


async def test_an_sdk_reader_closing_the_proxy_stream_closes_the_upstream(
        proxy: UvicornThread, local: LocalOpenAI) -> None:
    """Both hops over real TCP: the SDK closes its stream to the proxy, the proxy's
    relay closes its stream to the model server, which was 30 s away from its
    second token (no time asserted; measured: 1 to 2 ms after the close)."""
    with anyio.fail_after(10):
        async with openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key="k",
                                      max_retries=0) as sdk:
            index = len(local.log)
            stream = await sdk.chat.completions.create(
                model="m", messages=MESSAGES, stream=True,
                extra_headers={"X-Local-Token-Delay": "30"})
            for _ in range(2):  # the role chunk, then the first token
                await anext(stream)
            left = time.monotonic()
            await stream.close()
            record = await anyio.to_thread.run_sync(local.log.wait_for_end, index, 5.0)
    assert record.end is RequestEnd.CLIENT_DISCONNECTED
    assert record.ended_at is not None and record.ended_at >= left
    assert record.tokens_sent == 1


def test_the_proxy_error_body_is_exactly_the_api_shape(proxy: UvicornThread) -> None:
    raw = httpx.post(f"{proxy.url}/v1/chat/completions",
                     json={"model": "m", "messages": MESSAGES, "stream": True},
                     headers={"X-Local-Fail": "401"})
    assert raw.status_code == 401
    # The upstream's own words stay in the log: readers get the class's sentence.
    assert raw.json() == {"error": {
        "message": "The relay could not authenticate with the upstream API.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def test_the_integrations_work_without_the_openai_package() -> None:
    """Only a ChatRelay that builds its own client needs the SDK."""
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in {'openai', 'httpx', 'httpx2', 'starlette'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import anyio\n"
        "from streaming.integrations import relay_events, openai_wire\n"
        "from streaming.testing import LocalOpenAI\n"
        "async def main():\n"
        "    async def chunks():\n"
        "        yield openai_wire.chunk('c', 0, 'm', {'content': 'ok'})\n"
        "    print([e.event async for e in relay_events(chunks())])\n"
        "anyio.run(main)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "['delta', 'done']", result.stderr

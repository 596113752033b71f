"""sse-starlette's ``EventSourceResponse`` options on ours: each works with
sse-starlette's meaning, or fails in the constructor naming what to use here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from sse_starlette import ServerSentEvent as SSEStarletteEvent

from streaming import EventSourceResponse, Outcome
from streaming._types import Message
from streaming.exceptions import StreamingConfigError
from streaming.testing import StreamingClient
from tests.servers import ROOT


async def idle() -> AsyncIterator[str]:
    yield "first"
    await anyio.sleep_forever()
    yield "never"  # pragma: no cover


@pytest.mark.parametrize(("factory", "expected"), [
    pytest.param(lambda: SSEStarletteEvent(comment="custom ping"), b":custom ping\n",
                 id="sse-starlette-event"),
    pytest.param(lambda: {"event": "ping", "data": "1"}, b"event: ping\ndata: 1\n\n",
                 id="event-dict"),
])
async def test_ping_message_factory_makes_each_keepalive(factory: Any, expected: bytes) -> None:
    made = []

    def counting() -> Any:
        made.append(1)
        return factory()

    response = EventSourceResponse(idle(), ping=0.01, ping_message_factory=counting)
    async with StreamingClient(response).stream("GET", "/") as stream:
        with anyio.fail_after(5):
            assert await stream.next_chunk() == b"data: first\n\n"
            assert await stream.next_chunk() == expected
            assert await stream.next_chunk() == expected
        await stream.disconnect()
    assert len(made) >= 2  # called for every keep-alive, as sse-starlette does


async def test_client_close_handler_is_awaited_with_the_disconnect_message() -> None:
    heard: list[Message] = []

    async def on_close(message: Message) -> None:
        heard.append(message)

    response = EventSourceResponse(idle(), client_close_handler_callable=on_close)
    async with StreamingClient(response).stream("GET", "/", disconnect_after=1) as stream:
        await stream.read()
        with anyio.fail_after(5):
            await stream.wait_for_app()
    assert heard == [{"type": "http.disconnect"}]


async def test_client_close_handler_is_not_called_for_a_finished_stream() -> None:
    heard: list[Message] = []

    async def on_close(message: Message) -> None:
        heard.append(message)

    async def two() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    outcomes: list[Outcome] = []
    response = EventSourceResponse(two(), client_close_handler_callable=on_close,
                                   on_outcome=outcomes.append)
    async with StreamingClient(response).stream("GET", "/") as stream:
        assert await stream.read() == b"data: a\n\ndata: b\n\n"
    assert heard == [] and len(outcomes) == 1  # on_outcome still runs beside it


def test_sep_none_is_the_default_separator() -> None:
    assert EventSourceResponse(idle(), sep=None).format == EventSourceResponse(idle()).format


@pytest.mark.parametrize(("option", "names"), [
    ("data_sender_callable", "memory object stream"),
    ("shutdown_event", "drain=Drain"),
    ("shutdown_grace_period", r"Drain\(grace="),
])
def test_options_without_an_equivalent_name_ours(option: str, names: str) -> None:
    options: dict[str, Any] = {option: object()}
    with pytest.raises(StreamingConfigError, match=f"sse-starlette's {option}.*{names}"):
        EventSourceResponse(idle(), **options)


def test_an_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'pnig'"):
        EventSourceResponse(idle(), pnig=5)


async def test_a_failing_ping_message_factory_is_logged_and_pings_anyway(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> object:
        raise RuntimeError("no ping today")

    response = EventSourceResponse(idle(), ping=0.01, ping_message_factory=broken)
    async with StreamingClient(response).stream("GET", "/") as stream:
        with anyio.fail_after(5):
            assert await stream.next_chunk() == b"data: first\n\n"
            assert await stream.next_chunk() == b":ping\n"
        await stream.disconnect()
    assert "no ping today" in caplog.text and "ping_message" in caplog.text


SSE_STARLETTE_OPTIONS = ["ping", "ping_message_factory", "sep", "headers", "send_timeout",
                         "data_sender_callable", "client_close_handler_callable",
                         "shutdown_event", "shutdown_grace_period"]


def test_the_readme_says_what_each_option_does_here() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("sse-starlette's `EventSourceResponse` options on ours", 1)[1]
    section = section.split("\n\n", 2)[1]  # the list after the heading line
    for option in SSE_STARLETTE_OPTIONS:
        assert f"`{option}`" in section, option

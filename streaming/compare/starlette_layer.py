"""Starlette's ``StreamingResponse``, and Server-Sent Events formatted by hand for it.

The tutorial streams through Starlette's (FastAPI's) ``StreamingResponse`` and,
for SSE, yields the text of each field itself (card 6: ``yield "event: start\\n"``
then ``yield "data: 开始\\n\\n"``). ``starlette_response`` serves any producer the
first way; ``hand_formatted`` turns our ``ServerSentEvent`` items into those
card-6 chunks, so one producer can be served here, through our
``EventSourceResponse`` and through sse-starlette, and compared.

How Starlette 1.10's ``StreamingResponse`` differs from ours for event streams
(``tests/test_compare_sse.py`` and ``tests/test_drain_sigterm.py`` show it): it
sends the headers before the first chunk (``stream_response``), so even an
error before the first event is a ``200`` with a cut body; after the headers
an error cuts the stream with no in-band marker (a hand-formatted stream has no
``error`` event unless the producer writes one); and it has no keep-alive, no
``Last-Event-ID`` handling and no drain, so on SIGTERM its stream runs on until
uvicorn's ``--timeout-graceful-shutdown`` expires and is then cut.

The hand formatting follows the same field rules as our encoder
(``streaming.encoders.sse``), so that a comparison shows the response classes'
differences and not a formatter's: one ``data:`` line per line of data (WHATWG
HTML 9.2.6 joins them with LF), and a line break in ``event`` or ``id`` is an
error, since written into the stream it would start a field of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from starlette.background import BackgroundTask
from starlette.responses import ContentStream, StreamingResponse

from streaming.encoders.sse import ServerSentEvent
from streaming.exceptions import SSEEncodingError

__all__ = ["SSE_HEADERS", "hand_format", "hand_formatted", "starlette_response",
           "starlette_sse_response"]

#: The headers our ``EventSourceResponse`` sends by default, set here too so
#: that only the response classes differ (card 6 itself sets none).
SSE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# 9.2.5: CRLF, LF and CR each end a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def starlette_response(
    content: ContentStream,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    media_type: str | None = None,
    background: BackgroundTask | None = None,
) -> StreamingResponse:
    """Serve ``content`` through ``starlette.responses.StreamingResponse``; the
    arguments are the ones our ``streaming.StreamingResponse`` shares with it."""
    return StreamingResponse(content, status_code, headers, media_type, background)


def starlette_sse_response(
    events: AsyncIterable[ServerSentEvent | str],
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Serve ``events`` as hand-formatted ``text/event-stream`` through Starlette's
    ``StreamingResponse``, with our default SSE headers under the caller's."""
    merged = {**SSE_HEADERS, **(headers or {})}
    return StreamingResponse(hand_formatted(events), status_code, merged, "text/event-stream")


async def hand_formatted(events: AsyncIterable[ServerSentEvent | str]) -> AsyncIterator[str]:
    """Yield each event as card 6 does: one chunk per field line, the last one
    carrying the blank line that dispatches the event."""
    async for event in events:
        for chunk in hand_format(event):
            yield chunk


def hand_format(event: ServerSentEvent | str) -> list[str]:
    """The card-6 chunks of one event (a ``str`` is the data of an unnamed event).
    A comment alone gets no blank line, as with our encoder, so that no client
    dispatches an empty event."""
    if isinstance(event, str):
        event = ServerSentEvent(data=event)
    comments = [f":{line}\n" for line in _lines(event.comment)]
    fields = _field_lines(event)
    if fields:
        fields[-1] += "\n"
    return comments + fields


def _field_lines(event: ServerSentEvent) -> list[str]:
    lines = []
    if event.event is not None:
        lines.append(f"event: {_one_line('event', event.event)}\n")
    if event.id is not None:
        lines.append(f"id: {_one_line('id', event.id)}\n")
    if event.retry is not None:
        lines.append(f"retry: {int(event.retry)}\n")
    if event.data is not None:
        lines += [f"data: {line}\n" for line in _lines(_data_text(event.data))]
    return lines


def _data_text(data: object) -> str:
    # What a tutorial reader writes: text as it is, anything else as JSON (the
    # same text our encoder sends with json_data=True).
    if isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _lines(text: str | None) -> list[str]:
    return [] if text is None else _LINE_BREAK.split(text)


def _one_line(name: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise SSEEncodingError(f"SSE {name} {value!r} contains a line break")
    return value

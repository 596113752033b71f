"""An SSE reader that reconnects as ``EventSource`` does (WHATWG HTML 9.2).

After the connection ends, for whatever reason, it waits the server's
``retry`` (or ``Backoff.initial``), with backoff and jitter for attempts in
a row that deliver nothing, and reconnects with ``Last-Event-ID`` so a
server that resumes (``streaming.resume``) sends each event once. A ``204``
ends the stream, as it stops an ``EventSource``. httpx-sse parses; it does
not reconnect.
"""

from __future__ import annotations

from typing import Any

from streaming.client.reader import ReconnectingReader
from streaming.encoders.sse import ServerSentEvent
from streaming.encoders.sse_parser import SSEParser
from streaming.exceptions import StreamingConfigError


class SSEReader(ReconnectingReader[ServerSentEvent]):
    """``async for event in SSEReader(client, url)``: the events of one stream,
    resumed across connections. ``last_event_id`` starts from a known id."""

    media_types = frozenset({"text/event-stream"})

    def __init__(self, *args: Any, last_event_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One parser for the whole stream: an incomplete event is dropped at
        # each disconnect (parser.close()), the last event id and the retry
        # time carry over to the next connection.
        self._parser = SSEParser()
        if last_event_id:
            if any(c in last_event_id for c in "\r\n\0"):
                raise StreamingConfigError("last_event_id cannot hold CR, LF or NUL")
            self._parser.feed(f"id: {last_event_id}\n\n")  # sets the id, dispatches nothing

    @property
    def last_event_id(self) -> str | None:
        """The id the next connection sends as ``Last-Event-ID``."""
        return self._parser.last_event_id or None

    @property
    def retry(self) -> float | None:
        """The server's reconnection time in seconds, if it sent one."""
        retry = self._parser.retry
        return None if retry is None else retry / 1000

    def _request_headers(self) -> dict[str, str]:
        headers = {"accept": "text/event-stream", "cache-control": "no-store", **self.headers}
        if self.last_event_id:
            headers["last-event-id"] = self.last_event_id
        return headers

    def _feed(self, chunk: bytes) -> list[ServerSentEvent]:
        return self._parser.feed(chunk)

    def _connection_ended(self, clean: bool) -> list[ServerSentEvent]:
        self._parser.close()
        return []  # an event stream has no end of its own: reconnect

    def _base_delay(self) -> float | None:
        return self.retry

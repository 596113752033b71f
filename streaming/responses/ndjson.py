"""``NDJSONResponse``: one JSON value per line, with an in-band error line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streaming.driver import describe_error
from streaming.encoders.ndjson import encode_ndjson_error, encode_ndjson_line
from streaming.responses.stream import StreamingResponse


class NDJSONResponse(StreamingResponse):
    """Stream JSON-serialisable items as newline-delimited JSON.

    After the headers are out, a producer error ends the stream with one line
    ``{"error": {"type": ..., "message": ...}}`` before the cut, so a reader that
    parses line by line learns why the data stopped. ``default`` is passed to
    ``json.dumps`` for types it cannot serialise (``str`` for datetimes, say).
    """

    media_type = "application/x-ndjson"
    json_default: Callable[[Any], Any] | None = None

    def encode(self, item: Any) -> bytes:
        return encode_ndjson_line(item, self.json_default)

    def error_marker(self, error: BaseException) -> bytes:
        status, message = describe_error(error)
        return encode_ndjson_error(message, f"http_{status}")

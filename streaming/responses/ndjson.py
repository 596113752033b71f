"""``NDJSONResponse``: one JSON value per line, with an in-band error line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streaming.driver import describe_error
from streaming.encoders.ndjson import encode_ndjson_error, encode_ndjson_line, ndjson_encoder
from streaming.responses.stream import StreamingResponse


class NDJSONResponse(StreamingResponse):
    """Stream JSON-serialisable items as newline-delimited JSON.

    After the headers are out, a producer error ends the stream with one line
    ``{"error": {"type": ..., "message": ...}}`` before the cut, so a reader that
    parses line by line learns why the data stopped. ``json_default`` is the
    JSON encoder's ``default``, for types it cannot serialise (``str`` for
    datetimes, say).
    """

    media_type = "application/x-ndjson"
    json_default: Callable[[Any], Any] | None = None

    def __init__(
        self, *args: Any, json_default: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        default = json_default or self.json_default
        # An instance attribute, so the driver calls the encoder directly.
        self.encode = encode_ndjson_line if default is None else ndjson_encoder(default)  # type: ignore[method-assign,assignment]

    def error_marker(self, error: BaseException) -> bytes:
        status, message = describe_error(error)
        return encode_ndjson_error(message, f"http_{status}")

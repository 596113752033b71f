"""``NDJSONResponse``: one JSON value per line, with an in-band error line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streaming.formats import Format, NDJSONFormat
from streaming.responses.stream import StreamingResponse


class NDJSONResponse(StreamingResponse):
    """Stream JSON-serialisable items as newline-delimited JSON (``NDJSONFormat``).

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
        self._json_default = json_default or self.json_default
        super().__init__(*args, **kwargs)

    def _default_format(self) -> Format:
        if self._json_default is None and self.charset == "utf-8":
            return _PLAIN  # formats are immutable: the common one is shared
        return NDJSONFormat(charset=self.charset, json_default=self._json_default)


_PLAIN = NDJSONFormat()

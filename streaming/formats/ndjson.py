"""Newline-delimited JSON: one value per line, and an error line before a cut."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streaming.encoders.ndjson import encode_ndjson_error, ndjson_encoder
from streaming.formats.errors import describe_error
from streaming.formats.text import TextFormat


@dataclass(frozen=True, slots=True, kw_only=True)
class NDJSONFormat(TextFormat):
    """JSON-serialisable items, one line each (``json_default`` is the JSON
    encoder's ``default``, for types it cannot serialise). After the headers
    are out, an error is the line ``{"error": {"type": "http_<status>",
    "message": ...}}`` before the cut; before them, a ``text/plain`` response."""

    json_default: Callable[[Any], Any] | None = None
    _line: Callable[[Any], bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        TextFormat.__post_init__(self)
        object.__setattr__(self, "_line", ndjson_encoder(self.json_default))

    def encode(self, item: Any) -> bytes:
        return self._line(item)

    def error_marker(self, error: BaseException) -> bytes | None:
        status, message = describe_error(error)
        return encode_ndjson_error(message, f"http_{status}")

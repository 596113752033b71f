"""A plain byte stream: chunks are bytes or text; no keep-alive, no in-band error."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

from streaming._types import RawHeaders
from streaming.encoders.text import encode_chunk
from streaming.exceptions import StreamingConfigError
from streaming.formats.errors import describe_error, error_headers


@dataclass(frozen=True, slots=True, kw_only=True)
class TextFormat:
    """``bytes``, ``bytearray``, ``memoryview`` or ``str`` chunks (``str``
    encoded with ``charset``). An error after the headers cuts the stream: a
    plain byte stream has no in-band error syntax, so the missing terminator is
    the signal; before them, the error is a ``text/plain`` response."""

    charset: str = "utf-8"

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.charset)
        except (LookupError, TypeError):
            raise StreamingConfigError(f"charset {self.charset!r} is not a known codec") from None

    def encode(self, item: Any) -> bytes | memoryview:
        return encode_chunk(item, self.charset)

    def encode_first(self, item: Any) -> bytes | memoryview:
        return self.encode(item)

    def keepalive(self) -> bytes | None:
        """A plain byte stream has no keep-alive that is not data."""
        return None

    def error_marker(self, error: BaseException) -> bytes | None:
        return None

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        _, message = describe_error(error)
        body = message.encode(self.charset, errors="replace")
        content_type = b"text/plain; charset=" + self.charset.encode("latin-1", "replace")
        return error_headers(error, content_type, body), body

"""The interface between a response's format and the driver."""

from __future__ import annotations

from typing import Any, Protocol

from streaming._types import RawHeaders


class Format(Protocol):
    """What the driver asks of a format: pure functions, item -> bytes.

    The driver calls ``encode`` once per produced item, except for items of
    type ``bytes``: pre-encoded bytes pass through every format untouched
    (files and fan-out send bytes encoded once for many streams). A format
    holds its settings and no per-stream state, so one may serve many responses.
    """

    def encode(self, item: Any) -> bytes | memoryview:
        """Return the body bytes for one produced item; raise ``ContentTypeError``
        for an item of the wrong type (the driver fills in its index)."""
        ...

    def encode_first(self, item: Any) -> bytes | memoryview:
        """Like ``encode``, for the first item (a format may prefix it). Called
        for ``bytes`` too."""
        ...

    def keepalive(self) -> bytes | None:
        """Return the bytes of a keep-alive, or ``None`` if the format has none."""
        ...

    def error_marker(self, error: BaseException) -> bytes | None:
        """Return the in-band marker of an error after the headers are out, or
        ``None`` to cut the stream silently (the cut is then the signal)."""
        ...

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        """Return the headers and body of the error response sent before commit."""
        ...

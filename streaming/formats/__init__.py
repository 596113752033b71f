"""Layer 1: formats, each an encoder plus how the format says "keep-alive" and "error".

A format is a small frozen object, pure like the encoders it wraps: the
response holds one, the driver receives it and calls it per item. Subclass one
to change what goes on the wire (override ``encode``, ``error_marker``...) and
pass it as a response's ``format=``. Pre-encoded ``bytes`` pass through every
format untouched.
"""

from streaming.formats.base import Format
from streaming.formats.errors import describe_error, error_headers, status_for
from streaming.formats.ndjson import NDJSONFormat
from streaming.formats.sse import SSEFormat
from streaming.formats.text import TextFormat

__all__ = [
    "Format",
    "NDJSONFormat",
    "SSEFormat",
    "TextFormat",
    "describe_error",
    "error_headers",
    "status_for",
]

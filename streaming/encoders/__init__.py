"""Layer 1: sans-IO encoders. Each turns one item into the bytes of the wire format.

Pure and synchronous, like h11's ``Connection.send(event) -> bytes``: no event
loop, no ASGI, no I/O, so they are tested with plain table tests.
"""

from streaming.encoders.ndjson import encode_ndjson_error, encode_ndjson_line
from streaming.encoders.text import encode_chunk

__all__ = ["encode_chunk", "encode_ndjson_error", "encode_ndjson_line"]

"""Layer 1: sans-IO encoders. Each turns one item into the bytes of the wire format.

Pure and synchronous, like h11's ``Connection.send(event) -> bytes``: no event
loop, no ASGI, no I/O, so they are tested with plain table tests. The SSE parser
lives here too: it is the same protocol read the other way, for clients and tests.
"""

from streaming.encoders.ndjson import encode_ndjson_error, encode_ndjson_line
from streaming.encoders.sse import ServerSentEvent, encode_comment, encode_event, encode_item
from streaming.encoders.sse_parser import SSEParser
from streaming.encoders.text import encode_chunk

__all__ = [
    "SSEParser",
    "ServerSentEvent",
    "encode_chunk",
    "encode_comment",
    "encode_event",
    "encode_item",
    "encode_ndjson_error",
    "encode_ndjson_line",
]

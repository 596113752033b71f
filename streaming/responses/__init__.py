"""Layer 3: responses. Each holds its settings, headers and a format (``streaming.formats``)
and hands them to the driver."""

from streaming.responses.file import FileResponse
from streaming.responses.headers import ResponseHeaders
from streaming.responses.ndjson import NDJSONResponse
from streaming.responses.sse import EventSourceResponse
from streaming.responses.stream import StreamingResponse
from streaming.responses.whole import send_whole

__all__ = [
    "EventSourceResponse",
    "FileResponse",
    "NDJSONResponse",
    "ResponseHeaders",
    "StreamingResponse",
    "send_whole",
]

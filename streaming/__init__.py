"""streaming: HTTP streaming responses written directly on ASGI.

Layers, lowest first (see ARCHITECTURE.md): sans-IO encoders
(``streaming.encoders``), the one ASGI driver (``streaming.driver``), thin
responses (``streaming.responses``), the Starlette / sse-starlette comparison
layer (``streaming.compare``), and tools for people (``streaming.testing``,
``streaming.tracing``). ``import streaming`` needs only anyio.
"""

from streaming.driver import StreamPolicy
from streaming.encoders import ServerSentEvent, SSEParser
from streaming.exceptions import (
    ContentTypeError,
    HeaderValidationError,
    InvalidContentError,
    ResponseReusedError,
    SSEEncodingError,
    StreamingError,
    StreamingWarning,
    StreamRefused,
    UnsupportedScopeError,
)
from streaming.outcome import EndReason, Outcome
from streaming.responses import NDJSONResponse, ResponseHeaders, StreamingResponse

__all__ = [
    "ContentTypeError",
    "EndReason",
    "HeaderValidationError",
    "InvalidContentError",
    "NDJSONResponse",
    "Outcome",
    "ResponseHeaders",
    "ResponseReusedError",
    "SSEEncodingError",
    "SSEParser",
    "ServerSentEvent",
    "StreamPolicy",
    "StreamRefused",
    "StreamingError",
    "StreamingResponse",
    "StreamingWarning",
    "UnsupportedScopeError",
]

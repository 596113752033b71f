"""streaming: HTTP streaming responses written directly on ASGI.

Layers, lowest first (see ARCHITECTURE.md): sans-IO encoders and formats
(``streaming.encoders``, ``streaming.formats``), the one ASGI driver
(``streaming.driver``), thin responses (``streaming.responses``), the
Starlette / sse-starlette comparison
layer (``streaming.compare``), and tools for people (``streaming.testing``,
``streaming.tracing``). ``import streaming`` needs only anyio.
"""

from streaming.drain import Drain, DrainReport
from streaming.driver import StreamPolicy
from streaming.encoders import ServerSentEvent, SSEParser
from streaming.exceptions import (
    BodyAlreadyReadError,
    BodyIncompleteError,
    BodyTimeoutError,
    BodyTooLargeError,
    ContentTypeError,
    EventTooLargeError,
    FileChangedError,
    FileResponseError,
    HeaderValidationError,
    HubClosedError,
    HubUnavailable,
    InvalidContentError,
    InvalidJSONError,
    InvalidTopicError,
    MissingEventIdError,
    NDJSONEncodingError,
    ReadDeadlineExceeded,
    ReconnectFailed,
    RequestBodyError,
    ResponseReusedError,
    SlotStoreUnavailable,
    SSEEncodingError,
    SSELimitError,
    StreamEnded,
    StreamingConfigError,
    StreamingError,
    StreamingWarning,
    StreamInterrupted,
    StreamReadError,
    StreamRefused,
    SubscriberOverflow,
    UnsupportedScopeError,
    UpstreamError,
    WireFormatError,
)
from streaming.limits import StreamLimiter
from streaming.outcome import EndReason, Outcome
from streaming.request_body import RequestBody, parse_json, read_body, read_json
from streaming.responses import (
    EventSourceResponse,
    FileResponse,
    NDJSONResponse,
    ResponseHeaders,
    StreamingResponse,
)
from streaming.resume import RESET_EVENT, Replay, ReplayBuffer, read_last_event_id

__all__ = [
    "RESET_EVENT",
    "BodyAlreadyReadError",
    "BodyIncompleteError",
    "BodyTimeoutError",
    "BodyTooLargeError",
    "ContentTypeError",
    "Drain",
    "DrainReport",
    "EndReason",
    "EventSourceResponse",
    "EventTooLargeError",
    "FileChangedError",
    "FileResponse",
    "FileResponseError",
    "HeaderValidationError",
    "HubClosedError",
    "HubUnavailable",
    "InvalidContentError",
    "InvalidJSONError",
    "InvalidTopicError",
    "MissingEventIdError",
    "NDJSONEncodingError",
    "NDJSONResponse",
    "Outcome",
    "ReadDeadlineExceeded",
    "ReconnectFailed",
    "Replay",
    "ReplayBuffer",
    "RequestBody",
    "RequestBodyError",
    "ResponseHeaders",
    "ResponseReusedError",
    "SSEEncodingError",
    "SSELimitError",
    "SSEParser",
    "ServerSentEvent",
    "SlotStoreUnavailable",
    "StreamEnded",
    "StreamInterrupted",
    "StreamLimiter",
    "StreamPolicy",
    "StreamReadError",
    "StreamRefused",
    "StreamingConfigError",
    "StreamingError",
    "StreamingResponse",
    "StreamingWarning",
    "SubscriberOverflow",
    "UnsupportedScopeError",
    "UpstreamError",
    "WireFormatError",
    "parse_json",
    "read_body",
    "read_json",
    "read_last_event_id",
]

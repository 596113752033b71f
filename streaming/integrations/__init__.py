"""Layer 6: integrations.

- ``ChatRelay``, ``relay_response``, ``relay_events``: relay an OpenAI-compatible
  chat-completion stream to a reader as Server-Sent Events, NDJSON or the API's
  own format, closing the upstream the moment the reader leaves
  (``streaming.integrations.openai_relay``).
- ``LocalOpenAI``: a local OpenAI-compatible chat server with a deterministic
  reply, injectable faults and a record of its clients, for demos and tests
  (``streaming.integrations.openai_server``).

Importing this package does not import ``openai``: only a ``ChatRelay`` that
builds its own client needs it (``pip install asgi-streaming[openai]``).
"""

from streaming.exceptions import UpstreamError
from streaming.integrations.openai_relay import (
    RELAY_MODES,
    ChatRelay,
    OpenAIFormat,
    RelayMode,
    RelayNDJSONFormat,
    RelayResult,
    RelaySSEFormat,
    relay_events,
    relay_response,
)
from streaming.integrations.openai_server import (
    Behaviour,
    LocalOpenAI,
    RequestEnd,
    RequestLog,
    RequestRecord,
)

__all__ = [
    "RELAY_MODES",
    "Behaviour",
    "ChatRelay",
    "LocalOpenAI",
    "OpenAIFormat",
    "RelayMode",
    "RelayNDJSONFormat",
    "RelayResult",
    "RelaySSEFormat",
    "RequestEnd",
    "RequestLog",
    "RequestRecord",
    "UpstreamError",
    "relay_events",
    "relay_response",
]

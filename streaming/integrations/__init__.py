"""Layer 6: integrations.

- ``ChatRelay``, ``relay_response``, ``relay_events``: relay an OpenAI-compatible
  chat-completion stream to a reader as Server-Sent Events, NDJSON or the API's
  own format, closing the upstream the moment the reader leaves
  (``streaming.integrations.openai_relay``).

The local OpenAI-compatible server the relay is tested against is a test
double and lives with the other ones: ``streaming.testing.LocalOpenAI``.

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

__all__ = [
    "RELAY_MODES",
    "ChatRelay",
    "OpenAIFormat",
    "RelayMode",
    "RelayNDJSONFormat",
    "RelayResult",
    "RelaySSEFormat",
    "UpstreamError",
    "relay_events",
    "relay_response",
]

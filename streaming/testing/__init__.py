"""Layer 5: an in-process streaming test client for any ASGI app, on asyncio and trio.

Unlike httpx's ``ASGITransport`` it does not buffer the body: chunks reach the
test as the app sends them, so endless streams and mid-stream disconnects can be
tested. Unlike Starlette's ``TestClient`` it ends a stream the way a server does,
with ``http.disconnect``, and it can play an ASGI 2.3 server (``send()`` after a
disconnect returns silently) or a 2.4 one (``send()`` raises ``OSError``).

``LocalOpenAI`` is a test double of an OpenAI-compatible chat API (a plain ASGI
app, ``streaming.testing.openai_server``): deterministic replies, faults you
choose, and a record of its clients, to test a relay against over real HTTP.
"""

from streaming.testing.client import StreamingClient, TestResponse
from streaming.testing.openai_server import (
    Behaviour,
    LocalOpenAI,
    RequestEnd,
    RequestLog,
    RequestRecord,
)

__all__ = [
    "Behaviour",
    "LocalOpenAI",
    "RequestEnd",
    "RequestLog",
    "RequestRecord",
    "StreamingClient",
    "TestResponse",
]

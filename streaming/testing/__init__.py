"""Layer 5: an in-process streaming test client for any ASGI app, on asyncio and trio.

Unlike httpx's ``ASGITransport`` it does not buffer the body: chunks reach the
test as the app sends them, so endless streams and mid-stream disconnects can be
tested. Unlike Starlette's ``TestClient`` it ends a stream the way a server does,
with ``http.disconnect``, and it can play an ASGI 2.3 server (``send()`` after a
disconnect returns silently) or a 2.4 one (``send()`` raises ``OSError``).
"""

from streaming.testing.client import StreamingClient, TestResponse

__all__ = ["StreamingClient", "TestResponse"]

"""Client-side readers for streams, on httpx (the ``client`` extra).

``SSEReader`` reconnects the way ``EventSource`` does (``retry``,
``Last-Event-ID``, ``204`` to stop) with backoff and jitter; ``NDJSONReader``
reconnects when it can do so without repeating a line. Both take a total
``deadline`` and raise ``ReconnectFailed`` when the server keeps failing.
"""

from streaming.client.backoff import Backoff
from streaming.client.ndjson import NDJSONReader
from streaming.client.reader import ReconnectingReader
from streaming.client.sse import SSEReader

__all__ = ["Backoff", "NDJSONReader", "ReconnectingReader", "SSEReader"]

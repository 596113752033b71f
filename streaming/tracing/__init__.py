"""Layer 5: see the raw ASGI message flow of any app.

``TraceMiddleware`` wraps an ASGI app and records every message that crosses
``receive()`` and ``send()`` with a timestamp; ``format_timeline`` prints such a
record the way ``python -m streaming trace`` does. ``streaming.testing`` records
through this same middleware, so there is one recorder.
"""

from streaming.tracing.middleware import RecordedMessage, Trace, TraceMiddleware
from streaming.tracing.timeline import format_message, format_timeline

__all__ = ["RecordedMessage", "Trace", "TraceMiddleware", "format_message", "format_timeline"]

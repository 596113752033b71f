"""The live inspector page (``Inspector``): open streams, outcomes, time to
first byte, and each stream's ASGI message flow drawn as a timeline."""

from streaming.inspector.app import Inspector, loopback_only

__all__ = ["Inspector", "loopback_only"]

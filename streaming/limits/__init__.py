"""Production guards: stream slots (``StreamLimiter``) and a byte-rate cap.

``streaming.limits.redis.RedisSlots`` (imported on its own: it needs the
Redis client) shares the slots across workers and hosts.
"""

from streaming.limits.limiter import StreamLimiter, client_address, header_value, route_path
from streaming.limits.rate import PacedSend
from streaming.limits.slots import Claim, MemorySlots, SlotStore

__all__ = [
    "Claim",
    "MemorySlots",
    "PacedSend",
    "SlotStore",
    "StreamLimiter",
    "client_address",
    "header_value",
    "route_path",
]

"""Fan-out: publish an event once, deliver it to every subscriber, in every
worker and on every host, resumable by ``Last-Event-ID``.

    hub = Hub(RedisBackend("redis://127.0.0.1:6379/0"))    # or Hub(): one process
    app = Starlette(routes=..., lifespan=hub.lifespan)
    event_id = await hub.publish("room:1", {"text": "hi"}, event="message")
    return EventSourceResponse(hub.subscriber("room:1"))

``RedisBackend`` needs the ``redis`` extra (coredis); nothing here imports it
until a ``RedisBackend`` is made.
"""

from streaming.hub.backend import Backend, Entry, Feed, History
from streaming.hub.core import Authorize, Hub, Subscriber
from streaming.hub.memory import MemoryBackend
from streaming.hub.position import Cursor, Position
from streaming.hub.redis import RedisBackend

__all__ = [
    "Authorize",
    "Backend",
    "Cursor",
    "Entry",
    "Feed",
    "History",
    "Hub",
    "MemoryBackend",
    "Position",
    "RedisBackend",
    "Subscriber",
]

"""Layer 2: the ASGI driver, the one place that calls ``send()`` and ``receive()``.

One anyio task group per response. The host task pumps the body; child tasks
listen on ``receive()`` for ``http.disconnect`` from the first moment, commit
the headers when the commit deadline passes, and (when asked) ping an idle
stream or time out a stuck ``send()``. Whoever ends the race cancels the
group's scope, so nothing outlives the ``async with``. After it, a shielded,
time-bounded cleanup closes the producer whatever happened.

Why a listener on every server: ASGI HTTP spec 2.3 servers (uvicorn, hypercorn)
report a departed client only through ``receive()`` and silently drop later
``send()`` calls; 2.4 servers may raise ``OSError`` from ``send()`` instead. We
handle both the same way, so there is one disconnect path, not one per version.
"""

from streaming.driver.core import Driver, ServerSend, StreamPolicy
from streaming.driver.request import RequestStream
from streaming.driver.sources import ContentStream, open_source

__all__ = ["ContentStream", "Driver", "RequestStream", "ServerSend", "StreamPolicy", "open_source"]

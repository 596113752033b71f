"""Layer 2: the ASGI driver, the one place that calls ``send()`` and ``receive()``.

One anyio task group per response and one child task in it (with
``batch=True``, a second one only for a moment, at the end of a burst:
``batching.py``): the host task pumps the body (``core.py``); the child listens on ``receive()`` for
``http.disconnect`` from the stream's first wait (a response sent whole
without ever waiting needs none) and, between messages, fires the
timers that are due: the commit deadline, and the keep-alive / slow-client
look, whose decision is the pure ``Watchdog`` (``watchdog.py``). Whoever ends
the race cancels the group's scope. After it, a shielded, time-bounded cleanup
closes the producer whatever happened (``closing.py``); a sync producer's
worker thread may outlive it, by design (``sources.py``). A producer fed by a
publisher (the hub's subscribers) may let that publisher send from its own
task while the stream waits (``offers.py``).

Why a listener on every server: ASGI HTTP spec 2.3 servers (uvicorn, hypercorn)
report a departed client only through ``receive()`` and silently drop later
``send()`` calls; 2.4 servers may raise ``OSError`` from ``send()`` instead. We
handle both the same way, so there is one disconnect path, not one per version.
"""

from streaming.driver.core import Driver, ServerSend
from streaming.driver.offers import Finish, Offer
from streaming.driver.policy import StreamPolicy
from streaming.driver.request import RequestStream
from streaming.driver.sources import ContentStream, open_source

__all__ = ["ContentStream", "Driver", "Finish", "Offer", "RequestStream", "ServerSend",
           "StreamPolicy", "open_source"]

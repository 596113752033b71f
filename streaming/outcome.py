"""How a streamed response ended: the typed result the driver hands back."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EndReason(enum.Enum):
    """Why a response stopped streaming."""

    #: The producer was exhausted and the final empty body message was sent.
    COMPLETED = "completed"
    #: The client went away (``http.disconnect`` or an ``OSError`` from ``send``).
    CLIENT_DISCONNECTED = "client_disconnected"
    #: The producer (or its encoder) raised. Before the headers were committed the
    #: client got an error status; after, the stream was cut.
    PRODUCER_ERROR = "producer_error"
    #: A ``HEAD`` request: headers only, the producer never started.
    HEAD = "head"
    #: The client did not accept a message within the send timeout (it stopped
    #: reading); it was treated as gone.
    SEND_TIMEOUT = "send_timeout"
    #: A drain (server shutdown) ended the stream with a final message.
    DRAINED = "drained"
    #: A hub subscriber fell so far behind that its bounded queue overflowed;
    #: the stream ended cleanly so the client reconnects and resumes from the
    #: hub's history (``streaming.hub``; the producer raised ``SubscriberOverflow``).
    SUBSCRIBER_OVERFLOW = "subscriber_overflow"
    #: The server refused the response start (raised from ``send()``, say for a
    #: header value h11 will not write): nothing reached the client, and the
    #: server's exception is re-raised once so the server logs it.
    START_REFUSED = "start_refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The end of one response, as observed by the driver.

    ``status_code`` is the status actually sent (an error status when the
    producer failed before the first chunk). ``chunks_sent`` counts body chunks
    handed to ``send()``, the error marker excluded.

    ``cleanup_timed_out`` is true when closing the producer (``aclose()`` or, for a
    sync iterator, ``close()`` in its worker thread) did not finish within the
    response's ``cleanup_timeout``: its ``finally`` may still be running.
    """

    reason: EndReason
    status_code: int
    headers_sent: bool
    chunks_sent: int
    duration: float
    #: True when the final empty body message went out: the client can tell the
    #: body is whole. False for a cut stream or a departed client.
    body_complete: bool
    error: BaseException | None = None
    cleanup_timed_out: bool = False
    #: Body bytes of those chunks, counted by the driver as it sends them (not
    #: from ``Content-Length``, which a streamed body does not have).
    bytes_sent: int = 0
    #: Seconds from the start of the response to the first body chunk handed
    #: to ``send()`` (not to the start message); ``None`` if none was sent.
    first_byte_after: float | None = None

"""sse-starlette's ``EventSourceResponse``, fed our ``ServerSentEvent`` items.

This is the only module of ``streaming`` that imports ``sse_starlette``, because
importing it has effects on the whole process. sse-starlette 3.7, at import
(``sse_starlette/sse.py``):

* replaces the class attribute ``uvicorn.main.Server.handle_exit`` with
  ``AppStatus.handle_exit``, which sets the class-level flag
  ``AppStatus.should_exit`` (process-global, never reset) and then calls
  uvicorn's original. It takes effect only for servers that bind their
  handler after the import: ``uvicorn module:app`` and ``uvicorn.run()`` import
  the app (``Config.load_app``) before ``Server.serve`` installs its handlers,
  so an app module that imports sse-starlette at its top is covered; a server
  that is already running keeps the original bound method;
* then, per response, it starts one watcher task per thread that polls every
  0.5 s for that flag or for ``should_exit`` of the uvicorn ``Server`` it finds
  as ``signal.getsignal(SIGTERM).__self__`` (the fallback for a late import,
  which fails when another handler, such as our ``Drain.watch_signals``, is
  chained in front of uvicorn's). The watcher is started with
  ``asyncio.get_running_loop()``: on trio that raises, the error is swallowed,
  and its streams never hear of a shutdown.

Differences from our ``EventSourceResponse`` that show in a comparison: it
sends ``Connection: keep-alive`` (illegal over HTTP/2) and
``Cache-Control: no-store``; it writes fields in the order comment, ``id``,
``event``, ``data``, ``retry``, ends lines with CRLF by default, and strips line
breaks from ``event`` and ``id`` instead of refusing them; the headers go out
before the first event, and a producer error after them cuts the stream with
no ``error`` event. Our items are converted field by field, so the parsed
events are the same.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping

import sse_starlette

from streaming.encoders.sse import ServerSentEvent

__all__ = ["sse_starlette_response", "to_sse_starlette"]


def sse_starlette_response(
    events: AsyncIterable[ServerSentEvent | str],
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    ping: float | None = None,
    send_timeout: float | None = None,
) -> sse_starlette.EventSourceResponse:
    """Serve ``events`` through ``sse_starlette.EventSourceResponse`` with its
    defaults (``ping=None`` is its 15 s keep-alive; ``0`` turns it off)."""
    return sse_starlette.EventSourceResponse(
        _converted(events), status_code, headers, ping=ping, send_timeout=send_timeout
    )


async def _converted(
    events: AsyncIterable[ServerSentEvent | str],
) -> AsyncIterator[sse_starlette.ServerSentEvent]:
    async for event in events:
        yield to_sse_starlette(event)


def to_sse_starlette(event: ServerSentEvent | str) -> sse_starlette.ServerSentEvent:
    """Our event as sse-starlette's (a ``str`` is the data of an unnamed event).
    Data that is not text is sent as JSON, the text our encoder sends with
    ``json_data=True``: sse-starlette would send ``str(data)``, a Python repr."""
    if isinstance(event, str):
        return sse_starlette.ServerSentEvent(data=event)
    return sse_starlette.ServerSentEvent(
        data=_data_text(event.data),
        event=event.event,
        id=event.id,
        retry=event.retry,
        comment=event.comment,
    )


def _data_text(data: object) -> str | None:
    if data is None or isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

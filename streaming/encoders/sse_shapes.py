"""The event shapes other SSE libraries yield, read with their meaning.

Code ported from sse-starlette or from FastAPI's own SSE keeps yielding what it
yielded there. This module reads each shape as the fields of one event, without
importing either library (a shape is recognised by its keys or attributes); the
encoder builds our ``ServerSentEvent`` from them, so its rules (no stripped line
breaks, no BOM) hold for them too. Pure and synchronous, like the encoder.

* A ``dict`` with the keys ``data``, ``event``, ``id``, ``retry``, ``comment``:
  sse-starlette's event dict (``ServerSentEvent(**item)``). A key outside
  those is refused, naming ``json_data=True`` (with it, a dict is JSON data).
* An object with the attributes ``data``, ``event``, ``id``, ``retry`` and
  ``comment``: sse-starlette's ``ServerSentEvent`` (and ``JSONServerSentEvent``,
  whose ``data`` is already a JSON string); its ``data`` follows our rules.
* Such an object that also has ``raw_data``: FastAPI's ``ServerSentEvent``,
  with FastAPI's meaning: ``raw_data`` goes out as it is, ``data`` is always
  JSON (a ``str`` is quoted; a pydantic model gives its ``model_dump_json()``).

Where the meaning differs on purpose: sse-starlette sends ``str(data)`` of
anything, so a ``dict`` inside an event dict would go out as a Python repr
(``{'a': 1}``), which no client can parse: here it is an ``SSEEncodingError``
saying how to send JSON. FastAPI turns NaN into ``null``; strict JSON refuses it.
"""

from __future__ import annotations

import json
from typing import Any

from streaming.exceptions import SSEEncodingError

__all__ = ["EVENT_FIELDS", "EventFields", "event_from_dict", "event_from_object"]

#: The fields of an event (WHATWG 9.2.6) plus the comment line, as every
#: library in the field names them.
EVENT_FIELDS = ("data", "event", "id", "retry", "comment")

#: ``(data, event, id, retry, comment)``, in the order of ``ServerSentEvent``'s fields.
EventFields = tuple[Any, Any, Any, Any, Any]

# Types that are data, never an event object: skip the attribute look-ups.
_PLAIN = (str, int, float, bool, list, tuple, dict)

_MISSING = object()


def event_from_dict(item: dict[Any, Any]) -> EventFields:
    """Read sse-starlette's event dict (``{"event": "x", "data": "y"}``)."""
    unknown = [key for key in item if key not in EVENT_FIELDS]
    if unknown:
        raise SSEEncodingError(
            f"an event dict takes the keys {', '.join(EVENT_FIELDS)}; {unknown[0]!r} is not "
            "one of them. To send the dict itself as JSON data, pass json_data=True")
    data = item.get("data")
    if isinstance(data, (dict, list, tuple)):
        raise SSEEncodingError(
            f"the data of an event dict is {type(data).__qualname__}, which sse-starlette "
            "would send as its Python repr: send json.dumps(data), or yield "
            "ServerSentEvent(data=..., ...) with json_data=True")
    return data, item.get("event"), item.get("id"), item.get("retry"), item.get("comment")


def event_from_object(item: object) -> EventFields | None:
    """Read an event object of another library, or return ``None`` if ``item``
    does not have the five event attributes (then it is data)."""
    if type(item) in _PLAIN:
        return None
    fields = [getattr(item, name, _MISSING) for name in EVENT_FIELDS]
    if _MISSING in fields:
        return None
    data, event, id_, retry, comment = fields
    raw_data = getattr(item, "raw_data", _MISSING)
    if raw_data is not _MISSING:  # FastAPI's ServerSentEvent
        data = raw_data if raw_data is not None else _fastapi_json(data)
    return data, event, id_, retry, comment


def _fastapi_json(data: object) -> str | None:
    # FastAPI: "All data values including plain strings are JSON-serialized".
    if data is None:
        return None
    dump = getattr(data, "model_dump_json", None)
    if callable(dump):  # a pydantic model, serialised by itself as FastAPI does
        return str(dump())
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SSEEncodingError(f"the data of a FastAPI ServerSentEvent is not JSON: {exc}") \
            from exc

"""Server-Sent Events encoder: one item in, the bytes of one ``text/event-stream`` block out.

Follows the WHATWG HTML standard, section 9.2 "Server-sent events"
(https://html.spec.whatwg.org/multipage/server-sent-events.html). Pure and
synchronous: no event loop, no ASGI.

Where it deliberately differs from its peers:

* A line break in ``event`` or ``id``, a NUL in ``id``, or a bad ``retry`` raises
  :class:`~streaming.exceptions.SSEEncodingError`; nothing is stripped silently
  (sse-starlette 3.7 deletes line breaks from ``event``/``id``, renaming the event,
  and ``str()``-s any data, so ``bytes`` data goes out as ``b'...'``).
* A ``str`` item or ``data`` is sent as it is, never JSON-quoted (FastAPI quotes it).
  ``dict``/``list`` data is JSON only when the caller says so with ``json_data=True``;
  then any non-``str`` data is sent as strict JSON (NaN and infinities refused).
* CRLF, LF and CR inside data or a comment each start a new line; a parser gives
  them all back as LF (9.2.6 joins data lines with LF).
* ``int`` and ``float`` data (never ``bool``) are sent as ``str(data)``, which is also
  their JSON text for finite numbers; ``bytes`` *data* is refused (decode it, or
  yield pre-encoded event bytes as the item itself, which pass through untouched).
* An event with no field (only a comment, or nothing) gets no blank line: a blank
  line alone makes httpx-sse and the openai SDK dispatch an empty event once an id
  has been seen, which is why keep-alives must be comments.
* No byte order mark, ever (the openai SDK does not strip one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streaming.encoders.sse_shapes import event_from_dict, event_from_object
from streaming.exceptions import SSEEncodingError, StreamingConfigError

__all__ = ["ServerSentEvent", "encode_comment", "encode_event", "encode_item", "item_encoder"]

# 9.2.5 "Parsing an event stream": end-of-line = CRLF / LF / CR.
SEPARATORS = ("\n", "\r\n", "\r")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One Server-Sent Event, as sent by :func:`encode_event` or parsed by ``SSEParser``.

    ``None`` means "field absent". A parsed event's ``event`` is ``None`` for the
    spec's default type ``"message"``, its ``data`` is always ``str``, its ``id`` is
    the stream's last event ID at dispatch (``None`` when empty) and ``retry`` is
    the reconnection time sent in the same block, if any.
    """

    data: Any = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


def encode_item(item: object, *, sep: str = "\n", json_data: bool = False) -> bytes:
    """Encode what a producer yields: a :class:`ServerSentEvent`; pre-encoded
    ``bytes`` (passed through untouched); an event ``dict`` or event object of
    sse-starlette's or FastAPI's (``sse_shapes``); or anything else as the
    ``data`` of an event (``str`` as is; ``dict``/``list`` need ``json_data=True``)."""
    if type(item) is str and "\n" not in item and "\r" not in item:
        _check_sep(sep)  # the common case: one data line
        return _utf8(f"data: {item}{sep}{sep}")
    if isinstance(item, ServerSentEvent):
        return encode_event(item, sep=sep, json_data=json_data)
    if isinstance(item, (bytes, bytearray, memoryview)):
        _check_sep(sep)
        return item if type(item) is bytes else bytes(item)
    if item is None:
        raise SSEEncodingError("None is not an event; yield a ServerSentEvent, str or bytes")
    # sse-starlette's and FastAPI's shapes (see sse_shapes); with json_data=True
    # a dict is JSON data, as it always was here.
    fields = (event_from_dict(item) if type(item) is dict and not json_data
              else event_from_object(item))
    if fields is not None:
        return encode_event(ServerSentEvent(*fields), sep=sep, json_data=json_data)
    return encode_event(ServerSentEvent(data=item), sep=sep, json_data=json_data)


def encode_event(event: ServerSentEvent, *, sep: str = "\n", json_data: bool = False) -> bytes:
    """Return one event block: comment lines, ``event``, ``id``, ``retry``, ``data``
    lines, then the blank line that dispatches it (9.2.6 "Interpreting an event
    stream"). Raise :class:`SSEEncodingError` for a field the format cannot carry."""
    _check_sep(sep)
    lines = _field_lines(event, json_data)
    if event.comment is not None:
        comments = _comment_lines(event.comment)
        if not lines:  # a comment alone: no blank line (see the module docstring)
            return _utf8(sep.join(comments) + sep)
        lines[:0] = comments
    return _utf8(f"{sep.join(lines)}{sep}{sep}") if lines else b""


def encode_comment(text: str = "", sep: str = "\n") -> bytes:
    """Return comment line(s) ``:text``, the keep-alive every client ignores (9.2.6:
    a line starting with a colon is ignored). No blank line follows, so no client
    dispatches an empty event; a line break in ``text`` starts another comment line."""
    _check_sep(sep)
    return _utf8(sep.join(_comment_lines(text)) + sep)


def _field_lines(event: ServerSentEvent, json_data: bool) -> list[str]:
    # Always "name: value": 9.2.6 strips one space after the colon, so a value
    # that itself starts with a space survives the round trip. This is the hot
    # path, hence the inline checks for the common case (one-line str values).
    lines = []
    if event.event is not None:
        lines.append("event: " + _checked_event(event.event))
    if event.id is not None:
        lines.append("id: " + _checked_id(event.id))
    if event.retry is not None:
        lines.append("retry: " + _checked_retry(event.retry))
    data = event.data
    if type(data) is str and "\n" not in data and "\r" not in data:
        lines.append("data: " + data)
    elif data is not None:
        lines += ["data: " + line for line in _split_lines(_data_text(data, json_data))]
    return lines


def _split_lines(text: str) -> list[str]:
    # 9.2.5: CRLF, LF and CR each end a line, so each piece needs its own line;
    # the parser joins data lines with LF, so CR and CRLF in data come back as LF.
    # str.splitlines() would also split on VT, FF, NEL, U+2028..., which SSE does not.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _comment_lines(text: str) -> list[str]:
    return [":" + line for line in _split_lines(_require_str("comment", text))]


def _checked_event(value: str) -> str:
    if type(value) is str and "\n" not in value and "\r" not in value:
        return value
    return _one_line("event", value)


def _checked_id(value: str) -> str:
    if type(value) is str and "\n" not in value and "\r" not in value and "\0" not in value:
        return value
    text = _one_line("id", value)
    if "\0" in text:  # 9.2.6: a client ignores an id holding NUL
        raise SSEEncodingError(f"SSE id {text!r} contains NUL; clients would ignore it")
    return text


def _one_line(name: str, value: object) -> str:
    # A str subclass (a StrEnum member, say) is written as the text it holds:
    # str.__str__, not str(), which a (str, Enum) mix-in turns into "Kind.A".
    text = str.__str__(_require_str(name, value))
    if "\n" in text or "\r" in text:
        raise SSEEncodingError(
            f"SSE {name} {text!r} contains a line break; text/event-stream cannot carry it")
    return text


#: The largest ``retry`` written or read: 2**63 - 1 ms, the most a client's
#: 64-bit clock holds. Past it a value is refused here and ignored by the
#: parser (9.2.6 sets the reconnection time only from a value it can interpret).
MAX_RETRY = 2**63 - 1


def check_retry(value: object) -> int:
    """Return ``value`` if it is a ``retry`` (ms) a client can honour, else
    raise ``SSEEncodingError``: not an ``int`` (``bool`` neither), negative,
    or over ``MAX_RETRY`` (``str()`` of a 5000-digit int is a ``ValueError``)."""
    if type(value) is not int or not 0 <= value <= MAX_RETRY:
        # repr() of an int past 4300 digits raises ValueError itself.
        shown = f"an int of about {value.bit_length() * 3 // 10} digits" \
            if type(value) is int and abs(value) > MAX_RETRY else repr(value)
        raise SSEEncodingError(
            f"SSE retry must be a non-negative int (milliseconds) up to {MAX_RETRY}, "
            f"not {shown}")
    return value


def _checked_retry(value: object) -> str:
    # 9.2.6: retry is honoured only if it consists of ASCII digits.
    return str(check_retry(value))


def _data_text(data: object, json_data: bool) -> str:
    if isinstance(data, str):
        return data
    if json_data:
        return _json_text(data)
    if type(data) is int or type(data) is float:
        return str(data)
    if isinstance(data, (dict, list, tuple)):
        raise SSEEncodingError(
            f"SSE data of type {type(data).__qualname__} needs JSON: pass json_data=True"
        )
    raise SSEEncodingError(
        f"SSE data of type {type(data).__qualname__} cannot be sent; pass str, int or "
        "float, or a JSON value with json_data=True (bytes: decode them first)"
    )


def _json_text(data: object) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SSEEncodingError(f"SSE data is not JSON: {exc}") from exc


def _require_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise SSEEncodingError(f"SSE {name} must be str, not {type(value).__qualname__}")
    return value


def _check_sep(sep: str) -> None:
    if sep not in SEPARATORS:
        raise StreamingConfigError(
            f"SSE line separator must be '\\n', '\\r\\n' or '\\r', not {sep!r}")


def _utf8(text: str) -> bytes:
    # A lone surrogate has no UTF-8 form; report it as the field's fault.
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise SSEEncodingError(f"SSE event is not encodable as UTF-8: {exc}") from exc


def item_encoder(*, sep: str = "\n", json_data: bool = False) -> Callable[[object], bytes]:
    """Return ``encode_item`` with ``sep`` and ``json_data`` fixed, checked once.

    The returned function is what a response calls per item: the common case (a
    one-line ``str``) is a single f-string and ``encode()``, with no other call.
    """
    _check_sep(sep)
    end = sep + sep

    def encode(item: object) -> bytes:
        if type(item) is str and "\n" not in item and "\r" not in item:
            try:
                return f"data: {item}{end}".encode()
            except UnicodeEncodeError:
                pass  # a lone surrogate: encode_item raises the clear error
        return encode_item(item, sep=sep, json_data=json_data)

    return encode

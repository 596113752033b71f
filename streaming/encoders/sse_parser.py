"""Incremental Server-Sent Events parser: bytes in, :class:`ServerSentEvent` objects out.

Implements the WHATWG HTML standard, 9.2.5 "Parsing an event stream" and 9.2.6
"Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html), with no I/O:
feed it chunks as they arrive, in any split, and it returns the events they
complete. Used by our tests and test client; usable by any client.

How results map onto :class:`ServerSentEvent` (so that ``parse(encode(e)) == e``
whenever the wire format can say so):

* ``data`` is always ``str``; ``event`` is ``None`` for the default type
  ``"message"`` (an empty ``event:`` field also means ``"message"``).
* ``id`` is the last event ID at dispatch, which persists across events until the
  server sends another ``id`` field; ``None`` when it is empty (the spec treats an
  empty last event ID as none: no ``Last-Event-ID`` header on reconnect).
* ``retry`` is the reconnection time sent in the same block, if any; the latest
  one is also kept in :attr:`SSEParser.retry`.
* Comments are ignored, as the spec says, unless ``include_comments=True``: then
  each comment line is returned at once as ``ServerSentEvent(comment=...)`` (the
  text after the colon, verbatim), so a test can see keep-alives as they arrive.

Unlike httpx-sse (and the openai SDK), a block with no ``data`` line is never
dispatched, even when an ``id`` has been seen (9.2.6, step 2 of dispatch).

``max_event_size`` bounds what the parser holds for one event (its data lines
and an unfinished line, in characters): a server that sends a line without
end, or an event without end, gets ``SSELimitError`` instead of the memory.
"""

from __future__ import annotations

import codecs

from streaming.encoders.sse import MAX_RETRY, ServerSentEvent
from streaming.exceptions import SSELimitError, StreamingConfigError

_RETRY_DIGITS = len(str(MAX_RETRY))

__all__ = ["SSEParser"]


class SSEParser:
    """Sans-IO parser of one ``text/event-stream``. Feed ``bytes`` (decoded as UTF-8
    incrementally, invalid bytes replaced by U+FFFD) or already-decoded ``str``;
    use one kind per stream."""

    _data: list[str]  # the current block's data lines
    _event: str  # the event type buffer
    _retry: int | None  # a valid retry seen in the current block

    def __init__(self, *, include_comments: bool = False,
                 max_event_size: int | None = None) -> None:
        if max_event_size is not None and (type(max_event_size) is not int
                                           or max_event_size < 1):
            raise StreamingConfigError(f"max_event_size must be an int >= 1 or None, "
                                       f"not {max_event_size!r}")
        self.include_comments = include_comments
        self.max_event_size = max_event_size
        self._pending_size = 0  # characters in _pending
        self._data_size = 0  # characters in _data
        #: The spec's "last event ID string": set at each blank line, never reset.
        self.last_event_id = ""
        #: The latest valid ``retry`` value (milliseconds), or ``None``.
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a leading BOM has been looked for
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is its CRLF
        self._pending: list[str] = []  # text after the last line terminator
        self._reset_block()
        self._id_buffer = ""

    def feed(self, data: bytes | str) -> list[ServerSentEvent]:
        """Take the next chunk of the stream; return the events it completes."""
        text = data if isinstance(data, str) else self._decoder.decode(data)
        if not text:
            return []
        return self._feed_text(self._strip_bom(text))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an unterminated event is discarded (9.2.6: "If the file
        ends in the middle of an event, before the final empty line, the incomplete
        event is not dispatched"), so this always returns ``[]``."""
        self._decoder.decode(b"", final=True)
        self._pending, self._pending_size = [], 0
        self._reset_block()
        return []

    def _strip_bom(self, text: str) -> str:
        # 9.2.5: "One leading U+FEFF BYTE ORDER MARK character must be ignored".
        if self._started:
            return text
        self._started = True
        return text[1:] if text[0] == "\ufeff" else text

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if self._skip_lf:
            self._skip_lf = False
            text = text[1:] if text[0] == "\n" else text
        if "\n" not in text and "\r" not in text:
            self._pending.append(text)
            self._pending_size += len(text)
            self._check_size()
            return []
        lines = self._split(text)
        events = [self._process_line(line) for line in lines]
        self._check_size()
        return [event for event in events if event is not None]

    def _check_size(self) -> None:
        limit = self.max_event_size
        if limit is not None and self._pending_size + self._data_size > limit:
            held = self._pending_size + self._data_size
            self._pending, self._pending_size = [], 0
            self._reset_block()
            raise SSELimitError(f"an event (or a line) grew past {limit} characters "
                                f"({held} held) without ending")

    def _split(self, text: str) -> list[str]:
        # 9.2.5: a line ends at CRLF, LF or CR. A CR ending this chunk ends its line
        # now (no waiting), and the LF that may start the next chunk is dropped.
        if self._pending:
            text = "".join(self._pending) + text
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        last = lines.pop()
        self._pending = [last] if last else []
        self._pending_size = len(last)
        return lines

    def _process_line(self, line: str) -> ServerSentEvent | None:
        # 9.2.6: blank line dispatches; leading colon is a comment; otherwise the
        # field name runs to the first colon and one space after it is dropped.
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return ServerSentEvent(comment=line[1:]) if self.include_comments else None
        name, _, value = line.partition(":")
        self._process_field(name, value[1:] if value[:1] == " " else value)
        return None

    def _process_field(self, name: str, value: str) -> None:
        # 9.2.6: unknown field names are ignored.
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            self._check_size()
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:  # an id holding NUL is ignored
                self._id_buffer = value
        elif name == "retry" and _is_retry(value):
            self.retry = self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent | None:
        # 9.2.6 "dispatch the event": the last event ID is set even when nothing is
        # dispatched; an empty data buffer dispatches nothing but resets the type.
        self.last_event_id = self._id_buffer
        data, event, retry = self._data, self._event, self._retry
        self._reset_block()
        if not data:
            return None
        event_id = self.last_event_id or None
        return ServerSentEvent(data="\n".join(data), event=event or None, id=event_id, retry=retry)

    def _reset_block(self) -> None:
        self._data = []
        self._data_size = 0
        self._event = ""
        self._retry = None


def _is_retry(value: str) -> bool:
    # 9.2.6: only ASCII digits, "interpreted as an integer"; one no client can
    # hold (past MAX_RETRY, or too long for int() at all) is ignored, not an error.
    return (value.isascii() and value.isdigit() and len(value) <= _RETRY_DIGITS
            and int(value) <= MAX_RETRY)

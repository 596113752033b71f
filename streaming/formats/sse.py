"""Server-Sent Events (WHATWG HTML 9.2): events, comment keep-alives, an error event."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streaming._types import RawHeaders
from streaming.encoders.sse import (
    SEPARATORS,
    ServerSentEvent,
    check_retry,
    encode_comment,
    encode_event,
    encode_item,
)
from streaming.exceptions import SSEEncodingError, StreamingConfigError
from streaming.formats.errors import describe_error, error_headers

logger = logging.getLogger("streaming")


@dataclass(frozen=True, slots=True, kw_only=True)
class SSEFormat:
    """``text/event-stream`` items: ``ServerSentEvent``, ``str`` (sent as
    ``data``), pre-encoded ``bytes``, or ``dict``/``list`` data with
    ``json_data=True``.

    ``sep`` ends every line (9.2.5 allows CRLF, LF or CR); ``retry`` (ms) rides
    on the first event rather than in a block of its own (a lone ``retry:``
    block makes some clients dispatch an empty event); the keep-alive is a
    comment, which every client ignores (9.2.6). After the headers are out an
    error is an ``error_event`` event with JSON ``{"status", "message"}`` data
    (none when ``error_event`` is ``None``); before them, a JSON error body.
    """

    sep: str = "\n"
    json_data: bool = False
    retry: int | None = None
    error_event: str | None = "error"
    #: Called for each keep-alive; its item is encoded as any produced item
    #: (sse-starlette's ``ping_message_factory``). ``None``: a ``:ping`` comment.
    ping_message: Callable[[], object] | None = None
    _end: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sep not in SEPARATORS:
            raise StreamingConfigError(f"sep must be one of {SEPARATORS!r}, not {self.sep!r}")
        if self.retry is not None:
            try:
                check_retry(self.retry)  # the encoder's rule: also no more than MAX_RETRY
            except SSEEncodingError as exc:
                raise StreamingConfigError(str(exc)) from None
        if self.error_event is not None:  # checked now, not when the first error happens
            try:
                encode_event(ServerSentEvent(data="", event=self.error_event))
            except SSEEncodingError as exc:
                raise StreamingConfigError(f"error_event: {exc}") from None
        if self.ping_message is not None and not callable(self.ping_message):
            raise StreamingConfigError(
                f"ping_message must be a callable returning an item, not {self.ping_message!r}")
        object.__setattr__(self, "_end", self.sep + self.sep)

    def encode(self, item: Any) -> bytes:
        # The common case inline: a one-line str is one f-string and encode().
        if type(item) is str and "\n" not in item and "\r" not in item:
            try:
                return f"data: {item}{self._end}".encode()
            except UnicodeEncodeError:
                pass  # a lone surrogate: encode_item raises the clear error
        return encode_item(item, sep=self.sep, json_data=self.json_data)

    def encode_first(self, item: Any) -> bytes:
        body = self.encode(item)
        if self.retry is None:
            return body
        return f"retry: {self.retry}{self.sep}".encode() + body

    def keepalive(self) -> bytes | None:
        if self.ping_message is not None:
            try:
                return self.encode(self.ping_message())
            except Exception:  # a keep-alive must not end the stream: say why, ping anyway
                logger.exception("ping_message %r failed; sent a :ping comment instead",
                                 self.ping_message)
        return encode_comment("ping", self.sep)

    def error_marker(self, error: BaseException) -> bytes | None:
        if self.error_event is None:
            return None
        status, message = describe_error(error)
        data = json.dumps({"status": status, "message": message}, ensure_ascii=False)
        return encode_event(ServerSentEvent(data=data, event=self.error_event), sep=self.sep)

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        _, message = describe_error(error)
        body = json.dumps({"error": {"status": status, "message": message}},
                          ensure_ascii=False).encode()
        return error_headers(error, b"application/json", body), body

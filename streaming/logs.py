"""One log line per ended stream, plain or JSON, on the standard ``logging``.

``StreamLog`` is a ``StreamWatch`` observer: when a stream ends it logs one
record whose message is a plain line (``GET /chat 200 completed 2.104s
18342B 215 chunks ttfb=0.412s ...``) and whose ``stream`` attribute holds
the same fields as a dict, which ``JSONFormatter`` renders as one JSON object
per line. Values that come from the network (the path, the client) are
percent-encoded or escaped in the plain line and JSON-escaped in the other:
nothing reaches a terminal raw.

An error is named by its type only, and its traceback is logged once: before
the headers by the driver (it answered with an error status), after them by
the server (the response re-raises it: that is how ASGI says a stream broke,
and the server closes the connection without the terminating chunk).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import quote

from streaming._types import Scope
from streaming.observe import StreamRecord, route_of
from streaming.outcome import EndReason

#: Ends that are the stream's own failure, logged at ``error_level``.
_FAILURES = frozenset({EndReason.PRODUCER_ERROR, EndReason.SEND_TIMEOUT})

#: Characters left as they are in a path (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class StreamLog:
    """Log one line per ended stream (and per refused request) to ``logger``."""

    def __init__(self, logger: logging.Logger | str = "streaming.streams", *,
                 level: int = logging.INFO, error_level: int = logging.WARNING) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.error_level = error_level

    def stream_opened(self, stream: StreamRecord) -> None:
        pass

    def stream_closed(self, stream: StreamRecord) -> None:
        fields = stream_fields(stream)
        failed = stream.outcome is not None and stream.outcome.reason in _FAILURES
        level = self.error_level if failed else self.level
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "%s", plain_line(fields), extra={"stream": fields})

    def stream_refused(self, scope: Scope, why: str) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": str(scope.get("method", "")), "path": str(scope.get("path", "")),
            "route": route_of(scope), "reason": f"refused_{why}",
            "client": f"{client[0]}:{client[1]}" if client else None,
        }
        self.logger.log(self.level, "%s", plain_line(fields), extra={"stream": fields})


def stream_fields(stream: StreamRecord) -> dict[str, Any]:
    """The fields of one ended stream's log line (JSON-ready values)."""
    outcome = stream.outcome
    fields: dict[str, Any] = {
        "id": stream.id, "method": stream.method, "path": stream.path,
        "route": stream.route, "client": stream.client,
        "response_type": stream.response_type,
    }
    if outcome is not None:
        fields.update(
            reason=outcome.reason.value, status=outcome.status_code,
            duration=round(outcome.duration, 6), bytes=outcome.bytes_sent,
            chunks=outcome.chunks_sent,
            ttfb=None if outcome.first_byte_after is None else round(outcome.first_byte_after, 6),
            body_complete=outcome.body_complete,
            error=None if outcome.error is None else type(outcome.error).__name__,
        )
    return fields


def plain_line(fields: dict[str, Any]) -> str:
    """``METHOD PATH STATUS REASON DURATION BYTES CHUNKS key=value...``; absent
    figures are ``-``."""
    def figure(name: str, unit: str = "", digits: int | None = None) -> str:
        value = fields.get(name)
        if value is None:
            return "-"
        return f"{value:.{digits}f}{unit}" if digits is not None else f"{value}{unit}"

    head = [
        _escape(fields.get("method", "")) or "-",
        quote(fields.get("path") or "", safe=_PATH_SAFE) or "-",
        figure("status"), str(fields.get("reason", "-")),
        figure("duration", "s", 3), figure("bytes", "B"), figure("chunks", " chunks"),
    ]
    tail = [f"ttfb={figure('ttfb', 's', 3)}",
            f"route={_escape(fields.get('route') or '-')}",
            f"client={_escape(fields.get('client') or '-')}"]
    if fields.get("error"):
        tail.append(f"error={_escape(fields['error'])}")
    if fields.get("response_type"):
        tail.append(f"type={_escape(fields['response_type'])}")
    return " ".join(head + tail)


def _escape(text: object) -> str:
    # Printable, space-free: a value cannot fake another field or a new line.
    return "".join(c if c.isprintable() and c not in " \\" else f"\\x{ord(c):02x}"
                   if ord(c) < 256 else f"\\u{ord(c):04x}" for c in str(text))


class JSONFormatter(logging.Formatter):
    """Render every record as one JSON object per line: ``time`` (UTC, ISO
    8601), ``level``, ``logger``, ``message``, the stream's fields when the
    record is a stream line, and ``exception`` (the traceback) when it has one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        stream = getattr(record, "stream", None)
        if isinstance(stream, dict):
            document["stream"] = stream
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=True, default=str)

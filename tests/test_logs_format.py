"""The stream log line and the JSON formatter, as pure functions: every field,
and nothing from the network reaching the log raw."""

from __future__ import annotations

import json
import logging

from streaming import EndReason, Outcome
from streaming.logs import JSONFormatter, plain_line, stream_fields
from streaming.observe import StreamRecord


def record(path: str = "/chat", client: str | None = "127.0.0.1:5000",
           **outcome: object) -> StreamRecord:
    stream = StreamRecord(id=7, method="GET", path=path, route="/chat", client=client,
                          response_type="EventSourceResponse", started=0.0)
    settings: dict[str, object] = dict(
        reason=EndReason.COMPLETED, status_code=200, headers_sent=True, chunks_sent=215,
        bytes_sent=18342, duration=2.1042, body_complete=True, first_byte_after=0.4121)
    settings.update(outcome)
    stream.outcome = Outcome(**settings)  # type: ignore[arg-type]
    return stream


def test_the_plain_line_has_every_figure() -> None:
    line = plain_line(stream_fields(record()))
    assert line == ("GET /chat 200 completed 2.104s 18342B 215 chunks ttfb=0.412s "
                    "route=/chat client=127.0.0.1:5000 type=EventSourceResponse")


def test_an_error_is_named_by_its_type() -> None:
    fields = stream_fields(record(reason=EndReason.PRODUCER_ERROR, error=KeyError("secret"),
                                  body_complete=False))
    assert fields["error"] == "KeyError"
    line = plain_line(fields)
    assert "producer_error" in line and "error=KeyError" in line
    assert "secret" not in line  # the message may hold anything; the type does not


def test_no_first_byte_and_no_client_are_dashes() -> None:
    line = plain_line(stream_fields(record(first_byte_after=None, client=None,
                                           bytes_sent=0, chunks_sent=0)))
    assert "0B 0 chunks ttfb=- route=/chat client=-" in line


def test_network_values_cannot_forge_a_line_or_a_field() -> None:
    hostile = "/a b\n127.0.0.1 GET /admin 200 completed\x1b[2J\u2028"
    line = plain_line(stream_fields(record(path=hostile, client="evil host\r\n:1")))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\u2028" not in line
    assert line.startswith("GET /a%20b%0A127.0.0.1%20GET%20/admin%20200%20completed%1B%5B2J")
    assert "client=evil\\x20host\\x0d\\x0a:1" in line


def test_the_json_formatter_renders_one_object_per_line() -> None:
    fields = stream_fields(record(path="/x\n\u2028"))
    entry = logging.LogRecord("streaming.streams", logging.INFO, __file__, 1, "%s",
                              (plain_line(fields),), None)
    entry.stream = fields
    text = JSONFormatter().format(entry)
    assert "\n" not in text and "\u2028" not in text  # ensure_ascii: escapes it all
    document = json.loads(text)
    assert document["level"] == "INFO"
    assert document["logger"] == "streaming.streams"
    assert document["stream"]["path"] == "/x\n\u2028"
    assert document["stream"]["bytes"] == 18342
    assert document["stream"]["ttfb"] == 0.4121
    assert document["time"].endswith("Z")


def test_the_json_formatter_keeps_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        entry = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    document = json.loads(JSONFormatter().format(entry))
    assert "ValueError: boom" in document["exception"]
    assert "stream" not in document

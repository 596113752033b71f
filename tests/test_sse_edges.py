"""Edge cases of the SSE parser and encoder a hostile peer or an unusual
caller reaches: a retry no client can hold, str subclasses as field values,
header lookups by names no header can have."""

from __future__ import annotations

import enum
import sys

import pytest

from streaming import (
    EventSourceResponse,
    ServerSentEvent,
    SSEEncodingError,
    SSELimitError,
    SSEParser,
    StreamingConfigError,
    StreamingResponse,
)
from streaming.encoders import encode_event, encode_item
from streaming.encoders.sse import MAX_RETRY

if sys.version_info >= (3, 11):
    class Kind(enum.StrEnum):
        UPDATE = "update"
else:  # what StrEnum is, before 3.11
    class Kind(str, enum.Enum):
        UPDATE = "update"
        __str__ = str.__str__


class Mixed(str, enum.Enum):  # str() of a member is "Mixed.ID", its text "id-7"
    ID = "id-7"


class Text(str):
    pass


# -- the parser: a hostile server must not break the consumer -------------------

@pytest.mark.parametrize("value", ["9" * 5000, str(MAX_RETRY + 1), "9" * 20])
def test_a_retry_no_client_can_hold_is_ignored(value: str) -> None:
    parser = SSEParser()
    assert parser.feed(f"retry: 1000\n\nretry: {value}\ndata: x\n\n") == [
        ServerSentEvent(data="x")]
    assert parser.retry == 1000  # the earlier valid value stands


def test_the_largest_retry_is_honoured() -> None:
    parser = SSEParser()
    [event] = parser.feed(f"retry: {MAX_RETRY}\ndata: x\n\n")
    assert event.retry == parser.retry == MAX_RETRY


# -- the encoder: one clear error, never a ValueError from str() ---------------------

@pytest.mark.parametrize("retry", [10**5000, -(10**5000), MAX_RETRY + 1, -1, True, 1.0],
                         ids=["huge", "-huge", "max+1", "-1", "True", "1.0"])
def test_a_retry_that_cannot_be_sent_is_an_sse_encoding_error(retry: object) -> None:
    with pytest.raises(SSEEncodingError, match="retry must be a non-negative int"):
        encode_event(ServerSentEvent(data="x", retry=retry))  # type: ignore[arg-type]


@pytest.mark.parametrize("retry", [10**5000, MAX_RETRY + 1, -1, True],
                         ids=["huge", "max+1", "-1", "True"])
def test_event_source_response_refuses_such_a_retry_at_once(retry: object) -> None:
    with pytest.raises((SSEEncodingError, StreamingConfigError)):
        EventSourceResponse(iter(["x"]), retry=retry)  # type: ignore[arg-type]


# -- str subclasses are the text they hold ------------------------------------------

@pytest.mark.parametrize(("value", "text"), [(Kind.UPDATE, "update"), (Mixed.ID, "id-7"),
                                             (Text("plain"), "plain")])
def test_a_str_subclass_is_written_as_its_text(value: str, text: str) -> None:
    block = encode_event(ServerSentEvent(data=value, event=value, id=value))
    assert block == f"event: {text}\nid: {text}\ndata: {text}\n\n".encode()
    assert encode_item(value) == f"data: {text}\n\n".encode()
    EventSourceResponse(iter([]), error_event=value)  # once refused: "a line break"


@pytest.mark.parametrize("field", ["event", "id"])
def test_a_str_subclass_with_a_line_break_is_still_refused(field: str) -> None:
    with pytest.raises(SSEEncodingError, match="line break"):
        encode_event(ServerSentEvent(data="x", **{field: Text("a\nb")}))  # type: ignore[arg-type]


# -- header lookups -------------------------------------------------------------------

@pytest.mark.parametrize("key", ["数", "\udcff", 7, None, b"content-type"])
def test_a_name_no_header_can_have_is_simply_absent(key: object) -> None:
    headers = StreamingResponse(iter([]), media_type="text/plain").headers
    assert key not in headers
    assert headers.get(key) is None  # type: ignore[call-overload]
    with pytest.raises(KeyError):
        headers[key]  # type: ignore[index]
    with pytest.raises(KeyError):
        del headers[key]  # type: ignore[arg-type]


# -- a bounded parser -----------------------------------------------------------------

@pytest.mark.parametrize("stream", [
    ["data: " + "x" * 60, "x" * 60],                          # a line without end
    ["data: " + "y" * 30 + "\n"] * 4,                         # an event without end
    ["data: " + "z" * 200 + "\n\n"],                          # one big event at once
])
def test_max_event_size_bounds_what_the_parser_holds(stream: list[str]) -> None:
    parser = SSEParser(max_event_size=100)
    *first, last = stream
    for piece in first:
        parser.feed(piece)
    with pytest.raises(SSELimitError, match="grew past 100"):
        parser.feed(last)


def test_events_under_the_bound_pass_and_the_count_restarts_per_event() -> None:
    parser = SSEParser(max_event_size=100)
    events = [e for _ in range(50) for e in parser.feed("data: " + "a" * 80 + "\n\n")]
    assert len(events) == 50
    with pytest.raises(StreamingConfigError):
        SSEParser(max_event_size=0)


def test_the_bound_is_exact_data_characters_and_a_newline_per_line() -> None:
    """An event holds its data plus one character per data line (the newline
    that joins them): nine characters of data fill a bound of ten."""
    parser = SSEParser(max_event_size=10)
    for _ in range(2):  # the count starts again at each event
        assert [e.data for e in parser.feed("data: 123456789\n\n")] == ["123456789"]
    assert [e.data for e in parser.feed("data: 1234\ndata: 1234\n\n")] == ["1234\n1234"]
    with pytest.raises(SSELimitError, match=r"^an event \(or a line\) grew past 10 characters "
                       r"\(11 held\) without ending$"):
        parser.feed("data: 1234567890\n\n")


def test_a_line_without_its_end_counts_from_its_first_character() -> None:
    parser = SSEParser(max_event_size=10)
    assert parser.feed("data: 1234") == []  # ten characters held
    with pytest.raises(SSELimitError, match=r"\(11 held\)"):
        parser.feed("5")


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "10"])
def test_max_event_size_is_an_int_of_at_least_one(size: object) -> None:
    with pytest.raises(StreamingConfigError,
                       match=r"^max_event_size must be an int >= 1 or None, not "):
        SSEParser(max_event_size=size)  # type: ignore[arg-type]
    assert SSEParser(max_event_size=1).max_event_size == 1

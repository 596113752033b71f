"""Table tests of the incremental Server-Sent Events parser (WHATWG HTML 9.2.5, 9.2.6)."""

from __future__ import annotations

import pytest

from streaming.encoders.sse import ServerSentEvent
from streaming.encoders.sse_parser import SSEParser

E = ServerSentEvent


def parse(*chunks: bytes | str, include_comments: bool = False) -> list[ServerSentEvent]:
    parser = SSEParser(include_comments=include_comments)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


STREAMS = [
    pytest.param([b"data: hello\n\n"], [E(data="hello")], id="simple"),
    pytest.param([b"data:hello\n\n"], [E(data="hello")], id="no-space"),
    pytest.param([b"data:  two\n\n"], [E(data=" two")], id="only-one-space-stripped"),
    pytest.param([b"data:\tx\n\n"], [E(data="\tx")], id="tab-not-stripped"),
    pytest.param([b"data: a\ndata: b\n\n"], [E(data="a\nb")], id="multi-line-data"),
    pytest.param([b"data: a\ndata:\n\n"], [E(data="a\n")], id="only-last-lf-removed"),
    pytest.param([b"data\n\n"], [E(data="")], id="no-colon-is-empty-value"),
    pytest.param([b"data:\n\n"], [E(data="")], id="empty-data-dispatched"),
    pytest.param([b"data: a:b: c\n\n"], [E(data="a:b: c")], id="first-colon-splits"),
    pytest.param([b"event: x\n\n"], [], id="no-data-not-dispatched"),
    pytest.param([b"event: x\n\ndata: y\n\n"], [E(data="y")], id="event-type-reset"),
    pytest.param(
        [b"event: a\nevent: b\ndata: y\n\n"], [E(data="y", event="b")], id="last-event-wins"
    ),
    pytest.param([b"event:\ndata: y\n\n"], [E(data="y")], id="empty-event-is-message"),
    pytest.param(
        [b"event: message\ndata: y\n\n"], [E(data="y", event="message")], id="explicit-message-kept"
    ),
    pytest.param([b"Data: x\n\n"], [], id="field-names-case-sensitive"),
    pytest.param([b"foo: bar\ndata: x\n\n"], [E(data="x")], id="unknown-field-ignored"),
    pytest.param([b" data: x\n\n"], [], id="leading-space-is-part-of-name"),
    pytest.param([b"data: a\r\ndata: b\r\n\r\n"], [E(data="a\nb")], id="crlf"),
    pytest.param([b"data: a\rdata: b\r\r"], [E(data="a\nb")], id="cr"),
    pytest.param([b"data: a\r\ndata: b\rdata: c\n\n"], [E(data="a\nb\nc")], id="mixed"),
    pytest.param([b"data: a\r", b"\n", b"\r\n"], [E(data="a")], id="crlf-split-across-feeds"),
    pytest.param([b"data: a\r", b"\ndata: b\r", b"\r"], [E(data="a\nb")], id="cr-then-lf-start"),
    pytest.param([b"data: a\r", b"", b"\n\n"], [E(data="a")], id="empty-feed-keeps-cr"),
    pytest.param(
        [b"data: a\r\r", b"\ndata: b\n\n"],
        [E(data="a"), E(data="b")],
        id="lf-after-cr-cr-is-its-crlf",
    ),
    pytest.param([b"data: a\n\r\n"], [E(data="a")], id="lf-then-crlf"),
    pytest.param([b"data: a\n", b"\n"], [E(data="a")], id="blank-line-in-next-feed"),
    pytest.param([b"da", b"ta: h", b"ello", b"\n\n"], [E(data="hello")], id="split-line"),
    pytest.param(
        [b"data: a\n\n\n\ndata: b\n\n"], [E(data="a"), E(data="b")], id="extra-blank-lines"
    ),
    pytest.param([b"data: a"], [], id="unterminated-line-discarded"),
    pytest.param([b"data: a\n"], [], id="unterminated-event-discarded"),
    pytest.param([b"data: a\n\ndata: b\n"], [E(data="a")], id="only-tail-discarded"),
    pytest.param(["data: str feed\n\n"], [E(data="str feed")], id="str-feed"),
    pytest.param([b"data: \xc3", b"\xa9\n\n"], [E(data="é")], id="utf8-split"),
    pytest.param([b"data: \xe6", b"\x97", b"\xa5\n\n"], [E(data="日")], id="utf8-split-3"),
    pytest.param([b"data: \xff\n\n"], [E(data="\ufffd")], id="invalid-utf8-replaced"),
    pytest.param(
        ["data: a\u2028b\x0bc\x0cd\x85e\n\n".encode()],
        [E(data="a\u2028b\x0bc\x0cd\x85e")],
        id="only-cr-lf-break-lines",
    ),
    pytest.param([b"\xef\xbb\xbfdata: x\n\n"], [E(data="x")], id="bom-stripped"),
    pytest.param([b"\xef", b"\xbb", b"\xbfdata: x\n\n"], [E(data="x")], id="bom-split"),
    pytest.param(["\ufeffdata: x\n\n"], [E(data="x")], id="bom-str"),
    pytest.param([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"], [], id="only-one-bom-stripped"),
    pytest.param(
        [b"data: x\n\n", b"\xef\xbb\xbfdata: y\n\n"], [E(data="x")], id="bom-later-is-not-stripped"
    ),
    pytest.param([b"data: \xef\xbb\xbfx\n\n"], [E(data="\ufeffx")], id="bom-in-value-kept"),
]


@pytest.mark.parametrize(("chunks", "expected"), STREAMS)
def test_parse(chunks: list[bytes | str], expected: list[ServerSentEvent]) -> None:
    assert parse(*chunks) == expected


def test_every_single_byte_split() -> None:
    stream = "\ufeff:c\r\nevent: e\r\nid: 1\rretry: 5\ndata: é\r\ndata: 日\r\n\r\n".encode()
    parser = SSEParser()
    events = [event for i in range(len(stream)) for event in parser.feed(stream[i : i + 1])]
    assert events == [E(data="é\n日", event="e", id="1", retry=5)]


ID_STREAMS = [
    pytest.param(
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
        "1",
        id="id-persists",
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="2")],
        "2",
        id="id-replaced",
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b")],
        "",
        id="empty-id-resets",
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid: \ndata: b\n\n",
        [E(data="a", id="1"), E(data="b")],
        "",
        id="empty-id-with-space-resets",
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
        "1",
        id="nul-id-ignored",
    ),
    pytest.param(b"id: 5\n\ndata: b\n\n", [E(data="b", id="5")], "5", id="id-only-block-sets-id"),
    pytest.param(b"data: a\nid: 9\n\n", [E(data="a", id="9")], "9", id="id-after-data"),
    pytest.param(b"data: a\n\nid: 9\n", [E(data="a")], "", id="unterminated-id-not-yet-set"),
    pytest.param(b"id:  x \ndata: a\n\n", [E(data="a", id=" x ")], " x ", id="id-spaces"),
]


@pytest.mark.parametrize(("stream", "expected", "last_id"), ID_STREAMS)
def test_last_event_id(stream: bytes, expected: list[ServerSentEvent], last_id: str) -> None:
    parser = SSEParser()
    assert parser.feed(stream) == expected
    assert parser.last_event_id == last_id


RETRY_STREAMS = [
    pytest.param(b"retry: 3000\ndata: a\n\n", [E(data="a", retry=3000)], 3000, id="digits"),
    pytest.param(b"retry: 0\ndata: a\n\n", [E(data="a", retry=0)], 0, id="zero"),
    pytest.param(b"retry: 007\ndata: a\n\n", [E(data="a", retry=7)], 7, id="leading-zeros"),
    pytest.param(b"retry: -1\ndata: a\n\n", [E(data="a")], None, id="negative-ignored"),
    pytest.param(b"retry: +1\ndata: a\n\n", [E(data="a")], None, id="plus-ignored"),
    pytest.param(b"retry: 1.5\ndata: a\n\n", [E(data="a")], None, id="decimal-ignored"),
    pytest.param(b"retry:  1\ndata: a\n\n", [E(data="a")], None, id="second-space-ignored"),
    pytest.param(b"retry: 1 \ndata: a\n\n", [E(data="a")], None, id="trailing-space-ignored"),
    pytest.param(b"retry: 1_0\ndata: a\n\n", [E(data="a")], None, id="underscore-ignored"),
    pytest.param(b"retry:\ndata: a\n\n", [E(data="a")], None, id="empty-ignored"),
    pytest.param(
        "retry: \u0661\ndata: a\n\n".encode(), [E(data="a")], None, id="non-ascii-digit-ignored"
    ),
    pytest.param(b"retry: 5\n\ndata: a\n\n", [E(data="a")], 5, id="retry-only-block"),
    pytest.param(
        b"retry: 5\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=5), E(data="b")],
        5,
        id="retry-belongs-to-its-block",
    ),
    pytest.param(
        b"retry: 5\nretry: x\ndata: a\n\n", [E(data="a", retry=5)], 5, id="bad-retry-keeps-good-one"
    ),
]


@pytest.mark.parametrize(("stream", "expected", "retry"), RETRY_STREAMS)
def test_retry(stream: bytes, expected: list[ServerSentEvent], retry: int | None) -> None:
    parser = SSEParser()
    assert parser.feed(stream) == expected
    assert parser.retry == retry


COMMENT_STREAMS = [
    pytest.param([b":ping\n"], [E(comment="ping")], id="keep-alive"),
    pytest.param([b": ping\r\n"], [E(comment=" ping")], id="text-verbatim"),
    pytest.param([b":\n"], [E(comment="")], id="bare-colon"),
    pytest.param(
        [b":a\n:b\ndata: x\n\n"],
        [E(comment="a"), E(comment="b"), E(data="x")],
        id="one-per-line-at-once",
    ),
    pytest.param(
        [b"data: x\n:mid\ndata: y\n\n"],
        [E(comment="mid"), E(data="x\ny")],
        id="comment-inside-event",
    ),
    pytest.param([b":pi", b"ng"], [], id="unterminated-comment-discarded"),
    pytest.param([b"\xef\xbb\xbf:c\r"], [E(comment="c")], id="after-bom"),
]


@pytest.mark.parametrize(("chunks", "expected"), COMMENT_STREAMS)
def test_comments_included(chunks: list[bytes], expected: list[ServerSentEvent]) -> None:
    assert parse(*chunks, include_comments=True) == expected


@pytest.mark.parametrize(("chunks", "expected"), COMMENT_STREAMS)
def test_comments_ignored_by_default(chunks: list[bytes], expected: list[ServerSentEvent]) -> None:
    assert parse(*chunks) == [event for event in expected if event.comment is None]


def test_comment_is_returned_before_its_blank_line() -> None:
    parser = SSEParser(include_comments=True)
    assert parser.feed(b":keep-alive\n") == [E(comment="keep-alive")]


def test_cr_dispatches_without_waiting_for_next_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [E(data="a")]
    assert parser.feed(b"\ndata: b\r\n\r\n") == [E(data="b")]


def test_close_discards_pending_and_returns_empty() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 1\ndata: a\n\ndata: b\nid: 2\n") == [E(data="a", id="1")]
    assert parser.close() == []
    assert parser.last_event_id == "1"


def test_close_flushes_partial_utf8() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: \xc3") == [E(data="a")]
    assert parser.close() == []


def test_fresh_parser_state() -> None:
    parser = SSEParser()
    assert (parser.last_event_id, parser.retry, parser.include_comments) == ("", None, False)
    assert parser.feed(b"") == []
    assert parser.feed("") == []


def test_parsed_event_equals_encoded_one() -> None:
    event = E(data="d", event="e", id="i", retry=1)
    assert parse(b"event: e\nid: i\nretry: 1\ndata: d\n\n") == [event]

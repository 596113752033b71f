"""Property tests of the SSE encoder and parser: encode -> parse round-trips, and our
parser agrees with httpx-sse's decoder, whatever the chunk boundaries and line
separators."""

from __future__ import annotations

import codecs
import dataclasses
import itertools
import json
from typing import Any

from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.encoders.sse import ServerSentEvent, encode_event, encode_item
from streaming.encoders.sse_parser import SSEParser

E = ServerSentEvent
FAST = settings(max_examples=200, deadline=None)

seps = st.sampled_from(["\n", "\r\n", "\r"])
one_line = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8)
ids = st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]), max_size=8)
json_values = st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3)
data_values = st.text(max_size=30) | st.integers() | json_values
events = st.builds(
    ServerSentEvent,
    data=st.none() | data_values,
    event=st.none() | one_line,
    id=st.none() | ids,
    retry=st.none() | st.integers(0, 10**9),
    comment=st.none() | st.text(max_size=12),
)
events_with_data = st.builds(
    ServerSentEvent,
    data=st.text(max_size=30),
    event=st.none() | one_line,
    id=st.none() | ids,
    retry=st.none() | st.integers(0, 10**9),
    comment=st.none() | st.text(max_size=12),
)


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[start:end] for start, end in itertools.pairwise(bounds)]


def chunked(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts")
    return split_at(stream, cuts)


def as_item(data: st.DataObject, event: ServerSentEvent, sep: str) -> object:
    """The event itself, its pre-encoded bytes, or (when it only has data) the data."""
    forms: list[object] = [event, encode_event(event, sep=sep, json_data=True)]
    if event == E(data=event.data) and event.data is not None:
        forms.append(event.data)
    return data.draw(st.sampled_from(forms), label="item")


def ours(chunks: list[bytes], include_comments: bool = False) -> tuple[list[E], SSEParser]:
    parser = SSEParser(include_comments=include_comments)
    parsed = [event for chunk in chunks for event in parser.feed(chunk)]
    return parsed + parser.close(), parser


def lines_of(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def wire_data(data: Any) -> str:
    if isinstance(data, str):
        return "\n".join(lines_of(data))
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def model(sent: list[ServerSentEvent], include_comments: bool) -> list[ServerSentEvent]:
    """What 9.2.6 says a client sees: comments (if asked for) one per line, events
    with data only, each carrying the last id sent so far (an empty id clears it)."""
    seen: list[ServerSentEvent] = []
    last_id: str | None = None
    for event in sent:
        if include_comments and event.comment is not None:
            seen += [E(comment=line) for line in lines_of(event.comment)]
        if event.id is not None:
            last_id = event.id or None
        if event.data is not None:
            text = wire_data(event.data)
            seen.append(E(data=text, event=event.event or None, id=last_id, retry=event.retry))
    return seen


@FAST
@given(sent=st.lists(events, max_size=6), sep=seps, include_comments=st.booleans(), data=st.data())
def test_encode_then_parse_round_trips(
    sent: list[ServerSentEvent], sep: str, include_comments: bool, data: st.DataObject
) -> None:
    items = [as_item(data, event, sep) for event in sent]
    stream = b"".join(encode_item(item, sep=sep, json_data=True) for item in items)
    parsed, parser = ours(chunked(data, stream), include_comments)
    assert parsed == model(sent, include_comments)
    last_ids = [event.id for event in sent if event.id is not None]
    assert parser.last_event_id == (last_ids[-1] if last_ids else "")
    retries = [event.retry for event in sent if event.retry is not None]
    assert parser.retry == (retries[-1] if retries else None)


@FAST
@given(event=events, sep=seps)
def test_single_event_round_trips_exactly_when_the_format_allows(
    event: ServerSentEvent, sep: str
) -> None:
    parsed, _ = ours([encode_event(event, sep=sep, json_data=True)])
    assert len(parsed) == (event.data is not None)
    # The format cannot tell CR from LF in data, nor an empty event/id from none.
    if isinstance(event.data, str) and "\r" not in event.data and "" not in (event.event, event.id):
        assert parsed == [dataclasses.replace(event, comment=None)]


def httpx_sse(chunks: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    """httpx-sse 0.4 fed the way its own ``_iter_sse_lines`` feeds it: text chunks
    through ``SSELineDecoder``, then each line through ``SSEDecoder``."""
    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    line_decoder, decoder = SSELineDecoder(), SSEDecoder()
    lines: list[str] = []
    for chunk in chunks:
        text = text_decoder.decode(chunk)
        if text:
            lines += line_decoder.decode(text)
    lines += line_decoder.flush()
    decoded = [decoder.decode(line) for line in lines]
    return [(e.event, e.data, e.id, e.retry) for e in decoded if e is not None]


def as_httpx_sse(parsed: list[ServerSentEvent]) -> list[tuple[str, str, str, int | None]]:
    return [(e.event or "message", e.data, e.id or "", e.retry) for e in parsed]


@FAST
@given(sent=st.lists(events_with_data, max_size=6), sep=seps, data=st.data())
def test_agrees_with_httpx_sse_on_encoded_streams(
    sent: list[ServerSentEvent], sep: str, data: st.DataObject
) -> None:
    # Every event has data: httpx-sse, unlike the spec, dispatches a block without
    # data once an id was seen (see test_known_divergence_from_httpx_sse).
    chunks = chunked(data, b"".join(encode_event(event, sep=sep) for event in sent))
    assert as_httpx_sse(ours(chunks)[0]) == httpx_sse(chunks)


colons = st.sampled_from(["", ":", ": ", ":  "])
data_colons = st.sampled_from([":", ": ", ":  "])
field_lines = (
    st.one_of(
        st.tuples(st.sampled_from(["data", "event", "id", "foo", ""]), colons, one_line),
        # Not "retry:  1": httpx-sse's int() accepts " 1", the spec does not.
        st.tuples(
            st.just("retry"),
            st.sampled_from(["", ":", ": "]),
            st.from_regex(r"[0-9x]{0,4}", fullmatch=True),
        ),
    )
    .map("".join)
    .filter(bool)  # an empty line here would be a blank line, ending the block
)
terminators = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def raw_streams(draw: st.DrawFn) -> str:
    """Hand-made streams with mixed line endings, odd spacing, unknown fields,
    comments and an unterminated tail; every block has a data line."""
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        lines = [
            *draw(st.lists(field_lines, max_size=4)),
            "data" + draw(data_colons) + draw(one_line),
        ]
        lines = draw(st.permutations(lines))
        blocks.append("".join(line + draw(terminators) for line in [*lines, ""]))
    tail = draw(st.lists(field_lines, max_size=2))
    return "".join(blocks) + "".join(line + draw(terminators) for line in tail)


@FAST
@given(stream=raw_streams(), data=st.data())
def test_agrees_with_httpx_sse_on_raw_streams(stream: str, data: st.DataObject) -> None:
    chunks = chunked(data, stream.encode())
    assert as_httpx_sse(ours(chunks)[0]) == httpx_sse(chunks)


def test_known_divergence_from_httpx_sse() -> None:
    # 9.2.6 dispatch step 2: an empty data buffer dispatches nothing. httpx-sse (and
    # the openai SDK) dispatch an empty event here, hence comments as keep-alives.
    chunks = [b"id: 1\ndata: a\n\n\n"]
    assert as_httpx_sse(ours(chunks)[0]) == [("message", "a", "1", None)]
    assert httpx_sse(chunks) == [("message", "a", "1", None), ("message", "", "1", None)]

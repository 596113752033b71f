"""sse-starlette's and FastAPI's event shapes, encoded with their meaning.

The comparison rows assert a peer's behaviour (sse-starlette's own encoding of
the same item), so they run against the pinned versions and are marked ``peer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from fastapi.sse import ServerSentEvent as FastAPIEvent
from pydantic import BaseModel
from sse_starlette import JSONServerSentEvent
from sse_starlette import ServerSentEvent as SSEStarletteEvent
from sse_starlette.event import ensure_bytes

from streaming import EventSourceResponse, ServerSentEvent, SSEParser
from streaming.encoders import encode_item
from streaming.encoders.sse import item_encoder
from streaming.exceptions import SSEEncodingError
from streaming.testing import StreamingClient

E = ServerSentEvent


# Items as sse-starlette users yield them; sse-starlette's ensure_bytes() is
# the meaning to keep (same parsed events, whatever the bytes).
SSE_STARLETTE_ITEMS = [
    pytest.param({"event": "x", "data": "y"}, id="dict-event-data"),
    pytest.param({"data": "one\ntwo\r\nthree", "id": "7", "retry": 100}, id="dict-multiline"),
    pytest.param({"data": 5}, id="dict-int-data"),
    pytest.param({"data": "x", "comment": "note"}, id="dict-comment"),
    pytest.param(SSEStarletteEvent("y", event="x", id="1", retry=10), id="object"),
    pytest.param(SSEStarletteEvent("a\rb", sep="\n"), id="object-cr"),
    pytest.param(JSONServerSentEvent({"a": [1, "é"]}, event="j"), id="json-object"),
]


@pytest.mark.peer
@pytest.mark.parametrize("sep", ["\n", "\r\n"])
@pytest.mark.parametrize("item", SSE_STARLETTE_ITEMS)
def test_sse_starlette_items_mean_what_they_mean_there(item: Any, sep: str) -> None:
    ours = encode_item(item, sep=sep)
    events = SSEParser().feed(ours)
    assert events == SSEParser().feed(ensure_bytes(item, sep))
    assert events  # not vacuous: an event came out
    assert item_encoder(sep=sep)(item) == ours  # the response's per-item path
    assert ours.endswith((sep * 2).encode())  # the separator asked for, not the default


class Point(BaseModel):
    x: int
    label: str


FASTAPI_ITEMS = [
    # FastAPI: "All data values including plain strings are JSON-serialized".
    pytest.param(FastAPIEvent(data="hello"), E(data='"hello"'), id="str-is-quoted"),
    pytest.param(FastAPIEvent(raw_data="a\nb", event="x"), E(data="a\nb", event="x"),
                 id="raw-data-as-is"),
    pytest.param(FastAPIEvent(data={"a": [1, 2]}, id="3"), E(data='{"a":[1,2]}', id="3"),
                 id="dict-is-json"),
    pytest.param(FastAPIEvent(data=Point(x=1, label="é")), E(data='{"x":1,"label":"é"}'),
                 id="pydantic-model"),
    pytest.param(FastAPIEvent(data=7, retry=5), E(data="7", retry=5), id="int-retry"),
    pytest.param(FastAPIEvent(data={"name": "é"}), E(data='{"name":"é"}'), id="non-ascii-json"),
]


@pytest.mark.peer
@pytest.mark.parametrize(("item", "expected"), FASTAPI_ITEMS)
def test_fastapi_events_mean_what_they_mean_there(item: FastAPIEvent, expected: E) -> None:
    assert SSEParser().feed(encode_item(item)) == [expected]


def test_comments_of_other_libraries_are_comment_lines() -> None:
    assert encode_item(FastAPIEvent(comment="keep\nalive")) == b":keep\n:alive\n"
    assert encode_item(SSEStarletteEvent(comment="c")) == b":c\n"
    assert encode_item({"comment": "c"}) == b":c\n"


@dataclass
class OwnEvent:
    """Any object with the five event attributes is an event."""

    data: Any = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


def test_any_object_with_the_event_attributes_is_an_event() -> None:
    assert encode_item(OwnEvent("d", event="e")) == b"event: e\ndata: d\n\n"


def test_json_data_keeps_a_dict_as_json_data_and_applies_to_objects() -> None:
    assert encode_item({"event": "x", "data": "y"}, json_data=True) == \
        b'data: {"event":"x","data":"y"}\n\n'
    assert encode_item(SSEStarletteEvent({"a": 1}, event="e"), json_data=True) == \
        b'event: e\ndata: {"a":1}\n\n'


SHAPE_ERRORS = [
    pytest.param({"message": "hi"}, "'message' is not one of them.*json_data=True",
                 id="dict-unknown-key"),
    pytest.param({"data": {"a": 1}}, "Python repr: send json.dumps", id="dict-dict-data"),
    # sse-starlette deletes the line break (renaming the event); we refuse it.
    pytest.param({"event": "a\nb", "data": "x"}, "line break", id="dict-event-line-break"),
    pytest.param(SSEStarletteEvent("x", id="1\n2"), "line break", id="object-id-line-break"),
    pytest.param({"id": 5, "data": "x"}, "id must be str", id="dict-int-id"),
    pytest.param(SSEStarletteEvent({"a": 1}), "needs JSON: pass json_data=True",
                 id="object-dict-data"),
    pytest.param(FastAPIEvent(data=float("nan")), "not JSON", id="fastapi-nan"),
]


@pytest.mark.parametrize(("item", "match"), SHAPE_ERRORS)
def test_shapes_that_cannot_be_sent_faithfully_are_refused(item: Any, match: str) -> None:
    with pytest.raises(SSEEncodingError, match=match):
        encode_item(item)


def test_an_object_without_every_event_attribute_is_data() -> None:
    @dataclass
    class Partial:
        data: str = "x"

    with pytest.raises(SSEEncodingError, match="Partial cannot be sent"):
        encode_item(Partial())


async def test_a_response_streams_every_shape() -> None:
    async def events() -> Any:
        yield {"event": "start", "data": "go"}
        yield SSEStarletteEvent("half", event="progress", id="1")
        yield FastAPIEvent(data={"done": True}, event="complete")

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(events())).get("/")
    assert response.status_code == 200
    assert [(e.event, e.data) for e in response.events()] == [
        ("start", "go"), ("progress", "half"), ("complete", '{"done":true}')]


def test_a_refused_event_dict_says_what_to_do_instead() -> None:
    with pytest.raises(SSEEncodingError) as unknown:
        encode_item({"message": "hi"})
    assert str(unknown.value) == (
        "an event dict takes the keys data, event, id, retry, comment; 'message' is not one of "
        "them. To send the dict itself as JSON data, pass json_data=True")
    with pytest.raises(SSEEncodingError) as nested:
        encode_item({"data": {"a": 1}})
    assert str(nested.value) == (
        "the data of an event dict is dict, which sse-starlette would send as its Python repr: "
        "send json.dumps(data), or yield ServerSentEvent(data=..., ...) with json_data=True")

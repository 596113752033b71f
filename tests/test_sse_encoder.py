"""Table tests of the pure Server-Sent Events encoder (WHATWG HTML 9.2)."""

from __future__ import annotations

import dataclasses

import pytest

from streaming.encoders.sse import (
    MAX_RETRY,
    ServerSentEvent,
    encode_comment,
    encode_event,
    encode_item,
    item_encoder,
)
from streaming.exceptions import SSEEncodingError, StreamingConfigError

E = ServerSentEvent

EVENTS = [
    pytest.param(E(data="hello"), "\n", b"data: hello\n\n", id="data"),
    pytest.param(E(data=""), "\n", b"data: \n\n", id="empty-data-is-one-line"),
    pytest.param(E(data=" x"), "\n", b"data:  x\n\n", id="leading-space-kept"),
    pytest.param(E(data="a\nb"), "\n", b"data: a\ndata: b\n\n", id="lf"),
    pytest.param(E(data="a\r\nb\rc"), "\n", b"data: a\ndata: b\ndata: c\n\n", id="crlf-and-cr"),
    pytest.param(E(data="a\n"), "\n", b"data: a\ndata: \n\n", id="trailing-lf"),
    pytest.param(E(data="\n"), "\n", b"data: \ndata: \n\n", id="only-lf"),
    pytest.param(
        E(data="a\u2028b\x85c\x0bd"),
        "\n",
        "data: a\u2028b\x85c\x0bd\n\n".encode(),
        id="unicode-breaks-are-not-sse-breaks",
    ),
    pytest.param(E(data="naïve 日本"), "\n", "data: naïve 日本\n\n".encode(), id="utf8"),
    pytest.param(E(data="a:b"), "\n", b"data: a:b\n\n", id="colon-in-value"),
    pytest.param(E(data=42), "\n", b"data: 42\n\n", id="int-is-str"),
    pytest.param(E(data=1.5), "\n", b"data: 1.5\n\n", id="float-is-str"),
    pytest.param(E(data="x", event="tick"), "\n", b"event: tick\ndata: x\n\n", id="event"),
    pytest.param(E(data="x", event=""), "\n", b"event: \ndata: x\n\n", id="empty-event"),
    pytest.param(E(data="x", id="7"), "\n", b"id: 7\ndata: x\n\n", id="id"),
    pytest.param(E(data="x", id=""), "\n", b"id: \ndata: x\n\n", id="empty-id-resets"),
    pytest.param(E(data="x", retry=0), "\n", b"retry: 0\ndata: x\n\n", id="retry-zero"),
    pytest.param(E(data="x", retry=3000), "\n", b"retry: 3000\ndata: x\n\n", id="retry"),
    pytest.param(E(id="7"), "\n", b"id: 7\n\n", id="id-only"),
    pytest.param(E(retry=10), "\n", b"retry: 10\n\n", id="retry-only"),
    pytest.param(
        E(data="d", event="e", id="i", retry=1, comment="c"),
        "\n",
        b":c\nevent: e\nid: i\nretry: 1\ndata: d\n\n",
        id="field-order",
    ),
    pytest.param(E(data="x", comment="a\r\nb"), "\n", b":a\n:b\ndata: x\n\n", id="comment-lines"),
    pytest.param(E(comment="ping"), "\n", b":ping\n", id="comment-only-no-blank-line"),
    pytest.param(E(comment=""), "\n", b":\n", id="empty-comment"),
    pytest.param(E(), "\n", b"", id="no-fields-no-bytes"),
    pytest.param(
        E(data="a\nb", event="e"), "\r\n", b"event: e\r\ndata: a\r\ndata: b\r\n\r\n", id="sep-crlf"
    ),
    pytest.param(E(data="a\nb", comment="c"), "\r", b":c\rdata: a\rdata: b\r\r", id="sep-cr"),
]


@pytest.mark.parametrize(("event", "sep", "expected"), EVENTS)
def test_encode_event(event: ServerSentEvent, sep: str, expected: bytes) -> None:
    assert encode_event(event, sep=sep) == expected
    assert encode_item(event, sep=sep) == expected


JSON_DATA = [
    pytest.param({"a": 1, "b": [1, 2]}, b'data: {"a":1,"b":[1,2]}\n\n', id="dict-compact"),
    pytest.param(["x", None], b'data: ["x",null]\n\n', id="list"),
    pytest.param({"t": "日本"}, 'data: {"t":"日本"}\n\n'.encode(), id="no-ascii-escapes"),
    pytest.param({"t": "a\nb"}, b'data: {"t":"a\\nb"}\n\n', id="json-escapes-newlines"),
    pytest.param(True, b"data: true\n\n", id="bool-as-json"),
    pytest.param(3, b"data: 3\n\n", id="int"),
    pytest.param("plain", b"data: plain\n\n", id="str-never-quoted"),
]


@pytest.mark.parametrize(("data", "expected"), JSON_DATA)
def test_json_data(data: object, expected: bytes) -> None:
    assert encode_event(E(data=data), json_data=True) == expected
    assert encode_item(data, json_data=True) == expected


ITEMS = [
    pytest.param("hello", {}, b"data: hello\n\n", id="str-as-is"),
    pytest.param('"quoted"', {}, b'data: "quoted"\n\n', id="str-not-json-quoted"),
    pytest.param("a\r\nb", {}, b"data: a\ndata: b\n\n", id="str-multiline"),
    pytest.param("", {}, b"data: \n\n", id="empty-str"),
    pytest.param("x", {"sep": "\r\n"}, b"data: x\r\n\r\n", id="str-sep"),
    pytest.param(b"event: raw\n\n", {}, b"event: raw\n\n", id="bytes-untouched"),
    pytest.param(b"not\rsse", {"sep": "\r"}, b"not\rsse", id="bytes-never-checked"),
    pytest.param(bytearray(b"data: b\n\n"), {}, b"data: b\n\n", id="bytearray"),
    pytest.param(memoryview(b"data: m\n\n"), {}, b"data: m\n\n", id="memoryview"),
    pytest.param(7, {}, b"data: 7\n\n", id="int-item"),
    pytest.param({"a": 1}, {"json_data": True}, b'data: {"a":1}\n\n', id="dict-item"),
    pytest.param("a\rb", {}, b"data: a\ndata: b\n\n", id="str-lone-cr"),
    pytest.param("a\nb", {"sep": "\r\n"}, b"data: a\r\ndata: b\r\n\r\n", id="multiline-sep"),
    pytest.param(E(data="x", retry=MAX_RETRY), {}, f"retry: {MAX_RETRY}\ndata: x\n\n".encode(),
                 id="largest-retry"),
]


@pytest.mark.parametrize(("item", "kwargs", "expected"), ITEMS)
def test_encode_item(item: object, kwargs: dict[str, object], expected: bytes) -> None:
    assert encode_item(item, **kwargs) == expected  # type: ignore[arg-type]
    encoded = item_encoder(**kwargs)(item)  # type: ignore[arg-type]  # the per-item path
    assert encoded == expected
    assert type(encoded) is bytes


def test_the_defaults_are_lf_and_no_json() -> None:
    assert item_encoder()("x") == b"data: x\n\n"
    assert item_encoder()(E(data="x")) == b"data: x\n\n"
    with pytest.raises(SSEEncodingError, match="pass json_data=True"):
        item_encoder()(["x"])


def test_bytes_item_is_the_same_object() -> None:
    raw = b"data: x\n\n"
    assert encode_item(raw) is raw


class _Str(str):
    pass


def test_str_subclass_item_is_data() -> None:
    assert encode_item(_Str("a\nb")) == b"data: a\ndata: b\n\n"


COMMENTS = [
    pytest.param("ping", "\n", b":ping\n", id="ping"),
    pytest.param("", "\n", b":\n", id="empty"),
    pytest.param(" ping", "\r\n", b": ping\r\n", id="space-and-crlf"),
    pytest.param("a\nb\r\nc", "\r", b":a\r:b\r:c\r", id="multi-line"),
]


@pytest.mark.parametrize(("text", "sep", "expected"), COMMENTS)
def test_encode_comment(text: str, sep: str, expected: bytes) -> None:
    assert encode_comment(text, sep) == expected
    assert encode_event(E(comment=text), sep=sep) == expected


def test_encode_comment_default_is_bare_colon() -> None:
    assert encode_comment() == b":\n"


def test_never_a_bom() -> None:
    assert not encode_item("\ufeffx").startswith(b"\xef\xbb\xbf")
    assert encode_item("\ufeffx") == "data: \ufeffx\n\n".encode()


def test_event_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        E(data="x").data = "y"  # type: ignore[misc]


ERRORS = [
    pytest.param(
        E(data="x", event="a\nb"), {}, "event 'a\\\\nb' contains a line break", id="lf-in-event"
    ),
    pytest.param(E(data="x", event="a\r"), {}, "event .* contains a line break", id="cr-in-event"),
    pytest.param(E(data="x", id="1\n2"), {}, "id .* contains a line break", id="lf-in-id"),
    pytest.param(E(data="x", id="1\r\n"), {}, "id .* contains a line break", id="crlf-in-id"),
    pytest.param(E(data="x", id="1\r2"), {}, "id .* contains a line break", id="cr-in-id"),
    pytest.param(E(data="x", id="1\x002"), {}, "id .* contains NUL", id="nul-in-id"),
    pytest.param(E(data="x", retry=MAX_RETRY + 1), {}, r"not an int of about 19 digits$",
                 id="retry-past-the-largest"),
    pytest.param(E(data="x", retry=10**100), {}, r"not an int of about 99 digits$",
                 id="huge-retry"),
    pytest.param(E(data="x", retry=-MAX_RETRY), {}, rf"not -{MAX_RETRY}$", id="huge-negative"),
    pytest.param(E(data="x", retry=-1), {}, "non-negative int .* not -1", id="negative-retry"),
    pytest.param(E(data="x", retry=1.5), {}, "non-negative int .* not 1.5", id="float-retry"),  # type: ignore[arg-type]
    pytest.param(E(data="x", retry="10"), {}, "non-negative int .* not '10'", id="str-retry"),  # type: ignore[arg-type]
    pytest.param(E(data="x", retry=True), {}, "non-negative int .* not True", id="bool-retry"),
    pytest.param(E(data="x", event=5), {}, "event must be str, not int", id="int-event"),  # type: ignore[arg-type]
    pytest.param(E(data="x", id=5), {}, "id must be str, not int", id="int-id"),  # type: ignore[arg-type]
    pytest.param(E(comment=b"x"), {}, "comment must be str, not bytes", id="bytes-comment"),  # type: ignore[arg-type]
    pytest.param(E(data={"a": 1}), {}, "dict needs JSON: pass json_data=True", id="dict-data"),
    pytest.param(E(data=[1]), {}, "list needs JSON: pass json_data=True", id="list-data"),
    pytest.param(E(data=True), {}, "bool cannot be sent", id="bool-data"),
    pytest.param(E(data=b"x"), {}, "bytes cannot be sent.*decode", id="bytes-data"),
    pytest.param(E(data=object()), {}, "object cannot be sent", id="object-data"),
    pytest.param(E(data=object()), {"json_data": True}, "not JSON", id="object-json"),
    pytest.param(E(data=float("nan")), {"json_data": True}, "not JSON", id="nan-json"),
    pytest.param(E(data="\ud800"), {}, "not encodable as UTF-8", id="lone-surrogate"),
]


@pytest.mark.parametrize(("event", "kwargs", "match"), ERRORS)
def test_encode_event_errors(event: ServerSentEvent, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SSEEncodingError, match=match):
        encode_event(event, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SSEEncodingError, match=match):
        encode_item(event, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SSEEncodingError, match=match):
        item_encoder(**kwargs)(event)  # type: ignore[arg-type]


ITEM_ERRORS = [
    pytest.param(None, {}, "^None is not an event; yield a ServerSentEvent, str or bytes$",
                 id="none"),
    pytest.param({"a": 1}, {}, "To send the dict itself as JSON data, pass json_data=True",
                 id="dict"),
    pytest.param(["a"], {}, "list needs JSON: pass json_data=True", id="list"),
    pytest.param("\udfff", {}, "not encodable as UTF-8", id="lone-surrogate"),
]


@pytest.mark.parametrize(("item", "kwargs", "match"), ITEM_ERRORS)
def test_encode_item_errors(item: object, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SSEEncodingError, match=match):
        encode_item(item, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SSEEncodingError, match=match):
        item_encoder(**kwargs)(item)  # type: ignore[arg-type]


@pytest.mark.parametrize("item", [E(data="x"), "x", b"x"])
@pytest.mark.parametrize("sep", ["\n\n", "", " ", "\t", "\n\r"])
def test_a_bad_separator_is_a_config_error(item: object, sep: str) -> None:
    # The separator is a setting, not data: the same error as every bad setting.
    with pytest.raises(StreamingConfigError, match="separator must be"):
        encode_item(item, sep=sep)
    with pytest.raises(StreamingConfigError, match="separator must be"):
        encode_comment("x", sep)
    if isinstance(item, ServerSentEvent):
        with pytest.raises(StreamingConfigError, match="separator must be"):
            encode_event(item, sep=sep)


def test_encode_comment_errors() -> None:
    with pytest.raises(SSEEncodingError, match="comment must be str"):
        encode_comment(None)  # type: ignore[arg-type]


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_event(E(event="a\nb"))

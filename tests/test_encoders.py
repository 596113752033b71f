"""Pure table tests of the plain-text and NDJSON encoders (no event loop)."""

from __future__ import annotations

import json

import pytest

from streaming.encoders import encode_chunk, encode_ndjson_error, encode_ndjson_line
from streaming.encoders.ndjson import ndjson_encoder
from streaming.exceptions import ContentTypeError, NDJSONEncodingError


@pytest.mark.parametrize(
    ("chunk", "charset", "expected"),
    [
        (b"abc", "utf-8", b"abc"),
        (bytearray(b"abc"), "utf-8", b"abc"),
        (memoryview(b"abc"), "utf-8", b"abc"),
        ("数据 0\n", "utf-8", "数据 0\n".encode()),
        ("数据", "gbk", "数据".encode("gbk")),
        ("", "utf-8", b""),
    ],
)
def test_encode_chunk(chunk: object, charset: str, expected: bytes) -> None:
    assert bytes(encode_chunk(chunk, charset)) == expected


def test_text_is_utf_8_unless_told() -> None:
    assert encode_chunk("数据") == "数据".encode()


class Text(str):
    """A ``str`` subclass (an ``enum.StrEnum`` member, markupsafe's ``Markup``)."""


class Bytes(bytes):
    pass


def test_subclasses_of_str_and_bytes_are_encoded_as_their_base() -> None:
    assert encode_chunk(Text("数据"), "gbk") == "数据".encode("gbk")
    chunk = Bytes(b"abc")
    assert encode_chunk(chunk) is chunk


def test_bytes_pass_through_without_copy() -> None:
    chunk = b"x" * 100
    assert encode_chunk(chunk) is chunk


def test_bytearray_is_copied_so_the_producer_may_reuse_its_buffer() -> None:
    buffer = bytearray(b"abc")
    encoded = encode_chunk(buffer)
    buffer[0] = ord("z")
    assert encoded == b"abc"


@pytest.mark.parametrize("chunk", [1, 1.5, None, {"a": 1}, ["x"], object()])
def test_other_types_are_refused_by_name(chunk: object) -> None:
    with pytest.raises(ContentTypeError, match=type(chunk).__qualname__) as caught:
        encode_chunk(chunk)
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": 0, "message": "数据项 0"}, '{"id":0,"message":"数据项 0"}\n'.encode()),
        ([1, 2], b"[1,2]\n"),
        ("line\nbreak", b'"line\\nbreak"\n'),
        (None, b"null\n"),
        (b'{"pre":"encoded"}\n', b'{"pre":"encoded"}\n'),
    ],
)
def test_ndjson_lines(item: object, expected: bytes) -> None:
    line = encode_ndjson_line(item)
    assert line == expected
    assert line.count(b"\n") == 1
    assert ndjson_encoder()(item) == expected  # a fresh encoder: the same lines


def test_ndjson_default_serialises_unknown_types() -> None:
    assert ndjson_encoder(default=sorted)({"x": {1, 2}}) == b'{"x":[1,2]}\n'


def test_ndjson_unserialisable_item_names_the_type() -> None:
    with pytest.raises(TypeError, match="set"):
        encode_ndjson_line({"x": {1}})


def test_ndjson_error_line() -> None:
    line = encode_ndjson_error("Too Many Requests", "http_429")
    assert json.loads(line) == {"error": {"type": "http_429", "message": "Too Many Requests"}}


@pytest.mark.parametrize(
    "item", [{"x": float("nan")}, float("inf"), b"no newline", b"two\nlines\n"]
)
def test_ndjson_refuses_what_would_not_be_one_json_line(item: object) -> None:
    with pytest.raises(NDJSONEncodingError):
        encode_ndjson_line(item)
    with pytest.raises(NDJSONEncodingError):
        ndjson_encoder()(item)


def test_ndjson_refusals_say_what_was_refused() -> None:
    encode = ndjson_encoder()
    with pytest.raises(NDJSONEncodingError, match=r"^cannot encode nan as JSON: Out of range"):
        encode(float("nan"))
    with pytest.raises(NDJSONEncodingError, match=r"^pre-encoded NDJSON must be one line ending "
                       r"in a newline, not b'x{40}'$"):
        encode(b"x" * 50)
    with pytest.raises(NDJSONEncodingError):
        encode(b"\nx")  # one newline, not at the end

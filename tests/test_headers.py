"""Table tests of one response header as ASGI carries it (RFC 9110 5), and of
which framing headers an application may set beside a streamed body."""

from __future__ import annotations

import pytest

from streaming.encoders.headers import encode_header, framing_problem
from streaming.exceptions import HeaderValidationError


@pytest.mark.parametrize(("name", "value", "expected"), [
    pytest.param("X-Trace", "abc", (b"x-trace", b"abc"), id="lower-cased name"),
    pytest.param("x", "a\tb c", (b"x", b"a\tb c"), id="inner tab and space"),
    pytest.param("x", "caf\xe9\xa0", (b"x", b"caf\xe9\xa0"), id="obs-text, NBSP last"),
    pytest.param("x", "XYZ", (b"x", b"XYZ"), id="letters at both ends"),
    pytest.param("x", "", (b"x", b""), id="empty value"),
])
def test_a_valid_header(name: str, value: str, expected: tuple[bytes, bytes]) -> None:
    assert encode_header(name, value) == expected


@pytest.mark.parametrize(("name", "value", "message"), [
    pytest.param(b"x", "v", "header b'x': name and value must be str, not bytes and str",
                 id="bytes name"),
    pytest.param("x", 1, "header 'x': name and value must be str, not str and int",
                 id="int value"),
    pytest.param("a b", "v", "'a b' is not a valid header name", id="space in name"),
    pytest.param("x", "a\r\nSet-Cookie: y",
                 "header 'x' has a control character in 'a\\r\\nSet-Cookie: y'", id="CRLF"),
    pytest.param("x", " v", "header 'x': ' v' starts or ends with whitespace (RFC 9110 5.5)",
                 id="leading space"),
    pytest.param("x", "v\t", "header 'x': 'v\\t' starts or ends with whitespace (RFC 9110 5.5)",
                 id="trailing tab"),
    pytest.param("x", "数据", "header 'x': '数据' is not latin-1 (encode it, e.g. RFC 8187)",
                 id="not latin-1"),
])
def test_an_invalid_header(name: object, value: object, message: str) -> None:
    with pytest.raises(HeaderValidationError) as caught:
        encode_header(name, value)
    assert str(caught.value) == message


@pytest.mark.parametrize(("name", "value", "problem"), [
    (b"content-length", b"5",
     "content-length is the server's to write: a streamed body is framed by the server "
     "(RFC 9112 6.1)"),
    (b"transfer-encoding", b"chunked",
     "transfer-encoding is the server's to write: a streamed body is framed by the server "
     "(RFC 9112 6.1)"),
    (b"connection", b"upgrade", "Connection may only say keep-alive or close (RFC 9110 7.6.1)"),
    (b"connection", b"close, x-foo",
     "Connection may only say keep-alive or close (RFC 9110 7.6.1)"),
    (b"proxy-connection", b"close", "Proxy-Connection is not a response header"),
    (b"connection", b"close", None),
    (b"connection", b"Keep-Alive , close", None),
    (b"connection", b"keep-alive", None),
    (b"keep-alive", b"timeout=5", None),
    (b"x-connection", b"upgrade", None),
])
def test_framing_problem(name: bytes, value: bytes, problem: str | None) -> None:
    assert framing_problem(name, value) == problem

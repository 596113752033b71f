"""One response header as ASGI carries it: pure, so formats can render error
headers. Which framing headers an application may set is decided here too
(``framing_problem``; the table is in ``streaming.responses.headers``)."""

from __future__ import annotations

import re

from streaming.exceptions import HeaderValidationError


def encode_header(name: object, value: object) -> tuple[bytes, bytes]:
    """One header as ASGI wants it, or ``HeaderValidationError``: names and values
    must be ``str``, latin-1, and free of control characters (RFC 9110 5.5: a
    CR or LF would end the header early, which is how responses get split)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise HeaderValidationError(
            f"header {name!r}: name and value must be str, not "
            f"{type(name).__name__} and {type(value).__name__}")
    if _TOKEN.fullmatch(name) is None:
        raise HeaderValidationError(f"{name!r} is not a valid header name")
    if _CONTROL.search(value) is not None:
        raise HeaderValidationError(f"header {name!r} has a control character in {value!r}")
    if value != value.strip(" \t"):
        # RFC 9110 5.5: a field value neither starts nor ends with whitespace;
        # h11 refuses such a start message, which would break the response late.
        raise HeaderValidationError(
            f"header {name!r}: {value!r} starts or ends with whitespace (RFC 9110 5.5)")
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise HeaderValidationError(
            f"header {name!r}: {value!r} is not latin-1 (encode it, e.g. RFC 8187)") from None


#: RFC 9110 5.1: a field name is a token; 5.5: a value has no control
#: character but horizontal tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


#: What the server frames with; never the application's on a streamed body.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"trailer", b"upgrade"})
#: HTTP/1.x connection management the application may ask for.
_CONNECTION_TOKENS = frozenset({b"keep-alive", b"close"})
#: Malformed in HTTP/2 and 3 (RFC 9113 8.2.2, RFC 9114 4.2).
CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                 b"transfer-encoding", b"upgrade"})


def framing_problem(name: bytes, value: bytes) -> str | None:
    """Why the header ``name: value`` (lower-case name) may not go out beside
    the server's own framing, or ``None`` if it may (see the module docstring)."""
    if name in _FRAMING:
        return (f"{name.decode()} is the server's to write: a streamed body is framed by "
                "the server (RFC 9112 6.1)")
    if name == b"connection":
        tokens = {token.strip().lower() for token in value.split(b",")}
        if not tokens <= _CONNECTION_TOKENS:
            return "Connection may only say keep-alive or close (RFC 9110 7.6.1)"
    if name == b"proxy-connection":
        return "Proxy-Connection is not a response header"
    return None

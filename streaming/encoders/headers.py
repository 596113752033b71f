"""One response header as ASGI carries it: pure, so formats can render error headers."""

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
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise HeaderValidationError(
            f"header {name!r}: {value!r} is not latin-1 (encode it, e.g. RFC 8187)") from None


#: RFC 9110 5.1: a field name is a token; 5.5: a value has no control
#: character but horizontal tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

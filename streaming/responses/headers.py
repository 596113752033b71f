"""Response headers: built once at construction, as raw ASGI pairs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping

from streaming._types import RawHeaders
from streaming.exceptions import HeaderValidationError


def build_raw_headers(
    headers: Mapping[str, str] | None, media_type: str | None, charset: str
) -> RawHeaders:
    """Return ASGI header pairs: the caller's headers, then ``content-type`` unless
    the caller gave one. ``text/*`` types get ``charset``, as Starlette does. No
    ``content-length``: the length is unknown, so the server frames the body
    (chunked on HTTP/1.1, RFC 9112 section 7.1). A header that cannot go on the
    wire raises ``HeaderValidationError`` here, not later inside the stream."""
    raw = [encode_header(k, v) for k, v in (headers or {}).items()]
    if media_type is not None and not any(k == b"content-type" for k, _ in raw):
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type = f"{media_type}; charset={charset}"
        raw.append(encode_header("content-type", media_type))
    return raw


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


class ResponseHeaders(MutableMapping[str, str]):
    """A case-insensitive view over a response's raw header list.

    Changes write through to ``raw`` (the list the driver sends), so headers set
    after construction and before the response runs are sent. ``raw`` is public
    because frameworks (FastAPI) extend it directly.
    """

    def __init__(self, raw: RawHeaders) -> None:
        self.raw = raw

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in self.raw:
            if k == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        name, encoded = encode_header(key, value)
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        self.raw.append((name, encoded))

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        if not any(k == name for k, _ in self.raw):
            raise KeyError(key)
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]

    def __iter__(self) -> Iterator[str]:
        return iter({k.decode("latin-1"): None for k, _ in self.raw})

    def __len__(self) -> int:
        return len({k for k, _ in self.raw})

    def __repr__(self) -> str:
        return f"ResponseHeaders({dict(self.items())!r})"

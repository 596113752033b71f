"""Response headers: built once at construction, as raw ASGI pairs.

``encode_header`` (one header, checked) is pure and lives with the encoders.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

from streaming._types import RawHeaders
from streaming.encoders.headers import encode_header

__all__ = ["ResponseHeaders", "build_raw_headers", "encode_header"]


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


class ResponseHeaders(MutableMapping[str, str]):
    """A case-insensitive view over a response's raw header list.

    Changes write through to ``raw`` (the list the driver sends), so headers set
    after construction and before the response runs are sent. ``raw`` is public
    because frameworks (FastAPI) extend it directly.
    """

    def __init__(self, raw: RawHeaders) -> None:
        self.raw = raw

    def __getitem__(self, key: str) -> str:
        name = _lookup_name(key)
        for k, v in self.raw:
            if k == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        name, encoded = encode_header(key, value)
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        self.raw.append((name, encoded))

    def __delitem__(self, key: str) -> None:
        name = _lookup_name(key)
        if not any(k == name for k, _ in self.raw):
            raise KeyError(key)
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]

    def __iter__(self) -> Iterator[str]:
        return iter({k.decode("latin-1"): None for k, _ in self.raw})

    def __len__(self) -> int:
        return len({k for k, _ in self.raw})

    def __repr__(self) -> str:
        return f"ResponseHeaders({dict(self.items())!r})"


def _lookup_name(key: object) -> bytes | None:
    """The raw name to look ``key`` up by; ``None`` (found nowhere) for a key no
    header can have, such as ``"数"``: ``in`` answers False, ``[]`` KeyError."""
    if not isinstance(key, str):
        return None
    try:
        return key.lower().encode("latin-1")
    except UnicodeEncodeError:
        return None

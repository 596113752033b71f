"""Response headers: built once at construction, as raw ASGI pairs."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, MutableMapping

from streaming._types import RawHeaders


def build_raw_headers(
    headers: Mapping[str, str] | None, media_type: str | None, charset: str
) -> RawHeaders:
    """Return ASGI header pairs: the caller's headers, then ``content-type`` unless
    the caller gave one. ``text/*`` types get ``charset``, as Starlette does. No
    ``content-length``: the length is unknown, so the server frames the body
    (chunked on HTTP/1.1, RFC 9112 section 7.1).

    The pairs are built once per distinct set of headers and shared (they are
    immutable tuples; the list is new each time, so it can still be changed):
    an idle stream should not carry its own copy of ``cache-control: no-cache``."""
    key = (tuple((headers or {}).items()), media_type, charset)
    return list(_raw_pairs(*key))


@functools.lru_cache(maxsize=256)
def _raw_pairs(
    headers: tuple[tuple[str, str], ...], media_type: str | None, charset: str
) -> tuple[tuple[bytes, bytes], ...]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if media_type is not None and not any(k == b"content-type" for k, _ in raw):
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type = f"{media_type}; charset={charset}"
        raw.append((b"content-type", media_type.encode("latin-1")))
    return tuple(raw)


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
        name = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        self.raw.append((name, value.encode("latin-1")))

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

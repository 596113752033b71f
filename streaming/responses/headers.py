"""Response headers: built once at construction, as raw ASGI pairs.

``encode_header`` (one header, checked) is pure and lives with the encoders.

Framing and connection headers are the server's, not the application's: a
streamed body is framed by the server (chunked on HTTP/1.1, DATA frames on
HTTP/2), and a ``Content-Length`` or ``Transfer-Encoding`` beside that framing
is how requests get smuggled past a proxy (RFC 9112 6.1, 6.3). So, per header:

=====================  ========================================================
``Content-Length``     refused (``HeaderValidationError``): the length of a
``Transfer-Encoding``  stream is unknown, and the server writes the framing
``Trailer``            refused: this response sends no trailer fields
``Upgrade``            refused: only a 101 switches protocols
``Connection``         ``keep-alive`` and ``close`` pass on HTTP/1.x (the
``Keep-Alive``         tutorial's ``/headers`` sets the first); any other value
                       is refused; on HTTP/2 and 3 both are dropped at send
                       time, since RFC 9113 8.2.2 makes them malformed there
=====================  ========================================================

On an error response (a ``StreamRefused``'s or ``UpstreamError``'s headers)
the same headers are dropped and logged instead (``streaming.formats.errors``):
the status matters more than a header.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

from streaming._types import Message, RawHeaders, Scope, Send
from streaming.encoders.headers import CONNECTION_SPECIFIC, encode_header, framing_problem
from streaming.exceptions import HeaderValidationError

__all__ = [
    "CONNECTION_SPECIFIC",
    "ResponseHeaders",
    "build_raw_headers",
    "check_framing",
    "encode_header",
    "for_http_version",
    "framing_problem",
    "send_for_http_version",
]

def check_framing(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """``(name, value)``, or ``HeaderValidationError`` if it is a framing
    header a streamed response may not carry."""
    problem = framing_problem(name, value)
    if problem is not None:
        raise HeaderValidationError(f"header {name.decode()!r}: {problem}")
    return name, value


def send_for_http_version(send: Send, scope: Scope) -> Send:
    """``send`` itself on HTTP/1.x; on HTTP/2 and 3 a ``send`` that takes the
    connection-specific headers out of the start message (``for_http_version``),
    whoever built it: our headers, an error's, a framework's."""
    http_version = str(scope.get("http_version", "1.1"))
    if http_version in ("1.1", "1.0"):
        return send

    async def send_without_connection_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = for_http_version(list(message.get("headers", [])), http_version)
            message = {**message, "headers": headers}
        await send(message)

    return send_without_connection_headers


def for_http_version(raw: RawHeaders, http_version: str) -> RawHeaders:
    """``raw`` as it may go out on ``http_version``: unchanged on HTTP/1.x; on
    HTTP/2 and 3 without the connection-specific headers, which are malformed
    there (RFC 9113 8.2.2) and which h2 refuses to send."""
    if http_version in ("1.1", "1.0") or not any(k in CONNECTION_SPECIFIC for k, _ in raw):
        return raw
    return [(k, v) for k, v in raw if k not in CONNECTION_SPECIFIC]


def build_raw_headers(
    headers: Mapping[str, str] | None, media_type: str | None, charset: str
) -> RawHeaders:
    """Return ASGI header pairs: the caller's headers, then ``content-type`` unless
    the caller gave one. ``text/*`` types get ``charset``, as Starlette does. No
    ``content-length``: the length is unknown, so the server frames the body
    (chunked on HTTP/1.1, RFC 9112 section 7.1). A header that cannot go on the
    wire raises ``HeaderValidationError`` here, not later inside the stream."""
    raw = [check_framing(*encode_header(k, v)) for k, v in (headers or {}).items()]
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
        name, encoded = check_framing(*encode_header(key, value))
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

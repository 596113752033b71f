"""A whole response in two messages, for a small body known in full (a JSON
error, a page, the metrics text): nothing to stream, so no driver, no race
with a disconnect, and no commit deadline.

The apps of the library that answer this way (the metrics endpoint, the
inspector's pages, the limiter's refusals, the local OpenAI test double) go
through ``send_whole``, so their headers get the same checks as a streamed
response's: ``encode_header``, then ``check_framing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streaming._types import RawHeaders, Send
from streaming.encoders.headers import encode_header
from streaming.exceptions import HeaderValidationError
from streaming.responses.headers import check_framing

__all__ = ["send_whole", "whole_headers"]

def whole_headers(body: bytes, content_type: str,
                  headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> RawHeaders:
    """The raw headers of a whole response: each of ``headers`` checked as a
    streamed response's are, then ``Content-Type`` and ``Content-Length``
    (from the body). A framing header among ``headers``, or a
    ``Content-Type`` (an argument of its own), is a ``HeaderValidationError``."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw = [check_framing(*encode_header(name, value)) for name, value in pairs]
    if any(name == b"content-type" for name, _ in raw):
        raise HeaderValidationError("header 'content-type' is given as its own argument")
    raw.append(encode_header("content-type", content_type))
    raw.append((b"content-length", str(len(body)).encode()))
    return raw


async def send_whole(send: Send, status: int, body: bytes, content_type: str,
                     headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
    """Send ``status``, the headers (``whole_headers``) and ``body`` as one
    complete response."""
    raw = whole_headers(body, content_type, headers)  # before anything is sent
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})

"""What a producer error becomes for the client: a status, a safe message, headers."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping

from streaming._types import RawHeaders
from streaming.encoders.headers import encode_header, framing_problem
from streaming.exceptions import HeaderValidationError

logger = logging.getLogger("streaming")


def status_for(error: BaseException) -> int:
    """Return the HTTP status an error before the first chunk turns into: the
    error's own ``status_code`` when it carries a 4xx/5xx one, else 500."""
    status = getattr(error, "status_code", None)
    if type(status) is int and 400 <= status <= 599:
        return status
    return 500


def describe_error(error: BaseException) -> tuple[int, str]:
    """Return the status and the client-facing message for a producer error.

    An error that carries a status chose what to tell the client (its ``detail``);
    any other error is a bug whose text may hold secrets, so the client only gets
    the status's reason phrase and the full traceback goes to the log.
    """
    status = status_for(error)
    detail = getattr(error, "detail", None) if _deliberate(error) else None
    if isinstance(detail, str) and detail:
        return status, detail
    try:
        return status, http.HTTPStatus(status).phrase
    except ValueError:
        return status, "Error"


def _deliberate(error: BaseException) -> bool:
    return type(getattr(error, "status_code", None)) is int


def error_headers(error: BaseException, content_type: bytes, body: bytes) -> RawHeaders:
    """Headers of an error response: the error's own (``Retry-After`` on a 429,
    say), then the content type and length of the error body. An error header
    that cannot go on the wire, or that frames the body (``Transfer-Encoding``
    beside our ``Content-Length``), is left out and logged: the status matters
    more."""
    extra = getattr(error, "headers", None)
    raw = []
    for name, value in (extra.items() if isinstance(extra, Mapping) else ()):
        if str(name).lower() in ("content-type", "content-length"):
            continue  # ours, for the error body
        try:
            pair = encode_header(name, value if isinstance(value, str) else str(value))
        except HeaderValidationError as exc:
            logger.warning("dropping a header of the error response: %s", exc)
            continue
        problem = framing_problem(*pair)
        if problem is not None:  # beside our own Content-Length it would smuggle
            logger.warning("dropping header %r of the error response: %s", name, problem)
            continue
        raw.append(pair)
    raw.append((b"content-type", content_type))
    raw.append((b"content-length", str(len(body)).encode()))
    return raw

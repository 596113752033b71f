"""What a producer error becomes for the client: a status and a safe message."""

from __future__ import annotations

import http


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

"""Strict numbers from the query string, shared by the examples.

``int()`` and ``float()`` alone take far more than a user types: "١٢", "1_0",
" +5 ", "1e3", "inf", "nan". A demo copied into production should accept
ASCII digits only, a bounded number of them, and answer anything else with a
400 instead of a 500 from an uncaught ``ValueError``.
"""

from __future__ import annotations

import re

from starlette.requests import Request

#: A sign only so that "-1" gets a range message rather than a syntax one.
INTEGER = re.compile(r"-?[0-9]{1,9}")
DECIMAL = re.compile(r"-?[0-9]{1,9}(?:\.[0-9]{1,9})?")


class QueryError(ValueError):
    """A query parameter that is not a plain number within its bounds."""


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` in ``low..high`` (``default`` when absent)."""
    text = _checked(request, name, INTEGER, f"an integer from {low} to {high}", low, high)
    return default if text is None else int(text)


def query_seconds(request: Request, name: str, default: float, low: float,
                  high: float) -> float:
    """The decimal query parameter ``name`` in ``low..high`` (``default`` when absent)."""
    text = _checked(request, name, DECIMAL, f"a number of seconds from {low} to {high}",
                    low, high)
    return default if text is None else float(text)


def _checked(request: Request, name: str, syntax: re.Pattern[str], what: str,
             low: float, high: float) -> str | None:
    """The parameter's text when absent (None) or well-formed and in bounds.

    ``float()`` compares integers exactly too: the syntax allows at most nine digits.
    """
    text = request.query_params.get(name)
    if text is not None and (syntax.fullmatch(text) is None or not low <= float(text) <= high):
        raise QueryError(f"{name} must be {what}")
    return text

"""Newline-delimited JSON (https://github.com/ndjson/ndjson-spec): one JSON text per line.

``json.dumps`` escapes every line break inside strings, so one item is always
exactly one line; the encoder never has to split or check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streaming.exceptions import NDJSONEncodingError

#: The member an in-band error line carries, so a reader can tell it from data.
ERROR_KEY = "error"


def ndjson_encoder(default: Callable[[Any], Any] | None = None) -> Callable[[Any], bytes]:
    """Return a function encoding one item as one UTF-8 JSON line ending in ``\\n``.

    ``bytes`` pass through untouched (pre-encoded lines); they must already end
    with a newline. Non-ASCII text is written as UTF-8, not ``\\u`` escapes,
    matching what readers of the tutorial's output expect to see. The JSON
    encoder is built once here: ``json.dumps`` with arguments builds a new one
    for every call, which costs more than encoding a small item.
    """
    to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default,
                               allow_nan=False).encode

    def encode(item: Any) -> bytes:
        if type(item) is bytes:
            if item.endswith(b"\n") and item.count(b"\n") == 1:
                return item
            raise NDJSONEncodingError(
                f"pre-encoded NDJSON must be one line ending in a newline, not {item[:40]!r}")
        try:
            return (to_json(item) + "\n").encode()
        except ValueError as exc:  # NaN or infinity: JSON has no such numbers
            raise NDJSONEncodingError(f"cannot encode {item!r} as JSON: {exc}") from exc

    return encode


#: ``ndjson_encoder()`` without a ``default``: one item in, one line out.
encode_ndjson_line = ndjson_encoder()


def encode_ndjson_error(message: str, error_type: str) -> bytes:
    """Return the final in-band line that reports a producer error after headers
    are out: ``{"error": {"type": ..., "message": ...}}``."""
    return encode_ndjson_line({ERROR_KEY: {"type": error_type, "message": message}})

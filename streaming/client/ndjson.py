"""An NDJSON reader that reconnects without repeating a line.

NDJSON has no resume protocol of its own, so the reader only reconnects
after a cut when it knows how to continue: a connection that delivered
nothing is simply tried again; after lines have arrived, ``resume(count,
last)`` gives the query parameters of the request that continues after the
``count``-th item (``{"after": str(count)}``, say). Without it a cut is a
``StreamInterrupted``. Only complete lines count: a partial line at a cut is
dropped and comes again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from streaming.client.reader import ReconnectingReader
from streaming.exceptions import StreamInterrupted, StreamReadError

ResumeParams = Callable[[int, Any], Mapping[str, str]]


class NDJSONReader(ReconnectingReader[Any]):
    """``async for item in NDJSONReader(client, url)``: one parsed JSON value
    per line. ``max_line`` bounds a line in bytes (longer: ``StreamReadError``)."""

    media_types = frozenset({"application/x-ndjson", "application/ndjson",
                             "application/jsonl", "application/x-jsonlines",
                             "application/json"})

    def __init__(self, *args: Any, resume: ResumeParams | None = None,
                 max_line: int = 8 * 1024 * 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume
        self.max_line = max_line
        #: Items delivered so far, over all connections.
        self.received = 0
        self._last: Any = None
        self._partial = b""

    def _request_headers(self) -> dict[str, str]:
        return {"accept": "application/x-ndjson", **self.headers}

    def _request_params(self) -> dict[str, str]:
        params = dict(self.params)
        if self.received and self.resume is not None:
            params.update(self.resume(self.received, self._last))
        return params

    def _feed(self, chunk: bytes) -> list[Any]:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > self.max_line:
            raise StreamReadError(f"an NDJSON line is longer than {self.max_line} bytes")
        return self._parse(lines)

    def _parse(self, lines: list[bytes]) -> list[Any]:
        items = []
        for line in lines:
            if not line.strip():
                continue  # blank lines carry nothing (a keep-alive)
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise StreamReadError(f"line {self.received + len(items) + 1} of the "
                                      f"stream is not JSON: {line[:80]!r}") from exc
        if items:
            self.received += len(items)
            self._last = items[-1]
        return items

    def _connection_ended(self, clean: bool) -> list[Any]:
        partial, self._partial = self._partial, b""
        if clean:
            self._done = True
            return self._parse([partial])  # a last line may lack its newline
        if self.received and self.resume is None:
            raise StreamInterrupted(
                f"the stream was cut after {self.received} items and no resume "
                "function says how to continue without repeating them")
        return []

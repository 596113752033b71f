"""The workload every implementation streams, shared by the apps and the client.

Every producer yields prebuilt objects and awaits nothing else, so the
differences the suite measures are the response layers only. The client
imports this module to know exactly what it must receive.
"""

from __future__ import annotations

#: The small chunk of the chunks-per-second figures: 15 bytes and a newline.
SMALL_CHUNK_SIZE = 16
#: The large chunk of the MB/s figure.
LARGE_CHUNK_SIZE = 64 * 1024
#: The ``data`` of every SSE event (a str item, sent as ``data: <str>``).
SSE_DATA = "token-0123456789"
#: Every NDJSON line is this object.
NDJSON_ITEM: dict[str, str] = {"type": "token", "text": "hello"}
#: The first chunk of the plain ``/idle`` stream, before the producer idles.
IDLE_FIRST_CHUNK = b"ready\n"


def text_chunk(size: int) -> bytes:
    """Return the text chunk of ``size`` bytes: ``x`` repeated, then a newline."""
    if size < 1:
        raise ValueError(f"a text chunk has at least one byte, not {size}")
    return b"x" * (size - 1) + b"\n"

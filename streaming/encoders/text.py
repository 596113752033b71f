"""Plain byte streams: what a producer may yield and how it becomes body bytes."""

from __future__ import annotations

from streaming.exceptions import ContentTypeError


def encode_chunk(chunk: object, charset: str = "utf-8") -> bytes | memoryview:
    """Return the body bytes for one chunk of a plain stream.

    ``bytes`` and ``memoryview`` pass through untouched (no copy); ``bytearray`` is
    copied, because the producer may reuse and mutate its buffer after yielding it
    while the server still holds a reference; ``str`` is encoded with ``charset``.
    Anything else raises ``ContentTypeError`` (the driver adds the chunk index).
    """
    kind = type(chunk)
    if kind is bytes or kind is memoryview:
        return chunk  # type: ignore[return-value]
    if kind is str:
        return chunk.encode(charset)  # type: ignore[attr-defined,no-any-return]
    if isinstance(chunk, bytes | memoryview):
        return chunk
    if isinstance(chunk, bytearray):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode(charset)
    raise ContentTypeError(chunk)

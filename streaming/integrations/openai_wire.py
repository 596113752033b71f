"""The OpenAI chat-completions wire format, as pure functions: dicts in, dicts or
bytes out. No event loop, no ASGI, no ``openai`` import.

Shared by the local server (which writes this format) and the relay (which
reads it and writes it again in proxy mode). The shapes follow the API reference
for ``POST /v1/chat/completions``: with ``stream: true`` the body is Server-Sent
Events, each ``data:`` a ``chat.completion.chunk`` whose ``choices[0].delta``
carries the new text, then (with ``stream_options.include_usage``) one chunk
with empty ``choices`` and the ``usage``, then the literal ``data: [DONE]``.
Errors are ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: The stream's terminator: not JSON, the SDKs compare the text.
DONE = b"data: [DONE]\n\n"

#: A word with the spaces before it, or one other character (a CJK character,
#: a punctuation mark, an emoji) with the spaces before it, or trailing spaces.
#: Every character falls in exactly one token, so ``"".join(tokenize(t)) == t``.
_TOKEN = re.compile(r"\s*[A-Za-z0-9_']+|\s*[^\sA-Za-z0-9_']|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into deterministic, model-like tokens that join back to it."""
    return _TOKEN.findall(text)


def sse_data(obj: object) -> bytes:
    """One SSE event carrying ``obj`` as compact JSON. Non-ASCII text goes out
    as UTF-8, as the real API sends it, so multi-byte characters are on the wire."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: Mapping[str, Any],
    finish_reason: str | None = None,
    *,
    with_usage_field: bool = False,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with a single choice. With
    ``include_usage`` the API adds ``"usage": null`` to every chunk but the last."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": dict(delta), "logprobs": None,
                     "finish_reason": finish_reason}],
    }
    if with_usage_field:
        body["usage"] = None
    return body


def usage_chunk(completion_id: str, created: int, model: str,
                usage: Mapping[str, int]) -> dict[str, Any]:
    """The last chunk of a stream with ``include_usage``: no choices, the usage."""
    body = chunk(completion_id, created, model, {})
    body["choices"] = []
    body["usage"] = dict(usage)
    return body


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(completion_id: str, created: int, model: str, text: str,
               finish_reason: str, usage: Mapping[str, int]) -> dict[str, Any]:
    """The whole ``chat.completion`` object a ``stream: false`` request gets."""
    message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason}],
        "usage": dict(usage),
    }


def error_object(message: str, type: str, param: str | None = None,
                 code: str | None = None) -> dict[str, dict[str, str | None]]:
    """The API's error body."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def message_text(message: object) -> str:
    """The text of one chat message: ``content`` is a string or a list of
    parts, of which the ``{"type": "text", "text": ...}`` ones carry text."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part["text"] for part in content  # client input: any shape
                       if isinstance(part, Mapping) and part.get("type") == "text"
                       and isinstance(part.get("text"), str))
    return ""


def last_user_text(messages: Sequence[object]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return ""


def split_inside_character(data: bytes) -> list[bytes]:
    """Split ``data`` right after the lead byte of its first multi-byte UTF-8
    character, so neither half decodes alone; data without one stays whole.

    A server writes the halves as two body messages: each becomes its own HTTP
    chunk (and usually its own TCP segment), which is how a client meets a
    character cut in two in real life."""
    for i, byte in enumerate(data):
        if byte >= 0xC0:  # 11xxxxxx: the first byte of a 2-, 3- or 4-byte sequence
            return [data[: i + 1], data[i + 1:]]
    return [data]

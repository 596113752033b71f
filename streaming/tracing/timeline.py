"""Render recorded ASGI messages as a human-readable timeline (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from streaming._types import Message
from streaming.tracing.middleware import RecordedMessage
from streaming.tracing.terminal import terminal_safe

_ARROWS = {"receive": "server -> app", "send": "app -> server"}


def format_timeline(messages: Iterable[RecordedMessage], preview: int = 40) -> str:
    """One line per message: relative time in ms, direction, type and details."""
    lines = [f"{'ms':>9}  {'direction':<13}  message"]
    for recorded in messages:
        arrow = _ARROWS[recorded.direction]
        text = format_message(recorded.message, preview)
        lines.append(f"{recorded.time * 1000:9.1f}  {arrow:<13}  {text}")
    return "\n".join(lines)


def format_message(message: Message, preview: int = 40) -> str:
    """Describe one ASGI message: status and headers for a start, size and a
    short preview for a body, ``more_body`` when set."""
    kind = message.get("type", "?")
    if kind == "http.response.start":
        headers = ", ".join(f"{_text(k)}: {_text(v)}" for k, v in message.get("headers", []))
        return f"{kind} status={message.get('status')!r} headers=[{headers}]"
    if kind in ("http.response.body", "http.request"):
        body = bytes(message.get("body", b""))
        more = " more_body=True" if message.get("more_body") else ""
        return f"{kind} {len(body)} B{more}{_preview(body, preview)}"
    return terminal_safe(str(kind))


def _text(raw: object) -> str:
    # Header bytes are latin-1 (ASGI); whatever they hold is escaped for the terminal.
    text = bytes(raw).decode("latin-1") if isinstance(raw, (bytes, bytearray)) else str(raw)
    return terminal_safe(text)


def _preview(body: bytes, limit: int) -> str:
    if not body:
        return ""
    text = body[:limit].decode("utf-8", errors="replace")
    suffix = "..." if len(body) > limit else ""
    return f" {text!r}{suffix}"

"""Text for a terminal: what a server or an app sent, made harmless to print."""

from __future__ import annotations

__all__ = ["terminal_safe"]


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal could act on written as an
    escape (``\\x1b``, ``\\r``, ``\\u202e``...): C0 and C1 controls, format
    characters such as bidi overrides, separators other than the space. A
    backslash is doubled, so an escape shown is never one the server typed."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    if char.isprintable() and char != "\\":
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}

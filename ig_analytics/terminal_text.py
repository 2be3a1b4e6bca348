"""Text fit for one terminal line: every field the CLI prints that came from a user, the API or the database goes
through :func:`printable`, so a newline, an escape sequence or 10,000 characters cannot split, recolour or swamp the
output (`accounts list`, `sync`, `status`)."""

from __future__ import annotations

import unicodedata

# Cc: control characters (\n, \r, ESC...); Cf: invisible format characters (bidi overrides); Zl/Zp: separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, max_len: int | None = None) -> str:
    """``value`` as one line of printable text: unsafe characters shown as escapes (\\n -> \\x0a), and cut to
    ``max_len`` characters with an ellipsis."""
    if value is None:
        return ""
    text = "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in str(value))
    if max_len is not None and len(text) > max_len:
        text = text[: max(0, max_len - 1)] + "…"
    return text

"""Text fit for one terminal line: every field the CLI prints that came from a user, the API or the database goes
through :func:`printable`, so a newline, an escape sequence or 10,000 characters cannot split, recolour or swamp the
output (`accounts list`, `sync`, `status`). Log records get the same treatment on stderr and in the log file
(logging_setup), and a JSON line has the same characters escaped the JSON way (:func:`json_line`)."""

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


def printable_lines(text: object) -> str:
    """``text`` with each line made :func:`printable` (no cut): its own line breaks kept, nothing else that could
    move the cursor, recolour or reorder the terminal (reports, tracebacks in the log file)."""
    if text is None:
        return ""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def json_line(line: str) -> str:
    """A JSON text (``json.dumps(..., ensure_ascii=False)`` already escapes control characters) with the format
    and separator characters escaped too (``\\u202e``): the same JSON value, but a terminal showing it cannot be
    reordered by a right-to-left override."""
    if not any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in line):
        return line
    import json

    return "".join(json.dumps(ch)[1:-1] if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in line)

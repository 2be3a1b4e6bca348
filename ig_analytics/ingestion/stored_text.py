"""Text from the API is other people's text: stored as it came, except what PostgreSQL cannot hold.

A NUL character (U+0000) is legal in JSON and in a caption, but PostgreSQL refuses it in ``text`` (``invalid byte
sequence for encoding "UTF8": 0x00``), which would fail the whole write of an account. It is removed (it carries
nothing a reader can see); every other character is kept as it came: emoji, every script, combining marks, and
control or bidirectional characters (escaped on output by ``terminal_text``, not in storage).
"""

from __future__ import annotations

NUL = "\x00"


def storable(value: str | None) -> str | None:
    """``value`` without NUL characters (None stays None)."""
    if value is None or NUL not in value:
        return value
    return value.replace(NUL, "")

"""Parsing of Graph API ``fields`` (with ``{subfields}`` and ``.modifier(args)`` expansions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ig_analytics.sandbox import errors

_MOD_RE = re.compile(r"\.(\w+)\(([^()]*)\)")


@dataclass
class FieldSpec:
    name: str
    modifiers: dict[str, list[str]] = field(default_factory=dict)
    subfields: list["FieldSpec"] | None = None


def _split_top(text: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise errors.param("(#100) Syntax error in fields parameter")
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise errors.param("(#100) Syntax error in fields parameter")
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


def parse_fields(text: str | None) -> list[FieldSpec]:
    if not text:
        return []
    specs = []
    for part in _split_top(text):
        sub = None
        if part.endswith("}") and "{" in part:
            i = part.index("{")
            sub = parse_fields(part[i + 1:-1])
            part = part[:i]
        m = re.match(r"^(\w+)", part)
        if not m:
            raise errors.param(f"(#100) Syntax error in fields parameter near '{part}'")
        name = m.group(1)
        rest = part[m.end():]
        mods = {}
        for mm in _MOD_RE.finditer(rest):
            mods[mm.group(1)] = [a.strip() for a in mm.group(2).split(",") if a.strip()]
        if _MOD_RE.sub("", rest).strip():
            raise errors.param(f"(#100) Syntax error in fields parameter near '{part}'")
        specs.append(FieldSpec(name, mods, sub))
    return specs

"""Tiny inline-SVG charts for the HTML reports: no JavaScript, no external files, every text escaped."""

from __future__ import annotations

from dataclasses import dataclass

from html import escape
from typing import Sequence

PALETTE = ("#2563eb", "#f97316", "#16a34a", "#db2777", "#7c3aed", "#0891b2")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _fmt(value: float) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def _integer_ticks(lo: float, hi: float, n: int = 5) -> list[int]:
    """About ``n`` whole-number ticks covering lo..hi, 1-2-5 steps (a count axis never shows 312,000.25)."""
    span = max(hi - lo, 1.0)
    raw = span / (n - 1)
    magnitude = 10 ** max(0, len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = int(lo // step * step)
    ticks = list(range(first, int(hi) + step, step))
    return ticks if len(ticks) >= 2 else [first, first + step]


def _tick(value: float, span: float) -> str:
    """Axis labels precise enough to differ: compact only when the span is large too."""
    if span >= 4000 and abs(value) >= 10_000:
        return _fmt(value)
    if span >= 4:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _empty(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><rect width="100%" height="100%" fill="#f8fafc" stroke="#cbd5e1"/>'
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#64748b" font-size="14">'
        f"{escape(title)}: no data for this period</text></svg>"
    )


@dataclass(frozen=True)
class _Plot:
    """Where a line/bar chart's values go: the plot area, the value range and the step between x labels."""

    left: float
    top: float
    plot_h: float
    lo: float
    hi: float
    step: float

    def x(self, i: float) -> float:
        return self.left + self.step * (i + 0.5)

    def y(self, v: float) -> float:
        return self.top + self.plot_h - (v - self.lo) / (self.hi - self.lo) * self.plot_h


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    width: int = 520,
    height: int = 240,
    bars: bool = False,
    integer: bool = False,
    markers: bool = False,
) -> str:
    """One chart with a shared x axis (``labels``, one point per label); a None value leaves a gap. ``bars``
    draws grouped bars; ``integer``: whole-number axis ticks (counts); ``markers``: a dot on every point."""
    values = [v for _, vs in series for v in vs if v is not None]
    if not labels or not values:
        return _empty(width, height, title)
    left, right, top, bottom = 56, 12, 22 + 14 * len(series), 36
    lo, hi = min(0.0, min(values)), max(values)
    if not bars and min(values) > 0:
        lo = min(values) - (hi - min(values)) * 0.1
    if hi == lo:
        hi = lo + 1.0
    ticks: list[float] = [lo + (hi - lo) * i / 4 for i in range(5)]
    if integer:
        ticks = _integer_ticks(lo, hi)
        lo, hi = float(ticks[0]), float(ticks[-1])
    plot = _Plot(left, top, height - top - bottom, lo, hi, (width - left - right) / max(len(labels), 1))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold" fill="#0f172a">{escape(title)}</text>',
    ]
    for v in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{plot.y(v):.1f}" y2="{plot.y(v):.1f}" stroke="#e2e8f0"/>'
            f'<text x="{left - 6}" y="{plot.y(v) + 4:.1f}" font-size="10" text-anchor="end" fill="#475569">'
            f"{f'{int(v):,}' if integer else _tick(v, hi - lo)}</text>"
        )
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text x="{plot.x(i):.1f}" y="{height - bottom + 14}" font-size="10" '
                         f'text-anchor="middle" fill="#475569">{escape(str(label))}</text>')
    for s, (name, vs) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        if bars:
            parts += _bars(plot, labels, name, vs, color, s, len(series))
        else:
            parts += _line(plot, labels, name, vs, color, markers)
        parts.append(
            f'<rect x="{width - right - 150}" y="{8 + 14 * s}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - right - 136}" y="{17 + 14 * s}" font-size="11" fill="#0f172a">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars(plot: _Plot, labels: Sequence[str], name: str, vs: Sequence[float | None], color: str, s: int,
          k: int) -> list[str]:
    """Series ``s`` of ``k`` as grouped bars, each with a tooltip."""
    bar_w = plot.step * 0.8 / k
    return [f'<rect x="{plot.left + plot.step * i + plot.step * 0.1 + bar_w * s:.1f}" '
            f'y="{min(plot.y(v), plot.y(0)):.1f}" width="{bar_w:.1f}" height="{abs(plot.y(0) - plot.y(v)):.1f}" '
            f'fill="{color}"><title>{escape(name)} {escape(str(labels[i]))}: {_fmt(v)}</title></rect>'
            for i, v in enumerate(vs) if v is not None]


def _line(plot: _Plot, labels: Sequence[str], name: str, vs: Sequence[float | None], color: str,
          markers: bool) -> list[str]:
    """A series as polylines broken at None (a lone point as a dot), with optional markers."""
    parts: list[str] = []
    segment: list[str] = []
    for i, v in enumerate(list(vs) + [None]):
        if v is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{" ".join(segment)}"/>')
            elif len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
            segment = []
            continue
        segment.append(f"{plot.x(i):.1f},{plot.y(v):.1f}")
        if markers:
            parts.append(f'<circle cx="{plot.x(i):.1f}" cy="{plot.y(v):.1f}" r="2.5" fill="{color}">'
                         f"<title>{escape(name)} {escape(str(labels[i]))}: {v:,.0f}</title></circle>")
    return parts


def hbar_chart(items: Sequence[tuple[str, float | None, str]], *, title: str, width: int = 520) -> str:
    """Horizontal bars: (label, value, annotation)."""
    items = [i for i in items if i[1] is not None]
    height = 40 + 28 * max(len(items), 1)
    if not items:
        return _empty(width, 120, title)
    left, right = 150, 90
    hi = max(v for _, v, _ in items) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="8" y="18" font-size="14" font-weight="bold" fill="#0f172a">{escape(title)}</text>',
    ]
    for i, (label, value, note) in enumerate(items):
        y0 = 32 + 28 * i
        w = max(1.0, (width - left - right) * value / hi)
        parts.append(
            f'<text x="{left - 8}" y="{y0 + 15}" font-size="12" text-anchor="end" fill="#0f172a">{escape(label)}</text>'
            f'<rect x="{left}" y="{y0}" width="{w:.1f}" height="20" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y0 + 15}" font-size="11" fill="#334155">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _heat_color(t: float) -> str:
    """0..1 -> light yellow .. dark red."""
    t = min(1.0, max(0.0, t))
    stops = [(255, 247, 188), (254, 196, 79), (236, 112, 20), (153, 52, 4)]
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    r, g, b = (round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f) for c in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(cells: Sequence[dict], *, title: str, width: int = 860, unit: str = "%",
            legend: str = "shrunk engagement rate by reach",
            footer: str = "Colour: shrunk engagement rate by reach (legend above); number: posts; faded: fewer posts "
                          "than the reliability minimum.") -> str:
    """Weekday (rows, ISO 1..7) x hour (columns 0..23). cells: weekday, hour, value, posts (optional), reliable.
    ``unit`` follows every value ("%", or "" for counts); ``legend`` names the colour scale."""
    cells = [c for c in cells if c.get("value") is not None]
    if not cells:
        return _empty(width, 120, title)
    left, top, cell_w, cell_h = 44, 40, (width - 60) / 24, 26
    height = int(top + 7 * cell_h + 58)
    values = [c["value"] for c in cells]
    lo, hi = min(values), max(values)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="8" y="18" font-size="14" font-weight="bold" fill="#0f172a">{escape(title)}</text>',
    ]
    for h in range(24):
        parts.append(
            f'<text x="{left + cell_w * (h + 0.5):.1f}" y="{top - 6}" font-size="10" text-anchor="middle" '
            f'fill="#475569">{h}</text>'
        )
    for d in range(7):
        parts.append(
            f'<text x="{left - 6}" y="{top + cell_h * d + 17}" font-size="11" text-anchor="end" '
            f'fill="#0f172a">{WEEKDAYS[d]}</text>'
        )
        for h in range(24):
            parts.append(
                f'<rect x="{left + cell_w * h:.1f}" y="{top + cell_h * d}" width="{cell_w - 1:.1f}" '
                f'height="{cell_h - 1}" fill="#f1f5f9"/>'
            )
    for c in cells:
        t = 0.5 if hi == lo else (c["value"] - lo) / (hi - lo)
        x0, y0 = left + cell_w * c["hour"], top + cell_h * (c["weekday"] - 1)
        opacity = "1" if c.get("reliable", True) else "0.45"
        parts.append(
            f'<rect x="{x0:.1f}" y="{y0}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" fill="{_heat_color(t)}" '
            f'fill-opacity="{opacity}"><title>{WEEKDAYS[c["weekday"] - 1]} {c["hour"]:02d}:00 - '
            f'{c["value"]:,.1f}{escape(unit)}'
            + (f' ({c["posts"]} post{"" if c["posts"] == 1 else "s"})' if c.get("posts") is not None else "")
            + "</title></rect>"
        )
        if c.get("posts"):
            parts.append(
                f'<text x="{x0 + cell_w / 2:.1f}" y="{y0 + 17}" font-size="10" text-anchor="middle" '
                f'fill="{"#ffffff" if t > 0.6 else "#0f172a"}">{c["posts"]}</text>'
            )
    # colour legend: the scale from the lowest to the highest slot value
    ly = top + 7 * cell_h + 8
    steps = 24
    for i in range(steps):
        parts.append(
            f'<rect x="{left + 70 + i * 8}" y="{ly}" width="8" height="12" fill="{_heat_color(i / (steps - 1))}"/>'
        )
    parts.append(
        f'<text x="{left + 64}" y="{ly + 10}" font-size="10" text-anchor="end" fill="#475569">'
        f'{lo:,.1f}{escape(unit)}</text>'
        f'<text x="{left + 76 + steps * 8}" y="{ly + 10}" font-size="10" fill="#475569">{hi:,.1f}{escape(unit)}</text>'
        f'<text x="{left + 130 + steps * 8}" y="{ly + 10}" font-size="10" fill="#475569">{escape(legend)}</text>'
    )
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="10" fill="#475569">{escape(footer)}</text></svg>')
    return "".join(parts)

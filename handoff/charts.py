"""Server-rendered inline SVG charts for the manager dashboard (no JavaScript, no CDN).

The charts are drawn in a narrow coordinate box (360 units wide, the width of a phone) and
scale with the page; legends are HTML so they wrap. Every label goes through `escape`:
residence names and intents come from the database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 360
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8c8c00", "#333333")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value` (an axis maximum)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _num(value: float) -> str:
    return f"{value:g}"


def _svg(height: float, label: str, body: list[str], width: float = WIDTH, css: str = "") -> Markup:
    # Safe: every text in `body` went through `escape`; numbers and colours are ours.
    return Markup(  # noqa: S704
        f'<svg class="chart{" " + css if css else ""}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def stacked_columns(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    height: float = 170,
    label_every: int = 7,
    width: float = WIDTH,
    css: str = "",
) -> Markup:
    """Vertical bars, one per label (a day), each stacked by series (a channel); `width`
    above the phone's 360 draws a wider box (for a wide screen) with text of the same size."""
    top, bottom, left, right = 14.0, 20.0, 26.0, 4.0
    plot_h = height - top - bottom
    n = max(1, len(labels))
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    vmax = nice_ceiling(max(totals, default=0))
    step = (width - left - right) / n
    bar_w = max(1.0, step * 0.78)
    body = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="grid" x1="{left}" y1="{top}" x2="{width - right}" y2="{top}"/>',
        f'<text class="tick" x="{left - 3}" y="{top + 4}" text-anchor="end">{_num(vmax)}</text>',
        f'<text class="tick" x="{left - 3}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(labels):
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h
        parts = []
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            h = plot_h * v / vmax
            y -= h
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
                f'fill="{escape(s.color)}"><title>{escape(day)} · {escape(s.name)} : '
                f"{_num(v)}</title></rect>"
            )
        body.extend(parts)
        if label_every and (i % label_every == 0 or i == len(labels) - 1) and len(labels) > 1:
            anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
            tx = x if anchor == "start" else x + bar_w if anchor == "end" else x + bar_w / 2
            body.append(
                f'<text class="tick" x="{tx:.2f}" y="{height - 5}" text-anchor="{anchor}">'
                f"{escape(day)}</text>"
            )
    return _svg(height, label, body, width, css)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    segments: Sequence[tuple[str, float, str]]  # (name, value, colour)

    @property
    def total(self) -> float:
        return sum(v for _, v, _ in self.segments)


def horizontal_bars(bars: Sequence[Bar], *, label: str, value_suffix: str = "") -> Markup:
    """One bar per row, the label above it (long residence names fit on a phone), the total
    at its end; a bar may be stacked in several coloured segments."""
    row_h, bar_h, left, right = 34.0, 13.0, 2.0, 44.0
    vmax = max((b.total for b in bars), default=0) or 1
    plot_w = WIDTH - left - right
    body: list[str] = []
    for i, b in enumerate(bars):
        y = i * row_h
        body.append(f'<text class="label" x="{left}" y="{y + 12}">{escape(b.label)}</text>')
        x = left
        for name, value, fill in b.segments:
            if value <= 0:
                continue
            w = plot_w * value / vmax
            body.append(
                f'<rect x="{x:.2f}" y="{y + 16}" width="{w:.2f}" height="{bar_h}" '
                f'fill="{escape(fill)}"><title>{escape(b.label)} · {escape(name)} : '
                f"{_num(value)}</title></rect>"
            )
            x += w
        body.append(
            f'<text class="value" x="{x + 4:.2f}" y="{y + 27}">'
            f"{escape(_num(b.total) + value_suffix)}</text>"
        )
    return _svg(max(row_h, len(bars) * row_h + 2), label, body)


def columns(items: Sequence[tuple[str, float, str]], *, label: str, height: float = 130) -> Markup:
    """A few vertical bars (scores 1-5, age buckets) with their value on top."""
    top, bottom, left, right = 16.0, 20.0, 4.0, 4.0
    plot_h = height - top - bottom
    n = max(1, len(items))
    step = (WIDTH - left - right) / n
    bar_w = step * 0.62
    vmax = max((v for _, v, _ in items), default=0) or 1
    body = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" '
        f'y2="{top + plot_h}"/>'
    ]
    for i, (name, value, fill) in enumerate(items):
        x = left + i * step + (step - bar_w) / 2
        h = plot_h * value / vmax
        y = top + plot_h - h
        cx = x + bar_w / 2
        body.append(
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
            f'fill="{escape(fill)}"><title>{escape(name)} : {_num(value)}</title></rect>'
            f'<text class="value" x="{cx:.2f}" y="{y - 4:.2f}" text-anchor="middle">'
            f"{_num(value)}</text>"
            f'<text class="tick" x="{cx:.2f}" y="{height - 5}" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    return _svg(height, label, body)


def share_bar(share: float | None, *, label: str, fill: str = "#009E73") -> Markup:
    """A 100 % bar with the share filled (the automation rate)."""
    height, bar_h = 22.0, 18.0
    w = (WIDTH - 4) * (share or 0)
    body = [
        f'<rect class="track" x="2" y="2" width="{WIDTH - 4}" height="{bar_h}" rx="4"/>',
        f'<rect x="2" y="2" width="{w:.2f}" height="{bar_h}" rx="4" fill="{escape(fill)}"/>',
    ]
    return _svg(height, label, body)


def line_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    label: str,
    shown: Sequence[str] | None = None,
    fill: str = "#0072B2",
    height: float = 150,
    width: float = WIDTH,
    vmax: float | None = None,
    css: str = "",
) -> Markup:
    """A line through one value per label (a week), each point with its value written above
    it (`shown`: the text for each, default the number); a missing value (None) breaks the
    line. At most a dozen points: every label and value stays readable at 360 px."""
    top, bottom, left, right = 18.0, 20.0, 18.0, 18.0
    plot_h = height - top - bottom
    n = max(1, len(labels))
    step = (width - left - right) / max(1, n - 1)
    present = [v for v in values if v is not None]
    top_value = vmax if vmax is not None else nice_ceiling(max(present, default=0))
    body = [
        f'<line class="axis" x1="{left - 8}" y1="{top + plot_h}" x2="{width - right + 8}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="grid" x1="{left - 8}" y1="{top}" x2="{width - right + 8}" y2="{top}"/>',
    ]
    points: list[tuple[float, float] | None] = []
    for i, v in enumerate(values):
        if v is None:
            points.append(None)
            continue
        x = left + i * step if n > 1 else width / 2
        y = top + plot_h - plot_h * min(v, top_value) / (top_value or 1)
        points.append((x, y))
    path: list[str] = []
    for p in points:
        if p is None:
            if len(path) > 1:
                body.append(
                    f'<polyline class="line" points="{" ".join(path)}" stroke="{escape(fill)}"/>'
                )
            path = []
        else:
            path.append(f"{p[0]:.2f},{p[1]:.2f}")
    if len(path) > 1:
        body.append(f'<polyline class="line" points="{" ".join(path)}" stroke="{escape(fill)}"/>')
    for i, name in enumerate(labels):
        x = left + i * step if n > 1 else width / 2
        p = points[i] if i < len(points) else None
        if p is not None:
            v = values[i]
            text = shown[i] if shown is not None else _num(round(v or 0, 1))
            body.append(
                f'<circle cx="{p[0]:.2f}" cy="{p[1]:.2f}" r="3" fill="{escape(fill)}">'
                f"<title>{escape(name)} : {escape(text)}</title></circle>"
                f'<text class="value" x="{p[0]:.2f}" y="{p[1] - 6:.2f}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
        body.append(
            f'<text class="tick" x="{x:.2f}" y="{height - 5}" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    return _svg(height, label, body, width, css)

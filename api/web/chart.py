"""The models page's chart: golden-set top-1 of each version over time, as inline SVG drawn
on the server (no JavaScript library)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Point:
    version: int
    at: dt.datetime
    top1: float  # 0..1


WIDTH, HEIGHT, PAD = 640, 240, 40


def top1_chart(points: list[Point]) -> str:
    """An SVG line chart of `points` (any order), or a short note when there is none."""
    if not points:
        return '<p class="muted">No version has golden-set figures yet.</p>'
    points = sorted(points, key=lambda p: (p.at, p.version))
    low = min(p.top1 for p in points)
    floor = max(0.0, min(low - 0.05, 0.9))  # zoom in: the versions differ by points
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds() or 1.0

    def x(p: Point) -> float:
        if len(points) == 1:
            return WIDTH / 2
        return PAD + (WIDTH - 2 * PAD) * (p.at - first).total_seconds() / span

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - floor) / ((1.0 - floor) or 1.0)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="golden-set top-1 per model version over time" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>',
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}"/>',
    ]
    for tick in (floor, (floor + 1.0) / 2, 1.0):
        parts.append(
            f'<text class="tick" x="{PAD - 4}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick * 100:.0f}%</text>'
        )
    line = " ".join(f"{x(p):.1f},{y(p.top1):.1f}" for p in points)
    parts.append(f'<polyline class="line" points="{line}"/>')
    for p in points:
        label = escape(f"v{p.version}: {p.top1 * 100:.2f}% ({p.at:%Y-%m-%d %H:%M})")
        parts.append(
            f'<circle class="dot" cx="{x(p):.1f}" cy="{y(p.top1):.1f}" r="4">'
            f"<title>{label}</title></circle>"
            f'<text class="point" x="{x(p):.1f}" y="{y(p.top1) - 8:.1f}" '
            f'text-anchor="middle">v{p.version}</text>'
        )
    parts.append(
        f'<text class="tick" x="{PAD}" y="{HEIGHT - PAD + 16}">{first:%Y-%m-%d %H:%M}</text>'
    )
    if len(points) > 1:
        parts.append(
            f'<text class="tick" x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" '
            f'text-anchor="end">{last:%Y-%m-%d %H:%M}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)

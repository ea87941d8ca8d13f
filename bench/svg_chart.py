"""A line chart as SVG, with no plotting library: the benchmarks' charts."""

from __future__ import annotations

import math
from pathlib import Path

COLOURS = ("#c0392b", "#2471a3", "#7d7d7d", "#27ae60", "#8e44ad", "#d68910")


def _nice_top(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    y_label: str,
    out: Path,
    markers: list[tuple[float, str]] = (),  # type: ignore[assignment]
    x_label: str = "seconds",
) -> None:
    """Draw each series as a polyline; `markers` are labelled vertical lines (events)."""
    width, height, left, right, top, bottom = 900, 340, 56, 16, 40, 36
    points = [p for values in series.values() for p in values]
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    y_max = _nice_top(max((y for _, y in points), default=1.0))

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return height - bottom - (height - top - bottom) * y / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="16" font-size="13">{title}</text>',
        f'<text x="4" y="{top - 6}">{y_label}</text>',
    ]
    for step in range(6):
        value = y_max * step / 5
        y = sy(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    for step in range(11):
        x = x_max * step / 10
        parts.append(
            f'<text x="{sx(x):.1f}" y="{height - bottom + 14}" text-anchor="middle">{x:.0f}</text>'
        )
    for x, label in markers:
        parts.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{height - bottom}" '
            f'stroke="#f0b27a" stroke-dasharray="3,3"/>'
            f'<text x="{sx(x) + 2:.1f}" y="{top + 10}" fill="#b9770e" font-size="9">{label}</text>'
        )
    for index, (label, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
        )
        parts.append(
            f'<text x="{width - right - 220}" y="{top + 14 * index}" fill="{colour}">{label}</text>'
        )
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle">{x_label}</text></svg>'
    )
    out.write_text("\n".join(parts))

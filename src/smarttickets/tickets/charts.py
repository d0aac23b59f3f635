"""Inline SVG charts for the check-in report: accessible, no JavaScript, no image files."""

from __future__ import annotations

from html import escape

PALETTE = ("#4f46e5", "#e11d74", "#15803d", "#a16207", "#0e7490", "#7c3aed", "#b91c1c")


def stacked_bars_svg(*, labels: list[str], series: dict[str, list[int]], title: str,
                     width: int = 720, height: int = 260) -> str:
    """Stacked bars, one bar per time bucket, one colour per gate, with a y axis and a
    legend. ``labels`` and every series have the same length."""
    n = len(labels)
    if n == 0:
        return ""
    left, right, top, bottom = 44, 12, 14, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(n)]
    peak = max(max(totals), 1)
    step = _nice_step(peak)
    y_max = step * -(-peak // step)
    bar_w = plot_w / n
    parts = [f'<svg class="checkin-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for tick in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * tick / y_max
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end" class="tick">{tick}</text>')
    label_every = max(1, -(-n // 8))
    for i in range(n):
        x = left + i * bar_w
        y = top + plot_h
        for index, (gate, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / y_max
            y -= h
            parts.append(f'<rect x="{x + bar_w * 0.12:.1f}" y="{y:.1f}" '
                         f'width="{bar_w * 0.76:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[index % len(PALETTE)]}">'
                         f"<title>{escape(gate)} {escape(labels[i])}: {value}</title></rect>")
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" '
                         f'text-anchor="middle" class="tick">{escape(labels[i])}</text>')
    x = left
    for index, gate in enumerate(series):
        parts.append(f'<rect x="{x}" y="{height - 16}" width="12" height="12" rx="2" '
                     f'fill="{PALETTE[index % len(PALETTE)]}"/><text x="{x + 16}" '
                     f'y="{height - 6}" class="legend-text">{escape(gate)}</text>')
        x += 28 + 8 * len(gate)
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return 10_000

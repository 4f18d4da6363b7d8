"""Small static SVG charts for the report: no JavaScript, no fonts, no network.

Pre-rendered SVG opens in any browser offline, survives a strict Content-Security-Policy
(no script at all) and keeps the report free of a charting dependency. Every text that
ends up in a chart is escaped; each bar carries a ``<title>`` tooltip with its exact count.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = {"bar": "#4C78A8", "good": "#54A24B", "bad": "#E45756", "mid": "#F2A93B", "grey": "#9D9D9D",
           "axis": "#444", "grid": "#e4e4e4"}
FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif"


def _e(x: object) -> str:
    return escape(str(x), quote=True)


def nice_ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least top."""
    if top <= 0:
        return [0, 1]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = math.ceil(top / step)
    return [round(i * step, 10) for i in range(count + 1)]


def _fmt(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _count(n: float) -> str:
    """Short counts for labels: 950, 10.7k, 3.2M."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:g}"


def bar_chart(bars: list[tuple[str, float]], *, title: str, x_label: str = "", y_label: str = "count",
              width: int = 560, height: int = 280, color: str = PALETTE["bar"],
              colors: list[str] | None = None) -> str:
    """Vertical bars (a histogram when labels are bin ranges)."""
    ml, mr, mt, mb = 56, 12, 34, 74
    pw, ph = width - ml - mr, height - mt - mb
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" style="{FONT}"><title>{_e(title)}</title>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    if not bars:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" fill="#777">'
                   'no data</text></svg>')
        return "".join(out)
    ticks = nice_ticks(max(v for _, v in bars))
    top = ticks[-1] or 1
    for t in ticks:
        y = mt + ph - ph * t / top
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{PALETTE["grid"]}"/>'
                   f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{PALETTE["axis"]}">'
                   f'{_fmt(t)}</text>')
    bw = min(pw / len(bars), 90.0)
    x0 = ml + (pw - bw * len(bars)) / 2
    every = max(1, math.ceil(len(bars) / 12))
    for i, (label, v) in enumerate(bars):
        h = ph * v / top
        x = x0 + i * bw
        fill = colors[i] if colors else color
        out.append(f'<rect class="bar" x="{x + 1:.1f}" y="{mt + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                   f'height="{h:.1f}" fill="{fill}"><title>{_e(label)}: {_e(_fmt(v))}</title></rect>')
        if i % every == 0:
            cx = x + bw / 2
            label = label if len(label) <= 18 else label[:17] + "…"
            out.append(f'<text x="{cx:.1f}" y="{mt + ph + 14}" text-anchor="end" font-size="10" '
                       f'fill="{PALETTE["axis"]}" transform="rotate(-35 {cx:.1f} {mt + ph + 14})">{_e(label)}</text>')
    out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="{PALETTE["axis"]}"/>')
    out.append(f'<text x="{ml + pw / 2}" y="{height - 4}" text-anchor="middle" font-size="12">{_e(x_label)}</text>')
    out.append(f'<text x="14" y="{mt + ph / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {mt + ph / 2})">{_e(y_label)}</text></svg>')
    return "".join(out)


def rate_chart(rows: list[tuple[str, float | None, int]], *, title: str, width: int = 560) -> str:
    """Horizontal bars of a rate in [0, 1] per label, with the number of items behind each."""
    rows = rows[:25]
    bar_h, ml, mr, mt = 22, 170, 100, 34
    height = mt + bar_h * max(len(rows), 1) + 30
    pw = width - ml - mr
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" style="{FONT}"><title>{_e(title)}</title>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = ml + pw * t
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt}" y2="{height - 24}" stroke="{PALETTE["grid"]}"/>'
                   f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="10" '
                   f'fill="{PALETTE["axis"]}">{int(t * 100)}%</text>')
    for i, (label, rate, n) in enumerate(rows):
        y = mt + i * bar_h
        short = label if len(label) <= 24 else label[:23] + "…"
        out.append(f'<text x="{ml - 6}" y="{y + bar_h * 0.68:.1f}" text-anchor="end" font-size="11">'
                   f'{_e(short)}<title>{_e(label)}</title></text>')
        if rate is None:
            out.append(f'<text x="{ml + 4}" y="{y + bar_h * 0.68:.1f}" font-size="11" fill="#777">ungraded '
                       f'(n={_e(_count(n))})</text>')
            continue
        w = pw * rate
        fill = PALETTE["good"] if rate >= 0.75 else PALETTE["mid"] if rate >= 0.25 else PALETTE["bad"]
        out.append(f'<rect class="bar" x="{ml}" y="{y + 3}" width="{max(w, 1):.1f}" height="{bar_h - 6}" '
                   f'fill="{fill}"><title>{_e(label)}: {rate:.1%} of {n}</title></rect>'
                   f'<text x="{ml + pw + 4}" y="{y + bar_h * 0.68:.1f}" font-size="11">{rate:.0%} '
                   f'<tspan fill="#777">n={_e(_count(n))}</tspan></text>')
    out.append("</svg>")
    return "".join(out)


def stacked_bars(rows: list[tuple[str, list[tuple[str, int, str]]]], *, title: str, width: int = 1100) -> str:
    """One 100% bar per row (label, parts of (name, count, colour)), with a shared legend."""
    label_w = 150 if len(rows) > 1 or rows and rows[0][0] else 0
    ml, mr, mt, bar_h = 12 + label_w, 12, 32, 36
    height = mt + len(rows) * (bar_h + 8) + 40
    pw = width - ml - mr
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" style="{FONT}"><title>{_e(title)}</title>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    legend: dict[str, str] = {}
    totals: dict[str, int] = {}
    for i, (label, parts) in enumerate(rows):
        y = mt + i * (bar_h + 8)
        if label_w:
            short = label if len(label) <= 22 else label[:21] + "…"
            out.append(f'<text x="{ml - 8}" y="{y + bar_h * 0.62:.1f}" text-anchor="end" font-size="12">'
                       f'{_e(short)}<title>{_e(label)}</title></text>')
        total = sum(c for _, c, _ in parts)
        x = float(ml)
        for name, c, colour in parts:
            legend.setdefault(name, colour)
            totals[name] = totals.get(name, 0) + c
            w = pw * c / total if total else 0
            if w > 0:
                out.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                           f'<title>{_e(label)} {_e(name)}: {c} ({c / total:.1%})</title></rect>')
                if w > 40:
                    out.append(f'<text x="{x + w / 2:.1f}" y="{y + bar_h * 0.65:.1f}" text-anchor="middle" '
                               f'font-size="12" fill="#fff" font-weight="600">{c / total:.0%}</text>')
            x += w
        if not total:
            out.append(f'<text x="{ml + 4}" y="{y + bar_h * 0.62:.1f}" font-size="12" fill="#777">no data</text>')
    ly = height - 22
    lx = float(ml)
    single = len(rows) == 1
    for name, colour in legend.items():
        text = f"{name}: {totals[name]}" if single else name
        out.append(f'<rect x="{lx:.0f}" y="{ly}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{lx + 16:.0f}" y="{ly + 10}" font-size="12">{_e(text)}</text>')
        lx += 28 + 7 * len(text)
    out.append("</svg>")
    return "".join(out)


def stacked_bar(parts: list[tuple[str, int, str]], *, title: str, width: int = 560) -> str:
    """One 100% bar split into parts (label, count, colour), with a legend."""
    return stacked_bars([("", parts)], title=title, width=width)

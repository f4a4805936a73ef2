"""A memory plan as an SVG picture: x = step, y = address, one rectangle per buffer.

Every rectangle carries a ``<title>`` tooltip (name, values, size, offset
range, steps, kind); names are written inside rectangles large enough to hold
them, so the picture stays readable with hundreds of buffers. A dashed line
marks the liveness lower bound and a step line shows the bytes live at each
step, so the gap between the two is visible. Several memory spaces are
stacked as panels. The file is self-contained (no scripts, no fonts to load).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from nnopt.compiler.report.plan_text import SpaceReport

WIDTH = 1200
PANEL_HEIGHT = 560
LEFT = 90
RIGHT = 30
TOP = 56
BOTTOM = 48
CHAR_WIDTH = 6.2
"""Approximate width of a character of the 10.5 px label font."""

PALETTE = {
    "activation": ("#4e79a7", "#76a1cf", "#2f5b88", "#9cc0e6"),
    "input": ("#59a14f", "#8cd17d", "#3b7a33"),
    "output": ("#e15759", "#ff9d9a", "#b53a3c"),
    "scratch": ("#f28e2b", "#ffbe7d", "#c46d14"),
    "variable": ("#b07aa1", "#d4a6c8", "#8a5a7e"),
    "overlay": ("#9c755f", "#c9a48c"),
    "constant": ("#bab0ac", "#d7cfcb"),
}


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def _nice_ticks(limit: float, count: int = 8) -> list[float]:
    """About `count` round tick values from 0 to `limit`."""
    if limit <= 0:
        return [0.0]
    raw = limit / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    ticks = []
    value = 0.0
    while value <= limit + 1e-9:
        ticks.append(value)
        value += step
    return ticks


def _byte_ticks(limit: float) -> list[float]:
    """Round tick values for addresses: whole B, KiB or MiB steps."""
    unit = 1 if limit < 2048 else 1024 if limit < 2 << 20 else 1 << 20
    return [t * unit for t in _nice_ticks(limit / unit)]


def _bytes_label(n: float) -> str:
    if n >= 2 << 20:
        return f"{n / (1 << 20):g} MiB"
    if n >= 2 << 10:
        return f"{n / 1024:g} KiB"
    return f"{n:.0f} B"


def _panel(rep: SpaceReport, y0: float, title: str) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = PANEL_HEIGHT - TOP - BOTTOM
    bs = rep.buffers
    s0 = min((b.lower for b in bs), default=0)
    s1 = max((b.upper for b in bs), default=1)
    span = max(s1 - s0, 1)
    top_bytes = max(rep.arena, rep.lower_bound, rep.capacity or 0, 1)

    def x(step: float) -> float:
        return LEFT + (step - s0) / span * plot_w

    def y(addr: float) -> float:
        return y0 + TOP + plot_h - addr / top_bytes * plot_h

    out: list[str] = [f'<g class="space" id="space-{_attr(rep.space)}">']
    status = "proven optimal" if rep.plan.proven_optimal else f"proven bound {rep.proven_lower_bound:,} B"
    out.append(
        f'<text x="{LEFT}" y="{y0 + 22}" class="title">{escape(title)}</text>'
        f'<text x="{LEFT}" y="{y0 + 40}" class="sub">space {escape(rep.space)}: arena {rep.arena:,} B, '
        f"lower bound {rep.lower_bound:,} B, overhead {100 * rep.plan.overhead:.2f} %, {escape(status)}, "
        f"{len(bs)} buffers, {escape(rep.plan.algorithm)}</text>"
    )
    out.append(f'<rect x="{LEFT}" y="{y0 + TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    for t in _byte_ticks(top_bytes):
        yy = y(t)
        out.append(
            f'<line x1="{LEFT - 4}" y1="{yy:.1f}" x2="{LEFT + plot_w}" y2="{yy:.1f}" class="grid"/>'
            f'<text x="{LEFT - 7}" y="{yy + 3.5:.1f}" class="tick" text-anchor="end">{_bytes_label(t)}</text>'
        )
    for t in _nice_ticks(span, 10):
        xx = x(s0 + t)
        out.append(
            f'<line x1="{xx:.1f}" y1="{y0 + TOP + plot_h}" x2="{xx:.1f}" y2="{y0 + TOP + plot_h + 4}" class="axis"/>'
            f'<text x="{xx:.1f}" y="{y0 + TOP + plot_h + 16}" class="tick" text-anchor="middle">{s0 + t:.0f}</text>'
        )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{y0 + PANEL_HEIGHT - 12}" class="axislabel" text-anchor="middle">step</text>'
        f'<text x="18" y="{y0 + TOP + plot_h / 2}" class="axislabel" text-anchor="middle" '
        f'transform="rotate(-90 18 {y0 + TOP + plot_h / 2})">address</text>'
    )
    order = sorted(range(len(bs)), key=lambda i: (bs[i].lower, rep.plan.offsets[i], bs[i].name))
    for k, i in enumerate(order):
        b = bs[i]
        off = rep.plan.offsets[i]
        colours = PALETTE.get(b.kind, PALETTE["activation"])
        fill = colours[k % len(colours)]
        rx, ry = x(b.lower), y(off + b.padded_size)
        rw, rh = max(x(b.upper) - rx, 0.5), max(y(off) - ry, 0.5)
        steps = f"step {b.first}" if b.first == b.last else f"steps {b.first}-{b.last}"
        label = rep.step_label(b.first)
        tip = (
            f"{b.name}: {b.size:,} B ({b.padded_size:,} padded) at {off:,}..{off + b.padded_size:,}, "
            f"{steps}, {b.kind}"
        )
        if b.values and list(b.values) != [b.name]:
            tip += f"\nholds: {', '.join(b.values)}"
        if label:
            tip += f"\nfirst step: {label}"
        out.append(
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{rx:.2f}" y="{ry:.2f}" width="{rw:.2f}" height="{rh:.2f}" fill="{fill}" class="buf"/>'
        )
        if rh >= 12 and rw >= 4 * CHAR_WIDTH:
            room = int((rw - 6) / CHAR_WIDTH)
            full = b.values[0] if b.values else b.name
            text = full if len(full) <= room else full[: max(room - 1, 1)] + "\u2026"
            out.append(
                f'<text x="{rx + 3:.2f}" y="{ry + min(rh / 2 + 4, 14):.2f}" class="label">{escape(text)}</text>'
            )
        out.append("</g>")
    # Live bytes per step (a step line) and the bounds.
    profile = rep.plan.problem.live_profile()
    if profile:
        points = []
        prev = 0
        for step, live in profile:
            points.append(f"{x(step):.2f},{y(prev):.2f}")
            points.append(f"{x(step):.2f},{y(live):.2f}")
            prev = live
        out.append(f'<polyline points="{" ".join(points)}" class="live"><title>bytes live</title></polyline>')
    yl = y(rep.lower_bound)
    out.append(
        f'<line x1="{LEFT}" y1="{yl:.2f}" x2="{LEFT + plot_w}" y2="{yl:.2f}" class="bound">'
        f"<title>liveness lower bound {rep.lower_bound:,} B</title></line>"
        f'<text x="{LEFT + plot_w - 4}" y="{yl - 4:.2f}" class="boundlabel" text-anchor="end">'
        f"lower bound {rep.lower_bound:,} B</text>"
    )
    if rep.arena != rep.lower_bound:
        ya = y(rep.arena)
        out.append(
            f'<line x1="{LEFT}" y1="{ya:.2f}" x2="{LEFT + plot_w}" y2="{ya:.2f}" class="arena"/>'
            f'<text x="{LEFT + 4}" y="{ya - 4:.2f}" class="boundlabel">arena {rep.arena:,} B</text>'
        )
    if rep.capacity is not None:
        yc = y(rep.capacity)
        out.append(
            f'<line x1="{LEFT}" y1="{yc:.2f}" x2="{LEFT + plot_w}" y2="{yc:.2f}" class="capacity"/>'
            f'<text x="{LEFT + plot_w / 2}" y="{yc - 4:.2f}" class="boundlabel">capacity {rep.capacity:,} B</text>'
        )
    out.append("</g>")
    return out


STYLE = """
text { font-family: 'DejaVu Sans', Verdana, sans-serif; }
.title { font-size: 15px; font-weight: bold; }
.sub { font-size: 12px; fill: #333; }
.tick { font-size: 10px; fill: #444; }
.axislabel { font-size: 12px; fill: #222; }
.label { font-size: 10.5px; fill: #fff; pointer-events: none; }
.frame { fill: #fafafa; stroke: #888; }
.grid { stroke: #e2e2e2; }
.axis { stroke: #888; }
.buf { stroke: #fff; stroke-width: 0.6; }
.buf:hover { stroke: #000; stroke-width: 1.5; }
.live { fill: none; stroke: #222; stroke-width: 1.2; opacity: 0.75; }
.bound { stroke: #d62728; stroke-width: 1.5; stroke-dasharray: 6 4; }
.arena { stroke: #555; stroke-width: 1; stroke-dasharray: 2 3; }
.capacity { stroke: #000; stroke-width: 2; }
.boundlabel { font-size: 11px; fill: #b00; }
"""


def render_svg(reports: Sequence[SpaceReport], title: str) -> str:
    """A standalone SVG document with one panel per memory space."""
    height = PANEL_HEIGHT * max(len(reports), 1)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    for k, rep in enumerate(reports):
        parts.extend(_panel(rep, k * PANEL_HEIGHT, title))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

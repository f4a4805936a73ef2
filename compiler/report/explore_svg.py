"""An SVG bar chart of a placement sweep: latency and energy of each configuration against a baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Bar:
    """One configuration: its label, whether it fits, its latency and energy relative to the baseline."""

    label: str
    fits: bool
    latency: float
    energy: float
    note: str = ""
    baseline: bool = False


LATENCY_COLOUR = "#3b6fb6"
ENERGY_COLOUR = "#e08a2c"


def render(bars: Sequence[Bar], title: str, baseline: str) -> str:
    """The chart: one row per configuration, two bars (latency, energy) relative to the baseline."""
    label_w = max([len(b.label) for b in bars] + [20]) * 7 + 20
    plot_w = 520
    row_h = 30
    top = 64
    height = top + row_h * len(bars) + 40
    width = label_w + plot_w + 90
    fitted = [v for b in bars if b.fits for v in (b.latency, b.energy)]
    limit = max([1.0, *fitted]) * 1.08

    def x(value: float) -> float:
        return label_w + plot_w * value / limit

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="40">relative to the baseline {escape(baseline)} (1.0 = same; shorter is better)</text>',
        f'<rect x="{label_w}" y="48" width="12" height="10" fill="{LATENCY_COLOUR}"/>'
        f'<text x="{label_w + 16}" y="57">latency</text>',
        f'<rect x="{label_w + 80}" y="48" width="12" height="10" fill="{ENERGY_COLOUR}"/>'
        f'<text x="{label_w + 96}" y="57">energy</text>',
    ]
    for i, b in enumerate(bars):
        y = top + i * row_h
        weight = ' font-weight="bold"' if b.baseline else ""
        out.append(f'<text x="10" y="{y + 18}"{weight}>{escape(b.label)}</text>')
        if not b.fits:
            out.append(
                f'<text x="{label_w + 4}" y="{y + 18}" fill="#a00">does not fit'
                f"{': ' + escape(b.note[:70]) if b.note else ''}</text>"
            )
            continue
        for k, (value, colour) in enumerate(((b.latency, LATENCY_COLOUR), (b.energy, ENERGY_COLOUR))):
            yy = y + 4 + k * 11
            out.append(
                f'<rect x="{label_w}" y="{yy}" width="{max(0.5, x(value) - label_w):.1f}" height="10" '
                f'fill="{colour}"><title>{escape(b.label)}: {value:.3f}x</title></rect>'
            )
            out.append(f'<text x="{x(value) + 4:.1f}" y="{yy + 9}" font-size="10">{value:.2f}x</text>')
    axis_y = top + row_h * len(bars) + 4
    out.append(
        f'<line x1="{x(1.0):.1f}" y1="{top - 4}" x2="{x(1.0):.1f}" y2="{axis_y}" stroke="#888" stroke-dasharray="4 3"/>'
    )
    out.append(f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{axis_y}" stroke="#444"/>')
    out.append(f'<text x="{x(1.0) - 8:.1f}" y="{axis_y + 14}">1.0</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"

"""``nnopt targets``: list the target presets, or describe one target.

::

    nnopt targets                       # every preset: processor, clock, cache, memories
    nnopt targets NAME|FILE.toml        # one target: processor and a table of its memories
    nnopt targets [...] --json FILE     # the same as JSON

A target file is validated as it is read: every mistake is one located
``file:line:col: error:`` line (schema: ``docs/targets.md``).
"""

from __future__ import annotations

import argparse

from nnopt.compiler.report.table import count, size, table, write_json
from nnopt.compiler.targets import Target, load_target, preset_names


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt targets``."""
    parser = subparsers.add_parser(
        "targets",
        help="list the target presets or describe one target",
        description="List the shipped target presets (processor and memories), or describe one "
        "target given by preset name or as a .toml file.",
    )
    parser.add_argument(
        "target", nargs="?", metavar="NAME|FILE.toml", help="describe this target instead of listing all"
    )
    parser.add_argument("--json", metavar="FILE", default=None, help="write the description(s) as JSON")


def _memories_cell(t: Target) -> str:
    parts = []
    for m in t.memories:
        flags = "" if m.volatile else ", NV"
        parts.append(f"{m.name} {size(m.capacity)} ({m.kind}{flags})")
    return "; ".join(parts)


def list_table(targets: list[Target]) -> str:
    """One line per target."""
    rows = [
        [
            t.name,
            t.processor.core,
            f"{t.processor.clock_hz / 1e6:g} MHz",
            size(t.processor.cache_bytes) if t.processor.cache_bytes else "-",
            "yes" if t.processor.dma else "no",
            _memories_cell(t),
        ]
        for t in targets
    ]
    return table(
        ["target", "core", "clock", "D-cache", "DMA", "memories (fastest first in detail view)"], rows
    )


def describe(t: Target) -> str:
    """A target in detail: processor facts and one line per memory, fastest first."""
    p = t.processor
    lines = [f"{t.name}: {t.description}" if t.description else t.name, f"  source: {t.source}"]
    rates = ", ".join(f"{k} {v:g}" for k, v in p.macs_per_cycle.items())
    lines.append(
        f"  processor: {p.core or '?'} at {p.clock_hz / 1e6:g} MHz; data cache "
        f"{size(p.cache_bytes) + f' ({p.cache_line} B lines)' if p.cache_bytes else 'none'}; "
        f"DMA {'yes' if p.dma else 'no'}"
    )
    lines.append(f"  MACs per cycle: {rates}")
    lines.append(f"  energy: {p.mac_energy * 1e12:g} pJ per MAC, base power {p.base_power * 1e3:g} mW")
    for note in t.notes:
        lines.append(f"  note: {note}")
    rows = []
    for m in t.by_speed():
        rows.append(
            [
                m.name,
                m.kind,
                size(m.capacity),
                "yes" if m.volatile else "no",
                f"{m.read_bandwidth / 1e6:,.0f}",
                f"{m.write_bandwidth / 1e6:,.0f}" if m.write_bandwidth else "-",
                f"{m.read_latency * 1e9:.3g}",
                f"{m.read_energy * 1e12:g}/{m.write_energy * 1e12:g}",
                count(m.leakage * 1e6),
                "yes" if m.power_off else "no",
                "yes" if m.cached else "no",
                f"{t.read_cost(m) * 1e9:.2f}",
                m.section,
                str(m.alignment),
            ]
        )
    lines.append("")
    lines.append(
        table(
            [
                "memory",
                "kind",
                "capacity",
                "volatile",
                "read MB/s",
                "write MB/s",
                "latency ns",
                "pJ/B r/w",
                "leak uW",
                "off",
                "cached",
                "ns/B",
                "section",
                "align",
            ],
            rows,
            right=(2, 4, 5, 6, 8, 11, 13),
        )
    )
    lines.append("(fastest first; ns/B: time to stream one byte, through the cache where there is one)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """List or describe targets."""
    if args.target:
        targets = [load_target(args.target)]
        print(describe(targets[0]))
    else:
        targets = [load_target(name) for name in preset_names()]
        print(list_table(targets))
        print(
            f"\n{len(targets)} presets; `nnopt targets NAME` describes one; --target NAME|FILE.toml elsewhere"
        )
    if args.json:
        data = [t.summary() for t in targets]
        write_json(args.json, data[0] if args.target else data)
        print(f"wrote {args.json}")
    return 0

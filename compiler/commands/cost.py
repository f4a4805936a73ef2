"""``nnopt cost``: per-layer MACs, parameters, bytes per memory, cycles and energy on a target.

::

    nnopt cost MODEL --target NAME|FILE.toml [--json FILE] [--pin NAME:MEMORY ...] [--weights MEMORY]
               [--activations MEMORY] [--no-overlays] [--objective latency|energy] [--schedule]
               [--no-merge] [--graph NAME]

A model whose buffers already have memory spaces (the output of
nn-assign-memspace) is priced as it is placed. Any other model first goes
through nn-bufferize, nn-merge-buffers, nn-assign-memspace and nn-plan-arena
(``--schedule`` adds nn-schedule), with the placement options given here.
The cost model is `nnopt.passes.analysis.cost` (documented in
``docs/targets.md``): roofline cycles per op, bytes per memory, dynamic
energy plus the core's base power and the leakage of the powered memories.
"""

from __future__ import annotations

import argparse

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.explore import Config, constants_per_memory, place_model, select_graph
from nnopt.compiler.frontends import load_model
from nnopt.compiler.report.table import count, joules, seconds, shorten, size, table, write_json
from nnopt.compiler.targets import Target, load_target
from nnopt.dialects import nn
from nnopt.passes.analysis.cost import OBJECTIVES, CostReport, graph_cost
from nnopt.passes.assign_memspace import parse_pins


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt cost``."""
    parser = subparsers.add_parser(
        "cost",
        help="estimate per-layer cycles, memory traffic and energy of a model on a target",
        description="Place a model on a target (unless it is placed already) and print the cost model per "
        "layer: MACs, parameters, bytes read and written per memory, compute and memory time, energy.",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.nn, .mlir, .tflite, .onnx)")
    parser.add_argument(
        "--target", required=True, metavar="NAME|FILE.toml", help="target preset or description"
    )
    parser.add_argument("--json", metavar="FILE", default=None, help="write the per-layer costs as JSON")
    parser.add_argument(
        "--pin", action="append", default=[], metavar="NAME:MEMORY", help="pin a value or buffer (repeatable)"
    )
    parser.add_argument("--weights", default="", metavar="MEMORY", help="put every constant in MEMORY")
    parser.add_argument("--activations", default="", metavar="MEMORY", help="put every buffer in MEMORY")
    parser.add_argument("--no-overlays", action="store_true", help="no weight overlays")
    parser.add_argument(
        "--objective", choices=OBJECTIVES, default="latency", help="what the placement minimises"
    )
    parser.add_argument("--schedule", action="store_true", help="run nn-schedule first")
    parser.add_argument("--no-merge", action="store_true", help="skip nn-merge-buffers")
    parser.add_argument("--graph", default=None, metavar="NAME", help="the nn.graph to price")


def _bytes_cell(per_space: dict[str, int]) -> str:
    return ", ".join(
        f"{space} {size(n)}" for space, n in sorted(per_space.items(), key=lambda kv: -kv[1]) if n
    )


def render(report: CostReport, target: Target, graph: nn.GraphOp, arenas: dict[str, int]) -> str:
    """The per-layer table and the totals."""
    rows = []
    for op in report.ops:
        rows.append(
            [
                str(op.step),
                shorten(op.name, 32),
                op.op_class + (" (async)" if op.async_copy else ""),
                count(op.macs) if op.macs else "-",
                count(op.params) if op.params else "-",
                _bytes_cell(op.reads) or "-",
                _bytes_cell(op.writes) or "-",
                seconds(op.compute_s) if op.compute_s else "-",
                seconds(op.memory_s) if op.memory_s else "-",
                seconds(op.seconds),
                op.bound,
                joules(op.energy_j),
            ]
        )
    lines = [
        table(
            [
                "step",
                "layer",
                "class",
                "MACs",
                "params",
                "reads",
                "writes",
                "compute",
                "memory",
                "time",
                "bound",
                "energy",
            ],
            rows,
            right=(0, 3, 4, 7, 8, 9, 11),
        )
    ]
    p = target.processor
    macs = sum(op.macs for op in report.ops)
    bound = {k: sum(1 for op in report.ops if op.bound == k) for k in ("compute", "memory", "copy")}
    lines.append("")
    lines.append(
        f"target {target.name}: {p.core or 'processor'} at {p.clock_hz / 1e6:g} MHz; {count(macs)} MACs; "
        f"{bound['compute']} compute-bound ops, {bound['memory']} memory-bound, {bound['copy']} copies"
    )
    lines.append(f"latency {seconds(report.latency_s)} ({report.latency_s * p.clock_hz:,.0f} cycles)")
    lines.append(
        f"energy {joules(report.energy_j)} = dynamic {joules(report.dynamic_j)} + core {joules(report.base_j)} "
        f"+ leakage {joules(report.leakage_j)} (powered: {', '.join(report.powered) or 'none'})"
    )
    consts = constants_per_memory(graph, target)
    mem_rows = []
    for m in target.by_speed():
        arena, held = arenas.get(m.name, 0), consts.get(m.name, 0)
        mem_rows.append(
            [
                m.name,
                size(arena) if arena else "-",
                size(held) if held else "-",
                size(m.capacity),
                f"{100 * (arena + held) / m.capacity:.1f}%",
                "on" if m.name in report.powered else "off",
            ]
        )
    lines.append("")
    lines.append(
        table(["memory", "arena", "constants", "capacity", "used", "power"], mem_rows, right=(1, 2, 3, 4))
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Price a model on a target and print the table."""
    target = load_target(args.target)
    module = load_model(args.model)
    graph = select_graph(module, args.graph)
    buffers = nn.graph_buffers(graph)
    placed_already = bool(buffers) and all(b.space.data for b in buffers.values())
    asked = args.pin or args.weights or args.activations or args.no_overlays or args.schedule
    if placed_already and not asked:
        for b in buffers.values():
            target.memory(b.space.data)
        report = graph_cost(graph, target)
        arenas = nn.graph_arenas(graph)
        how = "as placed in the file"
    else:
        if placed_already:
            raise UserError("the model is placed already; placement options apply to unplaced models")
        config = Config(
            args.weights, args.activations, not args.no_overlays, args.schedule, not args.no_merge
        )
        placed = place_model(
            module,
            target,
            config,
            graph_name=args.graph,
            pins=parse_pins(args.pin),
            objective=args.objective,
            target_spec=args.target,
            copy=False,
        )
        graph, report, arenas = placed.graph, placed.report, placed.arenas
        how = "placed by " + ", ".join(placed.pipeline)
    print(f"cost of @{graph.sym_name.data} ({args.model}) on {target.name}, {how}")
    print(render(report, target, graph, arenas))
    if args.json:
        data = report.as_dict()
        data["model"] = args.model
        data["graph"] = graph.sym_name.data
        data["arenas"] = arenas
        data["constants"] = constants_per_memory(graph, target)
        write_json(args.json, data)
        print(f"wrote {args.json}")
    return 0

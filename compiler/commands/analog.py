"""``nnopt analog``: map a model onto analog in-memory-compute tiles, simulate it, report.

::

    nnopt analog MODEL [--tiles PRESET|FILE.toml] [--set SECTION.KEY=VALUE ...] [--no-pack]
                       [--seeds N] [--samples N] [--input FILE] [--calibration N] [--mcu TARGET]
                       [--graph NAME] [--json FILE] [--svg FILE] [--export DIR]

The model's matrix ops are mapped with `nn-map-analog` (a model that is
already mapped, e.g. by ``nnopt-opt -p nn-map-analog``, keeps its mapping
unless ``--tiles``, ``--set`` or ``--no-pack`` is given). The report gives, per
layer, the matrix shape, blocks, tiles, cells, utilization, zero weights (idle
cells) and the SNR of the layer's output against the float reference; the
tile totals next to per-layer mapping; the output SNR and top-1 agreement
against the float and int8 references over ``--seeds`` chips (mean +- std); and
the energy of one inference next to the digital estimate of the MCU cost model.
``--json``, ``--svg`` (the tile grid) and ``--export`` (per-tile conductance
targets, ``conductances.npz`` + ``tiles.json``) write the same for machines.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from typing import Any

import numpy as np

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.compiler.targets.tiles import TileTarget, load_tiles, tiles_from_data

DEFAULT_TILES = "membrain-like"
DEFAULT_MCU = "stm32f746"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt analog``."""
    parser = subparsers.add_parser(
        "analog",
        help="map a model onto analog tiles, simulate it, report tiles, accuracy and energy",
        description="Map the matrix ops of a model onto analog in-memory-compute tiles, simulate the mapped "
        "model with converter quantization, noise, drift and faults over several seeds, and report tile "
        "usage, accuracy against the float and int8 references, and energy.",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.nn, .mlir, .tflite, .onnx)")
    parser.add_argument(
        "--tiles",
        default=None,
        metavar="PRESET|FILE",
        help="tile target: membrain-like (default), ideal, aihwkit-inference, or a .toml file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="change one value of the tile target (TOML syntax), e.g. --set dac.bits=6 --set noise.programming=0.02",
    )
    parser.add_argument(
        "--no-pack", action="store_true", help="per-layer mapping: one tile per block, no sharing"
    )
    parser.add_argument(
        "--seeds", type=int, default=5, metavar="N", help="Monte Carlo chips (default 5; 0: mapping only)"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=16,
        metavar="N",
        help="random inputs per seed when --input is not given (16)",
    )
    parser.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="inputs: FILE.npy (single-input model) or FILE.npz by input name; an array with one more leading "
        "axis than the input holds several samples",
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=32,
        metavar="N",
        help="random samples that set calibrated converter ranges (32; --input: its samples are used)",
    )
    parser.add_argument(
        "--mcu",
        default=DEFAULT_MCU,
        metavar="TARGET",
        help=f"memory target whose cost model prices the digital parts ({DEFAULT_MCU}; 'none' to skip)",
    )
    parser.add_argument(
        "--graph", default=None, metavar="NAME", help="the nn.graph to use (when there are several)"
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--svg", default=None, metavar="FILE", help="draw the tile grid occupancy")
    parser.add_argument("--export", default=None, metavar="DIR", help="write per-tile conductance targets")


def apply_overrides(tiles: TileTarget, overrides: list[str]) -> TileTarget:
    """The target with ``SECTION.KEY=VALUE`` changes applied (TOML values, validated again)."""
    if not overrides:
        return tiles
    data: dict[str, Any] = tiles.to_data()
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, leaf = key.strip().partition(".")
        if not sep or not dot or not leaf:
            raise UserError(f"--set '{item}': expected SECTION.KEY=VALUE, e.g. dac.bits=6")
        if section not in data or not isinstance(data[section], dict):
            known = ", ".join(k for k, v in data.items() if isinstance(v, dict))
            raise UserError(f"--set '{item}': unknown section '{section}' (sections: {known})")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()  # a bare word: a string
        data[section][leaf] = parsed
    return tiles_from_data(data, f"{tiles.name} with --set", default_name=tiles.name)


def _load_inputs(path: str, specs: list[Any]) -> list[dict[str, np.ndarray]]:
    from nnopt.compiler.commands.run import _load_array_file, convert_input

    loaded = _load_array_file(path)
    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise UserError(f"--input '{path}': the model has {len(specs)} inputs; give a .npz by input name")
        loaded = {specs[0].name: loaded}
    missing = [s.name for s in specs if s.name not in loaded]
    if missing:
        raise UserError(f"--input '{path}' lacks input(s) {', '.join(missing)}")
    counts: set[int] = set()
    batches: dict[str, list[np.ndarray]] = {}
    for spec in specs:
        array = loaded[spec.name]
        if tuple(array.shape) == spec.shape:
            arrays = [array]
        elif array.ndim == len(spec.shape) + 1 and tuple(array.shape[1:]) == spec.shape:
            arrays = list(array)
        else:
            raise UserError(
                f"--input '{path}': '{spec.name}' has shape {list(array.shape)}, expected {list(spec.shape)} "
                f"or [N, {', '.join(str(d) for d in spec.shape)}]"
            )
        batches[spec.name] = [convert_input(spec, a, path) for a in arrays]
        counts.add(len(arrays))
    if len(counts) != 1:
        raise UserError(f"--input '{path}': the inputs hold different numbers of samples ({sorted(counts)})")
    n = counts.pop()
    if n == 0:
        raise UserError(f"--input '{path}' holds no samples")
    return [{name: arrays[i] for name, arrays in batches.items()} for i in range(n)]


def _mcu_cost(graph: Any, mapped_ops: set[Any], target_name: str) -> tuple[dict[str, Any] | None, float, str]:
    """The MCU cost model's whole-model estimate, and the dynamic energy of the ops left digital."""
    if target_name == "none":
        return None, 0.0, "not priced (--mcu none)"
    from nnopt.compiler.targets import load_target
    from nnopt.passes.analysis.cost import graph_cost
    from nnopt.passes.analysis.lifetimes import executed_ops

    target = load_target(target_name)
    report = graph_cost(graph, target)
    ops = executed_ops(graph)
    digital = sum(c.energy_j for c in report.ops if 0 <= c.step < len(ops) and ops[c.step] not in mapped_ops)
    mcu = {
        "target": target.name,
        "energy_j": report.energy_j,
        "dynamic_j": report.dynamic_j,
        "latency_us": report.latency_s * 1e6,
        "macs": sum(c.macs for c in report.ops),
    }
    return mcu, digital, f"unmapped ops on {target.name} (cost model, dynamic)"


def run(args: argparse.Namespace) -> int | None:
    """Run ``nnopt analog``."""
    from nnopt.backends.analog.evaluate import analog_energy, evaluate
    from nnopt.backends.analog.ir import graph_target, is_mapped
    from nnopt.backends.analog.report import export_targets, render_svg, render_text, report_json
    from nnopt.backends.analog.simulator import AnalogModel
    from nnopt.compiler.commands.run import input_specs, random_input, select_graph
    from nnopt.compiler.report.table import write_json, write_text
    from nnopt.passes.map_analog import map_graph

    for flag, value, low in (
        ("--seeds", args.seeds, 0),
        ("--samples", args.samples, 1),
        ("--calibration", args.calibration, 1),
    ):
        if value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    for flag, path in (("--json", args.json), ("--svg", args.svg)):
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UserError(
                f"{flag} '{path}': folder '{os.path.dirname(os.path.abspath(path))}' does not exist"
            )
    module = load_model(args.model)
    graph = select_graph(module, args.graph)
    mapped = is_mapped(graph)
    recorded = graph_target(graph) if mapped else None
    base = load_tiles(args.tiles or DEFAULT_TILES) if args.tiles is not None or recorded is None else recorded
    if not mapped or args.tiles is not None or args.overrides or args.no_pack:
        map_graph(graph, apply_overrides(base, args.overrides), pack=not args.no_pack)
    model = AnalogModel(graph)

    specs = input_specs(graph)
    if args.input is not None:
        samples = _load_inputs(args.input, specs)
        calibration = samples
        origin = f"{args.input} (also used to calibrate the converters)"
    else:
        rng = np.random.default_rng(0)
        samples = [{s.name: random_input(s, rng) for s in specs} for _ in range(args.samples)]
        crng = np.random.default_rng(1)
        calibration = [{s.name: random_input(s, crng) for s in specs} for _ in range(args.calibration)]
        origin = (
            "random (seed 0; quantized inputs uniform over the storage range, float inputs N(0, 1)); "
            "give --input for representative data"
        )
    if model.needs_calibration:
        model.calibrate(calibration)
    ev = evaluate(model, samples, args.seeds)

    mapped_ops = {m.op for m in model.matrices}
    mcu, digital_j, note = _mcu_cost(graph, mapped_ops, args.mcu)
    energy = analog_energy(model, ev.counters, digital_j, note) if args.seeds else None
    print(render_text(model, ev, args.model, energy, mcu, origin), end="")
    if args.json is not None:
        write_json(args.json, report_json(model, ev, args.model, energy, mcu))
        print(f"wrote {args.json}")
    if args.svg is not None:
        write_text(args.svg, render_svg(model, ev, f"{os.path.basename(args.model)} on {model.tiles.name}"))
        print(f"wrote {args.svg}")
    if args.export is not None:
        npz, js = export_targets(model, args.export)
        print(f"wrote {npz} and {js}")
    return 0

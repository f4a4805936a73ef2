"""The analog report: text tables, JSON, an SVG of the tile grid, and conductance targets per tile."""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnopt.backends.analog.evaluate import EnergyLine, Evaluation, Stat
from nnopt.backends.analog.simulator import AnalogModel
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.report.table import count, joules, shorten, table

NAME_WIDTH = 28


def _pct(a: float, b: float) -> str:
    return f"{100.0 * a / b:.1f}" if b else "-"


def _tiles_text(tiles: Sequence[int]) -> str:
    parts: list[str] = []
    start = prev = None
    for t in tiles:
        if start is None:
            start = prev = t
        elif prev is not None and t == prev + 1:
            prev = t
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = t
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def layer_table(model: AnalogModel, ev: Evaluation) -> str:
    """Per mapped layer: matrix, blocks, tiles, cells, utilization, zero weights, SNR."""
    tiles = model.tiles
    cell = tiles.rows * tiles.cols
    cpw = tiles.cells_per_weight
    rows: list[list[str]] = []
    for u in ev.layers:
        matrix = f"{u.rows}x{u.cols}" + (f" /{u.groups}" if u.groups > 1 else "")
        snr = ev.layer_snr.get(u.name)
        idle = u.zero_weights * cpw if tiles.encoding == "differential" else 0
        rows.append(
            [
                shorten(u.name, NAME_WIDTH),
                u.op.replace("_conv2d", "").replace("fully_connected", "fc"),
                matrix,
                str(u.blocks),
                f"{len(u.tiles)} [{_tiles_text(u.tiles)}]",
                f"{u.weights * cpw:,}",
                _pct(u.weights, cell * len(u.tiles)),
                f"{u.area / cell:.2f}",
                _pct(u.zero_weights, u.area),
                f"{idle:,}",
                str(u.row_splits),
                snr.text() if snr is not None else "-",
            ]
        )
    weights = sum(u.weights for u in ev.layers)
    area = sum(u.area for u in ev.layers)
    zero = sum(u.zero_weights for u in ev.layers)
    idle = zero * cpw if tiles.encoding == "differential" else 0
    rows.append(
        [
            "total",
            "",
            "",
            str(sum(u.blocks for u in ev.layers)),
            str(ev.tiles),
            f"{weights * cpw:,}",
            _pct(weights, cell * ev.tiles),
            f"{area / cell:.2f}",
            _pct(zero, area),
            f"{idle:,}",
            "",
            ev.snr_float.text() if ev.seeds else "-",
        ]
    )
    headers = [
        "layer",
        "op",
        "matrix",
        "blocks",
        "tiles [ids]",
        "cells",
        "util %",
        "area (tiles)",
        "zero w %",
        "idle cells",
        "row splits",
        "SNR vs float (dB)",
    ]
    return table(headers, rows, right=[3, 5, 6, 7, 8, 9, 10, 11])


def accuracy_lines(ev: Evaluation) -> list[str]:
    """Output SNR and top-1 agreement against the references."""
    if not ev.seeds:
        return []
    model_name = "int8 model" if ev.quantized else "model"
    rows = [
        [
            "float" + (" (dequantized twin)" if ev.quantized else ""),
            ev.snr_float.text(unit=" dB"),
            ev.agree_float.text(3) if ev.classifier else "-",
        ]
    ]
    if ev.quantized:
        rows.append(
            [
                f"{model_name} (numpy interpreter)",
                ev.snr_model.text(unit=" dB"),
                ev.agree_model.text(3) if ev.classifier else "-",
            ]
        )
    out = [table(["analog vs", "output SNR", "top-1 agreement"], rows, right=[1, 2])]
    if ev.model_vs_float_snr is not None:
        agree = (
            f", top-1 agreement {ev.model_vs_float_agree:.3f}" if ev.model_vs_float_agree is not None else ""
        )
        out.append(f"for comparison, {model_name} vs float: SNR {_db(ev.model_vs_float_snr)}{agree}")
    c = ev.counters
    if c.outputs:
        out.append(f"ADC outputs at full scale (clipped): {_pct(c.clipped, c.outputs)} %")
    if ev.stuck_cells:
        out.append(f"stuck cells: {ev.stuck_cells / max(ev.seeds, 1):,.0f} per chip")
    return out


def _db(v: float) -> str:
    return "inf" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def energy_table(lines: Sequence[EnergyLine]) -> str:
    """The per-inference energy estimate."""
    rows = [
        [
            x.what,
            count(x.count) if x.unit_j is not None else "",
            f"{x.unit_j * 1e12:.3g} pJ" if x.unit_j is not None else "",
            joules(x.joules),
            x.note,
        ]
        for x in lines
    ]
    return table(["event", "per inference", "each", "energy", "note"], rows, right=[1, 2, 3])


def render_text(
    model: AnalogModel,
    ev: Evaluation,
    source: str,
    energy: Sequence[EnergyLine] | None,
    mcu: dict[str, Any] | None,
    inputs: str = "",
) -> str:
    """The whole report (`inputs` says where the evaluation inputs came from)."""
    t = model.tiles
    out = [f"analog mapping of @{model.graph.sym_name.data} ({source}) on tile target '{t.name}'"]
    out.extend("  " + line for line in t.summary_lines())
    for note in t.notes:
        out.append(f"  note: {note}")
    grids = math.ceil(ev.tiles / t.tiles_per_grid) if t.tiles_per_grid else 0
    saving = 1.0 - ev.tiles / ev.per_layer_tiles if ev.per_layer_tiles else 0.0
    how = "packed" if ev.packed else "per-layer (one tile per block)"
    out.append(
        f"tiles: {ev.tiles} {how}; per-layer mapping needs {ev.per_layer_tiles} "
        f"({100 * saving:.0f} % fewer with packing); {grids} grid(s) of {t.grid_rows}x{t.grid_cols}"
    )
    out.append("")
    out.append(layer_table(model, ev))
    if ev.digital:
        out.append("")
        out.append("matrix ops left digital:")
        out.extend(f"  {shorten(n, NAME_WIDTH)} ({op}): {why}" for n, op, why in ev.digital)
    if ev.seeds:
        out.append("")
        out.append(f"accuracy over {ev.seeds} seed(s) x {ev.samples} input(s), mean +- std:")
        if inputs:
            out.append(f"  inputs: {inputs}")
        out.append(
            f"  compared: {', '.join(ev.compared)} (graph outputs; the logits when an output is a softmax)"
        )
        out.extend(accuracy_lines(ev))
    if energy is not None:
        out.append("")
        out.append("energy of one inference (estimate):")
        out.append(energy_table(energy))
        if mcu is not None:
            out.append(
                f"digital estimate on {mcu['target']} (cost model, whole model): {joules(mcu['energy_j'])} "
                f"({joules(mcu['dynamic_j'])} dynamic), {mcu['latency_us']:.0f} us, {count(mcu['macs'])} MACs"
            )
    return "\n".join(out) + "\n"


def report_json(
    model: AnalogModel,
    ev: Evaluation,
    source: str,
    energy: Sequence[EnergyLine] | None,
    mcu: dict[str, Any] | None,
) -> dict[str, Any]:
    """The report for machines."""
    t = model.tiles
    cpw = t.cells_per_weight
    return {
        "model": source,
        "graph": model.graph.sym_name.data,
        "target": t.to_data(),
        "tiles": ev.tiles,
        "per_layer_tiles": ev.per_layer_tiles,
        "packed": ev.packed,
        "grids": math.ceil(ev.tiles / t.tiles_per_grid),
        "layers": [
            {
                "name": u.name,
                "op": u.op,
                "rows": u.rows,
                "cols": u.cols,
                "groups": u.groups,
                "weights": u.weights,
                "cells": u.weights * cpw,
                "blocks": u.blocks,
                "tiles": u.tiles,
                "area_tiles": u.area / (t.rows * t.cols),
                "utilization": u.weights / (t.rows * t.cols * len(u.tiles)),
                "zero_weights": u.zero_weights,
                "idle_cells": u.zero_weights * cpw if t.encoding == "differential" else 0,
                "row_splits": u.row_splits,
                "snr_vs_float_db": ev.layer_snr[u.name].json() if u.name in ev.layer_snr else None,
            }
            for u in ev.layers
        ],
        "blocks": [
            {
                "layer": model.layer_name(b.op),
                "tile": b.tile,
                "tile_rows": [b.row, b.row + b.rows],
                "tile_cols": [b.col, b.col + b.cols],
                "matrix_rows": [b.matrix_row, b.matrix_row + b.rows],
                "matrix_cols": [b.matrix_col, b.matrix_col + b.cols],
            }
            for b in model.blocks
        ],
        "digital": [{"name": n, "op": op, "reason": why} for n, op, why in ev.digital],
        "accuracy": None
        if not ev.seeds
        else {
            "seeds": ev.seeds,
            "samples": ev.samples,
            "quantized_model": ev.quantized,
            "snr_vs_float_db": ev.snr_float.json(),
            "snr_vs_model_db": ev.snr_model.json(),
            "top1_vs_float": ev.agree_float.json() if ev.classifier else None,
            "top1_vs_model": ev.agree_model.json() if ev.classifier else None,
            "model_vs_float_snr_db": ev.model_vs_float_snr,
            "model_vs_float_top1": ev.model_vs_float_agree,
            "adc_clipped_fraction": ev.counters.clipped / ev.counters.outputs if ev.counters.outputs else 0.0,
            "stuck_cells_per_chip": ev.stuck_cells / max(ev.seeds, 1),
        },
        "energy": None
        if energy is None
        else {
            "lines": [
                {
                    "what": x.what,
                    "per_inference": x.count,
                    "each_j": x.unit_j,
                    "joules": x.joules,
                    "note": x.note,
                }
                for x in energy
            ],
            "total_j": energy[-1].joules,
            "mcu": mcu,
        },
    }


def stat_json(s: Stat) -> dict[str, Any]:
    """A `Stat` for JSON."""
    return s.json()


# --------------------------------------------------------------------------
# SVG of the tile grid
# --------------------------------------------------------------------------

_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip


def render_svg(model: AnalogModel, ev: Evaluation, title: str) -> str:
    """The tile grid(s): every tile a square, every block a rectangle coloured by layer, with tooltips."""
    t = model.tiles
    size = 150.0
    gap = 14.0
    scale_r = size / max(t.rows, t.cols)
    tw, th = t.cols * scale_r, t.rows * scale_r
    per_grid = t.tiles_per_grid
    grids = max(1, math.ceil(ev.tiles / per_grid))
    grid_w = t.grid_cols * (tw + gap)
    grid_h = t.grid_rows * (th + gap + 12)
    legend_h = 18 * (len(ev.layers) + 1)
    width = max(grid_w * min(grids, 2) + 40, 480)
    height = 50 + math.ceil(grids / 2) * (grid_h + 30) + legend_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="10" y="36">{ev.tiles} tiles of {t.rows}x{t.cols} weights '
        f"({'packed' if ev.packed else 'per layer'}; per-layer mapping: {ev.per_layer_tiles}); "
        f"grid {t.grid_rows}x{t.grid_cols}</text>",
    ]
    for tile in range(grids * per_grid):
        g, k = divmod(tile, per_grid)
        gr, gc = divmod(k, t.grid_cols)
        ox = 10 + (g % 2) * (grid_w + 20) + gc * (tw + gap)
        oy = 50 + (g // 2) * (grid_h + 30) + gr * (th + gap + 12)
        used = tile < ev.tiles
        fill = "#f7f7f7" if used else "#ffffff"
        dash = "" if used else ' stroke-dasharray="3,3"'
        parts.append(
            f'<rect x="{ox:.1f}" y="{oy + 12:.1f}" width="{tw:.1f}" height="{th:.1f}" fill="{fill}" '
            f'stroke="#555"{dash}><title>tile {tile} (grid {g}, row {gr}, col {gc})</title></rect>'
        )
        parts.append(f'<text x="{ox:.1f}" y="{oy + 9:.1f}">tile {tile}</text>')
        for b in (b for b in model.blocks if b.tile == tile):
            colour = _COLOURS[b.op % len(_COLOURS)]
            name = model.layer_name(b.op)
            tip = (
                f"{name}: rows {b.matrix_row}:{b.matrix_row + b.rows}, cols {b.matrix_col}:{b.matrix_col + b.cols} "
                f"at word line {b.row}, column {b.col}; {b.zero_weights:,} zero weights"
            )
            parts.append(
                f'<rect x="{ox + b.col * scale_r:.2f}" y="{oy + 12 + b.row * scale_r:.2f}" '
                f'width="{max(b.cols * scale_r, 0.5):.2f}" height="{max(b.rows * scale_r, 0.5):.2f}" '
                f'fill="{colour}" fill-opacity="0.8" stroke="#222" stroke-width="0.3">'
                f"<title>{html.escape(tip)}</title></rect>"
            )
    y = 50 + math.ceil(grids / 2) * (grid_h + 30)
    for u in ev.layers:
        colour = _COLOURS[u.index % len(_COLOURS)]
        parts.append(f'<rect x="10" y="{y:.0f}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="28" y="{y + 10:.0f}">{html.escape(shorten(u.name, 60))}: {u.rows}x{u.cols}'
            f"{f' in {u.groups} groups' if u.groups > 1 else ''}, tiles {_tiles_text(u.tiles)}</text>"
        )
        y += 18
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------
# Conductance targets
# --------------------------------------------------------------------------

EXPORT_NPZ = "conductances.npz"
EXPORT_JSON = "tiles.json"


def export_targets(model: AnalogModel, folder: str) -> tuple[str, str]:
    """Write per-tile conductance targets (``conductances.npz``) and the map (``tiles.json``) to `folder`.

    Arrays per tile ``t`` (``[rows, cols]``, float32, in units of g_max, erased
    cells 0): ``tile<t>_g_pos`` and ``tile<t>_g_neg`` for differential pairs, or
    ``tile<t>_g`` for offset cells; ``tile<t>_level`` (int16 weight levels, when the
    cells have levels) and ``tile<t>_used`` (cells holding a block). The JSON map
    lists every block with its layer, its place on the tile, its place in the
    matrix, the real weight of one g_max unit per column (``column_scale``) and
    the converter full scales. A weight is ``column_scale[c] * (g_pos - g_neg)``
    (offset: ``column_scale[c] * (2 g - 1)``).
    """
    t = model.tiles
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UserError(f"--export '{folder}': folder '{parent}' does not exist")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"--export '{folder}' exists and is not a directory")
    if os.path.isdir(folder) and set(os.listdir(folder)) - {EXPORT_NPZ, EXPORT_JSON}:
        raise UserError(f"--export '{folder}' holds other files; choose a new or empty folder")
    arrays: dict[str, np.ndarray] = {}
    tiles_json: list[dict[str, Any]] = []
    for tile in range(model.tile_count):
        if t.encoding == "differential":
            pos = np.zeros((t.rows, t.cols), dtype=np.float32)
            neg = np.zeros((t.rows, t.cols), dtype=np.float32)
        else:
            g = np.zeros((t.rows, t.cols), dtype=np.float32)
        level = np.zeros((t.rows, t.cols), dtype=np.int16)
        used = np.zeros((t.rows, t.cols), dtype=bool)
        blocks_json: list[dict[str, Any]] = []
        for b in (b for b in model.blocks if b.tile == tile):
            rs, cs = slice(b.row, b.row + b.rows), slice(b.col, b.col + b.cols)
            if t.encoding == "differential":
                pos[rs, cs] = np.maximum(b.target, 0.0)
                neg[rs, cs] = np.maximum(-b.target, 0.0)
            else:
                g[rs, cs] = (b.target + 1.0) / 2.0
            if t.levels is not None:
                level[rs, cs] = np.round(b.target * t.levels).astype(np.int16)
            used[rs, cs] = True
            blocks_json.append(
                {
                    "layer": model.layer_name(b.op),
                    "tile_rows": [b.row, b.row + b.rows],
                    "tile_cols": [b.col, b.col + b.cols],
                    "matrix_rows": [b.matrix_row, b.matrix_row + b.rows],
                    "matrix_cols": [b.matrix_col, b.matrix_col + b.cols],
                    "column_scale": [float(v) for v in b.scale],
                    "dac_full_scale": b.input_scale
                    if t.dac.range == "calibrated"
                    else "abs-max per input vector",
                    "adc_full_scale": None if b.adc_bound is None else [float(v) for v in b.adc_bound],
                }
            )
        if t.encoding == "differential":
            arrays[f"tile{tile}_g_pos"], arrays[f"tile{tile}_g_neg"] = pos, neg
        else:
            arrays[f"tile{tile}_g"] = g
        if t.levels is not None:
            arrays[f"tile{tile}_level"] = level
        arrays[f"tile{tile}_used"] = used
        g_, r_ = divmod(tile, t.tiles_per_grid)
        tiles_json.append(
            {
                "tile": tile,
                "grid": g_,
                "grid_row": r_ // t.grid_cols,
                "grid_col": r_ % t.grid_cols,
                "blocks": blocks_json,
            }
        )
    meta = {
        "model_graph": model.graph.sym_name.data,
        "target": t.to_data(),
        "units": "conductances in units of g_max; weight = column_scale * (g_pos - g_neg) (offset: * (2 g - 1))",
        "arrays": EXPORT_NPZ,
        "tiles": tiles_json,
    }
    tmp = tempfile.mkdtemp(prefix=".nnopt-analog-", dir=parent)
    try:
        with zipfile.ZipFile(os.path.join(tmp, EXPORT_NPZ), "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, array in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        with open(os.path.join(tmp, EXPORT_JSON), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
            handle.write("\n")
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(folder, EXPORT_NPZ), os.path.join(folder, EXPORT_JSON)

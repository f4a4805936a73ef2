"""Evaluate a mapped graph: tile usage per layer, Monte Carlo accuracy against references, energy.

`evaluate(model, samples, seeds)` programs one chip per seed, runs every
sample on it and compares the outputs with

* the *model reference*: the graph as it is, on the numpy interpreter (the
  int8 reference of a quantized model, the float reference of a float model);
* the *float reference*: the float twin of a quantized graph
  (`nnopt.backends.analog.reference.float_twin`), or the model itself.

Output SNR is ``10 log10(sum ref^2 / sum err^2)`` over all samples of a seed;
top-1 agreement compares the argmax of the last axis. Both are reported as
mean and standard deviation over the seeds. The energy of one inference counts
the events the simulator saw (averaged over runs) times the tile target's
energies, plus the digital remainder priced by the MCU cost model.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects.builtin import IntegerAttr
from xdsl.ir import Operation, SSAValue

from nnopt.backends.analog.ir import digital_reason
from nnopt.backends.analog.matrices import MATRIX_OPS, to_real
from nnopt.backends.analog.reference import float_twin, is_quantized_graph
from nnopt.backends.analog.simulator import AnalogModel, Counters, snr_db, top1_agreement
from nnopt.backends.numpy import prepare
from nnopt.backends.numpy.interpreter import Inputs, value_names
from nnopt.dialects import nn


@dataclass
class Stat:
    """Mean and standard deviation over seeds."""

    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        finite = [v for v in self.values if math.isfinite(v)]
        if len(finite) < len(self.values):
            return math.inf if all(v > 0 for v in self.values if not math.isfinite(v)) else -math.inf
        return statistics.fmean(finite) if finite else math.nan

    @property
    def std(self) -> float:
        finite = [v for v in self.values if math.isfinite(v)]
        return statistics.pstdev(finite) if len(finite) > 1 else 0.0

    def text(self, digits: int = 1, unit: str = "") -> str:
        """``12.3 +- 0.4 dB``."""
        if not self.values:
            return "-"
        if not math.isfinite(self.mean):
            return "inf" if self.mean > 0 else "-inf"
        return f"{self.mean:.{digits}f} +- {self.std:.{digits}f}{unit}"

    def json(self) -> dict[str, Any]:
        """Mean, std and the values (infinities as null)."""

        def clean(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"mean": clean(self.mean), "std": clean(self.std), "values": [clean(v) for v in self.values]}


@dataclass
class LayerUsage:
    """Tile usage of one mapped op."""

    index: int
    name: str
    op: str
    rows: int
    cols: int
    groups: int
    weights: int
    blocks: int
    tiles: list[int]
    area: int
    """Cells of the tile grid its blocks cover, in weight slots (rows x cols per block)."""
    zero_weights: int
    """Weight slots of its blocks at level 0 (structural zeros of dense-mapped grouped matrices included)."""
    row_splits: int
    """Blocks along the rows of a column (partial sums added digitally) at most."""


@dataclass
class Evaluation:
    """Everything the analog report shows."""

    layers: list[LayerUsage]
    digital: list[tuple[str, str, str]]
    """Matrix ops left digital: (name, op, reason)."""
    tiles: int
    per_layer_tiles: int
    packed: bool
    seeds: int = 0
    samples: int = 0
    snr_float: Stat = field(default_factory=Stat)
    snr_model: Stat = field(default_factory=Stat)
    agree_float: Stat = field(default_factory=Stat)
    agree_model: Stat = field(default_factory=Stat)
    model_vs_float_snr: float | None = None
    model_vs_float_agree: float | None = None
    quantized: bool = False
    layer_snr: dict[str, Stat] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    stuck_cells: int = 0
    classifier: bool = False
    compared: list[str] = field(default_factory=list)
    """Names of the values accuracy is measured on (outputs, or the logits before an output softmax)."""


def layer_usage(model: AnalogModel) -> list[LayerUsage]:
    """Per mapped op: matrix shape, blocks, tiles, area, zero weights."""
    out: list[LayerUsage] = []
    for i, m in enumerate(model.matrices):
        blocks = [model.blocks[b] for b in model.op_blocks[i]]
        by_col: dict[int, int] = {}
        for b in blocks:
            for c in range(b.matrix_col, b.matrix_col + b.cols):
                by_col[c] = by_col.get(c, 0) + 1
        out.append(
            LayerUsage(
                index=i,
                name=model.layer_name(i),
                op=m.kind,
                rows=m.rows,
                cols=m.cols,
                groups=m.groups,
                weights=m.weight_count,
                blocks=len(blocks),
                tiles=sorted({b.tile for b in blocks}),
                area=sum(b.rows * b.cols for b in blocks),
                zero_weights=sum(b.zero_weights for b in blocks),
                row_splits=max(by_col.values(), default=0),
            )
        )
    return out


def _int_attr(graph: nn.GraphOp, key: str, default: int) -> int:
    attr = graph.attributes.get(key)
    return int(attr.value.data) if isinstance(attr, IntegerAttr) else default


def compared_values(graph: nn.GraphOp) -> list[SSAValue]:
    """The values accuracy is measured on: the graph outputs, or the logits of an output softmax."""
    out: list[SSAValue] = []
    for value in graph.output.values:
        owner = value.owner
        out.append(owner.input if isinstance(owner, nn.SoftmaxOp) else value)
    return out


def _keeper(
    seen: dict[str, np.ndarray], wanted: set[str], real: bool
) -> Callable[[str, Operation, np.ndarray], None]:
    def keep(name: str, op: Operation, value: np.ndarray) -> None:
        if name in wanted:
            seen[name] = to_real(value, op.results[0]) if real else np.asarray(value, dtype=np.float64)

    return keep


def _stack(runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> np.ndarray:
    """The compared values of every run as one flat float64 vector per run."""
    return np.stack(
        [np.concatenate([np.asarray(r[n], dtype=np.float64).reshape(-1) for n in names]) for r in runs]
    )


def _first(runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> np.ndarray:
    return np.stack([np.asarray(r[names[0]], dtype=np.float64) for r in runs])


def evaluate(
    model: AnalogModel,
    samples: Sequence[Inputs],
    seeds: int,
    *,
    first_seed: int = 0,
    layer_snr: bool = True,
) -> Evaluation:
    """Monte Carlo over `seeds` chips, `samples` inputs each (see the module docstring)."""
    graph = model.graph
    mapped_ops = {m.op for m in model.matrices}
    digital = [
        (model.names[op.results[0]], op.name, digital_reason(op) or "not mapped")
        for op in graph.block.ops
        if isinstance(op, MATRIX_OPS) and op not in mapped_ops
    ]
    per_layer = _int_attr(graph, "analog.per_layer_tiles", model.tile_count)
    packed = bool(_int_attr(graph, "analog.packed", 1))
    ev = Evaluation(layer_usage(model), digital, model.tile_count, per_layer, packed)
    ev.seeds, ev.samples = seeds, len(samples)
    ev.quantized = is_quantized_graph(graph)

    # references, with every layer's real value
    names = value_names(graph)
    layer_names = {names[m.op.results[0]] for m in model.matrices}
    compared = compared_values(graph)
    ev.compared = [names[v] for v in compared]
    wanted = layer_names | set(ev.compared)
    program = prepare(graph)
    twin = float_twin(graph) if ev.quantized else graph
    twin_program = prepare(twin) if ev.quantized else program
    model_ref: list[dict[str, np.ndarray]] = []
    float_ref: list[dict[str, np.ndarray]] = []
    for sample in samples:
        seen: dict[str, np.ndarray] = {}
        program.run(sample, dump=_keeper(seen, wanted, real=True))
        model_ref.append(seen)
        seen_f: dict[str, np.ndarray] = {}
        twin_inputs = _real_inputs(graph, sample) if ev.quantized else sample
        twin_program.run(twin_inputs, dump=_keeper(seen_f, wanted, real=True))
        float_ref.append(seen_f)
    ref_f, ref_m = _stack(float_ref, ev.compared), _stack(model_ref, ev.compared)
    last = _first(float_ref, ev.compared)
    ev.classifier = last.shape[-1] > 1
    if ev.quantized:
        ev.model_vs_float_snr = snr_db(ref_f, ref_m)
        ev.model_vs_float_agree = (
            top1_agreement(last, _first(model_ref, ev.compared)) if ev.classifier else None
        )

    counters = Counters()
    for seed in range(first_seed, first_seed + seeds):
        chip = model.program(seed)
        ev.stuck_cells += chip.stuck
        outs: list[dict[str, np.ndarray]] = []
        for sample in samples:
            seen_a: dict[str, np.ndarray] = {}
            model.run(sample, chip, counts=counters, dump=_keeper(seen_a, wanted, real=False))
            outs.append(seen_a)
        got = _stack(outs, ev.compared)
        ev.snr_float.values.append(snr_db(ref_f, got))
        ev.snr_model.values.append(snr_db(ref_m, got))
        if ev.classifier:
            ev.agree_float.values.append(top1_agreement(last, _first(outs, ev.compared)))
            ev.agree_model.values.append(
                top1_agreement(_first(model_ref, ev.compared), _first(outs, ev.compared))
            )
        if layer_snr:
            for name in layer_names:
                ref = np.concatenate([f[name].reshape(-1) for f in float_ref])
                value = np.concatenate([o[name].reshape(-1) for o in outs])
                ev.layer_snr.setdefault(name, Stat()).values.append(snr_db(ref, value))
    ev.counters = counters
    return ev


def _real_inputs(graph: nn.GraphOp, sample: Inputs) -> list[np.ndarray]:
    """A quantized graph's inputs as float32 real values, positionally (for its float twin)."""

    names = graph.input_names()
    if isinstance(sample, np.ndarray):
        arrays = [sample]
    elif isinstance(sample, Mapping):
        arrays = [sample[n] for n in names]
    else:
        arrays = list(sample)
    return [
        to_real(np.asarray(a), v).astype(np.float32) for a, v in zip(arrays, graph.block.args, strict=True)
    ]


# --------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------


@dataclass
class EnergyLine:
    """One line of the energy estimate of one inference."""

    what: str
    count: float
    unit_j: float | None
    joules: float
    note: str = ""


def analog_energy(
    model: AnalogModel, counters: Counters, digital_j: float, digital_note: str
) -> list[EnergyLine]:
    """Per-inference energy lines (averages over the runs counted)."""
    e = model.tiles.energy
    runs = max(counters.runs, 1)

    def line(what: str, total: int, unit: float, note: str = "") -> EnergyLine:
        n = total / runs
        return EnergyLine(what, n, unit, n * unit, note)

    lines = [
        line("analog MACs", counters.macs, e.mac, "conducting cells under non-zero inputs"),
        line("parasitic MACs", counters.parasitic_macs, e.mac, "cells of other blocks on driven word lines"),
        line("DAC conversions", counters.dac, e.dac),
        line("ADC conversions", counters.adc, e.adc),
        line("bus bytes", counters.bus_bytes, e.bus, "inputs to the tiles, column results back"),
        line("partial-sum adds", counters.partial_adds, e.digital_add, "row-split blocks"),
        EnergyLine("digital ops", 0, None, digital_j, digital_note),
    ]
    lines.append(EnergyLine("total", 0, None, sum(x.joules for x in lines)))
    return lines

"""How close a quantized graph stays to its float original, layer by layer.

`compare` runs the float graph (as it was before ``nn-quantize``) and the
quantized graph on the same samples, batch by batch, and matches every layer
of the float graph with the value it became (`GraphQuantization.layers`).
Quantized values are dequantized (``scale * (q - zp)``) before comparing.

Per layer and per graph output it reports:

* SNR in dB: ``10 log10(sum ref^2 / sum (ref - q)^2)`` over all samples
  (``inf`` when equal);
* cosine similarity, averaged over samples;
* the largest absolute error, in real units and in steps of the layer's
  output scale (LSB);
* for classifier outputs (produced by a softmax) the top-1 agreement: the
  fraction of samples whose argmax is the same in both graphs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from xdsl.ir import Operation, SSAValue

from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType
from nnopt.passes.analysis.calibration import CalibrationSet, GraphRunner, Progress


@dataclass
class _Accumulator:
    ref2: float = 0.0
    err2: float = 0.0
    cos_sum: float = 0.0
    samples: int = 0
    max_err: float = 0.0
    agree: int = 0

    def add(self, ref: np.ndarray, got: np.ndarray, top1: bool = False) -> None:
        r = ref.reshape(ref.shape[0], -1).astype(np.float64)
        g = got.reshape(got.shape[0], -1).astype(np.float64)
        diff = r - g
        self.ref2 += float(np.sum(r * r))
        self.err2 += float(np.sum(diff * diff))
        if diff.size:
            self.max_err = max(self.max_err, float(np.abs(diff).max()))
        nr = np.sqrt(np.sum(r * r, axis=1))
        ng = np.sqrt(np.sum(g * g, axis=1))
        dot = np.sum(r * g, axis=1)
        both_zero = (nr == 0) & (ng == 0)
        denom = np.where(nr * ng > 0, nr * ng, 1.0)
        cos = np.where(both_zero, 1.0, np.where(nr * ng > 0, dot / denom, 0.0))
        self.cos_sum += float(cos.sum())
        self.samples += r.shape[0]
        if top1:
            self.agree += int(np.sum(np.argmax(r, axis=1) == np.argmax(g, axis=1)))

    @property
    def snr_db(self) -> float:
        if self.err2 == 0.0:
            return math.inf
        if self.ref2 == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.ref2 / self.err2)

    @property
    def cosine(self) -> float:
        return self.cos_sum / self.samples if self.samples else 1.0


@dataclass
class LayerQuality:
    """One layer: float vs quantized."""

    name: str
    kind: str
    quantized: bool
    type: str
    snr_db: float
    cosine: float
    max_abs_error: float
    max_error_lsb: float | None
    note: str = ""


@dataclass
class OutputQuality:
    """One graph output: float vs quantized."""

    name: str
    snr_db: float
    cosine: float
    max_abs_error: float
    classifier: bool
    top1_agreement: float | None


@dataclass
class QualityReport:
    """Per-layer and per-output quality of a quantized graph on a sample set."""

    graph: str
    samples: int
    calibration: str
    layers: list[LayerQuality] = field(default_factory=list)
    outputs: list[OutputQuality] = field(default_factory=list)

    def worst_first(self) -> list[LayerQuality]:
        """Layers ordered from the lowest SNR up (float layers included)."""
        return sorted(self.layers, key=lambda layer: (layer.snr_db, layer.cosine))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (infinite SNRs as the string ``"inf"``)."""

        def clean(d: dict[str, Any]) -> dict[str, Any]:
            return {
                k: (("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else v)
                for k, v in d.items()
            }

        return {
            "graph": self.graph,
            "samples": self.samples,
            "calibration": self.calibration,
            "layers": [clean(asdict(layer)) for layer in self.worst_first()],
            "outputs": [clean(asdict(o)) for o in self.outputs],
        }


def real_value(value: np.ndarray, elem: object) -> np.ndarray:
    """Dequantized values of a quantized tensor (float values unchanged), as float64."""
    if isinstance(elem, UniformQuantizedType):
        if elem.is_per_axis:
            raise ValueError("per-axis activations are not compared")
        return (value.astype(np.float64) - elem.zero_point) * elem.scale
    return value.astype(np.float64)


def quantized_feed(graph: nn.GraphOp, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float samples for the graph's inputs: quantized (round half away, saturated) where it takes integers."""
    feed: dict[str, np.ndarray] = {}
    for name, arg in zip(graph.input_names(), graph.block.args, strict=True):
        x = inputs[name]
        q = nn.elem_of(arg)
        if isinstance(q, UniformQuantizedType):
            ratio = (x.astype(np.float32) / np.float32(q.scale)).astype(np.float32)
            r = np.sign(ratio) * np.floor(np.abs(ratio) + np.float32(0.5))
            x = np.clip(r + q.zero_point, q.qmin, q.qmax).astype(q.numpy_dtype)
        feed[name] = x
    return feed


def _type_text(v: SSAValue) -> str:
    q = nn.elem_of(v)
    if isinstance(q, UniformQuantizedType) and not q.is_per_axis:
        return f"i{q.width} s={q.scale:.4g} zp={q.zero_point}"
    return str(q)


def _classifier(graph: nn.GraphOp, value: SSAValue) -> bool:
    owner = value.owner
    while isinstance(owner, nn.ReshapeOp | nn.DequantizeOp):
        owner = owner.input.owner
    return isinstance(owner, nn.SoftmaxOp) and nn.shape_of(value)[-1] > 1


def compare(
    reference: nn.GraphOp,
    quantized: nn.GraphOp,
    layers: list[tuple[int, str, str, bool, SSAValue, str]],
    data: CalibrationSet,
    *,
    progress: bool = True,
) -> QualityReport:
    """Run both graphs on `data` and compare each layer ``(index in reference, name, kind, quantized, value, note)``."""
    ref_ops = list(reference.block.ops)
    ref_runner = GraphRunner(reference)
    q_runner = GraphRunner(quantized)
    batch = min(ref_runner.max_batch, q_runner.max_batch)
    ref_of: dict[Operation, int] = {ref_ops[idx]: k for k, (idx, *_rest) in enumerate(layers)}
    q_of: dict[Operation, int] = {}
    for k, (_, _, _, _, value, _) in enumerate(layers):
        owner = value.owner
        assert isinstance(owner, Operation)
        q_of[owner] = k
    acc = [_Accumulator() for _ in layers]
    out_names = reference.output_names()
    q_out_names = quantized.output_names()
    out_acc = [_Accumulator() for _ in out_names]
    classifier = [_classifier(reference, v) for v in reference.output.values]
    q_out_elems = [nn.elem_of(v) for v in quantized.output.values]
    bar = Progress("comparing", data.count) if progress else None
    try:
        for inputs in data.batches(batch):
            ref_out, ref_vals = ref_runner.run(inputs, capture=lambda op: op in ref_of)
            q_out, q_vals = q_runner.run(quantized_feed(quantized, inputs), capture=lambda op: op in q_of)
            for op, k in ref_of.items():
                value = layers[k][4]
                owner = value.owner
                assert isinstance(owner, Operation)
                acc[k].add(ref_vals[op], real_value(q_vals[owner], nn.elem_of(value)))
            for i, (rn, qn) in enumerate(zip(out_names, q_out_names, strict=True)):
                out_acc[i].add(ref_out[rn], real_value(q_out[qn], q_out_elems[i]), top1=classifier[i])
            if bar is not None:
                bar.advance(next(iter(inputs.values())).shape[0])
    finally:
        if bar is not None:
            bar.close()
    report = QualityReport(quantized.sym_name.data, data.count, data.describe())
    for k, (_, name, kind, is_q, value, note) in enumerate(layers):
        q = nn.elem_of(value)
        lsb = None
        if isinstance(q, UniformQuantizedType) and not q.is_per_axis:
            lsb = acc[k].max_err / q.scale
        report.layers.append(
            LayerQuality(
                name, kind, is_q, _type_text(value), acc[k].snr_db, acc[k].cosine, acc[k].max_err, lsb, note
            )
        )
    for i, name in enumerate(out_names):
        a = out_acc[i]
        report.outputs.append(
            OutputQuality(
                name,
                a.snr_db,
                a.cosine,
                a.max_err,
                classifier[i],
                a.agree / a.samples if classifier[i] and a.samples else None,
            )
        )
    return report


def format_db(x: float) -> str:
    """``41.3`` or ``exact``."""
    if math.isinf(x):
        return "exact" if x > 0 else "-inf"
    return f"{x:.1f}"


def render_text(report: QualityReport, limit: int = 0) -> str:
    """The per-layer table (worst first) and the output summary.

    Columns: SNR of the layer's output in dB, mean cosine similarity, largest
    absolute error in real units and in steps of the layer's output scale.
    """
    rows = report.worst_first()
    if limit > 0:
        rows = rows[:limit]
    name_w = max([5, *(len(r.name) for r in rows)])
    name_w = min(name_w, 48)
    kind_w = max([2, *(len(r.kind) - 3 for r in rows)])
    type_w = max([4, *(len(r.type) for r in rows)])
    lines = [
        f"graph @{report.graph}: quantized vs float, layer by layer (worst first), on the "
        f"{report.samples} calibration sample{'s' if report.samples != 1 else ''}",
        "",
        f"{'layer':<{name_w}}  {'op':<{kind_w}}  {'type':<{type_w}}  {'SNR dB':>7}  {'cosine':>8}  "
        f"{'max err':>10}  {'LSB':>6}",
    ]
    for r in rows:
        name = r.name if len(r.name) <= name_w else "..." + r.name[-(name_w - 3) :]
        lsb = f"{r.max_error_lsb:.1f}" if r.max_error_lsb is not None else "-"
        kind = r.kind.removeprefix("nn.")
        note = f"  (float: {r.note})" if not r.quantized else ""
        lines.append(
            f"{name:<{name_w}}  {kind:<{kind_w}}  {r.type:<{type_w}}  {format_db(r.snr_db):>7}  "
            f"{r.cosine:>8.5f}  {r.max_abs_error:>10.4g}  {lsb:>6}{note}"
        )
    if limit > 0 and len(report.layers) > limit:
        lines.append(f"... {len(report.layers) - limit} more layers (all of them in --json)")
    lines.append("")
    for o in report.outputs:
        text = f"output {o.name}: SNR {format_db(o.snr_db)} dB, cosine {o.cosine:.5f}, max err {o.max_abs_error:.4g}"
        if o.top1_agreement is not None:
            text += f", top-1 agreement {100 * o.top1_agreement:.1f}% ({report.samples} samples)"
        lines.append(text)
    return "\n".join(lines)

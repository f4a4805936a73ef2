"""Calibration for post-training quantization: sample inputs, batched runs, range observers.

* `CalibrationSet` holds sample inputs keyed by graph input name, batched
  along a leading sample axis: from an ``.npz`` file (`load_calibration`) or
  seeded synthetic samples (`synthetic_calibration`, labelled as weaker: they
  say nothing about the real input distribution).
* `GraphRunner` runs a graph on many samples with the numpy interpreter. When
  every activation has a leading batch dimension of 1 that no op moves, it
  runs a copy of the graph whose batch dimension is the number of samples in
  a batch (one interpreter call per batch); otherwise it loops over samples.
  Captured values come back as ``(samples, *value_shape)`` arrays.
* `RangeObserver` turns the values a tensor takes into a clipping range:
  ``minmax`` (the extremes), ``percentile`` (cuts ``(100 - p) / 2`` percent
  from each tail of a histogram, as onnxruntime's percentile calibrator) or
  ``mse`` (searches the range whose uniform quantization has the least
  squared error over the histogram). Histograms need a second pass over the
  data, once the extremes are known.
"""

from __future__ import annotations

import math
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnopt.compiler.diagnostics import UserError
from nnopt.dialects import nn

METHODS = ("minmax", "percentile", "mse")
"""Calibration methods of `RangeObserver`."""

HISTOGRAM_BINS = 4096
"""Bins of the histograms behind the percentile and MSE methods."""

BATCH_BYTES = 48 << 20
"""Rough memory budget of one batched run (largest activation times the batch, times 8)."""

MAX_BATCH = 64
"""Most samples run in one interpreter call."""


# --------------------------------------------------------------------------
# Sample sets
# --------------------------------------------------------------------------


@dataclass
class CalibrationSet:
    """Sample inputs by graph input name, each ``(samples, *input_shape)`` float32."""

    inputs: dict[str, np.ndarray]
    source: str
    """How the samples were made, e.g. ``calib.npz`` or ``synthetic (seed 0, standard normal)``."""
    synthetic: bool = False

    @property
    def count(self) -> int:
        """Number of samples."""
        return next(iter(self.inputs.values())).shape[0] if self.inputs else 0

    def describe(self) -> str:
        """One line for reports; synthetic samples are flagged as the weaker choice."""
        text = f"{self.source}, {self.count} sample{'s' if self.count != 1 else ''}"
        if self.synthetic:
            text += " (synthetic: ranges may not match real inputs; calibrate on real data when you can)"
        return text

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive slices of at most `size` samples."""
        for start in range(0, self.count, size):
            yield {k: v[start : start + size] for k, v in self.inputs.items()}


def _graph_inputs(graph: nn.GraphOp) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, nn.shape_of(a)) for n, a in zip(graph.input_names(), graph.block.args, strict=True)]


def load_calibration(path: str, graph: nn.GraphOp) -> CalibrationSet:
    """Read an ``.npz`` of sample inputs keyed by input name, samples along a leading axis.

    An array with exactly the input's shape is one sample. A single-input graph
    also accepts a file holding a single array under any name.
    """
    if not os.path.isfile(path):
        raise UserError(f"calibration file '{path}' not found")
    try:
        with np.load(path, allow_pickle=False) as loaded:
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise UserError(f"calibration file '{path}' must be an .npz archive keyed by input name")
            arrays = {k: np.asarray(loaded[k]) for k in loaded.files}
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read calibration file '{path}': {exc} (expected an .npz archive)") from None
    expected = _graph_inputs(graph)
    names = [n for n, _ in expected]
    if len(expected) == 1 and len(arrays) == 1 and names[0] not in arrays:
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        have = ", ".join(sorted(arrays)) or "none"
        raise UserError(
            f"calibration file '{path}' has no array for input(s) {', '.join(missing)} (arrays: {have})"
        )
    inputs: dict[str, np.ndarray] = {}
    for name, shape in expected:
        arr = arrays[name]
        if arr.dtype.kind not in "fiu":
            raise UserError(f"calibration array '{name}' holds {arr.dtype}, expected numbers")
        if tuple(arr.shape) == shape:
            arr = arr[None]
        if tuple(arr.shape[1:]) != shape:
            raise UserError(
                f"calibration array '{name}' has shape {list(arr.shape)}; input '{name}' takes "
                f"{list(shape)}, so expected [samples, {', '.join(str(d) for d in shape)}]"
            )
        if arr.shape[0] == 0:
            raise UserError(f"calibration array '{name}' holds no samples")
        if not np.all(np.isfinite(arr)):
            raise UserError(f"calibration array '{name}' holds NaN or infinite values")
        inputs[name] = np.ascontiguousarray(arr, dtype=np.float32)
    counts = {v.shape[0] for v in inputs.values()}
    if len(counts) > 1:
        listing = ", ".join(f"{k}: {v.shape[0]}" for k, v in inputs.items())
        raise UserError(f"calibration arrays hold different numbers of samples ({listing})")
    return CalibrationSet(inputs, os.path.basename(path))


def synthetic_calibration(
    graph: nn.GraphOp, seed: int, samples: int, input_range: tuple[float, float] | None = None
) -> CalibrationSet:
    """Seeded random samples: standard normal, or uniform over `input_range`."""
    if seed < 0:
        raise UserError(f"calibration seed must be a non-negative integer, got {seed}")
    if samples < 1:
        raise UserError(f"the number of calibration samples must be positive, got {samples}")
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for name, shape in _graph_inputs(graph):
        if input_range is None:
            inputs[name] = rng.standard_normal((samples, *shape)).astype(np.float32)
        else:
            lo, hi = input_range
            inputs[name] = rng.uniform(lo, hi, (samples, *shape)).astype(np.float32)
    what = (
        "standard normal" if input_range is None else f"uniform in [{input_range[0]:g}, {input_range[1]:g}]"
    )
    return CalibrationSet(inputs, f"synthetic (seed {seed}, {what})", synthetic=True)


def parse_range(text: str) -> tuple[float, float]:
    """``LO:HI`` (or ``LO,HI``) as two floats with LO < HI."""
    parts = text.replace(",", ":").split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(f"input range '{text}' must be LO:HI, e.g. 0:255") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserError(f"input range '{text}' must have finite LO < HI")
    return lo, hi


# --------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, drawn only for long runs (after `delay` seconds) on a terminal."""

    def __init__(
        self, label: str, total: int, stream: TextIO | None = None, *, force: bool = False, delay: float = 1.0
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.delay = 0.0 if force else delay
        self.start = time.monotonic()
        self.done = 0
        self.drawn = False

    def advance(self, n: int) -> None:
        """Count `n` more samples done; redraw when visible."""
        self.done = min(self.total, self.done + n)
        if not self.enabled or time.monotonic() - self.start < self.delay:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.start
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} samples "
            f"{elapsed:.1f}s"
        )
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the line if anything was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# --------------------------------------------------------------------------
# Running a graph on many samples
# --------------------------------------------------------------------------

_MOVABLE = (nn.ReshapeOp, nn.FullyConnectedOp)


def batch_blocker(graph: nn.GraphOp) -> str | None:
    """Why the graph cannot run with a batch dimension added in front (None when it can)."""
    values: list[SSAValue] = list(graph.block.args)
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp | nn.OutputOp):
            continue
        values.extend(op.results)
        if isinstance(op, nn.TransposeOp) and nn.ints(op.perm)[0] != 0:
            return f"'{op.name}' moves the batch dimension"
        if isinstance(op, nn.ConcatOp) and op.axis_value() == 0:
            return "a concatenation along the batch dimension"
        if isinstance(op, nn.MeanOp) and 0 in op.axis_values():
            return "a mean over the batch dimension"
        if isinstance(op, nn.PadOp) and op.pad_pairs()[0] != (0, 0):
            return "padding of the batch dimension"
        if isinstance(op, nn.QuantizeOp | nn.DequantizeOp):
            q = nn.elem_of(op.results[0] if isinstance(op, nn.QuantizeOp) else op.input)
            if getattr(q, "axis", None) == 0:
                return "a per-axis quantization along the batch dimension"
        for v in op.operands:
            if not isinstance(v.owner, nn.ConstOp) and len(nn.shape_of(v)) == 0:
                return "a scalar activation"
    for v in values:
        shape = nn.shape_of(v)
        if not shape or shape[0] != 1:
            return f"a value of shape {list(shape)} (no leading batch dimension of 1)"
    return None


def _batched_type(t: Attribute, batch: int) -> Attribute:
    tt = nn.tensor_type(t)
    shape = tt.get_shape()
    return TensorType(tt.get_element_type(), [batch, *shape[1:]])


def rebatch(graph: nn.GraphOp, batch: int) -> tuple[nn.GraphOp, dict[Operation, Operation]]:
    """A copy of a batchable graph with leading dimension `batch`; also maps each new op to its original."""
    block = Block(arg_types=[_batched_type(a.type, batch) for a in graph.block.args])
    vmap: dict[SSAValue, SSAValue] = {}
    for old, new in zip(graph.block.args, block.args, strict=True):
        vmap[old] = new
        new.name_hint = old.name_hint
    origin: dict[Operation, Operation] = {}
    for op in graph.block.ops:
        operands = [vmap[v] for v in op.operands]
        if isinstance(op, nn.OutputOp):
            new_op: Operation = nn.OutputOp(operands)
        elif isinstance(op, nn.ConstOp):
            new_op = op.clone()
        else:
            new_op = type(op).create(
                operands=operands,
                result_types=[_batched_type(r.type, batch) for r in op.results],
                properties=dict(op.properties),
                attributes=dict(op.attributes),
            )
        for old_r, new_r in zip(op.results, new_op.results, strict=True):
            vmap[old_r] = new_r
            new_r.name_hint = old_r.name_hint
        block.add_op(new_op)
        origin[new_op] = op
    out_types = [v.type for v in block.last_op.operands] if block.last_op is not None else []
    copy = nn.GraphOp(
        graph.sym_name.data,
        list(block.arg_types),
        out_types,
        Region(block),
        arg_attrs=graph.arg_attrs,
        res_attrs=graph.res_attrs,
    )
    return copy, origin


def _largest_value_bytes(graph: nn.GraphOp) -> int:
    largest = 1
    for op in graph.block.ops:
        for r in op.results:
            if not isinstance(op, nn.ConstOp):
                largest = max(largest, nn.num_elements(nn.shape_of(r)) * 4)
    return largest


@dataclass
class GraphRunner:
    """Runs a graph on batches of samples and captures chosen intermediate values."""

    graph: nn.GraphOp
    max_batch: int = 0
    """0: chosen from `BATCH_BYTES` and the largest activation."""
    blocker: str | None = field(init=False)
    _programs: dict[int, tuple[object, dict[Operation, Operation]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.blocker = batch_blocker(self.graph)
        if self.max_batch <= 0:
            per_sample = _largest_value_bytes(self.graph) * 8
            self.max_batch = max(1, min(MAX_BATCH, BATCH_BYTES // per_sample))
        if self.blocker is not None:
            self.max_batch = max(1, min(self.max_batch, 16))

    @property
    def batched(self) -> bool:
        """True when samples run together in one interpreter call."""
        return self.blocker is None

    def _program(self, batch: int) -> tuple[object, dict[Operation, Operation]]:
        from nnopt.backends.numpy import prepare

        if batch not in self._programs:
            if self.blocker is None and batch != 1:
                copy, origin = rebatch(self.graph, batch)
                self._programs[batch] = (prepare(copy), origin)
            else:
                identity = {op: op for op in self.graph.block.ops}
                self._programs[batch] = (prepare(self.graph), identity)
        return self._programs[batch]

    def run(
        self, inputs: Mapping[str, np.ndarray], capture: Callable[[Operation], bool] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[Operation, np.ndarray]]:
        """Run ``(samples, *shape)`` inputs; outputs by name and captured op results by original op.

        Every array has the samples along its first axis, then the value's own shape
        (constants are never captured).
        """
        count = next(iter(inputs.values())).shape[0]
        names = self.graph.input_names()
        shapes = {n: nn.shape_of(a) for n, a in zip(names, self.graph.block.args, strict=True)}
        out_shapes = [nn.shape_of(v) for v in self.graph.output.values]
        if self.blocker is None:
            program, origin = self._program(count)
            feed = {n: inputs[n].reshape(count, *shapes[n][1:]) for n in names}
            captured: dict[Operation, np.ndarray] = {}

            def hook(name: str, op: Operation, value: np.ndarray) -> None:
                original = origin[op]
                if not isinstance(op, nn.ConstOp) and (capture is None or capture(original)):
                    captured[original] = value.reshape(count, *nn.shape_of(original.results[0]))

            outputs = program.run(feed, dump=hook if capture is not None else None)  # type: ignore[attr-defined]
            shaped = {k: v.reshape(count, *s) for (k, v), s in zip(outputs.items(), out_shapes, strict=True)}
            return shaped, captured
        program, _ = self._program(1)
        per_op: dict[Operation, list[np.ndarray]] = {}
        per_out: dict[str, list[np.ndarray]] = {}
        for i in range(count):

            def hook1(name: str, op: Operation, value: np.ndarray) -> None:
                if capture is not None and not isinstance(op, nn.ConstOp) and capture(op):
                    per_op.setdefault(op, []).append(value.copy())

            outs = program.run(  # type: ignore[attr-defined]
                {n: inputs[n][i] for n in names}, dump=hook1 if capture is not None else None
            )
            for k, v in outs.items():
                per_out.setdefault(k, []).append(v)
        return (
            {k: np.stack(v) for k, v in per_out.items()},
            {op: np.stack(v) for op, v in per_op.items()},
        )


# --------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------


def quantize_error(
    centers: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int
) -> np.ndarray:
    """Squared error of quantizing a histogram uniformly over each candidate ``[lo, hi]`` (vectorised).

    The grid has `levels` steps and always holds 0 exactly (the zero point is
    rounded to an integer, as the quantized type stores it).
    """
    scale = (hi - lo) / levels
    scale = np.where(scale > 0, scale, 1.0)
    zp = np.round(-lo / scale)
    q = np.clip(np.round(centers[None, :] / scale[:, None]) + zp[:, None], 0, levels)
    err = centers[None, :] - (q - zp[:, None]) * scale[:, None]
    return np.asarray((err * err) @ counts)


def _mse_search(
    centers: np.ndarray, counts: np.ndarray, lo: float, hi: float, levels: int, symmetric: bool
) -> tuple[float, float]:
    """Coordinate search of the clipping range with the least quantization error."""
    ratios = np.geomspace(1.0 / 32, 1.0, 97)
    if symmetric:
        bound = max(-lo, hi)
        cand = bound * ratios
        errs = quantize_error(centers, counts, -cand, cand, levels)
        best = float(cand[int(np.argmin(errs))])
        return -best, best
    # A joint shrink of both ends first (coordinate steps alone stall when both tails hold outliers).
    bounds = max(-lo, hi) * ratios
    cand_lo, cand_hi = np.maximum(lo, -bounds), np.minimum(hi, bounds)
    errs = quantize_error(centers, counts, cand_lo, cand_hi, levels)
    k = int(np.argmin(errs))
    best_lo, best_hi = float(cand_lo[k]), float(cand_hi[k])
    for _ in range(3):
        if best_hi > 0:
            cand_hi = hi * ratios
            errs = quantize_error(centers, counts, np.full_like(cand_hi, best_lo), cand_hi, levels)
            best_hi = float(cand_hi[int(np.argmin(errs))])
        if best_lo < 0:
            cand_lo = lo * ratios
            errs = quantize_error(centers, counts, cand_lo, np.full_like(cand_lo, best_hi), levels)
            best_lo = float(cand_lo[int(np.argmin(errs))])
    return best_lo, best_hi


@dataclass
class RangeObserver:
    """Collects one tensor's values over calibration batches and picks its clipping range."""

    method: str = "minmax"
    percentile: float = 99.99
    levels: int = 255
    """Quantization steps of the target type (255 for int8, 65534 for symmetric int16)."""
    symmetric: bool = False
    lo: float = math.inf
    hi: float = -math.inf
    counts: np.ndarray | None = None
    edges: tuple[float, float] = (0.0, 0.0)

    @property
    def needs_histogram(self) -> bool:
        """Percentile and MSE need a second pass over the data."""
        return self.method != "minmax"

    def observe_extremes(self, values: np.ndarray) -> None:
        """First pass: the smallest and largest value."""
        if values.size:
            self.lo = min(self.lo, float(values.min()))
            self.hi = max(self.hi, float(values.max()))

    def _hist_range(self) -> tuple[float, float]:
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if self.symmetric:
            bound = max(-lo, hi)
            lo, hi = -bound, bound
        if hi <= lo:
            hi = lo + 1.0
        return lo, hi

    def observe_histogram(self, values: np.ndarray) -> None:
        """Second pass: a histogram over the extremes (which always include 0)."""
        lo, hi = self._hist_range()
        counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(lo, hi))
        self.counts = counts.astype(np.float64) if self.counts is None else self.counts + counts
        self.edges = (lo, hi)

    def range(self) -> tuple[float, float]:
        """The clipping range ``(lo, hi)``, always containing 0."""
        if not math.isfinite(self.lo):
            return 0.0, 0.0
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if self.method == "minmax" or self.counts is None or self.counts.sum() == 0:
            return lo, hi
        a, b = self.edges
        width = (b - a) / HISTOGRAM_BINS
        if self.method == "percentile":
            cdf = np.cumsum(self.counts) / self.counts.sum()
            cut = (100.0 - self.percentile) / 200.0
            left = a + width * int(np.searchsorted(cdf, cut))
            right = a + width * (int(np.searchsorted(cdf, 1.0 - cut)) + 1)
            return min(max(left, lo), 0.0), max(min(right, hi), 0.0)
        centers = a + width * (np.arange(HISTOGRAM_BINS) + 0.5)
        return _mse_search(centers, self.counts, lo, hi, self.levels, self.symmetric)


def check_method(method: str, percentile: float) -> None:
    """Refuse unknown methods and percentiles outside (50, 100]."""
    if method not in METHODS:
        raise UserError(f"unknown calibration method '{method}' (use one of {', '.join(METHODS)})")
    if not (50.0 < percentile <= 100.0):
        raise UserError(f"percentile must be in (50, 100], got {percentile:g}")


def observe(
    runner: GraphRunner,
    data: CalibrationSet,
    observers: Mapping[Operation | int, RangeObserver],
    progress: Progress | None = None,
) -> None:
    """Feed every observed value over the whole set: keys are ops (their result) or graph input indices."""
    names = runner.graph.input_names()
    ops = {k for k in observers if isinstance(k, Operation)}
    two_pass = any(o.needs_histogram for o in observers.values())
    passes = 2 if two_pass else 1
    for p in range(passes):
        for batch in data.batches(runner.max_batch):
            _, captured = runner.run(batch, capture=lambda op: op in ops)
            for key, obs in observers.items():
                if isinstance(key, int):
                    value = batch[names[key]]
                else:
                    value = captured[key]
                if p == 0:
                    obs.observe_extremes(value)
                elif obs.needs_histogram:
                    obs.observe_histogram(value)
            if progress is not None:
                progress.advance(next(iter(batch.values())).shape[0])

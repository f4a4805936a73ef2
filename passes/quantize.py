"""``nn-quantize``: post-training quantization of float graphs to int8 (or int16) integer graphs.

The pass calibrates on sample inputs (an ``.npz`` file or seeded synthetic
samples) with the numpy interpreter, picks a clipping range per activation
(`nnopt.passes.analysis.calibration`), and rewrites every quantizable op into
its integer form, following the TFLite int8 scheme:

* weights symmetric in [-127, 127] (``i8<-127:127>``), per output channel
  (conv: dimension 0, depthwise: dimension 3, fully connected: dimension 0),
  per tensor, or as the TFLite converter (``tflite``: per-channel convolutions,
  per-tensor fully connected layers); biases int32 with scale ``s_in * s_w[c]`` and zero point 0;
* activations asymmetric per tensor, the range always containing 0 (int16:
  symmetric, zero point 0); fused activations fold into the output clamp
  (the float statistics are taken after them);
* softmax and logistic write int8 with scale 1/256 and zero point -128, tanh
  with 1/128 and 0; max/avg pools, reshape, transpose, pad and copy keep
  their input's quantization; concat takes the union of its inputs' ranges
  and requantizes inputs quantized differently;
* constants feeding other ops (add, mul, matmul, ...) are quantized per
  tensor like activations, from their own values.

Ops named in `skip` (by SSA name or location name), ops without an integer
kernel (int16 softmax/logistic/tanh) and weighted ops whose weights are not
constants stay in float, with ``nn.dequantize`` / ``nn.quantize`` at the
borders. The graph interface stays float by default (``nn.quantize`` after
each input, ``nn.dequantize`` before each output); ``interface=quantized``
makes inputs and outputs integer, like the TFLite converter's int8 models.
Every quantized op gets its `rounding` and its ``qparams`` (`qparams.attach`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    LocationAttr,
    ModuleOp,
    NameLoc,
    StringAttr,
    TensorType,
    UnknownLoc,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from nnopt.compiler.diagnostics import UserError, op_error, verify_module
from nnopt.dialects import nn, qparams
from nnopt.dialects.quant import UniformQuantizedType
from nnopt.passes.analysis import calibration as cal
from nnopt.passes.analysis import quant_quality as quality

MIN_SCALE_RATIO = 2.0**-16
"""An output scale is at least this times its largest input scale (keeps ADD's multipliers below 1)."""

WEIGHT_MODES = ("per-channel", "per-tensor", "tflite")
"""Weight scales: per output channel everywhere, one per tensor, or as the TFLite converter does
(per channel for convolutions, per tensor for fully connected layers)."""
ACTIVATION_TYPES = ("int8", "int16")
INTERFACES = ("float", "quantized")

WEIGHTED = (nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.FullyConnectedOp)
"""Ops with a weight (operand 1) and an optional bias (operand 2)."""

OWN_RANGE = (
    nn.Conv2DOp,
    nn.DepthwiseConv2DOp,
    nn.FullyConnectedOp,
    nn.MatMulOp,
    nn.AddOp,
    nn.SubOp,
    nn.MulOp,
    nn.ReluOp,
    nn.Relu6Op,
    nn.ClampOp,
    nn.MeanOp,
)
"""Ops whose output quantization comes from the calibrated range of their result."""

FIXED_OUTPUT = (nn.SoftmaxOp, nn.LogisticOp, nn.TanhOp)
"""Ops whose int8 output quantization TFLite fixes."""

SAME_AS_INPUT = (nn.MaxPool2DOp, nn.AvgPool2DOp, nn.ReshapeOp, nn.TransposeOp, nn.PadOp, nn.CopyOp)
"""Ops whose output keeps their input's quantization."""

DATA_MOVEMENT = (nn.ReshapeOp, nn.TransposeOp, nn.PadOp, nn.CopyOp, nn.ConcatOp)
"""Ops that follow their producer: quantized when it is."""


@dataclass(frozen=True)
class QuantizeConfig:
    """What `quantize_graph` produces (the pass options without the calibration source)."""

    method: str = "minmax"
    percentile: float = 99.99
    weights: str = "per-channel"
    activations: str = "int8"
    rounding: str = "tflite_double"
    skip: tuple[str, ...] = ()
    interface: str = "float"

    def check(self) -> None:
        """Refuse unknown option values with one clear message."""
        cal.check_method(self.method, self.percentile)
        for name, value, allowed in (
            ("weights", self.weights, WEIGHT_MODES),
            ("activations", self.activations, ACTIVATION_TYPES),
            ("rounding", self.rounding, nn.ROUNDING_MODES),
            ("interface", self.interface, INTERFACES),
        ):
            if value not in allowed:
                raise UserError(f"unknown {name} '{value}' (use one of {', '.join(allowed)})")

    @property
    def width(self) -> int:
        """Activation storage width in bits."""
        return 16 if self.activations == "int16" else 8


@dataclass
class Layer:
    """One op of the float graph and what it became."""

    index: int
    """Position of the op in the float graph's block (constants included)."""
    name: str
    kind: str
    quantized: bool
    value: SSAValue
    """Its result in the new graph (quantized, or float when kept in float)."""
    note: str = ""
    """Why it stayed in float."""


@dataclass
class GraphQuantization:
    """What `quantize_graph` did to one graph."""

    graph: nn.GraphOp
    layers: list[Layer] = field(default_factory=list)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    calibration: str = ""
    batched: bool = True
    reference: nn.GraphOp | None = None
    """A copy of the float graph as quantized (dequantized constants folded), for comparisons."""

    def compare(self, data: cal.CalibrationSet, *, progress: bool = True) -> quality.QualityReport:
        """Per-layer and output quality of the quantized graph against its float original on `data`."""
        assert self.reference is not None
        layers = [(lay.index, lay.name, lay.kind, lay.quantized, lay.value, lay.note) for lay in self.layers]
        return quality.compare(self.reference, self.graph, layers, data, progress=progress)

    @property
    def kept_float(self) -> list[Layer]:
        """Layers left in float (skipped or without an integer kernel)."""
        return [layer for layer in self.layers if not layer.quantized]


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def layer_names(graph: nn.GraphOp) -> dict[Operation, list[str]]:
    """Names by which an op can be named: its printed SSA name and its location's name."""
    from nnopt.backends.numpy import value_names

    printed = value_names(graph)
    names: dict[Operation, list[str]] = {}
    for op in graph.block.ops:
        if not op.results:
            continue
        own = [printed[op.results[0]].lstrip("%")]
        loc = op.location
        if isinstance(loc, NameLoc) and loc.desc.data not in own:
            own.append(loc.desc.data)
        names[op] = own
    return names


def resolve_skip(graph: nn.GraphOp, skip: Sequence[str]) -> set[Operation]:
    """The ops a skip list names; an unknown name is an error listing some known ones."""
    names = layer_names(graph)
    by_name: dict[str, Operation] = {}
    for op, own in names.items():
        if isinstance(op, nn.ConstOp):
            continue
        for n in own:
            by_name.setdefault(n, op)
    chosen: set[Operation] = set()
    for raw in skip:
        n = raw.strip().lstrip("%")
        if not n:
            continue
        if n not in by_name:
            known = [own[0] for op, own in names.items() if not isinstance(op, nn.ConstOp)]
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise UserError(f"skip: no op named '{n}' in graph @{graph.sym_name.data} (ops: {shown})")
        chosen.add(by_name[n])
    return chosen


# --------------------------------------------------------------------------
# Quantized types and constants
# --------------------------------------------------------------------------


def _f32(x: float) -> float:
    return float(np.float32(x))


def activation_type(
    lo: float, hi: float, width: int = 8, min_scale: float = 0.0, degenerate_scale: float = 0.0
) -> UniformQuantizedType:
    """The per-tensor type of a clipping range: asymmetric int8 (TFLite's nudged zero point) or symmetric int16.

    The scale is at least `min_scale`, so that the kernels' fixed-point
    multipliers stay representable. A range of (almost) one point, such as
    the output of ``x - x``, says nothing about the scale: it gets
    `degenerate_scale` (the op's input scale), or 1/255 (a range of [0, 1]).
    """
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    spread = hi - lo
    tiny = 1e-8 * max(1.0, abs(lo), abs(hi))
    if spread <= tiny:
        step = degenerate_scale if degenerate_scale > 0 else 1.0 / 255.0
        return activation_type(lo, lo + step * (32767 if width == 16 else 255), width, min_scale)
    if width == 16:
        bound = max(-lo, hi, tiny, min_scale * 32767.0)
        scale = _f32(bound / 32767.0)
        return UniformQuantizedType(width=16, scales=[scale], zero_points=[0])
    spread = max(spread, tiny, min_scale * 255.0)
    scale = _f32(float(np.float32(spread) / np.float32(255.0)))
    zp_from_min = float(np.float32(-128.0) - np.float32(lo) / np.float32(scale))
    zp = int(min(127.0, max(-128.0, float(qround(np.asarray(zp_from_min))))))
    return UniformQuantizedType(width=8, scales=[scale], zero_points=[zp])


def _dense(data: np.ndarray, elem: Attribute) -> nn.ConstOp:
    from nnopt.compiler.importers.common import dense_attr

    return nn.ConstOp(dense_attr(data, elem), TensorType(elem, list(data.shape)))


INT32_MAX = 2**31 - 1


def weight_half_ranges(w: np.ndarray, axis: int | None) -> np.ndarray:
    """``max|w|`` per channel of `axis` (or of the whole tensor), as float32."""
    if axis is None:
        return np.asarray([np.abs(w).max() if w.size else 0.0], dtype=np.float32)
    moved = np.moveaxis(np.abs(w.astype(np.float32)), axis, 0).reshape(w.shape[axis], -1)
    return (moved.max(axis=1) if moved.shape[1] else np.zeros(w.shape[axis])).astype(np.float32)


def widen_for_bias(half: np.ndarray, bias: np.ndarray, input_scale: float) -> np.ndarray:
    """TFLite's ``AdjustWeightsForBiasScale``: grow a channel's range until its bias stays within half of int32.

    A channel is widened when ``|b| >= 0.5 * s_in * s_w * INT32_MAX``, to
    ``2 |b| / INT32_MAX * 127 / s_in`` (then the bias quantizes to about 2^30).
    """
    out = half.copy()
    s_in = np.float32(input_scale)
    if out.size == 1:
        bias = np.asarray([np.abs(bias).max() if bias.size else 0.0])
    for c in range(out.size):
        b = abs(float(bias[c]))
        scale = float(np.float32(out[c]) / np.float32(127.0))
        if b >= 0.5 * float(s_in) * scale * INT32_MAX and b > 0:
            out[c] = np.float32(2.0 * b / INT32_MAX * float(np.float32(127.0) / s_in))
    return out


def weight_scales(w: np.ndarray, axis: int | None, half: np.ndarray | None = None) -> np.ndarray:
    """Symmetric scales ``max|w| / 127`` (float32) per channel of `axis` (or one).

    A channel whose range is 0 (all-zero weights, no bias to size it) borrows
    the median scale of the others, since a scale must be positive.
    """
    if half is None:
        half = weight_half_ranges(w, axis)
    scales = (np.asarray(half, dtype=np.float32) / np.float32(127.0)).astype(np.float64)
    positive = scales[scales > 0]
    fallback = float(np.median(positive)) if positive.size else 1.0 / 127.0
    return np.where(scales > 0, scales, _f32(fallback))


def quantize_weights(
    w: np.ndarray, axis: int | None, scales: np.ndarray, half: np.ndarray | None = None
) -> tuple[np.ndarray, UniformQuantizedType]:
    """Weights as int8 in [-127, 127] and their (narrow-range) type.

    As TFLite's ``SymmetricPerChannelQuantizeValues``: ``round(w * (127 / max|w|))``
    in float32, half away from zero (`half` gives the ranges; default ``127 * scales``).
    """
    if half is None:
        half = np.asarray(scales, dtype=np.float64) * 127.0
    half32 = np.asarray(half, dtype=np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(half32 > 0, np.float32(127.0) / np.where(half32 > 0, half32, 1), 0).astype(np.float32)
    if axis is not None:
        shape = [1] * w.ndim
        shape[axis] = -1
        inv = inv.reshape(shape)
    q = np.clip(qround((w.astype(np.float32) * inv).astype(np.float32)), -127, 127).astype(np.int8)
    qt = UniformQuantizedType(
        width=8,
        scales=[float(x) for x in scales],
        zero_points=[0] * len(scales),
        axis=-1 if axis is None else axis,
        storage_min=-127,
        storage_max=127,
    )
    return q, qt


def quantize_bias(bias: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int32 biases as TFLite's ``SymmetricPerChannelBiasQuantize``: ``round(b * float32(1 / s))`` in float32."""
    b = np.asarray(bias, dtype=np.float32)
    inv = np.asarray([np.float32(1.0 / float(s)) for s in np.atleast_1d(scales)], dtype=np.float32)
    q = qround((b * inv).astype(np.float32).astype(np.float64))
    return np.clip(q, -INT32_MAX, INT32_MAX).astype(np.int32)


def qround(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (TFLite's ``TfLiteRound``)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _quantize_tensor(x: np.ndarray, q: UniformQuantizedType) -> np.ndarray:
    return np.clip(qround(x.astype(np.float32) / np.float32(q.scale)) + q.zero_point, q.qmin, q.qmax).astype(
        q.numpy_dtype
    )


# --------------------------------------------------------------------------
# The rewrite
# --------------------------------------------------------------------------


def _fold_dequantized_constants(graph: nn.GraphOp) -> None:
    """``nn.dequantize(nn.const)`` (hybrid weights) becomes a float constant."""
    from nnopt.backends.numpy.arrays import const_value
    from nnopt.backends.numpy.kernels_common import dequantize_op

    for op in list(graph.block.ops):
        if isinstance(op, nn.DequantizeOp) and isinstance(op.input.owner, nn.ConstOp):
            value = dequantize_op(op)([const_value(op.input.owner)])
            new = _dense(np.asarray(value, dtype=np.float32), nn.elem_of(op.output))
            new.location = op.location
            new.result.name_hint = op.output.name_hint
            graph.block.insert_op_before(new, op)
            op.output.replace_all_uses_with(new.result)
            graph.block.erase_op(op)
    for op in list(graph.block.ops):
        if isinstance(op, nn.ConstOp) and not op.result.uses:
            graph.block.erase_op(op)


def _check_float_graph(graph: nn.GraphOp) -> None:
    for arg in graph.block.args:
        if not nn.is_float(arg):
            raise UserError(
                f"graph @{graph.sym_name.data} input {arg.type} is not float: nn-quantize takes float graphs"
            )
    for op in graph.block.ops:
        if isinstance(op, nn.QuantizeOp | nn.DequantizeOp):
            raise op_error(
                op, "found: the graph is already (partly) quantized; nn-quantize takes float graphs"
            )
        for r in op.results:
            if nn.is_quantized(r) or (not isinstance(op, nn.ConstOp) and not nn.is_float(r)):
                raise op_error(op, f"has a non-float result {r.type}; nn-quantize takes float graphs")


class _Rewriter:
    """Builds the quantized graph in place, op by op, keeping float and quantized versions of values."""

    def __init__(
        self, graph: nn.GraphOp, config: QuantizeConfig, ranges: dict[SSAValue, tuple[float, float]]
    ):
        self.graph = graph
        self.block: Block = graph.block
        self.config = config
        self.ranges = ranges
        self.fval: dict[SSAValue, SSAValue] = {}
        self.qval: dict[SSAValue, SSAValue] = {}
        self.to_erase: list[Operation] = []
        self.new_quantized: list[Operation] = []
        self.given: dict[SSAValue, UniformQuantizedType] = {}

    # ---------------------------------------------------------------- types
    def range_type(self, v: SSAValue) -> UniformQuantizedType:
        if v in self.given:
            return self.given[v]
        lo, hi = self.ranges.get(v, (0.0, 0.0))
        return activation_type(lo, hi, self.config.width)

    @staticmethod
    def retyped(v: SSAValue, elem: Attribute) -> TensorType[Attribute]:
        return TensorType(elem, list(nn.shape_of(v)))

    # -------------------------------------------------------------- insertion
    def _insert_after_def(self, new: Operation, v: SSAValue) -> None:
        owner = v.owner
        if isinstance(owner, Block):
            first = self.block.first_op
            assert first is not None
            self.block.insert_op_before(new, first)
        else:
            assert isinstance(owner, Operation)
            self.block.insert_op_after(new, owner)

    def _hint(self, v: SSAValue, suffix: str) -> str | None:
        return f"{v.name_hint}{suffix}" if v.name_hint else None

    def float_of(self, v: SSAValue) -> SSAValue:
        """The float version of a value (a dequantize of its quantized version when needed)."""
        if v in self.fval:
            return self.fval[v]
        q = self.qval[v]
        deq = nn.DequantizeOp(q, self.retyped(q, nn.elem_of(v)))
        deq.location = _location_of(q)
        deq.output.name_hint = self._hint(q, "_dq")
        self._insert_after_def(deq, q)
        self.fval[v] = deq.output
        return deq.output

    def quant_of(self, v: SSAValue) -> SSAValue:
        """The quantized version of a value (a quantize of its float version when needed)."""
        if v in self.qval:
            return self.qval[v]
        f = self.fval[v]
        if isinstance(f.owner, nn.ConstOp):
            return self.const_activation(f)
        quant = nn.QuantizeOp.create(
            operands=[f],
            result_types=[self.retyped(f, self.range_type(v))],
            properties={"rounding": StringAttr(self.config.rounding)},
        )
        quant.location = _location_of(f)
        quant.results[0].name_hint = self._hint(f, "_q")
        self._insert_after_def(quant, f)
        self.new_quantized.append(quant)
        self.qval[v] = quant.results[0]
        return quant.results[0]

    def requantized(self, q: SSAValue, elem: UniformQuantizedType, anchor: Operation) -> SSAValue:
        """`q` converted to `elem` (an integer requantize) right before `anchor`."""
        if nn.elem_of(q) == elem:
            return q
        op = nn.QuantizeOp.create(
            operands=[q],
            result_types=[self.retyped(q, elem)],
            properties={"rounding": StringAttr(self.config.rounding)},
        )
        op.location = anchor.location
        op.results[0].name_hint = self._hint(q, "_rq")
        self.block.insert_op_before(op, anchor)
        self.new_quantized.append(op)
        return op.results[0]

    # -------------------------------------------------------------- constants
    def const_activation(self, v: SSAValue) -> SSAValue:
        """A float constant feeding a quantized op, quantized per tensor from its own values."""
        from nnopt.backends.numpy.arrays import const_value

        owner = v.owner
        assert isinstance(owner, nn.ConstOp)
        data = np.asarray(const_value(owner), dtype=np.float32)
        lo = float(data.min()) if data.size else 0.0
        hi = float(data.max()) if data.size else 0.0
        qt = activation_type(lo, hi, self.config.width)
        new = _dense(_quantize_tensor(data, qt), qt)
        new.location = owner.location
        new.result.name_hint = v.name_hint
        self.block.insert_op_before(new, owner)
        return new.result

    def weight_const(self, op: Operation, in_q: UniformQuantizedType) -> tuple[SSAValue, SSAValue | None]:
        """Quantized weight and int32 bias of a weighted op."""
        from nnopt.backends.numpy.arrays import const_value

        assert isinstance(op, WEIGHTED)
        w_owner = op.weight.owner
        assert isinstance(w_owner, nn.ConstOp)
        w = np.asarray(const_value(w_owner), dtype=np.float32)
        axis: int | None = 3 if isinstance(op, nn.DepthwiseConv2DOp) else 0
        if self.config.weights == "per-tensor" or (
            self.config.weights == "tflite" and isinstance(op, nn.FullyConnectedOp)
        ):
            axis = None
        half = weight_half_ranges(w, axis)
        s_in = _f32(in_q.scale)
        bias: np.ndarray | None = None
        if op.bias is not None:
            b_owner = op.bias.owner
            assert isinstance(b_owner, nn.ConstOp)
            bias = np.asarray(const_value(b_owner), dtype=np.float64)
            half = widen_for_bias(half, bias, s_in)
        scales = weight_scales(w, axis, half)
        qw, wt = quantize_weights(w, axis, scales, half)
        new_w = _dense(qw, wt)
        new_w.location = w_owner.location
        new_w.result.name_hint = op.weight.name_hint
        self.block.insert_op_before(new_w, op)
        new_b: SSAValue | None = None
        if bias is not None and op.bias is not None:
            b_scales = np.asarray(
                [_f32(float(np.float32(s_in) * np.float32(s))) for s in scales], dtype=np.float64
            )
            cout = bias.shape[0]
            per = b_scales if b_scales.size == cout else np.full(cout, b_scales[0])
            qb = quantize_bias(bias, per)
            bt = UniformQuantizedType(
                width=32,
                scales=[float(s) for s in b_scales],
                zero_points=[0] * b_scales.size,
                axis=-1 if b_scales.size == 1 else 0,
            )
            b_op = _dense(qb, bt)
            b_op.location = op.bias.owner.location  # type: ignore[union-attr]
            b_op.result.name_hint = op.bias.name_hint
            self.block.insert_op_before(b_op, op)
            new_b = b_op.result
        return new_w.result, new_b

    # -------------------------------------------------------------------- ops
    def quantize_op(self, op: Operation) -> SSAValue:
        """Insert the integer form of `op` before it; returns its quantized result."""
        result = op.results[0]
        operands: list[SSAValue] = []
        if isinstance(op, WEIGHTED):
            x = self.quant_of(op.input)
            in_q = nn.elem_of(x)
            assert isinstance(in_q, UniformQuantizedType)
            w, b = self.weight_const(op, in_q)
            operands = [x, w] + ([b] if b is not None else [])
        else:
            operands = [self.quant_of(v) for v in op.operands]
        out_elem: Attribute
        if isinstance(op, FIXED_OUTPUT):
            if isinstance(op, nn.TanhOp):
                out_elem = UniformQuantizedType(width=8, scales=[1.0 / 128], zero_points=[0])
            else:
                out_elem = UniformQuantizedType(width=8, scales=[1.0 / 256], zero_points=[-128])
        elif isinstance(op, SAME_AS_INPUT):
            out_elem = nn.elem_of(operands[0])
        elif isinstance(op, nn.ConcatOp):
            lo = min([self.ranges.get(result, (0.0, 0.0))[0]] + [_real_range(q)[0] for q in operands])
            hi = max([self.ranges.get(result, (0.0, 0.0))[1]] + [_real_range(q)[1] for q in operands])
            qt = activation_type(lo, hi, self.config.width)
            out_elem = qt
            operands = [self.requantized(q, qt, op) for q in operands]
        else:
            # Degenerate ranges (a constant output) get a scale the kernels can requantize to.
            in_scales = [_scale(q) for q in operands[:2] if _per_tensor(q)]
            widest = max(in_scales, default=0.0)
            lo, hi = self.ranges.get(result, (0.0, 0.0))
            out_elem = self.given.get(result) or activation_type(
                lo, hi, self.config.width, MIN_SCALE_RATIO * widest, widest
            )
        props = dict(op.properties)
        if isinstance(op, nn.QuantizableOp):
            props["rounding"] = StringAttr(self.config.rounding)
            props.pop("qparams", None)
        new = type(op).create(
            operands=operands,
            result_types=[self.retyped(result, out_elem)],
            properties=props,
            attributes=dict(op.attributes),
        )
        new.location = op.location
        new.results[0].name_hint = result.name_hint
        self.block.insert_op_before(new, op)
        if isinstance(new, nn.QuantizableOp):
            self.new_quantized.append(new)
        self.qval[result] = new.results[0]
        self.to_erase.append(op)
        return new.results[0]

    def keep_float(self, op: Operation) -> None:
        """Leave `op` in float, feeding it float versions of its operands."""
        op.operands = [v if isinstance(v.owner, nn.ConstOp) else self.float_of(v) for v in op.operands]
        for r in op.results:
            self.fval[r] = r

    def attach_params(self) -> None:
        for op in self.new_quantized:
            try:
                qparams.attach(op, self.config.rounding)
            except (qparams.QuantParamError, ValueError, VerifyException) as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise op_error(op, f"cannot be quantized: {message}") from None


def _location_of(v: SSAValue) -> LocationAttr:
    owner = v.owner
    return owner.location if isinstance(owner, Operation) else UnknownLoc()


def _named(attrs: ArrayAttr[DictionaryAttr] | None, names: Sequence[str]) -> ArrayAttr[DictionaryAttr]:
    """Argument or result attributes holding an ``nn.name`` for every entry."""
    entries = list(attrs.data) if attrs is not None else [DictionaryAttr({}) for _ in names]
    return ArrayAttr(
        [
            DictionaryAttr({**d.data, nn.NAME_KEY: d.data.get(nn.NAME_KEY, StringAttr(n))})
            for d, n in zip(entries, names, strict=True)
        ]
    )


def _scale(q: SSAValue) -> float:
    t = nn.elem_of(q)
    assert isinstance(t, UniformQuantizedType)
    return t.scale


def _per_tensor(q: SSAValue) -> bool:
    t = nn.elem_of(q)
    return isinstance(t, UniformQuantizedType) and not t.is_per_axis


def _real_range(q: SSAValue) -> tuple[float, float]:
    t = nn.elem_of(q)
    assert isinstance(t, UniformQuantizedType)
    return t.scale * (t.qmin - t.zero_point), t.scale * (t.qmax - t.zero_point)


def _float_reason(op: Operation, config: QuantizeConfig, skipped: set[Operation]) -> str | None:
    """Why `op` stays in float (None: it is quantized, or follows its producer)."""
    if op in skipped:
        return "skipped"
    if isinstance(op, nn.ConstOp | nn.OutputOp):
        return None
    if isinstance(op, WEIGHTED):
        if not isinstance(op.weight.owner, nn.ConstOp):
            return "weights are not constant"
        if op.bias is not None and not isinstance(op.bias.owner, nn.ConstOp):
            return "bias is not constant"
    if config.width == 16 and isinstance(op, FIXED_OUTPUT):
        return "no int16 kernel"
    if isinstance(op, DATA_MOVEMENT):
        return None
    if not isinstance(op, OWN_RANGE + FIXED_OUTPUT + SAME_AS_INPUT):
        return "no integer kernel"
    if all(isinstance(v.owner, nn.ConstOp) for v in op.operands):
        return "constant operands only"
    return None


def quantize_graph(
    graph: nn.GraphOp,
    data: cal.CalibrationSet,
    config: QuantizeConfig,
    *,
    progress: bool = True,
    activation_types: Mapping[int, UniformQuantizedType] | None = None,
) -> GraphQuantization:
    """Calibrate and quantize one float graph in place.

    `activation_types` imposes the quantized type of chosen values instead of
    their calibrated range: keys are op positions in the graph's block (after
    hybrid weights are folded into constants), ``-1 - i`` for input ``i``
    (used to reproduce another quantizer's activation ranges exactly).
    """
    config.check()
    _fold_dequantized_constants(graph)
    _check_float_graph(graph)
    skipped = resolve_skip(graph, config.skip)
    names = layer_names(graph)
    reference = graph.clone()
    ops = list(graph.block.ops)
    input_names, output_names = graph.input_names(), graph.output_names()
    index_of = {op: i for i, op in enumerate(ops)}

    # Calibration: one observer per non-constant value.
    levels = 65534 if config.width == 16 else 255
    observers: dict[Operation | int, cal.RangeObserver] = {}
    for i in range(len(graph.block.args)):
        observers[i] = cal.RangeObserver(config.method, config.percentile, levels, config.width == 16)
    for op in ops:
        if op.results and not isinstance(op, nn.ConstOp):
            observers[op] = cal.RangeObserver(config.method, config.percentile, levels, config.width == 16)
    runner = cal.GraphRunner(graph)
    passes = 1 if config.method == "minmax" else 2
    bar = cal.Progress("calibrating", data.count * passes) if progress else None
    try:
        cal.observe(runner, data, observers, bar)
    finally:
        if bar is not None:
            bar.close()
    ranges: dict[SSAValue, tuple[float, float]] = {}
    for key, obs in observers.items():
        value = graph.block.args[key] if isinstance(key, int) else key.results[0]
        ranges[value] = obs.range()

    # Which ops are quantized.
    reasons: dict[Operation, str | None] = {op: _float_reason(op, config, skipped) for op in ops}
    quantized: dict[SSAValue, bool] = dict.fromkeys(graph.block.args, True)
    decision: dict[Operation, bool] = {}
    for op in ops:
        if isinstance(op, nn.ConstOp | nn.OutputOp):
            continue
        reason = reasons[op]
        if reason is not None:
            decision[op] = False
        elif isinstance(op, DATA_MOVEMENT):
            producers = [v for v in op.operands if not isinstance(v.owner, nn.ConstOp)]
            decision[op] = bool(producers) and quantized.get(producers[0], False)
            if not producers:
                reasons[op] = "constant operands only"
        else:
            decision[op] = True
        for r in op.results:
            quantized[r] = decision[op]

    rw = _Rewriter(graph, config, ranges)
    for key, qt in (activation_types or {}).items():
        target = graph.block.args[-1 - key] if key < 0 else ops[key].results[0]
        rw.given[target] = qt
    record = GraphQuantization(
        graph, calibration=data.describe(), batched=runner.batched, reference=reference
    )
    # Graph inputs.
    float_args = list(graph.block.args)
    if config.interface == "quantized":
        for i, arg in enumerate(float_args):
            qt = rw.range_type(arg)
            new_arg = graph.block.insert_arg(rw.retyped(arg, qt), i)
            new_arg.name_hint = arg.name_hint
            rw.qval[arg] = new_arg
            ranges[new_arg] = ranges[arg]
    else:
        for arg in graph.block.args:
            rw.fval[arg] = arg
    for op in ops:
        if isinstance(op, nn.ConstOp):
            rw.fval[op.result] = op.result
            continue
        if isinstance(op, nn.OutputOp):
            convert = rw.quant_of if config.interface == "quantized" else rw.float_of
            op.operands = [convert(v) for v in op.operands]
            continue
        name = names[op][0]
        if decision[op]:
            new_value = rw.quantize_op(op)
            record.layers.append(Layer(index_of[op], name, op.name, True, new_value))
        else:
            rw.keep_float(op)
            note = reasons[op] or "its input stays in float"
            record.layers.append(Layer(index_of[op], name, op.name, False, op.results[0], note))
    for op in reversed(rw.to_erase):
        graph.block.erase_op(op)
    if config.interface == "quantized":
        for arg in float_args:
            graph.block.erase_arg(arg)  # every use now reads the integer input (or its dequantize)
    for op in list(graph.block.ops):
        if isinstance(op, nn.ConstOp) and not op.result.uses:
            graph.block.erase_op(op)
    graph.function_type = graph.function_type.from_lists(
        list(graph.block.arg_types), [v.type for v in graph.output.values]
    )
    # Inputs and outputs keep the names they had (not the names of inserted quantize/dequantize ops).
    graph.arg_attrs = _named(graph.arg_attrs, input_names)
    graph.res_attrs = _named(graph.res_attrs, output_names)
    rw.attach_params()
    for ranged, rng in ranges.items():
        if ranged.name_hint:
            record.ranges[ranged.name_hint] = rng
    return record


# --------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizePass(ModulePass):
    """Post-training quantization: calibrate on sample inputs, then rewrite float ops into integer ops.

    Give either `calibration` (an ``.npz`` of sample inputs keyed by input
    name, samples along a leading axis) or `calibration_seed` (synthetic
    samples: standard normal, or uniform over `input_range`; weaker, since
    they need not look like real inputs).
    """

    name = "nn-quantize"

    calibration: str = ""
    """``.npz`` file of calibration samples keyed by graph input name."""
    calibration_seed: int = -1
    """Seed of synthetic calibration samples (used when `calibration` is empty)."""
    samples: int = 32
    """Number of synthetic samples."""
    input_range: str = ""
    """``LO:HI``: synthetic samples uniform in this range instead of standard normal."""
    method: str = "minmax"
    """minmax | percentile | mse."""
    percentile: float = 99.99
    """Percentile kept by the percentile method ((100 - p) / 2 percent cut from each tail)."""
    weights: str = "per-channel"
    """per-channel | per-tensor | tflite (per-channel convolutions, per-tensor fully connected)."""
    activations: str = "int8"
    """int8 | int16 (symmetric, zero point 0)."""
    rounding: str = "tflite_double"
    """tflite_double | single | onnx_rint."""
    skip: tuple[str, ...] = ()
    """Ops kept in float, by SSA name or location name."""
    interface: str = "float"
    """float (quantize inputs, dequantize outputs) | quantized (integer inputs and outputs)."""

    def config(self) -> QuantizeConfig:
        """The options as a `QuantizeConfig` (checked)."""
        config = QuantizeConfig(
            method=self.method,
            percentile=self.percentile,
            weights=self.weights,
            activations=self.activations,
            rounding=self.rounding,
            skip=tuple(self.skip),
            interface=self.interface,
        )
        config.check()
        return config

    def calibration_set(self, graph: nn.GraphOp) -> cal.CalibrationSet:
        """The calibration samples the options name."""
        if self.calibration and self.calibration_seed >= 0:
            raise UserError("nn-quantize: give either calibration=FILE.npz or calibration-seed=N, not both")
        if self.calibration:
            if self.input_range:
                raise UserError(
                    "nn-quantize: input-range applies to synthetic samples (calibration-seed) only"
                )
            return cal.load_calibration(self.calibration, graph)
        if self.calibration_seed >= 0:
            rng = cal.parse_range(self.input_range) if self.input_range else None
            return cal.synthetic_calibration(graph, self.calibration_seed, self.samples, rng)
        raise UserError(
            "nn-quantize needs calibration samples: calibration=FILE.npz, or calibration-seed=N for synthetic ones"
        )

    def run(self, module: ModuleOp, *, progress: bool = True) -> list[GraphQuantization]:
        """Quantize every graph of `module`; returns what was done to each."""
        try:
            config = self.config()
        except UserError as exc:
            raise UserError(f"nn-quantize: {exc.message}") from None
        graphs = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
        results = []
        for graph in graphs:
            data = self.calibration_set(graph)
            results.append(quantize_graph(graph, data, config, progress=progress))
        verify_module(module)
        return results

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self.run(op)

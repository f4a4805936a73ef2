"""Random valid `nn` graphs for property tests.

Hypothesis draws a small, plain `GraphSpec` (integers only, so shrunk failures
print readably) and `build_graph` turns it into a verified module. Every spec
builds: parameters are interpreted so that each layer is valid for the shapes
it meets, or the layer is skipped.

    from hypothesis import given
    from nnopt.testing import graph_specs, build_graph

    @given(graph_specs())
    def test_my_pass(spec):
        module = build_graph(spec)
        ...
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    f64,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

KINDS_4D = (
    "conv2d",
    "depthwise_conv2d",
    "max_pool2d",
    "avg_pool2d",
    "mean",
    "pad",
    "transpose",
    "flatten",
    "relu",
    "relu6",
    "clamp",
    "logistic",
    "tanh",
    "add",
    "sub",
    "mul",
    "concat",
)
KINDS_2D = ("fully_connected", "matmul", "relu", "softmax", "add", "mul", "reshape2d", "concat")
ALL_KINDS = tuple(sorted(set(KINDS_4D) | set(KINDS_2D)))


@dataclass(frozen=True)
class LayerSpec:
    """One drawn layer: a kind, operand picks (taken modulo what fits) and small parameters."""

    kind: str
    operands: tuple[int, ...]
    params: tuple[int, ...]


@dataclass(frozen=True)
class GraphSpec:
    """A drawn graph: input shape, float or quantized, a weight seed and the layers."""

    input_shape: tuple[int, int, int, int]
    quantized: bool
    seed: int
    layers: tuple[LayerSpec, ...] = field(default=())


@st.composite
def graph_specs(
    draw: st.DrawFn,
    *,
    max_layers: int = 10,
    quantized: bool | None = None,
    max_spatial: int = 9,
    max_channels: int = 6,
) -> GraphSpec:
    """Strategy for `GraphSpec`s; `quantized=None` draws both float and int8 graphs."""
    h = draw(st.integers(1, max_spatial))
    w = draw(st.integers(1, max_spatial))
    c = draw(st.integers(1, max_channels))
    q = draw(st.booleans()) if quantized is None else quantized
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(1, max_layers))
    layers = tuple(
        LayerSpec(
            draw(st.sampled_from(ALL_KINDS)),
            tuple(draw(st.lists(st.integers(0, 63), min_size=2, max_size=2))),
            tuple(draw(st.lists(st.integers(0, 255), min_size=6, max_size=6))),
        )
        for _ in range(n)
    )
    return GraphSpec((1, h, w, c), q, seed, layers)


@dataclass
class _Value:
    ssa: SSAValue
    shape: tuple[int, ...]

    @property
    def elem(self) -> Attribute:
        return nn.elem_of(self.ssa)


class _Builder:
    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.ops: list[Operation] = []
        self.rng = np.random.default_rng(spec.seed)
        in_elem = self.act_type(3, 7) if spec.quantized else f32
        self.block = Block(arg_types=[TensorType(in_elem, spec.input_shape)])
        self.block.args[0].name_hint = "x"
        self.values = [_Value(self.block.args[0], spec.input_shape)]
        self.used: set[int] = set()

    # -- types and constants ------------------------------------------
    def act_type(self, a: int, b: int) -> UniformQuantizedType:
        scale = 2.0 ** -(a % 8) * (1 + (b % 16) / 16)
        return UniformQuantizedType(scales=[scale], zero_points=[(a * 37 + b) % 256 - 128])

    def out_elem(self, params: Sequence[int]) -> Attribute:
        return self.act_type(params[4], params[5]) if self.spec.quantized else f32

    def const(self, data: np.ndarray, result_type: Attribute | None = None) -> SSAValue:
        elem: Float32Type | IntegerType = (
            f32 if data.dtype == np.float32 else IntegerType(data.dtype.itemsize * 8)
        )
        vtype = TensorType(elem, data.shape)
        attr = DenseIntOrFPElementsAttr(vtype, BytesAttr(np.ascontiguousarray(data).tobytes()))
        op = nn.ConstOp(attr, result_type)
        self.ops.append(op)
        return op.result

    def weights(self, shape: tuple[int, ...], axis: int, in_elem: Attribute) -> tuple[SSAValue, SSAValue]:
        """Weight and bias constants (float, or int8 per-axis with an int32 bias)."""
        channels = shape[axis]
        if not self.spec.quantized:
            w = self.rng.normal(0, 0.5, shape).astype(np.float32)
            b = self.rng.normal(0, 0.1, (channels,)).astype(np.float32)
            return self.const(w), self.const(b)
        assert isinstance(in_elem, UniformQuantizedType)
        scales = [float(s) for s in self.rng.uniform(0.005, 0.05, channels)]
        wq = UniformQuantizedType(scales=scales, axis=axis, storage_min=-127)
        wi = self.rng.integers(-127, 128, shape, dtype=np.int8)
        bscales = [in_elem.scale * s for s in scales]
        bq = UniformQuantizedType(width=32, scales=bscales, axis=0)
        bi = self.rng.integers(-500, 500, (channels,), dtype=np.int32)
        return self.const(wi, TensorType(wq, shape)), self.const(bi, TensorType(bq, (channels,)))

    def emit(self, op: Operation, operands: Sequence[_Value]) -> None:
        self.ops.append(op)
        for v in operands:
            self.used.add(id(v.ssa))
        result = op.results[0]
        result.name_hint = f"v{len(self.values)}"
        self.values.append(_Value(result, nn.shape_of(result)))

    def pick(self, index: int, rank: int) -> _Value | None:
        cands = [v for v in self.values if len(v.shape) == rank]
        return cands[index % len(cands)] if cands else None

    # -- layers ----------------------------------------------------------
    def layer(self, layer: LayerSpec) -> None:
        p = layer.params
        rank = 4 if layer.kind in KINDS_4D and layer.kind not in ("reshape2d",) else 2
        if layer.kind in KINDS_4D and layer.kind in KINDS_2D:
            rank = 4 if p[0] % 2 == 0 else 2
        x = self.pick(layer.operands[0], rank)
        if x is None:
            return
        getattr(self, f"_{layer.kind}")(x, layer, p)

    def _window(self, x: _Value, p: Sequence[int], kernel: tuple[int, int]) -> dict[str, Attribute] | None:
        stride = (1 + p[1] % 2, 1 + (p[1] // 2) % 2)
        padding: Attribute
        if p[2] % 3 == 0:
            padding = nn.padding_attr("same")
        elif p[2] % 3 == 1:
            padding = nn.padding_attr("valid")
        else:
            padding = nn.padding_attr([p[2] % 2, p[3] % 2, p[3] % 3 // 2, p[2] % 3 // 2])
        pads = nn.resolve_padding(padding, x.shape[1:3], kernel, stride)
        oh, ow = nn.window_output_hw(x.shape[1:3], kernel, stride, (1, 1), pads)
        if oh < 1 or ow < 1:
            return None
        return {"strides": nn.int_array(stride), "padding": padding}

    def _conv2d(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        kernel = (1 + p[0] % 3, 1 + p[5] % 3)
        props = self._window(x, p, kernel)
        if props is None:
            return
        cout = 1 + p[3] % 5
        w, b = self.weights((cout, *kernel, x.shape[3]), 0, x.elem)
        props["fused_activation"] = StringAttr(("none", "relu", "relu6")[p[4] % 3])
        pads = nn.resolve_padding(props["padding"], x.shape[1:3], kernel, nn.ints(props["strides"]))  # type: ignore[arg-type]
        oh, ow = nn.window_output_hw(x.shape[1:3], kernel, nn.ints(props["strides"]), (1, 1), pads)  # type: ignore[arg-type]
        out = TensorType(self.out_elem(p), (1, oh, ow, cout))
        operands: list[SSAValue | list[SSAValue]] = [x.ssa, w, []] if p[1] % 4 == 3 else [x.ssa, w, [b]]
        self.emit(nn.Conv2DOp(operands=operands, result_types=[out], properties=props), [x])

    def _depthwise_conv2d(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        kernel = (1 + p[0] % 3, 1 + p[5] % 3)
        props = self._window(x, p, kernel)
        if props is None:
            return
        cout = x.shape[3] * (1 + p[3] % 2)
        w, b = self.weights((1, *kernel, cout), 3, x.elem)
        pads = nn.resolve_padding(props["padding"], x.shape[1:3], kernel, nn.ints(props["strides"]))  # type: ignore[arg-type]
        oh, ow = nn.window_output_hw(x.shape[1:3], kernel, nn.ints(props["strides"]), (1, 1), pads)  # type: ignore[arg-type]
        out = TensorType(self.out_elem(p), (1, oh, ow, cout))
        self.emit(nn.DepthwiseConv2DOp(operands=[x.ssa, w, [b]], result_types=[out], properties=props), [x])

    def _pool(self, cls: type[nn.MaxPool2DOp | nn.AvgPool2DOp], x: _Value, p: Sequence[int]) -> None:
        kernel = (1 + p[0] % 3, 1 + p[5] % 3)
        props = self._window(x, p, kernel)
        if props is None:
            return
        props["kernel"] = nn.int_array(kernel)
        pads = nn.resolve_padding(props["padding"], x.shape[1:3], kernel, nn.ints(props["strides"]))  # type: ignore[arg-type]
        if cls is nn.AvgPool2DOp and nn.empty_window(x.shape[1:3], kernel, nn.ints(props["strides"]), pads):  # type: ignore[arg-type]
            return  # an average over padding alone is undefined
        oh, ow = nn.window_output_hw(x.shape[1:3], kernel, nn.ints(props["strides"]), (1, 1), pads)  # type: ignore[arg-type]
        out = TensorType(x.elem, (1, oh, ow, x.shape[3]))
        self.emit(cls(operands=[x.ssa], result_types=[out], properties=props), [x])

    def _max_pool2d(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._pool(nn.MaxPool2DOp, x, p)

    def _avg_pool2d(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._pool(nn.AvgPool2DOp, x, p)

    def _mean(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        keep = p[1] % 2 == 0
        shape = (1, 1, 1, x.shape[3]) if keep else (1, x.shape[3])
        props: dict[str, Attribute] = {"axes": nn.int_array([1, 2])}
        if keep:
            props["keep_dims"] = UnitAttr()
        out = TensorType(self.out_elem(p), shape)
        self.emit(nn.MeanOp(operands=[x.ssa], result_types=[out], properties=props), [x])

    def _pad(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        pads = [0, 0, p[0] % 2, p[1] % 3, p[2] % 2, p[3] % 2, 0, p[4] % 2]
        shape = tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x.shape))
        props = {"pads": nn.int_array(pads)}
        self.emit(nn.PadOp(operands=[x.ssa], result_types=[TensorType(x.elem, shape)], properties=props), [x])

    def _transpose(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        perms = ([0, 2, 1, 3], [0, 1, 3, 2], [0, 3, 1, 2], [0, 2, 3, 1])
        perm = perms[p[0] % len(perms)]
        shape = tuple(x.shape[i] for i in perm)
        props = {"perm": nn.int_array(perm)}
        self.emit(
            nn.TransposeOp(operands=[x.ssa], result_types=[TensorType(x.elem, shape)], properties=props), [x]
        )

    def _flatten(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        n = nn.num_elements(x.shape)
        self.emit(nn.ReshapeOp(x.ssa, TensorType(x.elem, (1, n))), [x])

    def _reshape2d(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        n = nn.num_elements(x.shape)
        self.emit(nn.ReshapeOp(x.ssa, TensorType(x.elem, (n, 1) if p[1] % 2 else (1, n))), [x])

    def _unary(
        self, cls: type[nn._UnaryOp], x: _Value, elem: Attribute, props: dict[str, Attribute] | None = None
    ) -> None:
        self.emit(cls(x.ssa, TensorType(elem, x.shape), **(props or {})), [x])

    def _relu(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._unary(nn.ReluOp, x, self.out_elem(p))

    def _relu6(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._unary(nn.Relu6Op, x, self.out_elem(p))

    def _clamp(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        lo = -(p[0] % 4) / 2
        props: dict[str, Attribute] = {"min": FloatAttr(lo, f64), "max": FloatAttr(lo + 0.5 + p[1] % 4, f64)}
        self._unary(nn.ClampOp, x, self.out_elem(p), props)

    def _fixed_out(self, scale: float, zp: int) -> Attribute:
        return UniformQuantizedType(scales=[scale], zero_points=[zp]) if self.spec.quantized else f32

    def _logistic(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._unary(nn.LogisticOp, x, self._fixed_out(1 / 256, -128))

    def _tanh(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._unary(nn.TanhOp, x, self._fixed_out(1 / 128, 0))

    def _softmax(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._unary(nn.SoftmaxOp, x, self._fixed_out(1 / 256, -128))

    def _binary(self, cls: type[nn._BinaryOp], x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        other = self.pick(layer.operands[1], len(x.shape))
        if other is None or other.shape != x.shape:
            # Broadcast against a per-channel constant instead.
            data = self.rng.normal(0, 1, (x.shape[-1],)).astype(np.float32)
            if self.spec.quantized:
                assert isinstance(x.elem, UniformQuantizedType)
                q = np.clip(np.round(data / x.elem.scale) + x.elem.zero_point, -128, 127).astype(np.int8)
                rhs = self.const(q, TensorType(x.elem, q.shape))
            else:
                rhs = self.const(data)
            operands = [x]
        else:
            rhs = other.ssa
            operands = [x, other]
        props = {"fused_activation": StringAttr(("none", "relu")[p[2] % 2])}
        self.emit(cls(x.ssa, rhs, TensorType(self.out_elem(p), x.shape), **props), operands)

    def _add(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._binary(nn.AddOp, x, layer, p)

    def _sub(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._binary(nn.SubOp, x, layer, p)

    def _mul(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        self._binary(nn.MulOp, x, layer, p)

    def _concat(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        axis = len(x.shape) - 1
        others = [v for v in self.values if v.shape[:-1] == x.shape[:-1] and len(v.shape) == len(x.shape)]
        others = [v for v in others if v.elem == x.elem]
        other = others[layer.operands[1] % len(others)]
        shape = (*x.shape[:-1], x.shape[-1] + other.shape[-1])
        op = nn.ConcatOp(
            operands=[[x.ssa, other.ssa]],
            result_types=[TensorType(x.elem, shape)],
            properties={"axis": IntegerAttr(axis, i64)},
        )
        self.emit(op, [x, other])

    def _fully_connected(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        units = 1 + p[3] % 6
        k = x.shape[-1]
        w, b = self.weights((units, k), 0, x.elem)
        out = TensorType(self.out_elem(p), (x.shape[0], units))
        operands: list[SSAValue | list[SSAValue]] = [x.ssa, w, []] if p[1] % 4 == 3 else [x.ssa, w, [b]]
        props = {"fused_activation": StringAttr(("none", "relu")[p[2] % 2])}
        self.emit(nn.FullyConnectedOp(operands=operands, result_types=[out], properties=props), [x])

    def _matmul(self, x: _Value, layer: LayerSpec, p: Sequence[int]) -> None:
        n = 1 + p[3] % 5
        k = x.shape[-1]
        if self.spec.quantized:
            rq = self.act_type(p[0], p[1])
            rhs = self.const(self.rng.integers(-128, 128, (k, n), dtype=np.int8), TensorType(rq, (k, n)))
        else:
            rhs = self.const(self.rng.normal(0, 0.5, (k, n)).astype(np.float32))
        out = TensorType(self.out_elem(p), (x.shape[0], n))
        self.emit(nn.MatMulOp(operands=[x.ssa, rhs], result_types=[out]), [x])

    def finish(self) -> ModuleOp:
        outputs = [v for v in self.values[1:] if id(v.ssa) not in self.used]
        if not outputs:
            outputs = [self.values[-1]]
        for op in self.ops:
            self.block.add_op(op)
        self.block.add_op(nn.OutputOp([v.ssa for v in outputs]))
        graph = nn.GraphOp(
            "random", [self.block.args[0].type], [v.ssa.type for v in outputs], Region([self.block])
        )
        return ModuleOp([graph])


def build_graph(spec: GraphSpec) -> ModuleOp:
    """The verified module a `GraphSpec` describes (one `nn.graph @random`)."""
    builder = _Builder(spec)
    for layer in spec.layers:
        builder.layer(layer)
    module = builder.finish()
    module.verify()
    return module


def spec_seed(spec: GraphSpec) -> int:
    """A stable integer derived from a spec (for seeding inputs)."""
    return zlib.crc32(repr(spec).encode())

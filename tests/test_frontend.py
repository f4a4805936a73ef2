"""The `.nn` frontend: lowering of every layer kind, weights, seeding and located errors."""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.printer import Printer

from nnopt.compiler.diagnostics import UserError, verify_module
from nnopt.compiler.frontend.lower import BIAS_LIMIT, init_array, lower_nn, uniform_bits
from nnopt.compiler.frontends import load_model
from nnopt.compiler.mlir_input import parse_mlir
from nnopt.compiler.registry import make_context
from nnopt.dialects import nn

from .conftest import ROOT

EXAMPLES = sorted((ROOT / "examples" / "models").glob("*.nn"))


def lower(text: str, name: str = "t.nn") -> ModuleOp:
    """Lower and verify."""
    module = lower_nn(text, name)
    verify_module(module)
    return module


def graph_of(module: ModuleOp) -> nn.GraphOp:
    (graph,) = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    return graph


def layer_op(module: ModuleOp, name: str) -> Operation:
    """The op whose result is named `name`."""
    for op in module.walk():
        if op.results and op.results[0].name_hint == name:
            return op
    raise AssertionError(f"no op named {name}")


def const_array(value: object) -> np.ndarray:
    op = value.owner  # type: ignore[attr-defined]
    assert isinstance(op, nn.ConstOp)
    return np.frombuffer(op.value.data.data, "<f4").reshape(op.value.type.get_shape())


def one_layer(layer: str, inputs: str = "input x: f32[1, 8, 8, 4]") -> Operation:
    module = lower(f"{inputs}\ny = {layer}\noutput y\n")
    return layer_op(module, "y")


# --------------------------------------------------------------------------
# Lowering of every layer kind
# --------------------------------------------------------------------------


def test_conv2d_shapes_layout_and_properties() -> None:
    op = one_layer("conv2d(x, filters=6, kernel=(3, 1), stride=2, padding=same, activation=relu)")
    assert isinstance(op, nn.Conv2DOp)
    assert nn.shape_of(op.weight) == (6, 3, 1, 4)  # OHWI
    assert op.bias is not None and nn.shape_of(op.bias) == (6,)
    assert nn.shape_of(op.output) == (1, 4, 4, 6)
    assert nn.ints(op.strides) == (2, 2)
    assert op.activation() == "relu"
    assert op.padding == StringAttr("same")


def test_conv2d_groups_dilation_no_bias() -> None:
    op = one_layer("conv2d(x, filters=8, kernel=3, dilation=2, groups=4, bias=false)")
    assert isinstance(op, nn.Conv2DOp)
    assert nn.shape_of(op.weight) == (8, 3, 3, 1)
    assert op.bias is None
    assert op.dilation_values() == (2, 2)
    assert nn.shape_of(op.output) == (1, 4, 4, 8)  # 8 - (3 - 1) * 2


def test_conv2d_explicit_padding() -> None:
    op = one_layer("conv2d(x, filters=2, kernel=3, padding=(2, 0, 1, 1))")
    assert isinstance(op, nn.Conv2DOp)
    assert nn.ints(op.padding) == (2, 0, 1, 1)  # type: ignore[arg-type]
    assert nn.shape_of(op.output) == (1, 8, 8, 2)


def test_depthwise_multiplier_layout() -> None:
    op = one_layer(
        "depthwise_conv2d(x, kernel=(3, 5), multiplier=3, stride=(1, 2), padding=same, activation=relu6)"
    )
    assert isinstance(op, nn.DepthwiseConv2DOp)
    assert nn.shape_of(op.weight) == (1, 3, 5, 12)
    assert nn.shape_of(op.output) == (1, 8, 4, 12)
    assert op.depth_multiplier() == 3
    assert op.activation() == "relu6"


def test_fully_connected_flattens_and_keeps_dims() -> None:
    fc = one_layer("fully_connected(x, units=5)")
    assert isinstance(fc, nn.FullyConnectedOp)
    assert nn.shape_of(fc.weight) == (5, 4)
    assert nn.shape_of(fc.output) == (64, 5)  # [numel / K, units]
    keep = one_layer("fully_connected(x, units=5, keep_dims=true, bias=false)")
    assert isinstance(keep, nn.FullyConnectedOp)
    assert nn.shape_of(keep.output) == (1, 8, 8, 5)
    assert keep.bias is None and keep.keep_num_dims is not None


def test_matmul_with_transposes() -> None:
    op = one_layer("matmul(a, b, transpose_a=true)", "input a: f32[2, 5, 3]\ninput b: f32[5, 7]")
    assert isinstance(op, nn.MatMulOp)
    assert nn.shape_of(op.output) == (2, 3, 7)
    assert op.adj_x is not None and op.adj_y is None


@pytest.mark.parametrize(("kind", "cls"), [("add", nn.AddOp), ("sub", nn.SubOp), ("mul", nn.MulOp)])
def test_binary_broadcasting_between_two_layers(kind: str, cls: type[Operation]) -> None:
    module = lower(
        "input x: f32[1, 4, 4, 3]\n"
        "m = mean(x, axes=[1, 2], keep_dims=true)\n"
        f"y = {kind}(x, m, activation=relu)\n"
        "output y\n"
    )
    op = layer_op(module, "y")
    assert isinstance(op, cls)
    assert nn.shape_of(op.results[0]) == (1, 4, 4, 3)
    assert op.operands[1] is layer_op(module, "m").results[0]


def test_number_operand_is_a_broadcast_constant() -> None:
    op = one_layer("mul(x, 0.25)")
    assert isinstance(op, nn.MulOp)
    assert const_array(op.rhs).tolist() == [0.25]


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("relu", nn.ReluOp),
        ("relu6", nn.Relu6Op),
        ("logistic", nn.LogisticOp),
        ("sigmoid", nn.LogisticOp),
        ("tanh", nn.TanhOp),
    ],
)
def test_unary_activations(kind: str, cls: type[Operation]) -> None:
    op = one_layer(f"{kind}(x)")
    assert isinstance(op, cls)
    assert nn.shape_of(op.results[0]) == (1, 8, 8, 4)


def test_clamp_and_softmax() -> None:
    clamp = one_layer("clamp(x, min=-0.5, max=2)")
    assert isinstance(clamp, nn.ClampOp)
    assert (clamp.min.value.data, clamp.max.value.data) == (-0.5, 2.0)
    soft = one_layer("softmax(x, beta=0.5)")
    assert isinstance(soft, nn.SoftmaxOp)
    assert soft.beta_value() == 0.5


def test_separate_activation_follows_the_layer() -> None:
    op = one_layer("conv2d(x, filters=2, kernel=1, activation=sigmoid)")
    assert isinstance(op, nn.LogisticOp)
    assert isinstance(op.input.owner, nn.Conv2DOp)
    assert op.input.owner.fused_activation is None


@pytest.mark.parametrize(("kind", "cls"), [("max_pool2d", nn.MaxPool2DOp), ("avg_pool2d", nn.AvgPool2DOp)])
def test_pools_default_to_stride_equal_kernel(kind: str, cls: type[Operation]) -> None:
    op = one_layer(f"{kind}(x, kernel=(2, 4))")
    assert isinstance(op, cls)
    assert nn.ints(op.strides) == (2, 4)  # type: ignore[attr-defined]
    assert nn.shape_of(op.results[0]) == (1, 4, 2, 4)
    same = one_layer(f"{kind}(x, kernel=3, stride=2, padding=same)")
    assert nn.shape_of(same.results[0]) == (1, 4, 4, 4)


def test_mean_reshape_flatten_transpose_pad_concat() -> None:
    module = lower(
        "input x: f32[1, 6, 4, 2]\n"
        "m = mean(x, axes=[-1])\n"
        "r = reshape(x, shape=[2, -1, 4])\n"
        "f = flatten(x)\n"
        "t = transpose(x, perm=[3, 0, 1, 2])\n"
        "p = pad(x, pads=[0, 0, 1, 2, 0, 0, 3, 0], value=-1)\n"
        "c = concat(x, x, x, axis=1)\n"
        "output m, r, f, t, p, c\n"
    )
    shapes = {n: nn.shape_of(layer_op(module, n).results[0]) for n in "mrftpc"}
    assert shapes == {
        "m": (1, 6, 4),
        "r": (2, 6, 4),
        "f": (1, 48),
        "t": (2, 1, 6, 4),
        "p": (1, 9, 4, 5),
        "c": (1, 18, 4, 2),
    }
    pad = layer_op(module, "p")
    assert isinstance(pad, nn.PadOp)
    assert pad.pad_pairs() == [(0, 0), (1, 2), (0, 0), (3, 0)] and pad.pad_value() == -1.0


def test_graph_names_locations_and_multiple_outputs() -> None:
    text = "model net\n# comment\ninput a: f32[1, 3]\ninput b: f32[1, 3]\ns = add(a, b)\n\noutput s, a\n"
    module = lower(text, "dir/net.nn")
    graph = graph_of(module)
    assert graph.sym_name.data == "net"
    assert graph.input_names() == ["a", "b"]
    assert graph.output_names() == ["s", "a"]
    loc = layer_op(module, "s").location
    assert isinstance(loc, FileLineColLoc)
    assert (loc.filename.data, loc.line.data, loc.column.data) == ("dir/net.nn", 5, 1)


def test_model_name_defaults_to_the_file_stem() -> None:
    module = lower("input x: f32[2]\noutput x\n", "models/my-net.v2.nn")
    assert graph_of(module).sym_name.data == "my_net_v2"


def test_statement_may_span_lines_inside_brackets() -> None:
    op = one_layer("conv2d(x,\n    filters=3,   # a comment\n\n    kernel=(1,\n            1))")
    assert nn.shape_of(op.results[0]) == (1, 8, 8, 3)


# Shape inference, checked against TFLite's formulas computed independently.
@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dil=st.integers(1, 2),
    same=st.booleans(),
)
def test_conv2d_output_shape_matches_tflite(
    h: int, w: int, kh: int, kw: int, sh: int, sw: int, dil: int, same: bool
) -> None:
    padding = "same" if same else "valid"
    text = (
        f"input x: f32[1, {h}, {w}, 2]\n"
        f"y = conv2d(x, filters=3, kernel=({kh}, {kw}), stride=({sh}, {sw}), dilation={dil}, padding={padding})\n"
        "output y\n"
    )
    eff_h, eff_w = (kh - 1) * dil + 1, (kw - 1) * dil + 1
    if same:
        expected = (math.ceil(h / sh), math.ceil(w / sw))
    else:
        expected = (math.ceil((h - eff_h + 1) / sh), math.ceil((w - eff_w + 1) / sw))
    if min(expected) < 1:
        with pytest.raises(UserError, match="is larger than the input"):
            lower(text)
        return
    op = layer_op(lower(text), "y")
    assert nn.shape_of(op.results[0]) == (1, *expected, 3)


# --------------------------------------------------------------------------
# Weights and deterministic initialisation
# --------------------------------------------------------------------------

MODEL = """model small
{header}
input x: f32[1, 4, 4, 2]
conv = conv2d(x, filters=3, kernel=2)
dw = depthwise_conv2d(conv, kernel=2, multiplier=2, bias=false)
flat = flatten(dw)
fc = fully_connected(flat, units=5)
output fc
"""


def weights_of(module: ModuleOp) -> dict[str, np.ndarray]:
    return {
        op.result.name_hint or "": const_array(op.result)
        for op in module.walk()
        if isinstance(op, nn.ConstOp)
    }


def test_weights_from_npz_relative_to_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    arrays = {
        "conv.weight": rng.standard_normal((3, 2, 2, 2)),  # float64: converted to f32
        "conv.bias": rng.standard_normal(3).astype(np.float32),
        "dw.weight": rng.standard_normal((1, 2, 2, 6)).astype(np.float32),
        "fc.weight": rng.standard_normal((5, 24)).astype(np.float32),
        "fc.bias": np.arange(5, dtype=np.int32),
    }
    (tmp_path / "m").mkdir()
    np.savez(tmp_path / "m" / "w.npz", **arrays)
    model = tmp_path / "m" / "small.nn"
    model.write_text(MODEL.format(header='weights "w.npz"'))
    monkeypatch.chdir(tmp_path)  # the archive is found next to the model, not in the cwd
    loaded = weights_of(load_model("m/small.nn"))
    for key, array in arrays.items():
        layer, role = key.split(".")
        np.testing.assert_array_equal(loaded[f"{layer}_{role}"], array.astype(np.float32))


def test_seeded_weights_are_deterministic_and_per_layer() -> None:
    a = weights_of(lower(MODEL.format(header="seed 3")))
    b = weights_of(lower(MODEL.format(header="seed 3")))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other_seed = weights_of(lower(MODEL.format(header="seed 4")))
    assert not np.array_equal(a["conv_weight"], other_seed["conv_weight"])
    # Another layer's presence does not change a layer's values: each is seeded by its own name.
    edited = MODEL.replace("flat = flatten(dw)", "extra = relu(dw)\nflat = flatten(dw)")
    np.testing.assert_array_equal(
        weights_of(lower(edited.format(header="seed 3")))["fc_weight"], a["fc_weight"]
    )
    # Without a seed statement the seed is 0.
    np.testing.assert_array_equal(
        weights_of(lower(MODEL.format(header="")))["conv_weight"],
        init_array(0, "conv.weight", (3, 2, 2, 2), 8),
    )


def test_seeded_initialisation_scheme() -> None:
    w = init_array(0, "layer.weight", (64, 3, 3, 16), 3 * 3 * 16)
    limit = math.sqrt(6 / (3 * 3 * 16))
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert abs(float(w.std()) - limit / math.sqrt(3)) < 0.02 * limit  # variance of U(-l, l) is l^2/3
    b = init_array(0, "layer.bias", (4096,), 0)
    assert np.abs(b).max() <= BIAS_LIMIT and abs(float(b.mean())) < 0.01


def test_uniform_bits_are_pinned() -> None:
    # docs/nn-format.md promises that seeded weights never change across numpy versions and
    # platforms. These values were recorded once (numpy 2.4, x86-64); a change here means every
    # seeded model silently changed its weights.
    assert uniform_bits(0, "conv1.weight", 3).tolist() == [
        0.3883987214296669,
        0.03862898907812495,
        0.8430396698519576,
    ]
    assert uniform_bits(7, "fc.bias", 2).tolist() == [0.21834318729980617, 0.8423708064406107]
    # A longer draw extends a shorter one (the stream does not depend on the count).
    np.testing.assert_array_equal(uniform_bits(0, "conv1.weight", 50)[:3], uniform_bits(0, "conv1.weight", 3))


def test_printed_ir_round_trips_the_weights_exactly() -> None:
    module = load_model(str(ROOT / "examples" / "models" / "kws_dscnn.nn"))
    stream = StringIO()
    Printer(stream=stream).print_op(module)
    again = parse_mlir(make_context(), stream.getvalue(), "kws.mlir")
    assert module.is_structurally_equivalent(again)
    for (k1, v1), (k2, v2) in zip(weights_of(module).items(), weights_of(again).items(), strict=True):
        assert k1 == k2
        np.testing.assert_array_equal(v1, v2)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_models_parse_and_verify(path: Path) -> None:
    module = load_model(str(path))
    graph = graph_of(module)
    assert graph.output_names(), path
    for op in graph.block.ops:
        assert isinstance(op.location, FileLineColLoc), op


# --------------------------------------------------------------------------
# Located errors: one per kind of mistake
# --------------------------------------------------------------------------

ERRORS = [
    # (id, model text, line, col, message fragment)
    ("syntax", "input x: f32[1, 4]\ny = relu(x\n", 2, 11, "syntax error: unexpected end of file"),
    ("bad-character", "input x: f32[1, 4]\ny = relu(x) @\n", 2, 13, "unexpected character '@'"),
    ("unterminated-string", 'weights "w.npz\ninput x: f32[1]\n', 1, 9, "unterminated string"),
    ("reserved-word", "input x: f32[1, 4]\ninput = relu(x)\n", 2, 7, "'input' is a reserved word"),
    (
        "unknown-kind",
        "input x: f32[1, 4]\ny = rleu(x)\noutput y\n",
        2,
        5,
        "unknown layer kind 'rleu'; did you mean 'relu'?",
    ),
    (
        "unknown-argument",
        "input x: f32[1, 4]\ny = softmax(x, axis=1)\noutput y\n",
        2,
        16,
        "unknown argument 'axis' for softmax",
    ),
    (
        "missing-argument",
        "input x: f32[1, 4]\ny = fully_connected(x)\noutput y\n",
        2,
        5,
        "fully_connected needs argument 'units'",
    ),
    (
        "bad-value",
        "input x: f32[1, 4, 4, 1]\ny = conv2d(x, filters=two, kernel=1)\noutput y\n",
        2,
        23,
        "argument 'filters' of conv2d must be a positive integer, got two",
    ),
    (
        "bad-padding",
        "input x: f32[1, 4, 4, 1]\ny = max_pool2d(x, kernel=2, padding=full)\noutput y\n",
        2,
        37,
        "must be same, valid or (top, bottom, left, right)",
    ),
    (
        "bad-flag",
        "input x: f32[1, 4]\ny = fully_connected(x, units=2, bias=0)\noutput y\n",
        2,
        38,
        "must be true or false",
    ),
    (
        "argument-twice",
        "input x: f32[1, 4]\ny = softmax(x, beta=1, beta=2)\noutput y\n",
        2,
        24,
        "argument 'beta' given twice",
    ),
    (
        "positional-after-keyword",
        "input x: f32[1, 4]\ny = add(x, activation=relu, x)\noutput y\n",
        2,
        29,
        "positional argument after keyword",
    ),
    ("input-count", "input x: f32[1, 4]\ny = add(x)\noutput y\n", 2, 5, "add takes 2 inputs, got 1"),
    (
        "literal-input",
        "input x: f32[1, 4]\ny = relu(1.5)\noutput y\n",
        2,
        10,
        "input of relu must be a layer or input name",
    ),
    ("undefined-name", "input x: f32[1, 4]\ny = relu(z)\noutput y\n", 2, 10, "undefined name 'z'"),
    (
        "used-before-defined",
        "input x: f32[1, 4]\ny = relu(z)\nz = relu(x)\noutput y\n",
        2,
        10,
        "'z' is used before it is defined (line 3)",
    ),
    (
        "duplicate-name",
        "input x: f32[1, 4]\ny = relu(x)\ny = tanh(x)\noutput y\n",
        3,
        1,
        "'y' is already defined (line 2)",
    ),
    (
        "self-reference",
        "input x: f32[1, 4]\ny = add(x, y)\noutput y\n",
        2,
        12,
        "layer 'y' cannot use its own result",
    ),
    ("duplicate-input", "input x: f32[1, 4]\ninput x: f32[1, 4]\noutput x\n", 2, 7, "'x' is already defined"),
    ("undefined-output", "input x: f32[1, 4]\noutput y\n", 2, 8, "undefined name 'y'"),
    ("duplicate-output", "input x: f32[1, 4]\noutput x, x\n", 2, 11, "'x' is already an output"),
    ("no-output", "input x: f32[1, 4]\ny = relu(x)\n", 2, 12, "the model has no output"),
    ("no-input", "output x\n", 1, 8, "undefined name 'x'"),
    ("bad-dtype", "input x: i8[1, 4]\noutput x\n", 1, 10, "unsupported element type 'i8'"),
    ("bad-dimension", "input x: f32[1, 0]\noutput x\n", 1, 17, "dimensions must be positive integers, got 0"),
    ("setting-twice", "seed 1\nseed 2\ninput x: f32[1]\noutput x\n", 2, 1, "'seed' given twice"),
    ("negative-seed", "seed -1\ninput x: f32[1]\noutput x\n", 1, 6, "seed must be a non-negative integer"),
    (
        "kernel-too-large",
        "input x: f32[1, 5, 5, 1]\ny = conv2d(x, filters=1, kernel=(3, 6))\noutput y\n",
        2,
        26,
        "conv2d kernel 3x6 is larger than the input 5x5",
    ),
    (
        "dilated-kernel-too-large",
        "input x: f32[1, 5, 5, 1]\ny = depthwise_conv2d(x, kernel=3, dilation=3)\noutput y\n",
        2,
        25,
        "kernel 3x3 (dilated to 7x7) is larger than the input 5x5",
    ),
    (
        "conv-rank",
        "input x: f32[1, 5, 5]\ny = conv2d(x, filters=1, kernel=1)\noutput y\n",
        2,
        12,
        "conv2d needs a rank-4 NHWC input, got 'x' [1, 5, 5]",
    ),
    (
        "groups",
        "input x: f32[1, 5, 5, 6]\ny = conv2d(x, filters=4, kernel=1, groups=3)\noutput y\n",
        2,
        43,
        "groups=3 must divide both the input channels (6) and filters (4)",
    ),
    (
        "reshape-count",
        "input x: f32[1, 6]\ny = reshape(x, shape=[4, 2])\noutput y\n",
        2,
        22,
        "(6 elements) to [4, 2] (8 elements)",
    ),
    (
        "reshape-two-unknowns",
        "input x: f32[1, 6]\ny = reshape(x, shape=[-1, -1])\noutput y\n",
        2,
        22,
        "more than one -1",
    ),
    (
        "broadcast",
        "input a: f32[1, 3]\ninput b: f32[1, 4]\ny = add(a, b)\noutput y\n",
        3,
        1,
        "'a' [1, 3] and 'b' [1, 4] do not broadcast",
    ),
    (
        "matmul",
        "input a: f32[2, 3]\ny = matmul(a, a)\noutput y\n",
        2,
        1,
        "matmul cannot multiply 'a' [2, 3] by 'a' [2, 3]",
    ),
    (
        "concat",
        "input a: f32[1, 3, 2]\ninput b: f32[1, 4, 2]\ny = concat(a, b)\noutput y\n",
        3,
        15,
        "concat inputs must match off axis 2",
    ),
    (
        "transpose",
        "input a: f32[1, 3, 2]\ny = transpose(a, perm=[0, 1, 1])\noutput y\n",
        2,
        23,
        "is not a permutation of the 3 dimensions",
    ),
    ("mean-axes", "input a: f32[1, 3]\ny = mean(a, axes=[2])\noutput y\n", 2, 18, "axes [2] out of range"),
    (
        "pad-rank",
        "input a: f32[1, 3]\ny = pad(a, pads=[(1, 1)])\noutput y\n",
        2,
        17,
        "needs 2 (before, after) pairs, got 1",
    ),
    (
        "clamp-bounds",
        "input a: f32[1, 3]\ny = clamp(a, min=2, max=1)\noutput y\n",
        2,
        14,
        "clamp needs min <= max",
    ),
    (
        "softmax-beta",
        "input a: f32[1, 3]\ny = softmax(a, beta=0)\noutput y\n",
        2,
        21,
        "softmax needs beta > 0",
    ),
    (
        "missing-weights-file",
        'weights "nope.npz"\ninput a: f32[1, 3]\noutput a\n',
        1,
        9,
        "weights file 'nope.npz' not found",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_located_error(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        lower(text)
    assert info.value.location == f"t.nn:{line}:{col}", str(info.value)
    assert fragment in info.value.message, str(info.value)
    # The message ends with the offending line and a caret under the column.
    _, source_line, caret = info.value.message.rsplit("\n", 2)
    assert source_line == text.splitlines()[line - 1]
    assert caret == " " * (col - 1) + "^"


def test_non_utf8_model_is_a_located_error() -> None:
    from nnopt.compiler.frontend.lower import parse_nn

    with pytest.raises(UserError) as info:
        parse_nn(b"input x: f32[1]\n\xff\n", "bin.nn", make_context())
    assert info.value.location == "bin.nn:2:1"


def _weights_model(tmp_path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(tmp_path / "w.npz", **arrays)
    path = tmp_path / "m.nn"
    path.write_text('weights "w.npz"\ninput x: f32[1, 4]\nfc = fully_connected(x, units=2)\noutput fc\n')
    return path


def test_missing_array_is_located_at_the_layer(tmp_path: Path) -> None:
    path = _weights_model(tmp_path, {"fc.weight": np.zeros((2, 4))})
    with pytest.raises(UserError) as info:
        load_model(str(path))
    assert info.value.location == f"{path}:3:1"
    assert "has no array 'fc.bias' (expected shape [2]) (or set bias=false)" in info.value.message


def test_weight_shape_mismatch_names_the_layout(tmp_path: Path) -> None:
    path = _weights_model(tmp_path, {"fc.weight": np.zeros((4, 2)), "fc.bias": np.zeros(2)})
    with pytest.raises(UserError) as info:
        load_model(str(path))
    assert info.value.location == f"{path}:3:1"
    assert "array 'fc.weight'" in info.value.message
    assert "has shape [4, 2], expected [2, 4] [units, K]" in info.value.message


def test_unused_arrays_are_reported(tmp_path: Path) -> None:
    arrays = {"fc.weight": np.zeros((2, 4)), "fc.bias": np.zeros(2), "fc2.weight": np.zeros(1)}
    path = _weights_model(tmp_path, arrays)
    with pytest.raises(UserError) as info:
        load_model(str(path))
    assert info.value.location == f"{path}:1:9"
    assert "1 array(s) that no layer uses: fc2.weight" in info.value.message


def test_weights_file_that_is_not_an_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npz.npy", np.zeros(3))
    (tmp_path / "w.npz").write_bytes((tmp_path / "w.npz.npy").read_bytes())
    path = tmp_path / "m.nn"
    path.write_text('weights "w.npz"\ninput x: f32[1, 4]\noutput x\n')
    with pytest.raises(UserError, match=r"is not an .npz archive of named arrays \(a single .npy array\)"):
        load_model(str(path))
    (tmp_path / "w.npz").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"is not an .npz archive of named arrays \(not a zip file\)"):
        load_model(str(path))
    (tmp_path / "w.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="cannot read weights file"):
        load_model(str(path))


@pytest.mark.parametrize("doc", ["docs/nn-format.md", "README.md"])
def test_documented_models_lower(doc: str) -> None:
    blocks = [b for b in (ROOT / doc).read_text().split("```")[1::2] if "\noutput " in b and "input " in b]
    assert blocks, f"{doc} shows no .nn model"
    for block in blocks:
        body = block.split("\n", 1)[1]  # drop the fence's language tag
        graph = graph_of(lower(body, "doc.nn"))
        assert graph.output_names() == ["probs"]


# --------------------------------------------------------------------------
# Running lowered models (numpy interpreter)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_models_run(path: Path) -> None:
    from nnopt.backends.numpy import run

    module = load_model(str(path))
    graph = graph_of(module)
    rng = np.random.default_rng(0)
    inputs = {
        name: rng.standard_normal(nn.shape_of(arg)).astype(np.float32)
        for name, arg in zip(graph.input_names(), graph.block.args, strict=True)
    }
    outputs = run(module, inputs)
    assert list(outputs) == graph.output_names()
    for name, value in zip(graph.output_names(), graph.output.values, strict=True):
        out = outputs[name]
        assert out.shape == nn.shape_of(value) and out.dtype == np.float32
        assert np.isfinite(out).all()
        if isinstance(value.owner, nn.SoftmaxOp):
            np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_weights_land_where_the_layouts_say(tmp_path: Path) -> None:
    """A model with .npz weights computes what the documented layouts mean (checked with loops)."""
    from nnopt.backends.numpy import run

    rng = np.random.default_rng(2)
    w_conv = rng.standard_normal((3, 2, 3, 2)).astype(np.float32)  # [filters, KH, KW, Cin]
    b_conv = rng.standard_normal(3).astype(np.float32)
    w_dw = rng.standard_normal((1, 2, 2, 6)).astype(np.float32)  # [1, KH, KW, Cin*multiplier]
    w_fc = rng.standard_normal((4, 6)).astype(np.float32)  # [units, K]
    b_fc = rng.standard_normal(4).astype(np.float32)
    np.savez(tmp_path / "w.npz", **{"conv.weight": w_conv, "conv.bias": b_conv, "dw.weight": w_dw})
    np.savez(tmp_path / "w2.npz", **{"fc.weight": w_fc, "fc.bias": b_fc})
    (tmp_path / "m.nn").write_text(
        'weights "w.npz"\ninput x: f32[1, 4, 5, 2]\n'
        "conv = conv2d(x, filters=3, kernel=(2, 3))\n"
        "dw = depthwise_conv2d(conv, kernel=2, multiplier=2, bias=false)\n"
        "output dw\n"
    )
    (tmp_path / "fc.nn").write_text(
        'weights "w2.npz"\ninput v: f32[2, 6]\nfc = fully_connected(v, units=4, activation=relu)\noutput fc\n'
    )
    x = rng.standard_normal((1, 4, 5, 2)).astype(np.float32)
    conv = np.zeros((1, 3, 3, 3), np.float64)
    for i in range(3):
        for j in range(3):
            for o in range(3):
                conv[0, i, j, o] = np.sum(x[0, i : i + 2, j : j + 3, :] * w_conv[o]) + b_conv[o]
    dw = np.zeros((1, 2, 2, 6), np.float64)
    for i in range(2):
        for j in range(2):
            for c in range(3):
                for m in range(2):
                    dw[0, i, j, c * 2 + m] = np.sum(
                        conv[0, i : i + 2, j : j + 2, c] * w_dw[0, :, :, c * 2 + m]
                    )
    got = run(load_model(str(tmp_path / "m.nn")), {"x": x})["dw"]
    np.testing.assert_allclose(got, dw, rtol=1e-4, atol=1e-4)
    v = rng.standard_normal((2, 6)).astype(np.float32)
    got_fc = run(load_model(str(tmp_path / "fc.nn")), [v])["fc"]
    np.testing.assert_allclose(got_fc, np.maximum(v @ w_fc.T + b_fc, 0), rtol=1e-5, atol=1e-5)

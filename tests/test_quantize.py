"""``nn-quantize``: integer-only graphs, weight granularity, skip lists, calibration methods, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, NameLoc, StringAttr

from nnopt.backends.numpy import run
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontend.lower import parse_nn
from nnopt.compiler.registry import make_context
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType
from nnopt.passes.analysis import calibration as cal
from nnopt.passes.quantize import QuantizePass, activation_type, quantize_weights, weight_scales
from nnopt.testing import GraphSpec, LayerSpec, build_graph, graph_specs

CNN = """model tiny
seed 3
input  image: f32[1, 8, 8, 3]
conv   = conv2d(image, filters=6, kernel=3, stride=1, padding=same, activation=relu)
dw     = depthwise_conv2d(conv, kernel=3, padding=same, activation=relu6)
pool   = max_pool2d(dw, kernel=2, stride=2)
res    = add(pool, pool)
gap    = mean(res, axes=[1, 2])
logits = fully_connected(gap, units=4)
probs  = softmax(logits)
output probs
"""


def _module(text: str = CNN) -> ModuleOp:
    return parse_nn(text.encode(), "tiny.nn", make_context())


def _graph(module: ModuleOp) -> nn.GraphOp:
    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def _quantize(module: ModuleOp, **options: object) -> list:
    options.setdefault("calibration_seed", 0)
    return QuantizePass(**options).run(module, progress=False)  # type: ignore[arg-type]


def _snr(ref: np.ndarray, got: np.ndarray) -> float:
    err = float(np.sum((ref.astype(np.float64) - got) ** 2))
    return np.inf if err == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / err)


def _ops(module: ModuleOp, kind: type) -> list:
    return [op for op in _graph(module).block.ops if isinstance(op, kind)]


# --------------------------------------------------------------------------
# Integer-only graphs
# --------------------------------------------------------------------------


def test_only_the_borders_are_float_and_the_interpreter_runs_integers() -> None:
    module = _module()
    reference = module.clone()
    _quantize(module, samples=16)
    graph = _graph(module)
    for op in graph.block.ops:
        if isinstance(op, nn.OutputOp | nn.ConstOp):
            continue
        if isinstance(op, nn.QuantizeOp) and nn.is_float(op.input):
            assert op.input in graph.block.args  # the input border
            continue
        if isinstance(op, nn.DequantizeOp):
            assert all(isinstance(u.operation, nn.OutputOp) for u in op.output.uses)  # the output border
            continue
        assert all(nn.is_quantized(v) for v in (*op.operands, *op.results)), op
        assert isinstance(op, nn.QuantizableOp) == ("qparams" in op.properties), op
    # Every intermediate the interpreter computes between the borders holds integers.
    dtypes: list[tuple[str, np.dtype]] = []
    x = np.random.default_rng(7).standard_normal((1, 8, 8, 3)).astype(np.float32)
    got = run(module, {"image": x}, dump=lambda name, op, v: dtypes.append((op.name, v.dtype)))["probs"]
    inner = [d for name, d in dtypes if name not in ("nn.dequantize",)]
    assert inner and all(d.kind in "iu" for d in inner), dtypes
    want = run(reference, {"image": x})["probs"]
    assert np.abs(got - want).max() < 0.05
    assert int(np.argmax(got)) == int(np.argmax(want))


def test_quantized_interface_takes_and_returns_integers() -> None:
    module = _module()
    _quantize(module, interface="quantized")
    graph = _graph(module)
    assert nn.is_quantized(graph.block.args[0]) and nn.is_quantized(graph.output.values[0])
    assert graph.input_names() == ["image"] and graph.output_names() == ["probs"]
    assert not _ops(module, nn.DequantizeOp) and not _ops(module, nn.QuantizeOp)
    out = nn.elem_of(graph.output.values[0])
    assert isinstance(out, UniformQuantizedType) and (out.scale, out.zero_point) == (1 / 256, -128)
    q = nn.elem_of(graph.block.args[0])
    assert isinstance(q, UniformQuantizedType)
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 8, 3), dtype=np.int8)
    assert run(module, {"image": x})["probs"].dtype == np.int8


def test_fixed_and_inherited_output_types() -> None:
    text = """model fixed
input x: f32[1, 4, 4, 2]
a = logistic(x)
b = tanh(x)
m = max_pool2d(x, kernel=2, stride=2)
r = reshape(m, shape=[1, -1])
c = concat(a, b, axis=3)
output c, r
"""
    module = _module(text)
    _quantize(module)
    elem = {
        op.results[0].name_hint: nn.elem_of(op.results[0]) for op in _graph(module).block.ops if op.results
    }
    assert (elem["a"].scale, elem["a"].zero_point) == (1 / 256, -128)
    assert (elem["b"].scale, elem["b"].zero_point) == (1 / 128, 0)
    x_q = nn.elem_of(_ops(module, nn.QuantizeOp)[0].output)
    assert elem["m"] == x_q and elem["r"] == x_q  # pools and reshapes keep their input's quantization
    # Concat: one type spanning both inputs' ranges, the inputs requantized into it.
    c = elem["c"]
    assert (
        c.scale * (127 - c.zero_point) >= 1.0 - 1 / 128 and c.scale * (-128 - c.zero_point) <= -1.0 + 1 / 128
    )
    concat = _ops(module, nn.ConcatOp)[0]
    assert all(nn.elem_of(v) == c for v in concat.inputs)


def test_fused_activation_folds_into_the_clamp() -> None:
    module = _module()
    _quantize(module)
    conv = _ops(module, nn.Conv2DOp)[0]
    out = nn.elem_of(conv.output)
    assert out.zero_point == -128  # relu output: range [0, max]
    dw = _ops(module, nn.DepthwiseConv2DOp)[0]
    dq = nn.elem_of(dw.output)
    clamp = list(dw.qparams.data["clamp"].get_values())  # type: ignore[union-attr]
    assert clamp[0] == max(-128, dq.zero_point)
    assert clamp[1] <= min(127, dq.zero_point + round(6 / dq.scale))


# --------------------------------------------------------------------------
# Weights: per-channel vs per-tensor
# --------------------------------------------------------------------------


def _bias_checks(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.FullyConnectedOp) -> None:
    wq, bq, xq = nn.elem_of(op.weight), nn.elem_of(op.bias), nn.elem_of(op.input)
    assert bq.width == 32 and set(bq.zero_point_values) == {0}
    for sb, sw in zip(bq.scale_values, wq.scale_values, strict=True):
        assert sb == pytest.approx(xq.scale * sw, rel=1e-6)


@pytest.mark.parametrize("weights", ["per-channel", "per-tensor"])
def test_weight_granularity(weights: str) -> None:
    module = _module()
    _quantize(module, weights=weights)
    for op in (
        _ops(module, nn.Conv2DOp) + _ops(module, nn.DepthwiseConv2DOp) + _ops(module, nn.FullyConnectedOp)
    ):
        wq = nn.elem_of(op.weight)
        assert (wq.qmin, wq.qmax) == (-127, 127) and set(wq.zero_point_values) == {0}
        if weights == "per-channel":
            axis = 3 if isinstance(op, nn.DepthwiseConv2DOp) else 0
            assert wq.axis == axis and len(wq.scale_values) == nn.shape_of(op.weight)[axis]
        else:
            assert wq.axis is None
        _bias_checks(op)
        w = np.frombuffer(op.weight.owner.value.data.data, dtype=np.int8)  # type: ignore[union-attr]
        assert w.min() >= -127 and np.abs(w).max() == 127


def test_per_channel_beats_per_tensor_on_unbalanced_channels() -> None:
    """Channels whose weights differ 100x in size: per-tensor scales crush the small ones."""
    rng = np.random.default_rng(0)
    w = (
        rng.normal(0, 1, (4, 3, 3, 2)).astype(np.float32)
        * np.array([1, 0.01, 0.3, 0.02], np.float32)[:, None, None, None]
    )

    def build() -> ModuleOp:
        from nnopt.compiler.importers.common import dense_attr

        text = """nn.graph @g(%x: tensor<1x6x6x2xf32>) -> tensor<1x6x6x4xf32> {
  %w = nn.const dense<0.0> : tensor<4x3x3x2xf32>
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x6x6x2xf32>, tensor<4x3x3x2xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}"""
        from nnopt.compiler.mlir_input import parse_mlir

        module = parse_mlir(make_context(), text.encode(), "g.mlir")
        const = next(op for op in module.walk() if isinstance(op, nn.ConstOp))
        const.value = dense_attr(w, const.value.type.get_element_type())
        return module

    snr = {}
    for weights in ("per-channel", "per-tensor"):
        module = build()
        _quantize(module, weights=weights, samples=8)
        conv = _ops(module, nn.Conv2DOp)[0]
        wq = nn.elem_of(conv.weight)
        q = np.frombuffer(conv.weight.owner.value.data.data, np.int8).reshape(w.shape)  # type: ignore[union-attr]
        scales = np.broadcast_to(np.asarray(wq.scale_values), (4,))[:, None, None, None]
        back = q * scales
        snr[weights] = [_snr(w[c], back[c]) for c in range(4)]
    # Per channel, every channel gets ~42 dB (7 bits); per tensor the small ones lose all but a few levels.
    assert all(s > 35 for s in snr["per-channel"]), snr
    assert snr["per-tensor"][1] < 10 and snr["per-tensor"][3] < 15, snr
    assert all(pc >= pt - 0.5 for pc, pt in zip(snr["per-channel"], snr["per-tensor"], strict=True))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31),
    st.sampled_from([None, 0, 1]),
    st.floats(1e-3, 1e3),
)
def test_weight_roundtrip_within_half_a_step(seed: int, axis: int | None, magnitude: float) -> None:
    w = (np.random.default_rng(seed).standard_normal((3, 5)) * magnitude).astype(np.float32)
    scales = weight_scales(w, axis)
    q, qt = quantize_weights(w, axis, scales)
    s = np.asarray(scales, np.float64)
    if axis is not None:
        s = s.reshape((-1, 1) if axis == 0 else (1, -1))
    back = q.astype(np.float64) * s
    assert np.all(np.abs(back - w) <= s / 2 * (1 + 1e-5))
    assert np.all(np.abs(q) <= 127) and qt.qmin == -127


@settings(max_examples=150, deadline=None)
@given(
    st.floats(-1e4, 0.0, allow_subnormal=False),
    st.floats(0.0, 1e4, allow_subnormal=False),
    st.integers(0, 2**31),
    st.sampled_from([8, 16]),
)
def test_activation_roundtrip_within_half_a_step(lo: float, hi: float, seed: int, width: int) -> None:
    assume(hi - lo > 1e-3)
    qt = activation_type(lo, hi, width)
    x = np.random.default_rng(seed).uniform(lo, hi, 200).astype(np.float32)
    q = np.clip(np.round(x.astype(np.float64) / qt.scale) + qt.zero_point, qt.qmin, qt.qmax)
    back = (q - qt.zero_point) * qt.scale
    assert np.all(np.abs(back - x) <= qt.scale / 2 * (1 + 1e-4) + 1e-6 * max(abs(lo), hi))
    # 0 is exact, the zero point is stored, the range is covered
    assert qt.qmin <= qt.zero_point <= qt.qmax
    assert qt.scale * (qt.qmax - qt.zero_point) >= hi * (1 - 1e-3) - qt.scale
    assert qt.scale * (qt.qmin - qt.zero_point) <= lo * (1 - 1e-3) + qt.scale


# --------------------------------------------------------------------------
# Skip lists
# --------------------------------------------------------------------------


def test_skip_keeps_layers_in_float_with_borders() -> None:
    module = _module()
    (record,) = _quantize(module, skip=("dw", "logits"))
    graph = _graph(module)
    by_name = {op.results[0].name_hint: op for op in graph.block.ops if op.results}
    for name in ("dw", "logits"):
        op = by_name[name]
        assert all(nn.is_float(v) for v in (*op.operands, *op.results))
        assert "qparams" not in op.properties
    dw = by_name["dw"]
    assert isinstance(dw.input.owner, nn.DequantizeOp)  # float border in
    assert any(isinstance(u.operation, nn.QuantizeOp) for u in dw.output.uses)  # and out again
    assert nn.is_quantized(by_name["conv"].output) and nn.is_quantized(by_name["probs"].output)
    assert {layer.name for layer in record.kept_float} == {"dw", "logits"}
    x = np.random.default_rng(2).standard_normal((1, 8, 8, 3)).astype(np.float32)
    run(module, {"image": x})


def test_skip_by_location_name() -> None:
    module = _module()
    conv = next(op for op in _graph(module).block.ops if op.results and op.results[0].name_hint == "conv")
    conv.location = NameLoc(
        StringAttr("model/conv2d/Conv2D"), FileLineColLoc(StringAttr("m.tflite"), IntAttr(0), IntAttr(0))
    )
    _quantize(module, skip=("model/conv2d/Conv2D",))
    conv = next(op for op in _graph(module).block.ops if op.results and op.results[0].name_hint == "conv")
    assert nn.is_float(conv.output)


def test_unknown_skip_name_is_one_error() -> None:
    with pytest.raises(UserError, match=r"skip: no op named 'nope'.*\(ops: conv, dw"):
        _quantize(_module(), skip=("nope",))


def test_int16_keeps_softmax_in_float_and_is_closer() -> None:
    x = np.random.default_rng(5).standard_normal((1, 8, 8, 3)).astype(np.float32)
    logits = CNN.replace("probs  = softmax(logits)\noutput probs", "output logits")
    want = run(_module(logits), {"image": x})["logits"]
    snr = {}
    for acts in ("int8", "int16"):
        module = _module(logits)
        _quantize(module, activations=acts, samples=16)
        snr[acts] = _snr(want, run(module, {"image": x})["logits"])
    # int8 weights (7 bits) bound both; 16-bit activations still remove the activation rounding.
    assert snr["int16"] > snr["int8"] + 2, snr
    module = _module()
    (record,) = _quantize(module, activations="int16")
    assert [(layer.name, layer.note) for layer in record.kept_float] == [("probs", "no int16 kernel")]
    conv = _ops(module, nn.Conv2DOp)[0]
    assert nn.elem_of(conv.output).width == 16 and nn.elem_of(conv.output).zero_point == 0


@pytest.mark.parametrize("rounding", ["single", "onnx_rint"])
def test_rounding_modes_stay_within_a_few_steps(rounding: str) -> None:
    x = np.random.default_rng(3).standard_normal((1, 8, 8, 3)).astype(np.float32)
    base = _module()
    _quantize(base)
    module = _module()
    _quantize(module, rounding=rounding)
    assert {op.rounding.data for op in _graph(module).walk() if isinstance(op, nn.QuantizableOp)} == {
        rounding
    }
    a, b = run(base, {"image": x})["probs"], run(module, {"image": x})["probs"]
    assert np.abs(a - b).max() <= 4 / 256


# --------------------------------------------------------------------------
# Calibration methods
# --------------------------------------------------------------------------


def _observe(method: str, data: np.ndarray, percentile: float = 99.9) -> tuple[float, float]:
    obs = cal.RangeObserver(method, percentile)
    obs.observe_extremes(data)
    if obs.needs_histogram:
        obs.observe_histogram(data)
    return obs.range()


def _error(data: np.ndarray, lo: float, hi: float) -> float:
    qt = activation_type(lo, hi)
    q = np.clip(np.round(data / qt.scale) + qt.zero_point, -128, 127)
    return float(np.mean(((q - qt.zero_point) * qt.scale - data) ** 2))


def test_methods_on_a_distribution_with_outliers() -> None:
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.standard_normal(100_000), [60.0, -45.0]]).astype(np.float64)
    mm = _observe("minmax", data)
    pc = _observe("percentile", data, 99.9)
    ms = _observe("mse", data)
    assert mm == (-45.0, 60.0)
    assert 2.5 < pc[1] < 4.5 and -4.5 < pc[0] < -2.5  # 0.05% cut from each tail of a normal: ~3.3
    # MSE trades the two outliers' clipping against finer steps for the rest: narrower than minmax,
    # the least squared error of the three (the percentile range clips far too much here).
    assert ms[0] > -45.0 and ms[1] < 60.0
    assert _error(data, *ms) < 0.9 * _error(data, *mm) and _error(data, *ms) < 0.5 * _error(data, *pc)
    heavy = rng.laplace(0, 1, 200_000)
    errors = {m: _error(heavy, *_observe(m, heavy)) for m in cal.METHODS}
    assert errors["mse"] == min(errors.values()), errors
    # A relu-like tensor keeps 0 as its lower bound under every method
    relu = np.maximum(data, 0)
    for method in cal.METHODS:
        assert _observe(method, relu)[0] == 0.0


@pytest.mark.parametrize("method", cal.METHODS)
def test_each_method_quantizes_a_model(method: str) -> None:
    x = np.random.default_rng(4).standard_normal((1, 8, 8, 3)).astype(np.float32)
    want = run(_module(), {"image": x})["probs"]
    module = _module()
    _quantize(module, method=method, percentile=99.9, samples=16)
    got = run(module, {"image": x})["probs"]
    assert _snr(want, got) > 20


def test_batched_runs_match_sample_by_sample() -> None:
    module = _module()
    _quantize(module)
    for graph in (_graph(_module()), _graph(module)):
        runner = cal.GraphRunner(graph, max_batch=5)
        assert runner.batched
        data = cal.synthetic_calibration(graph, 1, 5)
        outs, caps = runner.run(data.inputs, capture=lambda op: True)
        for i in range(5):
            seen: dict[str, np.ndarray] = {}
            single = run(
                graph,
                {"image": data.inputs["image"][i]},
                dump=lambda n, op, v, seen=seen: seen.__setitem__(n, v),
            )
            np.testing.assert_allclose(outs["probs"][i], single["probs"], rtol=1e-5, atol=1e-6)
            for op, value in caps.items():
                if op.results[0].name_hint in seen:
                    np.testing.assert_allclose(value[i], seen[op.results[0].name_hint], rtol=1e-5, atol=1e-5)


def test_calibration_file_and_progress(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "calib.npz"
    np.savez(path, image=rng.uniform(0, 1, (10, 1, 8, 8, 3)).astype(np.float32))
    module = _module()
    (record,) = _quantize(module, calibration_seed=-1, calibration=str(path))
    assert record.calibration.startswith("calib.npz, 10 samples") and "synthetic" not in record.calibration
    x_q = nn.elem_of(_ops(module, nn.QuantizeOp)[0].output)
    assert x_q.zero_point == -128 and x_q.scale == pytest.approx(1 / 255, rel=0.02)  # input range [0, 1]
    import io

    stream = io.StringIO()
    bar = cal.Progress("calibrating", 10, stream, force=True)
    bar.advance(4)
    bar.advance(6)
    bar.close()
    assert "calibrating [" in stream.getvalue() and "10/10 samples" in stream.getvalue()


# --------------------------------------------------------------------------
# Random float graphs
# --------------------------------------------------------------------------


# x + x, minus itself (constant zero), its mean, then a logistic: degenerate ranges must not give the
# logistic an input scale so small that its integer parameters overflow.
_ZERO_CHAIN = GraphSpec(
    (1, 1, 1, 1),
    False,
    0,
    tuple(
        LayerSpec(kind, (a, 0), (0,) * 6)
        for kind, a in (("add", 0), ("sub", 0), ("mean", 50), ("logistic", 3))
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(quantized=False, max_layers=6))
@example(_ZERO_CHAIN)
def test_random_float_graphs_quantize_and_stay_close(spec: object) -> None:
    """Loose bound: on the calibration samples every output element is within 20% of the float output's
    largest magnitude. Measured worst cases: 0.105 over 400 drawn graphs of up to 10 layers (int8 tanh
    after a wide conv: coarse input steps on its steep part), 0.067 over 1,500 of up to 6 layers."""
    module = build_graph(spec)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float pools whose window is all padding: 0 / 0
        (record,) = _quantize(module, samples=8)
        module.verify()
        data = cal.synthetic_calibration(record.graph, 0, 8)
        ref, _ = cal.GraphRunner(record.reference).run(data.inputs)
        got, _ = cal.GraphRunner(record.graph).run(data.inputs)
    assert set(ref) == set(got)
    for name, want in ref.items():
        if not np.all(np.isfinite(want)):
            continue
        bound = float(np.abs(want).max())
        assert np.abs(got[name].astype(np.float64) - want).max() <= 0.2 * bound + 1e-6, name


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "kl"}, "unknown calibration method 'kl'"),
        ({"percentile": 120.0, "method": "percentile"}, "percentile must be in (50, 100]"),
        ({"weights": "per-row"}, "unknown weights 'per-row'"),
        ({"activations": "int4"}, "unknown activations 'int4'"),
        ({"rounding": "up"}, "unknown rounding 'up'"),
        ({"interface": "int"}, "unknown interface 'int'"),
        ({"calibration_seed": -1}, "needs calibration samples"),
        ({"calibration": "x.npz"}, "either calibration=FILE.npz or calibration-seed=N"),
        ({"input_range": "5:1"}, "finite LO < HI"),
        ({"samples": 0}, "must be positive"),
    ],
)
def test_bad_options_give_one_clear_error(options: dict[str, object], message: str) -> None:
    module = _module()
    before = str(module)
    with pytest.raises(UserError) as info:
        _quantize(module, **options)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(module) == before  # nothing changed


def test_bad_calibration_files(tmp_path: Path) -> None:
    cases = {
        "shape.npz": ({"image": np.zeros((4, 8, 8, 3), np.float32)}, "expected [samples, 1, 8, 8, 3]"),
        "name.npz": ({"a": np.zeros((2, 1, 8, 8, 3)), "b": np.zeros(2)}, "no array for input(s) image"),
        "nan.npz": ({"image": np.full((2, 1, 8, 8, 3), np.nan)}, "NaN"),
    }
    for file, (arrays, message) in cases.items():
        np.savez(tmp_path / file, **arrays)
        with pytest.raises(
            UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
        ):
            _quantize(_module(), calibration_seed=-1, calibration=str(tmp_path / file))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(UserError, match="cannot read calibration file"):
        _quantize(_module(), calibration_seed=-1, calibration=str(tmp_path / "text.npz"))


def test_already_quantized_graph_is_refused() -> None:
    module = _module()
    _quantize(module)
    with pytest.raises(UserError, match="nn-quantize takes float graphs"):
        _quantize(module)


# --------------------------------------------------------------------------
# The TFLite converter's arithmetic
# --------------------------------------------------------------------------


def test_reproduces_the_converter_given_its_activation_ranges() -> None:
    """With the converter's activation types imposed, every weight, bias, scale and integer parameter of
    nnopt's ResNet-8 and AD autoencoder equals the converter's int8 model (same float weights)."""
    from nnopt.backends.numpy.arrays import const_value
    from nnopt.compiler.frontends import load_model
    from nnopt.dialects import qparams
    from nnopt.passes.quantize import QuantizeConfig, quantize_graph

    from .conftest import shared_path

    for stem in ("mlperf_tiny_ic_resnet8", "mlperf_tiny_ad_autoencoder"):
        module = load_model(str(shared_path("models", f"{stem}_f32.tflite")))
        converter = _graph(load_model(str(shared_path("models", f"{stem}_int8.tflite"))))
        graph = _graph(module)
        skip = (nn.ConstOp, nn.OutputOp)
        ours = [(i, op) for i, op in enumerate(graph.block.ops) if not isinstance(op, skip)]
        theirs = [op for op in converter.block.ops if not isinstance(op, skip)]
        types = {i: nn.elem_of(t.results[0]) for (i, _), t in zip(ours, theirs, strict=True)}
        types[-1] = nn.elem_of(converter.block.args[0])
        data = cal.synthetic_calibration(graph, 0, 1)
        quantize_graph(graph, data, QuantizeConfig(weights="tflite"), progress=False, activation_types=types)
        kinds = (nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.FullyConnectedOp)
        mine = [op for op in graph.block.ops if isinstance(op, kinds)]
        ref = [op for op in converter.block.ops if isinstance(op, kinds)]
        assert len(mine) == len(ref) > 0
        for a, b in zip(mine, ref, strict=True):
            for role in ("weight", "bias"):
                va, vb = getattr(a, role), getattr(b, role)
                np.testing.assert_array_equal(const_value(va.owner), const_value(vb.owner))
                sa = np.asarray(nn.elem_of(va).scale_values, np.float32)
                sb = np.asarray(nn.elem_of(vb).scale_values, np.float32)
                np.testing.assert_array_equal(sa, sb)
            pa, pb = qparams.get(a), qparams.get(b)
            assert pa.keys() == pb.keys()
            for key in pa:
                np.testing.assert_array_equal(
                    np.asarray(pa[key]), np.asarray(pb[key]), err_msg=f"{stem} {key}"
                )

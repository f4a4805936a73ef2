"""Section: post-training quantization, nnopt's ``nn-quantize`` against the TFLite converter.

Two parts.

**Converter pairs.** For each float/int8 pair of `../shared/models` (the int8
file is the TFLite converter's quantization of the same weights), nnopt
quantizes the float model and both int8 models are compared with the float
model on the same inputs. There is no dataset here, so the inputs are seeded
synthetic samples shaped like each model's real input (what the converter's
int8 input quantization says about the range, plus the structure of the
signal):

* image models (VWW 96x96 in [0, 1], ResNet-8 32x32 in [0, 255]): images with
  a natural 1/f amplitude spectrum (random phases), a random brightness,
  contrast and tint, clipped to the range;
* the anomaly-detection autoencoder: 640 log-mel features (5 frames x 128
  bands, 10 log10 of the mel power, as the DCASE 2020 baseline computes them)
  of synthetic machine sounds: a hum of harmonics of a random fundamental
  (40-400 Hz) and broadband noise at random levels, 16 kHz;
* hello_world: x uniform in [0, 2 pi], its training distribution.

nnopt calibrates on one seeded set (seed 1) and both int8 models are
evaluated on another (seed 2). The converter calibrated on real data that
we do not have: on real inputs its ranges fit better than on ours, while
nnopt's calibration set comes from the same generator as the evaluation set.
The comparison therefore favours nnopt on the activation ranges; the weight
quantization (identical scheme: symmetric per-channel int8, int32 bias) is
compared fairly.

Both int8 models run in nnopt's numpy interpreter, which is bit-exact with
TFLite Micro on the converter's int8 models (README, oracle tests).

**Digits.** A small MLP (scikit-learn's `MLPClassifier`) and a small CNN
(trained here in numpy) on scikit-learn's bundled digits, expressed as `.nn`
models, quantized with 100 training images as calibration data and evaluated
on the 540 held-out images.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Column, Context, SectionResult, Table

NAME = "quantization"
TITLE = "Post-training quantization: nnopt against the TFLite converter"

CALIB_SEED = 1
EVAL_SEED = 2
PAIRS = (
    ("mlperf_tiny_vww_mbv1_025", "images01"),
    ("mlperf_tiny_ic_resnet8", "images255"),
    ("mlperf_tiny_ad_autoencoder", "logmel"),
    ("tflm_hello_world", "sine"),
)
CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("nnopt minmax", {"method": "minmax"}),
    ("nnopt percentile 99.99", {"method": "percentile", "percentile": 99.99}),
    ("nnopt mse", {"method": "mse"}),
)


# --------------------------------------------------------------------------
# Inputs shaped like the real ones
# --------------------------------------------------------------------------


def natural_images(rng: np.random.Generator, n: int, h: int, w: int, scale: float) -> np.ndarray:
    """``(n, 1, h, w, 3)`` images with a 1/f amplitude spectrum, in [0, scale]."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    amp = 1.0 / f
    amp[0, 0] = 0.0

    def field() -> np.ndarray:
        spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
        img = np.fft.irfft2(spec, s=(h, w))
        return (img - img.mean()) / (img.std() + 1e-12)

    out = np.empty((n, 1, h, w, 3), np.float32)
    for i in range(n):
        lum = field()
        tint = rng.uniform(-0.15, 0.15, 3)
        bright, contrast = rng.uniform(0.25, 0.75), rng.uniform(0.08, 0.25)
        for ch in range(3):
            out[i, 0, :, :, ch] = np.clip(bright + tint[ch] + contrast * (lum + 0.3 * field()), 0.0, 1.0)
    return out * np.float32(scale)


def mel_filterbank(sr: int = 16000, n_fft: int = 1024, n_mels: int = 128) -> np.ndarray:
    """Triangular mel filters (HTK mel scale, area-normalised), ``[n_mels, n_fft // 2 + 1]``."""

    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return np.asarray(2595.0 * np.log10(1.0 + np.asarray(f) / 700.0))

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0))

    hz = mel_to_hz(np.linspace(float(hz_to_mel(0.0)), float(hz_to_mel(sr / 2)), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        lo, c, hi = hz[m], hz[m + 1], hz[m + 2]
        fb[m] = np.maximum(0.0, np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c))) * 2.0 / (hi - lo)
    return fb


def machine_sounds(rng: np.random.Generator, n: int, frames: int = 5) -> np.ndarray:
    """``(n, 1, frames * 128)`` log-mel feature vectors of synthetic machine hums."""
    sr, n_fft, hop = 16000, 1024, 512
    fb = mel_filterbank(sr, n_fft, 128)
    length = n_fft + hop * (frames - 1)
    t = np.arange(length) / sr
    win = np.hanning(n_fft + 1)[:-1]
    out = np.empty((n, 1, frames * 128), np.float32)
    for i in range(n):
        f0 = rng.uniform(40.0, 400.0)
        level = 10 ** rng.uniform(-3.0, -1.0)
        sig = np.zeros(length)
        for k in range(1, 40):
            if k * f0 > sr / 2:
                break
            phase = rng.uniform(0, 2 * np.pi)
            sig += level * rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + phase)
        sig += level * 10 ** rng.uniform(-1.5, 0.0) * rng.standard_normal(length)
        sig = np.clip(sig, -1.0, 1.0)
        feats = []
        for fr in range(frames):
            power = np.abs(np.fft.rfft(sig[fr * hop : fr * hop + n_fft] * win)) ** 2
            feats.append(10.0 * np.log10(fb @ power + np.finfo(float).eps))
        out[i, 0] = np.concatenate(feats)
    return out


def make_inputs(kind: str, seed: int, n: int) -> np.ndarray:
    """``(n, *input_shape)`` samples of one input kind."""
    rng = np.random.default_rng(seed)
    if kind == "images01":
        return natural_images(rng, n, 96, 96, 1.0)
    if kind == "images255":
        return natural_images(rng, n, 32, 32, 255.0)
    if kind == "logmel":
        return machine_sounds(rng, n)
    if kind == "sine":
        return rng.uniform(0.0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    raise ValueError(kind)


DESCRIBE = {
    "images01": "1/f-spectrum images, 96x96x3 in [0, 1]",
    "images255": "1/f-spectrum images, 32x32x3 in [0, 255]",
    "logmel": "log-mel features of synthetic machine hums (5 x 128, dB)",
    "sine": "x uniform in [0, 2 pi]",
}


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def _graph(module: Any) -> Any:
    from nnopt.dialects import nn

    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def _softmax_input_op(graph: Any) -> Any:
    """The op producing the input of the softmax that feeds the output, if any."""
    from nnopt.dialects import nn

    owner = graph.output.values[0].owner
    while isinstance(owner, nn.DequantizeOp | nn.ReshapeOp):
        owner = owner.input.owner
    if isinstance(owner, nn.SoftmaxOp):
        inner = owner.input.owner
        while isinstance(inner, nn.DequantizeOp):  # a float softmax of a dequantized value
            inner = inner.input.owner
        return inner
    return None


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum err^2)`` (inf when equal)."""
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    err = float(np.sum((ref - got) ** 2))
    return math.inf if err == 0 else 10.0 * math.log10(float(np.sum(ref * ref)) / err)


def run_graph(
    graph: Any, samples: np.ndarray, capture_op: Any, stats: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Output (dequantized) and the captured op's result (dequantized) on ``(n, *shape)`` samples.

    With `stats`, also counts how many values of the integer activations sit at the top of their
    storage range (``clipped``, out of ``values``): the share the activation ranges cut off. Outputs
    of softmax, logistic and tanh (fixed ranges) are not counted.
    """
    from nnopt.dialects import nn
    from nnopt.dialects.quant import UniformQuantizedType
    from nnopt.passes.analysis.calibration import GraphRunner
    from nnopt.passes.analysis.quant_quality import quantized_feed, real_value

    name = graph.input_names()[0]
    runner = GraphRunner(graph)
    fixed = (nn.SoftmaxOp, nn.LogisticOp, nn.TanhOp)

    def counted(op: Any) -> bool:
        if op is capture_op:
            return True
        if stats is None or isinstance(op, fixed) or not op.results:
            return False
        q = nn.elem_of(op.results[0])
        return isinstance(q, UniformQuantizedType) and not q.is_per_axis

    outs: list[np.ndarray] = []
    caps: list[np.ndarray] = []
    for start in range(0, samples.shape[0], runner.max_batch):
        feed = quantized_feed(graph, {name: samples[start : start + runner.max_batch]})
        out, captured = runner.run(feed, capture=counted)
        outs.append(real_value(next(iter(out.values())), nn.elem_of(graph.output.values[0])))
        if capture_op is not None:
            caps.append(real_value(captured[capture_op], nn.elem_of(capture_op.results[0])))
        if stats is not None:
            for op, value in captured.items():
                if op is capture_op and not counted_type(op):
                    continue
                q = nn.elem_of(op.results[0])
                stats["clipped"] = stats.get("clipped", 0.0) + float(np.sum(value == q.qmax))
                stats["values"] = stats.get("values", 0.0) + float(value.size)
    return np.concatenate(outs), (np.concatenate(caps) if caps else None)


def counted_type(op: Any) -> bool:
    """Whether an op's result is a per-tensor integer activation."""
    from nnopt.dialects import nn
    from nnopt.dialects.quant import UniformQuantizedType

    q = nn.elem_of(op.results[0])
    return isinstance(q, UniformQuantizedType) and not q.is_per_axis


def weight_bytes(graph: Any) -> int:
    """Bytes of every constant."""
    from nnopt.dialects import nn

    return sum(nn.tensor_bytes(op.result) for op in graph.block.ops if isinstance(op, nn.ConstOp))


def same_weights(float_graph: Any, int8_graph: Any) -> float:
    """Largest difference between the float weights and the int8 model's dequantized weights, in steps.

    About 0.5 when the int8 file quantizes these very weights; far more when it was trained separately.
    """
    from nnopt.backends.numpy.arrays import const_value
    from nnopt.dialects import nn

    kinds = (nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.FullyConnectedOp)
    fw = [op for op in float_graph.block.ops if isinstance(op, kinds)]
    qw = [op for op in int8_graph.block.ops if isinstance(op, kinds)]
    if len(fw) != len(qw):
        return math.inf
    worst = 0.0
    for a, b in zip(fw, qw, strict=True):
        w = const_value(a.weight.owner).astype(np.float64)
        qt = nn.elem_of(b.weight)
        q = const_value(b.weight.owner).astype(np.float64)
        if w.shape != q.shape:
            return math.inf
        scales = np.asarray(qt.scale_values)
        if qt.axis is not None:
            shape = [1] * q.ndim
            shape[qt.axis] = -1
            scales = scales.reshape(shape)
        worst = max(worst, float(np.max(np.abs(q * scales - w) / scales)))
    return worst


def compare(
    ref_out: np.ndarray,
    ref_logits: np.ndarray | None,
    out: np.ndarray,
    logits: np.ndarray | None,
    x: np.ndarray,
    kind: str,
) -> dict[str, Any]:
    """Metrics of one int8 model against float."""
    n = out.shape[0]
    row: dict[str, Any] = {"snr": snr_db(ref_out, out)}
    if ref_logits is not None and logits is not None:
        row["logits_snr"] = snr_db(ref_logits, logits)
        a, b = ref_out.reshape(n, -1).argmax(1), out.reshape(n, -1).argmax(1)
        row["top1"] = float(np.mean(a == b))
    if kind == "logmel":
        flat = x.reshape(n, -1).astype(np.float64)
        ref_score = np.mean((flat - ref_out.reshape(n, -1)) ** 2, axis=1)
        score = np.mean((flat - out.reshape(n, -1)) ** 2, axis=1)
        row["score_snr"] = snr_db(ref_score, score)
    return row


def _fmt_db(x: float | None) -> str | None:
    if x is None:
        return None
    return "exact" if math.isinf(x) else f"{x:.1f}"


def _pairs(ctx: Context, result: SectionResult, n_calib: int, n_eval: int) -> Table:
    from nnopt.compiler.frontends import load_model
    from nnopt.passes.analysis.calibration import CalibrationSet
    from nnopt.passes.quantize import QuantizePass, quantize_graph

    table = Table(
        f"Closeness to the float model on {n_eval} evaluation samples (seed {EVAL_SEED}; nnopt calibrated on "
        f"{n_calib} other samples, seed {CALIB_SEED})",
        [
            Column("model", "model"),
            Column("quantizer", "int8 model"),
            Column("snr", "output SNR dB"),
            Column("logits_snr", "logits SNR dB"),
            Column("top1", "top-1 agreement"),
            Column("score_snr", "anomaly score SNR dB"),
            Column("clipped", "activations at int8 max"),
            Column("weights", "weights+biases", "bytes"),
            Column("seconds", "quantize s", "s"),
        ],
    )
    for stem, kind in PAIRS:
        f32_path = ctx.models_dir / f"{stem}_f32.tflite"
        int8_path = ctx.models_dir / f"{stem}_int8.tflite"
        if not ctx.wants(stem) or not f32_path.exists() or not int8_path.exists():
            continue
        ctx.log(f"[quantization] {stem}")
        calib = make_inputs(kind, CALIB_SEED, n_calib)
        x = make_inputs(kind, EVAL_SEED, n_eval)
        float_module = load_model(str(f32_path))
        fgraph = _graph(float_module)
        ref_out, ref_logits = run_graph(fgraph, x, _softmax_input_op(fgraph))
        conv = _graph(load_model(str(int8_path)))
        stats: dict[str, float] = {}
        out, logits = run_graph(conv, x, _softmax_input_op(conv), stats)
        row = compare(ref_out, ref_logits, out, logits, x, kind)
        row["clipped"] = stats.get("clipped", 0.0) / max(stats.get("values", 1.0), 1.0)
        steps = same_weights(fgraph, conv)
        row["weight_steps"] = steps
        label = "TFLite converter"
        if steps > 1.0:
            label += " (different weights!)"
            table.notes.append(
                f"`{stem}`: the int8 file does not hold the float file's weights (they differ by up to "
                f"{steps:.0f} quantization steps; a faithful quantization differs by at most 0.5): the two files "
                "come from separate trainings, so its row measures two different models, not quantization."
            )
        rows = [(label, row, weight_bytes(conv), None)]
        name = fgraph.input_names()[0]
        generic = np.random.default_rng(CALIB_SEED).standard_normal(calib.shape).astype(np.float32)
        for label, options in (*CONFIGS, ("nnopt minmax, N(0, 1) calibration", {"method": "minmax"})):
            module = float_module.clone()
            graph = _graph(module)
            start = time.perf_counter()
            config = QuantizePass(**options).config()
            samples = generic if "N(0, 1)" in label else calib
            quantize_graph(
                graph, CalibrationSet({name: samples}, f"seed {CALIB_SEED}"), config, progress=False
            )
            seconds = time.perf_counter() - start
            stats = {}
            out, logits = run_graph(graph, x, _softmax_input_op(graph), stats)
            metrics = compare(ref_out, ref_logits, out, logits, x, kind)
            metrics["clipped"] = stats.get("clipped", 0.0) / max(stats.get("values", 1.0), 1.0)
            rows.append((label, metrics, weight_bytes(graph), seconds))
        for label, metrics, wbytes, seconds in rows:
            table.add(
                model=stem,
                quantizer=label,
                snr=_fmt_db(metrics.get("snr")),
                logits_snr=_fmt_db(metrics.get("logits_snr")),
                top1=f"{100 * metrics['top1']:.1f} %" if "top1" in metrics else None,
                score_snr=_fmt_db(metrics.get("score_snr")),
                clipped=f"{100 * metrics['clipped']:.3f} %",
                weights=wbytes,
                seconds=seconds,
                raw=metrics,
                inputs=DESCRIBE[kind],
            )
    result.setup.append(
        "Inputs: "
        + "; ".join(f"`{stem}`: {DESCRIBE[kind]}" for stem, kind in PAIRS)
        + ". Calibration and evaluation sets come from the same generator with different seeds."
    )
    return table


# --------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits scaled to [0, 1], 70/30 stratified split (540 test images)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.3, stratify=d.target, random_state=0)
    return xtr, xte, ytr, yte


def train_mlp(xtr: np.ndarray, ytr: np.ndarray) -> tuple[str, dict[str, np.ndarray]]:
    """A 64-128-10 ReLU MLP (scikit-learn) as `.nn` text and weights."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(128,), activation="relu", max_iter=400, random_state=0)
    clf.fit(xtr.reshape(len(xtr), -1), ytr)
    text = """model digits_mlp
weights "w.npz"
input  image: f32[1, 8, 8, 1]
flat   = flatten(image)
fc1    = fully_connected(flat, units=128, activation=relu)
logits = fully_connected(fc1, units=10)
probs  = softmax(logits)
output probs
"""
    weights = {
        "fc1.weight": clf.coefs_[0].T,
        "fc1.bias": clf.intercepts_[0],
        "logits.weight": clf.coefs_[1].T,
        "logits.bias": clf.intercepts_[1],
    }
    return text, {k: np.asarray(v, np.float32) for k, v in weights.items()}


def _im2col3(x: np.ndarray) -> np.ndarray:
    """``[n, 8, 8, c]`` -> ``[n, 8, 8, 9c]`` patches of a 3x3 SAME convolution (tap-major, like OHWI)."""
    h, w = x.shape[1:3]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.concatenate([xp[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=3)


def train_cnn(
    xtr: np.ndarray, ytr: np.ndarray, epochs: int = 40, seed: int = 0
) -> tuple[str, dict[str, np.ndarray]]:
    """conv3x3(16, relu) -> maxpool 2 -> fc(10), trained in numpy (Adam, cross-entropy)."""
    rng = np.random.default_rng(seed)
    x = xtr[..., None].astype(np.float64)
    y = np.eye(10)[ytr]
    params = {
        "w1": rng.normal(0, np.sqrt(2 / 9), (9, 16)),
        "b1": np.zeros(16),
        "w2": rng.normal(0, np.sqrt(2 / 256), (256, 10)),
        "b2": np.zeros(10),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            idx = order[start : start + 32]
            xb, yb = x[idx], y[idx]
            n = len(idx)
            cols = _im2col3(xb)  # [n, 8, 8, 9]
            pre = cols @ params["w1"] + params["b1"]
            act = np.maximum(pre, 0)
            win = act.reshape(n, 4, 2, 4, 2, 16).transpose(0, 1, 3, 5, 2, 4).reshape(n, 4, 4, 16, 4)
            arg = win.argmax(axis=4)
            pooled = win.max(axis=4)
            flat = pooled.reshape(n, 256)
            logits = flat @ params["w2"] + params["b2"]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            dlogits = (p - yb) / n
            grads = {"w2": flat.T @ dlogits, "b2": dlogits.sum(0)}
            dpool = (dlogits @ params["w2"].T).reshape(n, 4, 4, 16)
            dwin = np.zeros((n, 4, 4, 16, 4))
            np.put_along_axis(dwin, arg[..., None], dpool[..., None], axis=4)
            dact = dwin.reshape(n, 4, 4, 16, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 8, 8, 16)
            dpre = dact * (pre > 0)
            grads["w1"] = cols.reshape(-1, 9).T @ dpre.reshape(-1, 16)
            grads["b1"] = dpre.reshape(-1, 16).sum(0)
            step += 1
            for k, g in grads.items():
                m, v = moments[k]
                m[:] = 0.9 * m + 0.1 * g
                v[:] = 0.999 * v + 0.001 * g * g
                mh, vh = m / (1 - 0.9**step), v / (1 - 0.999**step)
                params[k] -= 0.01 * mh / (np.sqrt(vh) + 1e-8)
    text = """model digits_cnn
weights "w.npz"
input  image: f32[1, 8, 8, 1]
conv   = conv2d(image, filters=16, kernel=3, padding=same, activation=relu)
pool   = max_pool2d(conv, kernel=2)
flat   = flatten(pool)
logits = fully_connected(flat, units=10)
probs  = softmax(logits)
output probs
"""
    weights = {
        "conv.weight": params["w1"].T.reshape(16, 3, 3, 1),
        "conv.bias": params["b1"],
        "logits.weight": params["w2"].T,
        "logits.bias": params["b2"],
    }
    return text, {k: np.asarray(v, np.float32) for k, v in weights.items()}


DIGIT_CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("minmax, per-channel", {"method": "minmax", "weights": "per-channel"}),
    ("minmax, per-tensor", {"method": "minmax", "weights": "per-tensor"}),
    ("percentile 99.99, per-channel", {"method": "percentile", "weights": "per-channel"}),
    ("mse, per-channel", {"method": "mse", "weights": "per-channel"}),
)


def _digits(ctx: Context, result: SectionResult) -> Table:
    from nnopt.compiler.frontends import load_model
    from nnopt.passes.analysis.calibration import CalibrationSet
    from nnopt.passes.quantize import QuantizePass, quantize_graph

    xtr, xte, ytr, yte = digits_split()
    calib = xtr[:100, None, :, :, None]
    test = xte[:, None, :, :, None]
    table = Table(
        f"scikit-learn digits: accuracy on {len(xte)} held-out images, int8 calibrated on 100 training images",
        [
            Column("model", "model"),
            Column("config", "int8 configuration"),
            Column("float_acc", "float accuracy"),
            Column("int8_acc", "int8 accuracy"),
            Column("drop", "drop (points)"),
            Column("agree", "top-1 agreement"),
            Column("logits_snr", "logits SNR dB"),
        ],
    )
    trainers = [("MLP 64-128-10 (sklearn)", train_mlp)]
    if not ctx.quick:
        trainers.append(("CNN conv3x3x16-pool-fc10 (numpy)", train_cnn))
    for label, trainer in trainers:
        ctx.log(f"[quantization] digits: {label}")
        text, weights = trainer(xtr, ytr)
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "w.npz", **weights)  # type: ignore[arg-type]
            (Path(tmp) / "model.nn").write_text(text)
            float_module = load_model(str(Path(tmp) / "model.nn"))
        fgraph = _graph(float_module)
        ref_out, ref_logits = run_graph(fgraph, test, _softmax_input_op(fgraph))
        float_acc = float(np.mean(ref_out.reshape(len(yte), -1).argmax(1) == yte))
        for config_label, options in DIGIT_CONFIGS:
            module = float_module.clone()
            graph = _graph(module)
            config = QuantizePass(**options).config()
            quantize_graph(
                graph, CalibrationSet({"image": calib}, "digits train[:100]"), config, progress=False
            )
            out, logits = run_graph(graph, test, _softmax_input_op(graph))
            pred = out.reshape(len(yte), -1).argmax(1)
            int8_acc = float(np.mean(pred == yte))
            table.add(
                model=label,
                config=config_label,
                float_acc=f"{100 * float_acc:.2f} %",
                int8_acc=f"{100 * int8_acc:.2f} %",
                drop=f"{100 * (float_acc - int8_acc):+.2f}",
                agree=f"{100 * float(np.mean(pred == ref_out.reshape(len(yte), -1).argmax(1))):.2f} %",
                logits_snr=_fmt_db(snr_db(ref_logits, logits))
                if ref_logits is not None and logits is not None
                else None,
                raw={"float_acc": float_acc, "int8_acc": int8_acc},
            )
    return table


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------


def run(ctx: Context) -> SectionResult:
    """Quantize the converter pairs and the digits models; compare with float."""
    result = SectionResult(NAME, TITLE, "", "")
    n_calib, n_eval = (8, 8) if ctx.quick else (200, 200)
    result.setup = [
        "nnopt: `nn-quantize` (`quantize_graph`) with symmetric per-channel int8 weights, int32 biases, "
        "asymmetric per-tensor int8 activations, `tflite_double` rounding, float interface; three activation "
        "calibration methods. The converter's int8 models are taken as they are (their int8 input is fed the "
        "float samples quantized with the model's own input scale). Both run in nnopt's numpy interpreter "
        "(bit-exact with TFLite Micro).",
        "Metrics against the float model on the evaluation samples: SNR = 10 log10(sum ref^2 / sum err^2) over "
        "all samples; logits = the input of the final softmax (dequantized); top-1 agreement = same argmax; "
        "anomaly score = mean squared reconstruction error of each sample (the AD model's decision value); "
        "activations at int8 max = share of all integer activation values (softmax/logistic/tanh outputs "
        "excluded) equal to 127, i.e. cut off by a range calibrated too narrow for these inputs.",
    ]
    pairs = _pairs(ctx, result, n_calib, n_eval)
    replay = _replay(ctx, n_eval)
    digits = _digits(ctx, result)
    result.tables = [pairs, replay, digits]
    result.commentary = commentary(pairs, digits, replay)
    return result


def converter_types(float_graph: Any, int8_graph: Any) -> dict[int, Any] | None:
    """The int8 model's activation types keyed as `quantize_graph`'s ``activation_types`` (None: ops differ)."""
    from nnopt.dialects import nn

    skip = (nn.ConstOp, nn.OutputOp)
    fops = [(i, op) for i, op in enumerate(float_graph.block.ops) if not isinstance(op, skip)]
    qops = [op for op in int8_graph.block.ops if not isinstance(op, skip)]
    if [op.name for _, op in fops] != [op.name for op in qops]:
        return None
    types: dict[int, Any] = {i: nn.elem_of(q.results[0]) for (i, _), q in zip(fops, qops, strict=True)}
    types[-1] = nn.elem_of(int8_graph.block.args[0])
    return types


def _replay(ctx: Context, n_eval: int) -> Table:
    """nnopt quantizing with the converter's own activation ranges: does the scheme reproduce its model?"""
    from nnopt.compiler.frontends import load_model
    from nnopt.passes.analysis.calibration import CalibrationSet
    from nnopt.passes.quantize import QuantizePass, quantize_graph

    table = Table(
        f"nnopt given the converter's activation ranges (weights `tflite`), on the same {n_eval} evaluation samples",
        [
            Column("model", "model"),
            Column("converter", "converter output SNR dB"),
            Column("nnopt", "nnopt output SNR dB"),
            Column("same", "outputs equal to the converter's"),
        ],
    )
    for stem, kind in PAIRS:
        f32_path = ctx.models_dir / f"{stem}_f32.tflite"
        int8_path = ctx.models_dir / f"{stem}_int8.tflite"
        if not ctx.wants(stem) or not f32_path.exists() or not int8_path.exists():
            continue
        float_module = load_model(str(f32_path))
        fgraph = _graph(float_module)
        conv = _graph(load_model(str(int8_path)))
        types = converter_types(fgraph, conv)
        if types is None or same_weights(fgraph, conv) > 1.0:
            continue
        x = make_inputs(kind, EVAL_SEED, n_eval)
        ref, _ = run_graph(fgraph, x, None)
        theirs, _ = run_graph(conv, x, None)
        module = float_module.clone()
        graph = _graph(module)
        config = QuantizePass(weights="tflite").config()
        calib = CalibrationSet({fgraph.input_names()[0]: x[:1]}, "unused: every range is given")
        quantize_graph(graph, calib, config, progress=False, activation_types=types)
        ours, _ = run_graph(graph, x, None)
        step = types[max(k for k in types if k >= 0)].scale  # the output's scale
        same = float(np.mean(np.round(theirs / step) == np.round(ours / step)))
        table.add(
            model=stem,
            converter=_fmt_db(snr_db(ref, theirs)),
            nnopt=_fmt_db(snr_db(ref, ours)),
            same=f"{100 * same:.2f} %",
            raw={"same": same},
        )
    return table


def _num(text: str | None) -> float:
    if text is None:
        return math.nan
    return math.inf if text == "exact" else float(text.rstrip(" %"))


def commentary(pairs: Table, digits: Table, replay: Table | None = None) -> list[str]:
    """Findings derived from the measured rows."""
    notes: list[str] = []
    if replay is not None and replay.rows:
        listing = ", ".join(f"`{r['model']}` {r['same']}" for r in replay.rows)
        exact = all(r["raw"]["same"] == 1.0 for r in replay.rows)
        notes.append(
            "Given the converter's activation ranges, nnopt rebuilds the converter's int8 models: outputs equal "
            f"to the converter's on {listing}"
            + (
                " (every weight, bias, scale and integer parameter is identical too: `tests/test_quantize.py`)"
                if exact
                else ""
            )
            + ". The converter's calibration is min/max over its representative data, like nnopt's `minmax`, "
            "so the gaps in the first table come from the calibration data, not from the quantization scheme."
        )
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in pairs.rows:
        by_model.setdefault(row["model"], {})[row["quantizer"]] = row
    for model, rows in by_model.items():
        conv = rows.get("TFLite converter")
        ours = rows.get("nnopt minmax")
        if conv is None or ours is None:
            if ours is not None:
                notes.append(
                    f"`{model}`: no like-for-like converter row (its int8 file holds other weights); nnopt minmax "
                    f"output SNR {ours['snr']} dB."
                )
            continue
        key = (
            "logits_snr"
            if conv.get("logits_snr") is not None
            else "score_snr"
            if conv.get("score_snr")
            else "snr"
        )
        best_label, best = max(
            ((label, r) for label, r in rows.items() if label.startswith("nnopt") and "N(0, 1)" not in label),
            key=lambda lr: _num(lr[1][key]),
        )
        verdict = "at least as close as" if _num(ours[key]) >= _num(conv[key]) else "**less close than**"
        what = {"logits_snr": "logits SNR", "score_snr": "anomaly-score SNR", "snr": "output SNR"}[key]
        notes.append(
            f"`{model}`: nnopt minmax {verdict} the converter on {what} "
            f"({ours[key]} vs {conv[key]} dB; best nnopt method: {best_label}, {best[key]} dB)"
            + (f"; top-1 agreement {ours['top1']} vs {conv['top1']}" if ours.get("top1") else "")
            + f"; activations at int8 max {ours['clipped']} vs {conv['clipped']}."
        )
    for row in digits.rows:
        if row["config"] == "minmax, per-channel":
            drop = float(row["drop"])
            goal = "within" if drop <= 1.0 else "**outside**"
            notes.append(
                f"digits {row['model']}: float {row['float_acc']}, int8 {row['int8_acc']} "
                f"({row['drop']} points, {goal} the 1-point goal), agreement {row['agree']}."
            )
    weak = [r for r in pairs.rows if "N(0, 1)" in r["quantizer"]]
    if weak:
        listing = ", ".join(f"`{r['model']}` {r['snr']} dB" for r in weak)
        notes.append(
            "Calibrating on standard-normal noise instead (what `--calibration-seed` gives without "
            f"`--input-range`) costs accuracy wherever the real inputs are not N(0, 1): output SNR {listing}."
        )
    notes.append(
        "Caveat: nnopt calibrated on samples from the evaluation distribution, the converter on real data; "
        "on real inputs the converter's activation ranges are the better fit, so these rows say that nnopt's "
        "scheme matches the converter's when both see the inputs they were calibrated for, not that it beats it."
    )
    return notes

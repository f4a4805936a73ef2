"""Float32 kernels with the semantics of TFLite's reference kernels (vectorised, no per-pixel loops).

Each entry of `FLOAT_MAKERS` prepares one op (window geometry, weight
matrices) and returns its `Kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.numpy.arrays import Kernel, activate_in_place, static_value
from nnopt.backends.numpy.geometry import window_of
from nnopt.backends.numpy.windows import (
    depthwise_as_matmul,
    depthwise_matrices,
    depthwise_rows,
    depthwise_sum,
    im2col,
    pad_hw,
    valid_counts,
    window_view,
)
from nnopt.dialects import nn

FloatMaker = Callable[[Operation], Kernel]


def _conv_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """OHWI weights as ``[G, KH*KW*Cin_g, Cout_g]`` matrices."""
    cout = w.shape[0]
    return np.ascontiguousarray(w.reshape(groups, cout // groups, -1).transpose(0, 2, 1), dtype=np.float32)


def conv2d(op: Operation) -> Kernel:
    """NHWC convolution with OHWI weights, groups, dilations, SAME/VALID/explicit padding."""
    assert isinstance(op, nn.Conv2DOp)
    win = window_of(op)
    n, _, _, c = nn.shape_of(op.input)
    cout, kh, kw, cin_g = nn.shape_of(op.weight)
    groups = c // cin_g
    oh, ow = win.out_hw
    m = n * oh * ow
    w_static = static_value(op.weight)
    wmats = _conv_weights(w_static, groups) if w_static is not None else None
    activation = op.activation()

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        wm = wmats if wmats is not None else _conv_weights(args[1], groups)
        xp = pad_hw(args[0], win.pads, 0.0)
        if groups == 1:
            y = im2col(xp, win.kernel, win.strides, win.dilations, win.out_hw) @ wm[0]
        else:
            view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
            cols = view.reshape(m, kh, kw, groups, cin_g).transpose(3, 0, 1, 2, 4).reshape(groups, m, -1)
            y = np.matmul(cols, wm).transpose(1, 0, 2).reshape(m, cout)
        if len(args) > 2:
            y += args[2]
        return activate_in_place(y.reshape(n, oh, ow, cout), activation)

    return kernel


def depthwise_conv2d(op: Operation) -> Kernel:
    """Depthwise convolution, weights ``[1, KH, KW, C*M]``, output channel ``c*M + m`` reads input ``c``."""
    assert isinstance(op, nn.DepthwiseConv2DOp)
    win = window_of(op)
    n, _, _, c = nn.shape_of(op.input)
    cm = nn.shape_of(op.weight)[3]
    mult = cm // c
    oh, ow = win.out_hw
    activation = op.activation()
    w_static = static_value(op.weight)

    def prepare_weights(w: np.ndarray) -> np.ndarray:
        if mult == 1:
            return depthwise_rows(w, win.kernel, ow, np.float32)
        return depthwise_matrices(w, win.kernel, c, np.float32)

    prepared = prepare_weights(w_static) if w_static is not None else None
    geometry = (win.kernel, win.strides, win.dilations, win.out_hw)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        ws = prepared if prepared is not None else prepare_weights(args[1])
        xp = pad_hw(args[0], win.pads, 0.0)
        if mult == 1:
            y = depthwise_sum(xp, ws, *geometry).reshape(n, oh, ow, cm)
        else:
            y = depthwise_as_matmul(xp, ws, *geometry)
        if len(args) > 2:
            y += args[2]
        return activate_in_place(y, activation)

    return kernel


def fully_connected(op: Operation) -> Kernel:
    """``x @ W^T + b`` on the input flattened to rows of K."""
    assert isinstance(op, nn.FullyConnectedOp)
    out_shape = nn.shape_of(op.output)
    k = nn.shape_of(op.weight)[1]
    w_static = static_value(op.weight)
    wt = np.ascontiguousarray(w_static.T) if w_static is not None else None
    activation = op.activation()
    in_shape = (k,) if math.prod(out_shape) == nn.shape_of(op.weight)[0] else (-1, k)  # one row: gemv

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        y = np.dot(args[0].reshape(in_shape), wt if wt is not None else np.ascontiguousarray(args[1].T))
        if len(args) > 2:
            y += args[2]
        return activate_in_place(y.reshape(out_shape), activation)

    return kernel


def matmul(op: Operation) -> Kernel:
    """Batched matrix product with broadcast batch dims and optional transposes."""
    assert isinstance(op, nn.MatMulOp)
    adj_x, adj_y = op.adj_x is not None, op.adj_y is not None

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        a = np.swapaxes(args[0], -1, -2) if adj_x else args[0]
        b = np.swapaxes(args[1], -1, -2) if adj_y else args[1]
        return np.matmul(a, b)

    return kernel


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> FloatMaker:
    def maker(op: Operation) -> Kernel:
        assert isinstance(op, nn.AddOp | nn.SubOp | nn.MulOp)
        activation = op.activation()
        return lambda args: activate_in_place(np.asarray(fn(args[0], args[1])), activation)

    maker.__doc__ = f"Elementwise {fn.__name__} with broadcasting and a fused activation."
    return maker


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> FloatMaker:
    def maker(op: Operation) -> Kernel:
        return lambda args: fn(args[0])

    maker.__doc__ = fn.__doc__
    return maker


def _relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    return np.maximum(x, np.float32(0))


def _relu6(x: np.ndarray) -> np.ndarray:
    """``min(max(x, 0), 6)``."""
    y = np.maximum(x, np.float32(0))
    return np.minimum(y, np.float32(6), out=y)


def _logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``."""
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def _tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


def clamp(op: Operation) -> Kernel:
    """Clamp to the op's real bounds."""
    assert isinstance(op, nn.ClampOp)
    lo, hi = np.float32(op.min.value.data), np.float32(op.max.value.data)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        y = np.maximum(args[0], lo)
        return np.minimum(y, hi, out=y)

    return kernel


def softmax(op: Operation) -> Kernel:
    """``exp(beta*(x - max)) / sum`` over the last axis."""
    assert isinstance(op, nn.SoftmaxOp)
    beta = np.float32(op.beta_value())

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0]
        e = np.exp((x - x.max(axis=-1, keepdims=True)) * beta)
        return e / e.sum(axis=-1, keepdims=True)

    return kernel


def max_pool2d(op: Operation) -> Kernel:
    """Max over windows; padded cells never win."""
    assert isinstance(op, nn.MaxPool2DOp)
    win = window_of(op)
    activation = op.activation()

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0], win.pads, -np.inf)
        y = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).max(axis=(3, 4))
        return activate_in_place(y, activation)

    return kernel


def avg_pool2d(op: Operation) -> Kernel:
    """Average over windows, counting only non-padded cells (TFLite)."""
    assert isinstance(op, nn.AvgPool2DOp)
    win = window_of(op)
    in_hw = nn.shape_of(op.input)[1:3]
    counts = valid_counts(in_hw, win.kernel, win.strides, win.pads, win.out_hw).astype(np.float32)[
        None, :, :, None
    ]
    activation = op.activation()

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0], win.pads, 0.0)
        view = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw)
        return activate_in_place(view.sum(axis=(3, 4), dtype=np.float32) / counts, activation)

    return kernel


def mean(op: Operation) -> Kernel:
    """Mean over the op's axes."""
    assert isinstance(op, nn.MeanOp)
    axes = op.axis_values()
    keep = op.keep_dims is not None
    return lambda args: np.asarray(
        np.mean(args[0], axis=axes, keepdims=keep, dtype=np.float32), dtype=np.float32
    )


FLOAT_MAKERS: dict[type[Operation], FloatMaker] = {
    nn.Conv2DOp: conv2d,
    nn.DepthwiseConv2DOp: depthwise_conv2d,
    nn.FullyConnectedOp: fully_connected,
    nn.MatMulOp: matmul,
    nn.AddOp: _binary(np.add),
    nn.SubOp: _binary(np.subtract),
    nn.MulOp: _binary(np.multiply),
    nn.ReluOp: _unary(_relu),
    nn.Relu6Op: _unary(_relu6),
    nn.ClampOp: clamp,
    nn.LogisticOp: _unary(_logistic),
    nn.TanhOp: _unary(_tanh),
    nn.SoftmaxOp: softmax,
    nn.MaxPool2DOp: max_pool2d,
    nn.AvgPool2DOp: avg_pool2d,
    nn.MeanOp: mean,
}
"""Float kernel makers of the quantizable ops (data movement ops live in `kernels_common`)."""

"""Float32 kernels with the semantics of TFLite's reference kernels (vectorised, no per-pixel loops)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.numpy.geometry import window_of
from nnopt.backends.numpy.windows import im2col, pad_hw, tap_slice, valid_counts, window_view
from nnopt.dialects import nn

FloatKernel = Callable[[Operation, Sequence[np.ndarray]], np.ndarray]

_BOUNDS: dict[str, tuple[float, float]] = {
    "none": (-np.inf, np.inf),
    "relu": (0.0, np.inf),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}


def activate(y: np.ndarray, activation: str) -> np.ndarray:
    """Apply a fused activation (a clamp) to a float tensor."""
    if activation == "none":
        return y
    lo, hi = _BOUNDS[activation]
    return np.clip(y, np.float32(lo), np.float32(hi))


def conv2d(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """NHWC convolution with OHWI weights, groups, dilations, SAME/VALID/explicit padding."""
    assert isinstance(op, nn.Conv2DOp)
    x, w = args[0], args[1]
    win = window_of(op)
    n, c = x.shape[0], x.shape[3]
    cout, kh, kw, cin_g = w.shape
    groups = c // cin_g
    xp = pad_hw(x, win.pads, 0.0)
    oh, ow = win.out_hw
    if groups == 1:
        cols = im2col(xp, win.kernel, win.strides, win.dilations, win.out_hw)
        y = cols @ w.reshape(cout, -1).T
    else:
        view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
        m = n * oh * ow
        cols = view.reshape(m, kh, kw, groups, cin_g).transpose(3, 0, 1, 2, 4).reshape(groups, m, -1)
        wg = w.reshape(groups, cout // groups, -1).transpose(0, 2, 1)
        y = np.matmul(cols, wg).transpose(1, 0, 2).reshape(m, cout)
    if len(args) > 2:
        y += args[2]
    return activate(y.reshape(n, oh, ow, cout), op.activation())


def depthwise_conv2d(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Depthwise convolution, weights ``[1, KH, KW, C*M]``, output channel ``c*M + m`` reads input ``c``."""
    assert isinstance(op, nn.DepthwiseConv2DOp)
    x, w = args[0], args[1]
    win = window_of(op)
    mult = w.shape[3] // x.shape[3]
    xp = pad_hw(x, win.pads, 0.0)
    if mult > 1:
        xp = np.repeat(xp, mult, axis=3)
    oh, ow = win.out_hw
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]), dtype=np.float32)
    for i in range(win.kernel[0]):
        for j in range(win.kernel[1]):
            y += tap_slice(xp, i, j, win.strides, win.dilations, win.out_hw) * w[0, i, j]
    if len(args) > 2:
        y += args[2]
    return activate(y, op.activation())


def fully_connected(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """``x @ W^T + b`` on the input flattened to rows of K."""
    assert isinstance(op, nn.FullyConnectedOp)
    x, w = args[0], args[1]
    y = x.reshape(-1, w.shape[1]) @ w.T
    if len(args) > 2:
        y = y + args[2]
    return activate(y.reshape(nn.shape_of(op.output)), op.activation())


def _adjusted(a: np.ndarray, adj: bool) -> np.ndarray:
    return np.swapaxes(a, -1, -2) if adj else a


def matmul(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Batched matrix product with broadcast batch dims and optional transposes."""
    assert isinstance(op, nn.MatMulOp)
    a = _adjusted(args[0], op.adj_x is not None)
    b = _adjusted(args[1], op.adj_y is not None)
    return np.matmul(a, b)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> FloatKernel:
    def kernel(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
        assert isinstance(op, nn.AddOp | nn.SubOp | nn.MulOp)
        return activate(np.asarray(fn(args[0], args[1])), op.activation())

    kernel.__doc__ = f"Elementwise {fn.__name__} with broadcasting and a fused activation."
    return kernel


def relu(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """``max(x, 0)``."""
    return np.maximum(args[0], np.float32(0))


def relu6(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """``min(max(x, 0), 6)``."""
    return np.clip(args[0], np.float32(0), np.float32(6))


def clamp(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Clamp to the op's real bounds."""
    assert isinstance(op, nn.ClampOp)
    return np.clip(args[0], np.float32(op.min.value.data), np.float32(op.max.value.data))


def logistic(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """``1 / (1 + exp(-x))``."""
    x = args[0]
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def tanh(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(args[0])


def softmax(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """``exp(beta*(x - max)) / sum`` over the last axis."""
    assert isinstance(op, nn.SoftmaxOp)
    x = args[0]
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * np.float32(op.beta_value()))
    return e / e.sum(axis=-1, keepdims=True)


def max_pool2d(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Max over windows; padded cells never win."""
    assert isinstance(op, nn.MaxPool2DOp)
    win = window_of(op)
    xp = pad_hw(args[0], win.pads, -np.inf)
    y = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).max(axis=(3, 4))
    return activate(y, op.activation())


def avg_pool2d(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Average over windows, counting only non-padded cells (TFLite)."""
    assert isinstance(op, nn.AvgPool2DOp)
    x = args[0]
    win = window_of(op)
    xp = pad_hw(x, win.pads, 0.0)
    total = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).sum(axis=(3, 4), dtype=np.float32)
    counts = valid_counts(x.shape[1:3], win.kernel, win.strides, win.pads, win.out_hw).astype(np.float32)
    return activate(total / counts[None, :, :, None], op.activation())


def mean(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over the op's axes."""
    assert isinstance(op, nn.MeanOp)
    axes = op.axis_values()
    y = np.mean(args[0], axis=axes, keepdims=op.keep_dims is not None, dtype=np.float32)
    return np.asarray(y, dtype=np.float32)


FLOAT_KERNELS: dict[type[Operation], FloatKernel] = {
    nn.Conv2DOp: conv2d,
    nn.DepthwiseConv2DOp: depthwise_conv2d,
    nn.FullyConnectedOp: fully_connected,
    nn.MatMulOp: matmul,
    nn.AddOp: _binary(np.add),
    nn.SubOp: _binary(np.subtract),
    nn.MulOp: _binary(np.multiply),
    nn.ReluOp: relu,
    nn.Relu6Op: relu6,
    nn.ClampOp: clamp,
    nn.LogisticOp: logistic,
    nn.TanhOp: tanh,
    nn.SoftmaxOp: softmax,
    nn.MaxPool2DOp: max_pool2d,
    nn.AvgPool2DOp: avg_pool2d,
    nn.MeanOp: mean,
}
"""Float kernels of the quantizable ops (data movement ops live in `kernels_common`)."""

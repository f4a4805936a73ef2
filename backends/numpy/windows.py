"""Sliding-window views shared by the convolution and pooling kernels (no copies until needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pad_hw(x: np.ndarray, pads: Sequence[int], value: float | int) -> np.ndarray:
    """Pad the H and W axes of an NHWC tensor by (top, bottom, left, right) with `value`."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def window_view(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Read-only view ``[N, OH, OW, KH, KW, C]`` of the windows of a padded NHWC tensor."""
    n, _, _, c = xp.shape
    sn, sh, sw, sc = xp.strides
    kh, kw = kernel
    oh, ow = out_hw
    return as_strided(
        xp,
        shape=(n, oh, ow, kh, kw, c),
        strides=(sn, sh * strides[0], sw * strides[1], sh * dilations[0], sw * dilations[1], sc),
        writeable=False,
    )


def valid_counts(
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """``[OH, OW]`` number of non-padded cells under each pooling window."""
    counts = []
    for axis in range(2):
        origin = np.arange(out_hw[axis]) * strides[axis] - pads[2 * axis]
        start = np.maximum(origin, 0)
        end = np.minimum(origin + kernel[axis], in_hw[axis])
        counts.append(np.maximum(end - start, 0))
    return np.outer(counts[0], counts[1])


def im2col(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Rows ``[N*OH*OW, KH*KW*C]`` of convolution patches (one copy of the windows)."""
    n, c = xp.shape[0], xp.shape[3]
    kh, kw = kernel
    oh, ow = out_hw
    if kh == kw == 1 and tuple(strides) == (1, 1):
        return xp[:, :oh, :ow, :].reshape(n * oh * ow, c)
    view = window_view(xp, kernel, strides, dilations, out_hw)
    return view.reshape(n * oh * ow, kh * kw * c)


def pad_hw_as(x: np.ndarray, pads: Sequence[int], value: float | int, dtype: np.dtype | type) -> np.ndarray:
    """`pad_hw` into a new array of `dtype` (the conversion and the padding in one copy)."""
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    if not any(pads):
        return x.astype(dtype)
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def depthwise_rows(w: np.ndarray, kernel: Sequence[int], out_w: int, dtype: type[np.generic]) -> np.ndarray:
    """Depthwise weights ``[.., KH, KW, C]`` (multiplier 1) as ``[KH, KW, OW*C]``: each tap's weights tiled."""
    kh, kw = kernel
    w3 = w.reshape(kh, kw, 1, -1).astype(dtype)
    return np.ascontiguousarray(np.tile(w3, (1, 1, out_w, 1)).reshape(kh, kw, -1))


def depthwise_sum(
    xp: np.ndarray,
    rows: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Depthwise convolution (multiplier 1) of a padded NHWC tensor: ``[N, OH, OW*C]``.

    `rows` comes from `depthwise_rows`. With a horizontal stride of 1 the taps
    of a kernel are windows of the same rows shifted by whole pixels: one
    zero-copy view ``[N, KH, KW, OH, OW*C]`` and one ``einsum`` multiply and
    accumulate them all (in C, without temporaries). A larger stride first
    splits the columns into phases (one copy each); the taps reading one phase
    are again evenly spaced, one ``einsum`` per phase.
    """
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    n, _, _, c = xp.shape
    oh, ow = out_hw
    total: np.ndarray | None = None
    for q in sorted({(j * dw) % sw for j in range(kw)}):
        js = [j for j in range(kw) if (j * dw) % sw == q]
        phase = np.ascontiguousarray(xp if sw == 1 else xp[:, :, q::sw, :])
        _, hp, wp, _ = phase.shape
        row, col = wp * c * phase.itemsize, c * phase.itemsize
        step = (js[1] - js[0]) * dw // sw if len(js) > 1 else 0
        view = as_strided(
            phase[:, :, (js[0] * dw) // sw :, :],
            shape=(n, kh, len(js), oh, ow * c),
            strides=(hp * row, dh * row, step * col, sh * row, phase.itemsize),
            writeable=False,
        )
        part = np.einsum("nijyx,ijx->nyx", view, rows if sw == 1 else rows[:, js])
        total = part if total is None else total + part
    assert total is not None
    return total


def depthwise_matrices(
    w: np.ndarray, kernel: Sequence[int], channels: int, dtype: type[np.generic]
) -> np.ndarray:
    """Depthwise weights ``[.., KH, KW, C*M]`` as per-channel matrices ``[C, KH*KW, M]``."""
    kh, kw = kernel
    mult = w.size // (kh * kw * channels)
    return np.ascontiguousarray(w.reshape(kh * kw, channels, mult).transpose(1, 0, 2), dtype=dtype)


def depthwise_as_matmul(
    xp: np.ndarray,
    mats: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Depthwise convolution of a padded NHWC tensor as one batched product per input channel.

    ``[C, N*OH*OW, KH*KW] @ [C, KH*KW, M]`` (`depthwise_matrices`), result
    ``[N, OH, OW, C*M]``: for a channel multiplier M above 1, where tap-by-tap
    passes would run M-long inner loops.
    """
    n, _, _, c = xp.shape
    oh, ow = out_hw
    view = window_view(xp, kernel, strides, dilations, out_hw)
    cols = np.ascontiguousarray(view.transpose(5, 0, 1, 2, 3, 4)).reshape(c, n * oh * ow, -1)
    y = np.matmul(cols, mats)
    return y.transpose(1, 0, 2).reshape(n, oh, ow, -1)

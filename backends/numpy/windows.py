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


def tap_slice(
    xp: np.ndarray, i: int, j: int, strides: Sequence[int], dilations: Sequence[int], out_hw: Sequence[int]
) -> np.ndarray:
    """The ``[N, OH, OW, C]`` input samples that kernel tap (i, j) multiplies."""
    y0, x0 = i * dilations[0], j * dilations[1]
    return xp[
        :,
        y0 : y0 + (out_hw[0] - 1) * strides[0] + 1 : strides[0],
        x0 : x0 + (out_hw[1] - 1) * strides[1] + 1 : strides[1],
        :,
    ]


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

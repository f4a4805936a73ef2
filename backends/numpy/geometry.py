"""Window geometry of convolution and pooling ops, read from the op's properties."""

from __future__ import annotations

from dataclasses import dataclass

from nnopt.dialects import nn


@dataclass(frozen=True)
class Window:
    """Kernel size, strides, dilations, explicit (top, bottom, left, right) padding and output size."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]
    out_hw: tuple[int, int]


def window_of(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp | nn.AvgPool2DOp) -> Window:
    """The window geometry of `op` for its (static) input shape."""
    x = nn.shape_of(op.input)
    if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp):
        w = nn.shape_of(op.weight)
        kernel = (w[1], w[2])
    else:
        k = nn.ints(op.kernel)
        kernel = (k[0], k[1])
    s = nn.ints(op.strides)
    strides = (s[0], s[1])
    dilations = op.dilation_values()
    pads = op.explicit_padding(x[1:3], kernel)
    out_hw = nn.window_output_hw(x[1:3], kernel, strides, dilations, pads)
    return Window(kernel, strides, dilations, pads, out_hw)

"""The `quant` dialect: MLIR-compatible uniform quantized types.

Per-tensor::

    !quant.uniform<i8:f32, 0.0235:-12>
    !quant.uniform<i8<-127:127>:f32, 0.5>          (storage range, zero point 0)

Per-axis (one scale and zero point per slice of dimension 3)::

    !quant.uniform<i8:f32:3, {0.1,0.2:1,0.3}>

A real value is ``scale * (q - zero_point)``. The grammar is MLIR's
(``mlir/lib/Dialect/Quant/IR/TypeParser.cpp``). One deliberate difference in
printing: MLIR prints scales with ``%e`` (seven significant digits), which
loses float32 scales; nnopt prints the shortest decimal that round-trips the
double exactly. MLIR parses both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatData,
    IntAttr,
    IntegerType,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

STORAGE_WIDTHS = (8, 16, 32)
"""Storage widths nnopt supports (i8/u8, i16/u16, i32/u32)."""

_EXPRESSED = (Float32Type, Float16Type, BFloat16Type, Float64Type)


def storage_limits(width: int, signed: bool) -> tuple[int, int]:
    """The full range of a `width`-bit signed or unsigned integer."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def format_scale(value: float) -> str:
    """Shortest decimal that round-trips `value` and that MLIR's lexer reads as a float."""
    text = repr(float(value))
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


@irdl_attr_definition
class UniformQuantizedType(ParametrizedAttribute, TypeAttribute):
    """A uniform (affine) quantized element type, per tensor or per axis.

    `quantized_dimension` is -1 for per-tensor types, which then hold exactly
    one scale and one zero point.
    """

    name = "quant.uniform"

    storage_width: IntAttr
    storage_signed: IntAttr
    storage_min: IntAttr
    storage_max: IntAttr
    expressed_type: Attribute
    quantized_dimension: IntAttr
    scales: ArrayAttr[FloatData]
    zero_points: ArrayAttr[IntAttr]

    def __init__(
        self,
        *,
        width: int = 8,
        signed: bool = True,
        scales: Sequence[float],
        zero_points: Sequence[int] | None = None,
        axis: int = -1,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed_type: Attribute | None = None,
    ) -> None:
        lo, hi = storage_limits(width, signed)
        zps = [0] * len(scales) if zero_points is None else list(zero_points)
        super().__init__(
            IntAttr(width),
            IntAttr(int(signed)),
            IntAttr(lo if storage_min is None else storage_min),
            IntAttr(hi if storage_max is None else storage_max),
            Float32Type() if expressed_type is None else expressed_type,
            IntAttr(axis),
            ArrayAttr([FloatData(float(s)) for s in scales]),
            ArrayAttr([IntAttr(int(z)) for z in zps]),
        )

    # ----------------------------------------------------------------- access
    @property
    def width(self) -> int:
        """Storage width in bits."""
        return self.storage_width.data

    @property
    def signed(self) -> bool:
        """Whether the storage integer is signed."""
        return bool(self.storage_signed.data)

    @property
    def qmin(self) -> int:
        """Smallest storable value (the storage range, possibly narrowed)."""
        return self.storage_min.data

    @property
    def qmax(self) -> int:
        """Largest storable value."""
        return self.storage_max.data

    @property
    def axis(self) -> int | None:
        """The quantized dimension, or None for a per-tensor type."""
        d = self.quantized_dimension.data
        return None if d < 0 else d

    @property
    def is_per_axis(self) -> bool:
        """True for per-axis (per-channel) types."""
        return self.quantized_dimension.data >= 0

    @property
    def scale_values(self) -> tuple[float, ...]:
        """All scales (one for per-tensor types)."""
        return tuple(s.data for s in self.scales.data)

    @property
    def zero_point_values(self) -> tuple[int, ...]:
        """All zero points (one for per-tensor types)."""
        return tuple(z.data for z in self.zero_points.data)

    @property
    def scale(self) -> float:
        """The scale of a per-tensor type."""
        if self.is_per_axis:
            raise ValueError(f"{self} is per-axis: it has no single scale")
        return self.scales.data[0].data

    @property
    def zero_point(self) -> int:
        """The zero point of a per-tensor type."""
        if self.is_per_axis:
            raise ValueError(f"{self} is per-axis: it has no single zero point")
        return self.zero_points.data[0].data

    @property
    def storage_type(self) -> IntegerType:
        """The builtin integer type that holds the stored values (signless)."""
        return IntegerType(self.width)

    @property
    def numpy_dtype(self) -> np.dtype[np.integer]:
        """The numpy dtype of the stored values."""
        return np.dtype(f"{'int' if self.signed else 'uint'}{self.width}")

    def same_parameters(self, other: Attribute) -> bool:
        """True when `other` quantizes real values exactly like this type."""
        return isinstance(other, UniformQuantizedType) and other == self

    # ------------------------------------------------------------ verify
    def verify(self) -> None:
        width, signed = self.width, self.signed
        if width not in STORAGE_WIDTHS:
            raise VerifyException(f"quant.uniform: storage type must be 8, 16 or 32 bits wide, got {width}")
        lo, hi = storage_limits(width, signed)
        if not lo <= self.qmin < self.qmax <= hi:
            raise VerifyException(
                f"quant.uniform: storage range [{self.qmin}:{self.qmax}] does not fit "
                f"{'i' if signed else 'u'}{width} ([{lo}:{hi}])"
            )
        if not isinstance(self.expressed_type, _EXPRESSED):
            raise VerifyException(
                f"quant.uniform: expressed type must be a float type, got {self.expressed_type}"
            )
        scales, zps = self.scale_values, self.zero_point_values
        if not scales:
            raise VerifyException("quant.uniform: at least one scale is required")
        if len(scales) != len(zps):
            raise VerifyException(f"quant.uniform: {len(scales)} scales but {len(zps)} zero points")
        if not self.is_per_axis and len(scales) != 1:
            raise VerifyException("quant.uniform: a per-tensor type has exactly one scale")
        if self.quantized_dimension.data < -1:
            raise VerifyException(
                f"quant.uniform: quantized dimension must be >= 0, got {self.quantized_dimension.data}"
            )
        for i, s in enumerate(scales):
            if not (s > 0 and math.isfinite(s)):
                where = f" (channel {i})" if self.is_per_axis else ""
                raise VerifyException(f"quant.uniform: scale must be positive and finite, got {s}{where}")
        for i, z in enumerate(zps):
            if not self.qmin <= z <= self.qmax:
                where = f" (channel {i})" if self.is_per_axis else ""
                raise VerifyException(
                    f"quant.uniform: zero point {z}{where} outside storage range [{self.qmin}:{self.qmax}]"
                )

    # ------------------------------------------------------- parse/print
    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            ident = parser.parse_identifier(" (storage type such as i8 or u8)")
            if len(ident) < 2 or ident[0] not in "iu" or not ident[1:].isdigit():
                parser.raise_error(f"expected storage type such as i8 or u8, got '{ident}'")
            signed, width = ident[0] == "i", int(ident[1:])
            if width not in STORAGE_WIDTHS:
                parser.raise_error(f"unsupported storage width {width} (use 8, 16 or 32)")
            lo, hi = storage_limits(width, signed)
            if parser.parse_optional_punctuation("<") is not None:
                lo = parser.parse_integer(allow_boolean=False)
                parser.parse_punctuation(":")
                hi = parser.parse_integer(allow_boolean=False)
                parser.parse_punctuation(">")
            parser.parse_punctuation(":")
            expressed = parser.parse_type()
            axis = -1
            if parser.parse_optional_punctuation(":") is not None:
                axis = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            params: list[tuple[float, int]]
            if axis >= 0:
                params = parser.parse_comma_separated_list(
                    parser.Delimiter.BRACES, lambda: _parse_scale_zp(parser)
                )
            else:
                params = [_parse_scale_zp(parser)]
        return (
            IntAttr(width),
            IntAttr(int(signed)),
            IntAttr(lo),
            IntAttr(hi),
            expressed,
            IntAttr(axis),
            ArrayAttr([FloatData(s) for s, _ in params]),
            ArrayAttr([IntAttr(z) for _, z in params]),
        )

    def print_parameters(self, printer: Printer) -> None:
        storage = f"{'i' if self.signed else 'u'}{self.width}"
        if (self.qmin, self.qmax) != storage_limits(self.width, self.signed):
            storage += f"<{self.qmin}:{self.qmax}>"
        printer.print_string(f"<{storage}:")
        printer.print_attribute(self.expressed_type)
        params = [
            format_scale(s) + (f":{z}" if z != 0 else "")
            for s, z in zip(self.scale_values, self.zero_point_values, strict=True)
        ]
        if self.is_per_axis:
            printer.print_string(f":{self.quantized_dimension.data}, {{{','.join(params)}}}>")
        else:
            printer.print_string(f", {params[0]}>")


def _parse_scale_zp(parser: AttrParser) -> tuple[float, int]:
    scale = float(parser.parse_number())
    zp = 0
    if parser.parse_optional_punctuation(":") is not None:
        zp = parser.parse_integer(allow_boolean=False)
    return scale, zp


Quant = Dialect("quant", [], [UniformQuantizedType])

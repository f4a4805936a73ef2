"""Small pieces every kernel emitter uses: an indenting line writer, index expressions,
loop nests over strided tensors, number literals and the registry of constant tables."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnopt.backends.c.model import Access, Constant, Layer
from nnopt.backends.c.names import Namer, comment_text
from nnopt.backends.c.runtime import HelperSet

INT_LIMITS = {
    "int8_t": (-128, 127),
    "uint8_t": (0, 255),
    "int16_t": (-32768, 32767),
    "uint16_t": (0, 65535),
    "int32_t": (-(1 << 31), (1 << 31) - 1),
    "uint32_t": (0, (1 << 32) - 1),
    "int64_t": (-(1 << 63), (1 << 63) - 1),
    "uint64_t": (0, (1 << 64) - 1),
}


class Code:
    """Lines of C with indentation."""

    def __init__(self, depth: int = 1) -> None:
        self.lines: list[str] = []
        self.depth = depth

    def __call__(self, text: str) -> None:
        text = text.replace(" - -", " + ").replace(" + -", " - ")
        self.lines.append(("    " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        """``text {`` and one level deeper."""
        self(f"{text} {{")
        self.depth += 1

    def block(self) -> None:
        """A bare ``{`` (a new scope) and one level deeper."""
        self("{")
        self.depth += 1

    def close(self, suffix: str = "") -> None:
        """Back one level and ``}``."""
        self.depth -= 1
        self("}" + suffix)

    def loop(self, var: str, count: int | str, start: int | str = 0) -> None:
        """``for (int var = start; var < count; ++var) {``."""
        self.open(f"for (int {var} = {start}; {var} < {count}; ++{var})")

    def text(self) -> str:
        """All lines joined."""
        return "\n".join(self.lines)


def int_literal(v: int, ctype: str = "int32_t") -> str:
    """A C integer literal that is valid for every value of `ctype` (INT32_MIN spelled safely)."""
    v = int(v)
    if ctype in ("int64_t", "uint64_t") or not -(1 << 31) <= v < (1 << 31):
        if v == -(1 << 63):
            return "INT64_MIN"
        return f"{v}LL" if v >= 0 or ctype == "int64_t" else f"({v}LL)"
    if v == -(1 << 31):
        return "INT32_MIN"
    return str(v)


def float_literal(v: float) -> str:
    """An exact float32 literal (C99 hexadecimal float), e.g. ``0x1.8p+1f``."""
    f = float(np.float32(v))
    if math.isnan(f):
        return "NAN"
    if math.isinf(f):
        return "HUGE_VALF" if f > 0 else "(-HUGE_VALF)"
    if f == 0.0:
        return "-0.0f" if math.copysign(1.0, f) < 0 else "0.0f"
    text = f.hex()  # e.g. 0x1.8000000000000p+1
    mant, exp = text.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}f"


def double_literal(v: float) -> str:
    """An exact double literal (hexadecimal)."""
    f = float(v)
    if f == 0.0:
        return "0.0"
    text = f.hex()
    mant, exp = text.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}"


def lin(terms: Iterable[tuple[str | int, int]], base: int = 0) -> str:
    """``a * 12 + b * 3 + c + 7`` from (index, stride) pairs; integer indices fold into the constant."""
    const = base
    parts: list[str] = []
    for expr, stride in terms:
        if stride == 0:
            continue
        if isinstance(expr, int):
            const += expr * stride
            continue
        e = expr if expr.isidentifier() else f"({expr})"
        parts.append(e if stride == 1 else f"{e} * {stride}")
    if not parts:
        return str(const)
    text = " + ".join(parts)
    if const > 0:
        text += f" + {const}"
    elif const < 0:
        text += f" - {-const}"
    return text


@dataclass
class Nest:
    """A loop nest over the merged dimensions of an elementwise iteration space."""

    dims: list[int]
    strides: list[list[int]]
    kept: list[int | None]
    """For each merged dim, the original dim it comes from when it was not merged (else None)."""


def merge_dims(shape: Sequence[int], strides: Sequence[Sequence[int]], keep: Iterable[int] = ()) -> Nest:
    """Merge adjacent dims that are contiguous for every access (and drop size-1 dims).

    `strides` holds one tuple per access, aligned with `shape` (0 = broadcast).
    Dims in `keep` are never merged, so a per-axis index stays available.
    """
    keep = set(keep)
    dims: list[int] = []
    out: list[list[int]] = [[] for _ in strides]
    kept: list[int | None] = []
    for d, size in enumerate(shape):
        if size == 1 and d not in keep:
            continue
        if (
            dims
            and d not in keep
            and kept[-1] is None
            and all(out[a][-1] == strides[a][d] * size for a in range(len(strides)))
        ):
            dims[-1] *= size
            for a in range(len(strides)):
                out[a][-1] = strides[a][d]
            continue
        dims.append(size)
        kept.append(d if d in keep else None)
        for a in range(len(strides)):
            out[a].append(strides[a][d])
    return Nest(dims, out, kept)


def broadcast_strides(acc: Access, out_shape: Sequence[int]) -> tuple[int, ...]:
    """Strides of `acc` aligned with `out_shape` under numpy broadcasting (0 on broadcast dims)."""
    rank = len(out_shape)
    pad = rank - len(acc.shape)
    result = []
    for d in range(rank):
        if d < pad:
            result.append(0)
        else:
            size = acc.shape[d - pad]
            result.append(0 if size == 1 else acc.strides[d - pad])
    return tuple(result)


# --------------------------------------------------------------------------
# Constant tables
# --------------------------------------------------------------------------


@dataclass
class Table:
    """A static const array printed into the weights file."""

    name: str
    ctype: str
    values: np.ndarray
    comment: str
    space: str = "flash"


@dataclass
class Tables:
    """Constant arrays: the model's weights (printed when used) and tables derived by kernels."""

    constants: dict[str, Constant]
    namer: Namer = field(default_factory=Namer)
    tables: dict[str, Table] = field(default_factory=dict)
    const_names: dict[str, str] = field(default_factory=dict)

    def constant(self, key: str) -> str:
        """The array name of a model constant (printed once, on first use)."""
        name = self.const_names.get(key)
        if name is None:
            const = self.constants[key]
            name = self.namer(f"w_{const.origin}", "w")
            self.const_names[key] = name
            self.tables[name] = Table(name, const.ctype, const.value.reshape(-1), const.origin, const.space)
        return name

    def derived(
        self,
        hint: str,
        ctype: str,
        values: Sequence[int] | Sequence[float] | np.ndarray,
        comment: str,
        space: str = "flash",
    ) -> str:
        """Register a table computed by a kernel emitter; returns its name."""
        name = self.namer(hint, "t")
        self.tables[name] = Table(name, ctype, np.asarray(values).reshape(-1), comment, space)
        return name


def weights_section_macro(space: str) -> str:
    """The placement macro of constant tables in a memory space."""
    from nnopt.backends.c.names import macro_part

    return f"NNOPT_WEIGHTS_SECTION_{macro_part(space)}"


def format_table(table: Table) -> str:
    """``static const T name[n] SECTION ALIGN = { ... };`` with rows of readable literals."""
    section_macro = weights_section_macro(table.space)
    values = table.values
    n = max(int(values.size), 1)
    per_row = {"float": 6, "int64_t": 6, "int32_t": 8, "uint32_t": 8}.get(table.ctype, 16)
    if table.ctype == "float":
        items = [float_literal(float(v)) for v in values.astype(np.float32)]
    else:
        items = [int_literal(int(v), table.ctype) for v in values.astype(np.int64)]
    if not items:
        items = ["0"]
    rows = [", ".join(items[i : i + per_row]) for i in range(0, len(items), per_row)]
    body = ",\n    ".join(rows)
    return (
        f"/* {comment_text(table.comment)} */\n"
        f"static const {table.ctype} {table.name}[{n}] {section_macro} NNOPT_ALIGNED(16) = {{\n    {body}\n}};"
    )


def float_bits(v: float) -> int:
    """The IEEE bits of a float32."""
    return int(struct.unpack("<I", struct.pack("<f", float(v)))[0])


# --------------------------------------------------------------------------
# Per-layer context
# --------------------------------------------------------------------------


@dataclass
class KernelContext:
    """What a kernel emitter works with: the layer, the helper and table registries, the code."""

    layer: Layer
    helpers: HelperSet
    tables: Tables
    code: Code = field(default_factory=Code)
    spaces: set[str] = field(default_factory=set)
    needs_math: bool = False
    const_space: str = "flash"
    """Where tables derived by this layer go (the space of its weights)."""
    reverse: bool = False
    """Walk the output pixels backwards (a window op whose result overlaps the end of its input)."""

    def pointer(self, var: str, acc: Access, writable: bool = False) -> str:
        """Declare `var` pointing at `acc`'s first element; returns `var`."""
        if acc.const is not None:
            name = self.tables.constant(acc.const)
            self.code(f"const {acc.ctype} *{var} = {name};")
            return var
        assert acc.space is not None
        self.spaces.add(acc.space)
        q = "" if writable else "const "
        self.code(f"{q}{acc.ctype} *{var} = ({q}{acc.ctype} *)(arena_{acc.space} + {acc.offset});")
        return var

    def table(
        self, hint: str, ctype: str, values: Sequence[int] | Sequence[float] | np.ndarray, comment: str
    ) -> str:
        """A per-layer constant table (name prefixed with the layer number)."""
        return self.tables.derived(f"l{self.layer.index}_{hint}", ctype, values, comment, self.const_space)

    def use(self, helper: str) -> str:
        """A runtime helper's C name (and mark it used)."""
        return self.helpers.use(helper)

"""Lowering of a `.nn` model to the `nn` dialect: one `nn.graph` per file.

`parse_nn` is the frontend registered for the ``.nn`` extension. Every op
carries the ``file:line:col`` of its layer line; every user mistake is a
located `UserError`.

Weights come from the ``weights "file.npz"`` archive (arrays
``<layer>.weight`` / ``<layer>.bias``, path relative to the model file) or are
initialised deterministically from ``(seed, array name)`` with `init_array`.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import zipfile
from collections.abc import Mapping

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnopt.compiler.frontend.layers import KINDS, Args, LayerContext, Operand, Shape
from nnopt.compiler.frontend.syntax import (
    Ident,
    InputDecl,
    Layer,
    Number,
    OutputDecl,
    Pos,
    Setting,
    Source,
    Statement,
    String,
    parse_source,
)
from nnopt.compiler.mlir_input import decode_text
from nnopt.dialects import nn

BIAS_LIMIT = 0.1
"""Seeded biases are uniform in ``[-BIAS_LIMIT, BIAS_LIMIT)``."""

SHAPE_HINTS = {
    "conv2d.weight": "[filters, KH, KW, Cin/groups] (OHWI)",
    "depthwise_conv2d.weight": "[1, KH, KW, Cin*multiplier]",
    "fully_connected.weight": "[units, K]",
}


def uniform_bits(seed: int, key: str, count: int) -> np.ndarray:
    """`count` float64 values in ``[0, 1)`` determined only by `seed` and `key`.

    The stream is PCG64 seeded by ``SeedSequence([seed, *sha256(key)[:16] as 4 little-endian
    u32])``, and each value is the top 53 bits of one raw 64-bit output: both are bit-stable
    across numpy versions and platforms (unlike numpy's distribution methods).
    """
    words = np.frombuffer(hashlib.sha256(key.encode()).digest()[:16], dtype="<u4")
    sequence = np.random.SeedSequence([seed, *(int(w) for w in words)])
    raw = np.asarray(np.random.PCG64(sequence).random_raw(count), dtype=np.uint64)
    return (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53


def init_array(seed: int, key: str, shape: Shape, fan_in: int) -> np.ndarray:
    """A deterministic initial value for array `key` (``<layer>.weight`` / ``<layer>.bias``).

    Weights (``fan_in > 0``) are He-uniform, ``U(-sqrt(6/fan_in), sqrt(6/fan_in))``; biases
    (``fan_in == 0``) are ``U(-BIAS_LIMIT, BIAS_LIMIT)``. Values are float32.
    """
    limit = math.sqrt(6.0 / fan_in) if fan_in > 0 else BIAS_LIMIT
    u = uniform_bits(seed, key, math.prod(shape))
    return ((2.0 * u - 1.0) * limit).astype(np.float32).reshape(shape)


def dense_f32(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """A float32 dense elements attribute holding `array` (little-endian bytes)."""
    data = np.ascontiguousarray(array, dtype="<f4")
    return DenseIntOrFPElementsAttr(TensorType(f32, list(data.shape)), BytesAttr(data.tobytes()))


def _model_name(file_name: str) -> str:
    stem = os.path.splitext(os.path.basename(file_name))[0]
    cleaned = re.sub(r"\W", "_", stem)
    if not cleaned or cleaned in ("stdin", "_"):
        return "model"
    return cleaned if not cleaned[0].isdigit() else f"m{cleaned}"


class _Weights:
    """Arrays of the ``weights`` archive, checked by name and shape; reports unused ones."""

    def __init__(self, source: Source, setting: Setting, path: str) -> None:
        self.source = source
        self.setting = setting
        self.display = path
        self.arrays: dict[str, np.ndarray] = {}
        self.used: set[str] = set()
        pos = setting.value.pos
        if not os.path.isfile(path):
            raise source.error(pos, f"weights file '{path}' not found")
        try:
            with open(path, "rb") as handle:
                magic = handle.read(6)
        except OSError as exc:
            raise source.error(pos, f"cannot read weights file '{path}': {exc.strerror or exc}") from None
        if not magic.startswith(b"PK"):
            what = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip file"
            raise source.error(pos, f"weights file '{path}' is not an .npz archive of named arrays ({what})")
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise source.error(pos, f"cannot read weights file '{path}': {exc}") from None
        try:
            for key in archive.files:
                self.arrays[key] = np.asarray(archive[key])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise source.error(pos, f"cannot read weights file '{path}': {exc}") from None
        finally:
            archive.close()

    def get(self, key: str, shape: Shape, layer: Layer, hint: str) -> np.ndarray:
        """Array `key` with the expected shape, as float32."""
        array = self.arrays.get(key)
        if array is None:
            extra = " (or set bias=false)" if key.endswith(".bias") else ""
            raise self.source.error(
                layer.pos,
                f"weights file '{self.display}' has no array '{key}' (expected shape {list(shape)}){extra}",
            )
        if tuple(array.shape) != tuple(shape):
            layout = f" {hint}" if hint else ""
            raise self.source.error(
                layer.pos,
                f"array '{key}' in '{self.display}' has shape {list(array.shape)}, "
                f"expected {list(shape)}{layout}",
            )
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise self.source.error(
                layer.pos, f"array '{key}' in '{self.display}' has dtype {array.dtype}, expected floats"
            )
        self.used.add(key)
        return array.astype(np.float32)

    def check_all_used(self) -> None:
        """A located error naming the arrays no layer consumed (usually a typo in a layer name)."""
        unused = sorted(set(self.arrays) - self.used)
        if unused:
            shown = ", ".join(unused[:8]) + (", ..." if len(unused) > 8 else "")
            raise self.source.error(
                self.setting.value.pos,
                f"weights file '{self.display}' has {len(unused)} array(s) that no layer uses: {shown}",
            )


class _Lowering:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.file = StringAttr(source.name)
        self.values: dict[str, tuple[SSAValue, Pos]] = {}
        self.defined_at: dict[str, Pos] = {}
        self.block = Block()
        self.seed = 0
        self.weights: _Weights | None = None
        self.model_name = _model_name(source.name)
        self.graph_pos = Pos(1, 1)

    def loc(self, pos: Pos) -> FileLineColLoc:
        return FileLineColLoc(self.file, IntAttr(pos.line), IntAttr(pos.col))

    # -- header ----------------------------------------------------------
    def settings(self, stmts: list[Statement]) -> None:
        seen: dict[str, Setting] = {}
        for stmt in stmts:
            if not isinstance(stmt, Setting):
                continue
            if stmt.keyword in seen:
                first = seen[stmt.keyword].pos.line
                raise self.source.error(stmt.pos, f"'{stmt.keyword}' given twice (first on line {first})")
            seen[stmt.keyword] = stmt
        if "model" in seen:
            value = seen["model"].value
            assert isinstance(value, Ident)
            self.model_name = value.name
            self.graph_pos = seen["model"].pos
        if "seed" in seen:
            value = seen["seed"].value
            if not isinstance(value, Number) or not isinstance(value.value, int) or value.value < 0:
                raise self.source.error(
                    value.pos, f"seed must be a non-negative integer, got {value.describe()}"
                )
            self.seed = value.value
        if "weights" in seen:
            value = seen["weights"].value
            assert isinstance(value, String)
            path = value.value
            if not os.path.isabs(path):
                path = os.path.join(os.path.dirname(self.source.name), path)
            self.weights = _Weights(self.source, seen["weights"], path)

    # -- names -----------------------------------------------------------
    def define(self, name: str, pos: Pos, value: SSAValue) -> None:
        if name in self.defined_at:
            first = self.defined_at[name]
            raise self.source.error(pos, f"'{name}' is already defined (line {first.line})")
        self.defined_at[name] = pos
        self.values[name] = (value, pos)

    def lookup(self, ident: Ident, later: Mapping[str, Pos]) -> SSAValue:
        if ident.name in self.values:
            return self.values[ident.name][0]
        if ident.name in later:
            line = later[ident.name].line
            raise self.source.error(ident.pos, f"'{ident.name}' is used before it is defined (line {line})")
        hint = difflib.get_close_matches(ident.name, list(self.values), n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise self.source.error(ident.pos, f"undefined name '{ident.name}'{suggestion}")

    # -- statements ------------------------------------------------------
    def input_type(self, decl: InputDecl) -> TensorType[Attribute]:
        if decl.dtype != "f32":
            raise self.source.error(
                decl.dtype_pos, f"unsupported element type '{decl.dtype}': .nn models are float32 (write f32)"
            )
        if not decl.shape:
            raise self.source.error(decl.shape_pos, f"input '{decl.name}' needs at least one dimension")
        dims: list[int] = []
        for d in decl.shape:
            if not isinstance(d.value, int) or d.value < 1:
                raise self.source.error(d.pos, f"dimensions must be positive integers, got {d.text}")
            dims.append(d.value)
        return TensorType(f32, dims)

    def layer(self, layer: Layer, later: Mapping[str, Pos]) -> SSAValue:
        kind = KINDS.get(layer.kind)
        if kind is None:
            hint = difflib.get_close_matches(layer.kind, list(KINDS), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise self.source.error(layer.kind_pos, f"unknown layer kind '{layer.kind}'{suggestion}")
        args = Args(self.source, layer, kind.keys)
        count = len(args.positional)
        if count < kind.min_inputs or (kind.max_inputs is not None and count > kind.max_inputs):
            if kind.max_inputs is None:
                wanted = f"at least {kind.min_inputs} inputs"
            elif kind.min_inputs == kind.max_inputs:
                wanted = f"{kind.min_inputs} input" + ("s" if kind.min_inputs > 1 else "")
            else:
                wanted = f"{kind.min_inputs} to {kind.max_inputs} inputs"
            raise self.source.error(layer.kind_pos, f"{layer.kind} takes {wanted}, got {count}")
        loc = self.loc(layer.pos)
        inputs: list[Operand] = []
        for arg in args.positional:
            value = arg.value
            if isinstance(value, Ident):
                if value.name == layer.name and value.name not in self.values:
                    raise self.source.error(arg.pos, f"layer '{layer.name}' cannot use its own result")
                inputs.append(Operand(self.lookup(value, later), arg))
            elif isinstance(value, Number) and kind.numbers_ok:
                scalar = np.full((1,), value.value, np.float32)
                inputs.append(Operand(self.constant(scalar, loc, f"{layer.name}_scalar"), arg))
            else:
                what = "a layer or input name" + (" or a number" if kind.numbers_ok else "")
                raise self.source.error(
                    arg.pos, f"input of {layer.kind} must be {what}, got {value.describe()}"
                )
        if kind.numbers_ok and all(isinstance(o.arg.value, Number) for o in inputs):
            raise self.source.error(
                layer.kind_pos, f"{layer.kind} needs at least one layer or input, not only numbers"
            )

        def emit(op: Operation) -> Operation:
            op.location = loc
            self.block.add_op(op)
            return op

        def param(role: str, shape: Shape, fan_in: int) -> SSAValue:
            key = f"{layer.name}.{role}"
            if self.weights is not None:
                array = self.weights.get(key, shape, layer, SHAPE_HINTS.get(f"{layer.kind}.{role}", ""))
            else:
                array = init_array(self.seed, key, shape, fan_in)
            return self.constant(array, loc, f"{layer.name}_{role}")

        return kind.build(LayerContext(self.source, layer, args, inputs, emit, param))

    def constant(self, array: np.ndarray, loc: FileLineColLoc, name: str | None) -> SSAValue:
        op = nn.ConstOp(dense_f32(array))
        op.location = loc
        if name is not None:
            op.result.name_hint = name
        self.block.add_op(op)
        return op.result

    # -- the whole model -------------------------------------------------
    def lower(self, stmts: list[Statement]) -> ModuleOp:
        self.settings(stmts)
        later: dict[str, Pos] = {}
        for stmt in stmts:
            if isinstance(stmt, Layer | InputDecl) and stmt.name not in later:
                later[stmt.name] = stmt.pos
        input_names: list[str] = []
        outputs: list[tuple[Ident, SSAValue]] = []
        output_pos = Pos(1, 1)
        for stmt in stmts:
            if isinstance(stmt, InputDecl):
                arg = self.block.insert_arg(self.input_type(stmt), len(self.block.args))
                arg.name_hint = stmt.name
                self.define(stmt.name, stmt.pos, arg)
                input_names.append(stmt.name)
            elif isinstance(stmt, Layer):
                if stmt.name in self.defined_at:
                    first = self.defined_at[stmt.name]
                    raise self.source.error(stmt.pos, f"'{stmt.name}' is already defined (line {first.line})")
                self.define(stmt.name, stmt.pos, self.layer(stmt, later))
            elif isinstance(stmt, OutputDecl):
                output_pos = stmt.pos
                for ident in stmt.names:
                    value = self.lookup(ident, later)
                    for prev, _ in outputs:
                        if prev.name == ident.name:
                            raise self.source.error(
                                ident.pos, f"'{ident.name}' is already an output (line {prev.pos.line})"
                            )
                    outputs.append((ident, value))
        if not input_names:
            raise self.source.error(
                self.source.end, "the model has no input; declare one with `input NAME: f32[...]`"
            )
        if not outputs:
            raise self.source.error(self.source.end, "the model has no output; end it with `output LAYER`")
        if self.weights is not None:
            self.weights.check_all_used()
        out = nn.OutputOp([v for _, v in outputs])
        out.location = self.loc(output_pos)
        self.block.add_op(out)

        def names(items: list[str]) -> ArrayAttr[DictionaryAttr]:
            return ArrayAttr([DictionaryAttr({nn.NAME_KEY: StringAttr(n)}) for n in items])

        graph = nn.GraphOp(
            self.model_name,
            list(self.block.arg_types),
            [v.type for _, v in outputs],
            Region(self.block),
            arg_attrs=names(input_names),
            res_attrs=names([ident.name for ident, _ in outputs]),
        )
        graph.location = self.loc(self.graph_pos)
        return ModuleOp([graph])


def lower_nn(text: str, name: str) -> ModuleOp:
    """Parse and lower `.nn` text (`name` is used in locations and to find the weights file)."""
    source = Source(name, text)
    return _Lowering(source).lower(parse_source(source))


def parse_nn(data: bytes, name: str, ctx: Context) -> ModuleOp:
    """The ``.nn`` frontend: model text to a module holding one `nn.graph` (not yet verified)."""
    del ctx  # the ops are built directly; nothing is looked up in the context
    return lower_nn(decode_text(data, name), name)

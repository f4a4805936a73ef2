"""Print a planned graph as C99: the public header, the model source and its weights.

Layout of the generated library (``<name>`` is the model name):

* ``<name>.h`` -- the API, Glow-bundle style: per memory space
  ``<NAME>_ARENA_<SPACE>_SIZE`` / ``_ALIGN``; per input and output its name,
  shape, element type, scale, zero point and arena offset as macros;
  ``int <name>_run(const in_t *in..., out_t *out..., uint8_t *arena_<space>...)``
  returning ``<NAME>_OK`` or a negative error code; with
  ``-D<NAME>_STATIC_ARENAS`` also ``<name>_run_static(...)`` on arenas the
  library defines itself.
* ``<name>.c`` -- one static function per layer with every shape, stride,
  offset and parameter folded in, then ``<name>_run``.
* ``<name>_weights.h`` -- the constant tables (``static const``), included by
  ``<name>.c`` only.

Placement: arenas and tables carry ``NNOPT_SECTION_<SPACE>`` (empty unless the
user defines it, e.g. ``-DNNOPT_SECTION_SRAM='__attribute__((section(".dtcm")))'``);
alignment goes through ``NNOPT_ALIGNED(n)``. No malloc, no printf, and no
floating point on the integer path at run time (except the ``onnx_rint``
rounding mode, which ONNX defines as a float multiply).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnopt.backends.c import kernels
from nnopt.backends.c.codegen import (
    Code,
    KernelContext,
    Tables,
    float_literal,
    format_table,
    lin,
    merge_dims,
    weights_section_macro,
)
from nnopt.backends.c.model import DEFAULT_CONST_SPACE, Access, GraphModel, Layer, Port
from nnopt.backends.c.names import Namer, comment_text, macro_part, string_literal
from nnopt.backends.c.runtime import HelperSet
from nnopt.compiler.diagnostics import op_error
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

VERSION = "nnopt 0.1.0"

WEIGHT_SPACE = DEFAULT_CONST_SPACE
"""The memory space of tables when the model has no constants to take it from."""

CTYPE_BYTES = {
    "float": 4,
    "int64_t": 8,
    "uint64_t": 8,
    "int32_t": 4,
    "uint32_t": 4,
    "int16_t": 2,
    "uint16_t": 2,
}

DTYPES = {
    "int8_t": ("INT8", 1),
    "uint8_t": ("UINT8", 2),
    "int16_t": ("INT16", 3),
    "uint16_t": ("UINT16", 4),
    "int32_t": ("INT32", 5),
    "uint32_t": ("UINT32", 6),
    "int64_t": ("INT64", 7),
    "uint64_t": ("UINT64", 8),
    "float": ("FLOAT32", 9),
}


@dataclass
class LayerInfo:
    """What the generator knows about one layer (for the test program and reports)."""

    index: int
    op: str
    name: str
    macs: int
    writes: list[tuple[str, int, int]]
    """Arena byte ranges ``(space, start, end)`` the layer may write."""


@dataclass
class CSources:
    """The generated library files and facts about them."""

    name: str
    files: dict[str, str]
    layers: list[LayerInfo]
    arenas: dict[str, int]
    alignments: dict[str, int]
    weight_bytes: int
    macs: int
    inputs: list[Port]
    outputs: list[Port]
    input_idents: list[str]
    output_idents: list[str]
    buffers: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    uses_math: bool = False
    weight_spaces: dict[str, int] = field(default_factory=dict)
    """Bytes of constant tables per memory space."""


def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates of a layer (0 for ops without a reduction)."""
    op = layer.op
    y = layer.output.shape
    if isinstance(op, nn.Conv2DOp):
        w = layer.inputs[1].shape
        return math.prod(y) * w[1] * w[2] * w[3]
    if isinstance(op, nn.DepthwiseConv2DOp):
        w = layer.inputs[1].shape
        return math.prod(y) * w[1] * w[2]
    if isinstance(op, nn.FullyConnectedOp):
        return math.prod(y) * layer.inputs[1].shape[1]
    if isinstance(op, nn.MatMulOp):
        a = layer.inputs[0].shape
        k = a[-2] if op.adj_x is not None else a[-1]
        return math.prod(y) * k
    return 0


def _describe(acc: Access) -> str:
    shape = "x".join(str(d) for d in acc.shape) or "scalar"
    where = f"const {acc.const}" if acc.is_const else f"{acc.space}+{acc.offset}"
    strided = "" if acc.contiguous else f" strides {list(acc.strides)}"
    return f"{shape} {acc.ctype} @{where}{strided}"


def _write_ranges(layer: Layer) -> list[tuple[str, int, int]]:
    ranges: list[tuple[str, int, int]] = []
    out = layer.output
    if out.space is not None:
        ranges.append((out.space, *out.byte_range()))
    if layer.scratch is not None and layer.scratch.space is not None:
        ranges.append((layer.scratch.space, *layer.scratch.byte_range()))
    return ranges


def _port_copy(code: Code, port_ptr: str, acc: Access, into_arena: bool, tables: Tables) -> None:
    """Copy a graph input into its arena place, or a graph output out of its place."""
    code.block()
    if acc.is_const:
        src = tables.constant(acc.const)  # type: ignore[arg-type]
        code.loop("i", acc.size)
        code(f"{port_ptr}[i] = {src}[i];")
        code.close()
        code.close()
        return
    q = "" if into_arena else "const "
    code(f"{q}{acc.ctype} *p = ({q}{acc.ctype} *)(arena_{acc.space} + {acc.offset});")
    nest = merge_dims(acc.shape, [acc.strides])
    contiguous = acc.contiguous
    guard = f"if ((const void *)p != (const void *){port_ptr})"
    code.open(guard)
    if contiguous:
        code.loop("i", acc.size)
        code(f"p[i] = {port_ptr}[i];" if into_arena else f"{port_ptr}[i] = p[i];")
        code.close()
    else:
        variables = [f"i{d}" for d in range(len(nest.dims))]
        dense = [math.prod(nest.dims[d + 1 :]) for d in range(len(nest.dims))]
        for var, size in zip(variables, nest.dims, strict=True):
            code.loop(var, size)
        pi = lin(zip(variables, nest.strides[0], strict=True))
        ui = lin(zip(variables, dense, strict=True))
        code(f"p[{pi}] = {port_ptr}[{ui}];" if into_arena else f"{port_ptr}[{ui}] = p[{pi}];")
        for _ in variables:
            code.close()
    code.close()
    code.close()


def generate(model: GraphModel, name: str, source: str) -> CSources:
    """Generate the library files of a planned graph under the C name `name`."""
    prefix = name
    upper = macro_part(name)
    helpers = HelperSet()
    tables = Tables(model.constants, Namer({"y", "x", "w", "b"}))
    spaces = list(model.spaces)
    arena_params = [f"arena_{s}" for s in spaces]
    funcs: list[str] = []
    calls: list[str] = []
    infos: list[LayerInfo] = []
    uses_math = False
    fn_namer = Namer({f"{prefix}_run", f"{prefix}_run_static"})
    const_spaces = [c.space for c in model.constants.values()]
    default_space = max(sorted(set(const_spaces)), key=const_spaces.count) if const_spaces else WEIGHT_SPACE
    for layer in model.layers:
        emitter = kernels.EMITTERS.get(type(layer.op))
        if emitter is None:
            raise op_error(layer.op, "is not supported by the C backend")
        const_inputs = [model.constants[a.const].space for a in layer.inputs if a.const is not None]
        k = KernelContext(
            layer, helpers, tables, const_space=const_inputs[0] if const_inputs else default_space
        )
        emitter(k)
        uses_math |= k.needs_math
        infos.append(
            LayerInfo(layer.index, layer.op.name, layer.name, layer_macs(layer), _write_ranges(layer))
        )
        banner = [
            f"/* layer {layer.index}: {layer.op.name} {comment_text(repr(layer.name))}"
            + (f" ({comment_text(layer.location or '')})" if layer.location else "")
            + " */"
        ]
        for i, acc in enumerate(layer.inputs):
            banner.append(f"/*   in{i}:  {_describe(acc)} */")
        banner.append(f"/*   out:  {_describe(layer.output)} */")
        if layer.scratch is not None:
            banner.append(
                f"/*   scratch: {layer.scratch.size} bytes @{layer.scratch.space}+{layer.scratch.offset} */"
            )
        if not k.code.lines:
            calls.append(
                f"    /* layer {layer.index} ({layer.op.name}): nothing to do, the result is a view */"
            )
            calls.append(f"    {upper}_HOOK({layer.index}, 0);")
            calls.append(f"    {upper}_HOOK({layer.index}, 1);")
            funcs.append("\n".join([*banner, "/*   (a view: no code) */"]))
            continue
        used = [s for s in spaces if s in k.spaces]
        params = ", ".join(f"uint8_t *arena_{s}" for s in used) or "void"
        fname = fn_namer(f"layer{layer.index}_{layer.op.name[3:]}", "layer")
        funcs.append("\n".join([*banner, f"static void {fname}({params}) {{", k.code.text(), "}"]))
        calls.append(f"    {upper}_HOOK({layer.index}, 0);")
        calls.append(f"    {fname}({', '.join(f'arena_{s}' for s in used)});")
        calls.append(f"    {upper}_HOOK({layer.index}, 1);")

    # Graph inputs/outputs as run() parameters.
    pnamer = Namer({*arena_params, "p", "i", "s", "d"})
    in_ids = [pnamer(port.name, "input") for port in model.inputs]
    out_ids = [pnamer(port.name, "output") for port in model.outputs]
    run_params = [f"const {p.access.ctype} *{i}" for p, i in zip(model.inputs, in_ids, strict=True)]
    run_params += [f"{p.access.ctype} *{i}" for p, i in zip(model.outputs, out_ids, strict=True)]
    run_params += [f"uint8_t *{a}" for a in arena_params]
    signature = f"int {prefix}_run({', '.join(run_params) or 'void'})"

    body = Code(1)
    pointers = [*in_ids, *out_ids, *arena_params]
    if pointers:
        body.open(f"if ({' || '.join(f'{p} == 0' for p in pointers)})")
        body(f"return {upper}_ERROR_NULL_POINTER;")
        body.close()
    for space in spaces:
        body.open(f"if (((uintptr_t)arena_{space} & ({upper}_ARENA_{macro_part(space)}_ALIGN - 1u)) != 0u)")
        body(f"return {upper}_ERROR_MISALIGNED_ARENA;")
        body.close()
    body(f"{upper}_HOOK(-1, 0);")
    for port, ident in zip(model.inputs, in_ids, strict=True):
        if port.access.is_const:
            continue
        _port_copy(body, ident, port.access, True, tables)
    body(f"{upper}_HOOK(-1, 1);")
    run_lines = body.lines + calls
    body = Code(1)
    for port, ident in zip(model.outputs, out_ids, strict=True):
        _port_copy(body, ident, port.access, False, tables)
    run_lines += body.lines
    run_lines.append(f"    return {upper}_OK;")

    # Weights file.
    weight_spaces: dict[str, int] = {}
    table_texts = []
    for table in tables.tables.values():
        nbytes = int(table.values.size) * CTYPE_BYTES.get(table.ctype, 1)
        weight_spaces[table.space] = weight_spaces.get(table.space, 0) + nbytes
        table_texts.append(format_table(table))
    weight_spaces = dict(sorted(weight_spaces.items()))
    weight_bytes = sum(weight_spaces.values())
    placed = ", ".join(f"{n} in '{s}' ({weights_section_macro(s)})" for s, n in weight_spaces.items())
    weights_needs_math = any(
        t.ctype == "float" and not np.all(np.isfinite(t.values.astype(np.float32)))
        for t in tables.tables.values()
    )
    weights = "\n".join(
        [
            f"/* {prefix}_weights.h -- constant tables of {prefix}, generated by {VERSION}. Do not edit.",
            f" * Included by {prefix}.c only: every array is static. {weight_bytes} bytes in total:",
            f" * {placed or 'none'}. */",
            f"#ifndef {upper}_WEIGHTS_H",
            f"#define {upper}_WEIGHTS_H",
            *(["#include <math.h>"] if weights_needs_math else []),
            "",
            "\n\n".join(table_texts),
            "",
            f"#endif /* {upper}_WEIGHTS_H */",
            "",
        ]
    )

    macs = sum(i.macs for i in infos)
    header = _header(
        model, prefix, upper, source, signature, in_ids, out_ids, weight_spaces, macs, arena_params
    )
    source_text = _source(
        model,
        prefix,
        upper,
        source,
        helpers,
        funcs,
        signature,
        run_lines,
        uses_math,
        in_ids,
        out_ids,
        arena_params,
        weight_spaces,
    )
    buffers = {
        bname: (b.space.data, b.offset.data, b.size.data) for bname, b in sorted(model.buffers.items())
    }
    return CSources(
        name,
        {f"{prefix}.h": header, f"{prefix}.c": source_text, f"{prefix}_weights.h": weights},
        infos,
        dict(model.spaces),
        dict(model.alignments),
        weight_bytes,
        macs,
        model.inputs,
        model.outputs,
        in_ids,
        out_ids,
        buffers,
        uses_math,
        weight_spaces,
    )


def _section_macros(model: GraphModel, weight_spaces: dict[str, int]) -> list[str]:
    """``NNOPT_SECTION_<SPACE>`` (arenas) and ``NNOPT_WEIGHTS_SECTION_<SPACE>`` (tables), defaulting to
    the target's linker sections on ELF toolchains; define them to place things yourself."""
    target = f"target '{model.target}'" if model.target else "no target"
    lines = [
        "/* Placement: arenas (static-arena builds) carry NNOPT_SECTION_<SPACE>, constant tables",
        f" * NNOPT_WEIGHTS_SECTION_<SPACE>. Defaults come from the memory sections of {target};",
        " * define a macro (e.g. empty) to override it. */",
    ]

    def define(macro: str, section: str) -> None:
        lines.append(f"#ifndef {macro}")
        if section:
            lines.extend(
                [
                    "#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))",
                    f"#define {macro} __attribute__((section({string_literal(section)})))",
                    "#else",
                    f"#define {macro}",
                    "#endif",
                ]
            )
        else:
            lines.append(f"#define {macro}")
        lines.append("#endif")

    for space in model.spaces:
        section = model.sections.get(space, "")
        volatile = model.volatile.get(space, True)
        define(f"NNOPT_SECTION_{macro_part(space)}", section if volatile else "")
    for space in weight_spaces:
        section = model.sections.get(space, "")
        # Initialised constants never go to a zero-filled (.bss) section.
        define(weights_section_macro(space), "" if section.startswith(".bss") else section)
    return lines


def _port_macros(upper: str, kind: str, index: int, port: Port, ident: str) -> list[str]:
    acc = port.access
    m = f"{upper}_{kind}{index}"
    dtype, _ = DTYPES[acc.ctype]
    lines = [
        f"/* {kind.lower()} {index}: {comment_text(repr(port.name))} */",
        f"#define {m}_NAME {string_literal(port.name)}",
        f"#define {m}_RANK {len(acc.shape)}",
        f"#define {m}_SHAPE {{{', '.join(str(d) for d in acc.shape) or '1'}}}",
    ]
    lines += [f"#define {m}_DIM{d} {size}" for d, size in enumerate(acc.shape)]
    lines += [
        f"#define {m}_SIZE {acc.size}",
        f"#define {m}_BYTES {acc.size * acc.elem_bytes}",
        f"#define {m}_DTYPE NNOPT_DTYPE_{dtype}",
        f"typedef {acc.ctype} {upper.lower()}_{kind.lower()}{index}_t;",
    ]
    elem = port.elem
    if isinstance(elem, UniformQuantizedType) and not elem.is_per_axis:
        lines += [
            f"#define {m}_SCALE {float_literal(elem.scale)} /* {elem.scale!r} */",
            f"#define {m}_ZERO_POINT {elem.zero_point}",
        ]
    if acc.space is not None:
        lines += [
            f"#define {m}_SPACE {string_literal(acc.space)}",
            f"#define {m}_ARENA_OFFSET {acc.offset}u /* in arena_{acc.space}; pass arena_{acc.space} + "
            f"{m}_ARENA_OFFSET as `{ident}` to skip the copy */"
            if acc.contiguous
            else f"/* {m} lives strided in arena_{acc.space}: it is always copied */",
        ]
    return lines


def _header(
    model: GraphModel,
    prefix: str,
    upper: str,
    source: str,
    signature: str,
    in_ids: list[str],
    out_ids: list[str],
    weight_spaces: dict[str, int],
    macs: int,
    arena_params: list[str],
) -> str:
    graph = model.graph.sym_name.data
    weight_bytes = sum(weight_spaces.values())
    lines = [
        f"/* {prefix}.h -- generated by {VERSION} from {comment_text(source)} (graph @{comment_text(graph)}).",
        " * Do not edit: regenerate with `nnopt compile`.",
        " *",
        f" * {len(model.layers)} layers, {macs} multiply-accumulates per inference.",
        f" * Weights: {weight_bytes} bytes of constant tables"
        + "".join(f", {n} in '{s}'" for s, n in weight_spaces.items())
        + ".",
    ]
    for space, size in model.spaces.items():
        lines.append(
            f" * Arena '{space}': {size} bytes, aligned to {model.alignments[space]} (caller-supplied)."
        )
    lines += [
        " *",
        " * Usage:",
        f" *   static uint8_t arena[{upper}_ARENA_{macro_part(next(iter(model.spaces), 'sram'))}_SIZE] NNOPT_ALIGNED(16);",
        f" *   int rc = {prefix}_run(input..., output..., arena);   ({upper}_OK on success)",
        " */",
        f"#ifndef {upper}_H",
        f"#define {upper}_H",
        "",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "#ifndef NNOPT_ALIGNED",
        "#if defined(__GNUC__) || defined(__clang__)",
        "#define NNOPT_ALIGNED(n) __attribute__((aligned(n)))",
        "#else",
        "#define NNOPT_ALIGNED(n)",
        "#endif",
        "#endif",
        "",
        "#ifndef NNOPT_DTYPE_INT8",
        *[f"#define NNOPT_DTYPE_{d} {v}" for d, v in DTYPES.values()],
        "#endif",
        "",
        f"/* Return codes of {prefix}_run. */",
        f"#define {upper}_OK 0",
        f"#define {upper}_ERROR_NULL_POINTER (-1)",
        f"#define {upper}_ERROR_MISALIGNED_ARENA (-2)",
        "",
        "/* Memory: one arena per memory space, supplied by the caller (sizes from the memory plan). */",
    ]
    for space, size in model.spaces.items():
        sm = macro_part(space)
        lines += [
            f"#define {upper}_ARENA_{sm}_SIZE {size}u",
            f"#define {upper}_ARENA_{sm}_ALIGN {model.alignments[space]}u",
        ]
    lines += [
        *[f"#define {upper}_WEIGHTS_{macro_part(s)}_BYTES {n}u" for s, n in weight_spaces.items()],
        f"#define {upper}_NUM_LAYERS {len(model.layers)}",
        f"#define {upper}_MACS {macs}u",
        "",
        f"#define {upper}_NUM_INPUTS {len(model.inputs)}",
    ]
    for i, (port, ident) in enumerate(zip(model.inputs, in_ids, strict=True)):
        lines += _port_macros(upper, "INPUT", i, port, ident)
    lines += ["", f"#define {upper}_NUM_OUTPUTS {len(model.outputs)}"]
    for i, (port, ident) in enumerate(zip(model.outputs, out_ids, strict=True)):
        lines += _port_macros(upper, "OUTPUT", i, port, ident)
    static_params = [
        p for p in signature[signature.index("(") + 1 : -1].split(", ") if not p.startswith("uint8_t *arena_")
    ]
    static_sig = f"int {prefix}_run_static({', '.join(static_params) or 'void'})"
    lines += [
        "",
        "/* Run one inference. Inputs are copied into the arena unless they already are at their",
        " * ARENA_OFFSET; outputs are copied out likewise. The arenas need no initialisation. */",
        f"{signature};",
        "",
        f"#ifdef {upper}_STATIC_ARENAS",
        "/* Build switch: arenas defined by the library (sections NNOPT_SECTION_<SPACE>). */",
        *[f"extern uint8_t {prefix}_{a}[];" for a in arena_params],
        f"{static_sig};",
        "#endif",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {upper}_H */",
        "",
    ]
    return "\n".join(lines)


def _source(
    model: GraphModel,
    prefix: str,
    upper: str,
    source: str,
    helpers: HelperSet,
    funcs: list[str],
    signature: str,
    run_lines: list[str],
    uses_math: bool,
    in_ids: list[str],
    out_ids: list[str],
    arena_params: list[str],
    weight_spaces: dict[str, int],
) -> str:
    spaces = list(model.spaces)
    lines = [
        f"/* {prefix}.c -- generated by {VERSION} from {comment_text(source)}. Do not edit. */",
        "#include <stdint.h>",
        *(["#include <math.h>"] if uses_math else []),
        f'#include "{prefix}.h"',
        "",
    ]
    lines += _section_macros(model, weight_spaces)
    lines += [
        "",
        f"/* Test builds define {upper}_LAYER_HOOK to observe the arenas around every layer. */",
        f"#ifdef {upper}_LAYER_HOOK",
        f"void {upper}_LAYER_HOOK(int layer, int after);",
        f"#define {upper}_HOOK(layer, after) {upper}_LAYER_HOOK(layer, after)",
        "#else",
        f"#define {upper}_HOOK(layer, after) ((void)0)",
        "#endif",
        "",
        f'#include "{prefix}_weights.h"',
        "",
    ]
    if helpers.used:
        lines += [
            "/* ---- arithmetic helpers (twins of nnopt.dialects.qmath) ---- */",
            "",
            helpers.text(),
            "",
        ]
    lines += ["/* ---- layers ---- */", ""]
    lines += ["\n\n".join(funcs), ""]
    lines += [f"{signature} {{", *run_lines, "}", ""]
    static_args = [*in_ids, *out_ids, *[f"{prefix}_{a}" for a in arena_params]]
    static_params = [
        p for p in signature[signature.index("(") + 1 : -1].split(", ") if not p.startswith("uint8_t *arena_")
    ]
    lines += [f"#ifdef {upper}_STATIC_ARENAS"]
    for space, a in zip(spaces, arena_params, strict=True):
        size = max(model.spaces[space], 1)
        lines.append(
            f"uint8_t {prefix}_{a}[{size}] NNOPT_SECTION_{macro_part(space)} NNOPT_ALIGNED({model.alignments[space]});"
        )
    lines += [
        f"int {prefix}_run_static({', '.join(static_params) or 'void'}) {{",
        f"    return {prefix}_run({', '.join(static_args)});",
        "}",
        "#endif",
        "",
    ]
    return "\n".join(lines)

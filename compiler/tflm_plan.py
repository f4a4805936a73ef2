"""TFLite Micro offline memory plans: plan the arena TFLM would build, write it into the ``.tflite``.

Stock TFLite Micro reads a `Model.metadata` entry named
``OfflineMemoryAllocation`` whose buffer holds little-endian int32 words
``[version, num_subgraphs, n, offset_0 ... offset_{n-1}]``: one offset per
tensor of every subgraph (constants included, subgraphs concatenated), ``-1``
for tensors TFLM plans itself. Offsets count from the start of the arena head
and are taken verbatim (no overlap, alignment or bounds check), so nnopt only
ever writes plans that its independent verifier accepted.

The planning problem is TFLM's own, read straight from the flatbuffer
(`read_tflm_graph`), not nnopt's IR: the file's op order, TFLM's sizes
(``AlignSizeUp(bytes, 16)``) and TFLM's inclusive lifetimes ("allocation
scopes": graph inputs from scope 0, op k at scope k + 1, graph outputs to the
last scope). An op's inputs and outputs therefore always conflict: TFLM's
kernels get separate input and output pointers, so nnopt's in-place merging is
not expressible here. Constants and variable tensors are left to TFLM (-1).

Scratch buffers that kernels request in ``Prepare`` are always planned online
by TFLM, around the fixed offsets. `reference_scratch` models the requests of
TFLM's reference kernels (the ``tflite-micro`` Python package) as one-scope
buffers, so the plan leaves room for them; `predict_head` then replays TFLM's
greedy placement of those online buffers against the written offsets to give
the head TFLM will really report. Optimised kernels (CMSIS-NN, Xtensa) request
other scratch; their head can exceed the prediction.

Writing: the new file is a small prefix followed by the original file, byte
for byte. The prefix holds a new root `Model` table (its scalar fields copied,
its vectors pointing forward into the untouched original) plus a new `buffers`
vector (the old buffer tables, then one new buffer with the plan) and a new
`metadata` vector (the old entries minus any stale ``OfflineMemoryAllocation``,
then the new one). Flatbuffer offsets point forward, so everything in the old
body stays valid; the prefix is a multiple of 16 bytes, so every weight buffer
keeps its alignment (re-packing with an object API would move and re-align
every buffer, and drop fields its generated schema does not know). Only the
root table must be understood, and it has had the same eight fields since
2020; a file with fields beyond those is refused rather than guessed at.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nnopt.compiler.diagnostics import UserError
from nnopt.passes.planning.allocators import Options, place_in_order, plan_buffers
from nnopt.passes.planning.problem import Buffer, Plan, Problem, align_up, verify_plan

METADATA_NAME = "OfflineMemoryAllocation"
"""Name of the metadata entry TFLM reads (exact match)."""

TFLM_ALIGNMENT = 16
"""``MicroArenaBufferAlignment()``: every TFLM buffer size is rounded up to this."""

OFFLINE_VERSION = 1
"""The first header word; TFLM ignores it (Vela writes 0)."""

ONLINE = -1
"""Offset meaning "TFLM plans this tensor itself"."""

IDENTIFIER = b"TFL3"

# TensorType code -> (name, bytes per element as TFLM's TfLiteTypeSizeOf gives it).
_TYPE_SIZES: dict[int, tuple[str, int]] = {
    0: ("FLOAT32", 4),
    1: ("FLOAT16", 2),
    2: ("INT32", 4),
    3: ("UINT8", 1),
    4: ("INT64", 8),
    6: ("BOOL", 1),
    7: ("INT16", 2),
    8: ("COMPLEX64", 8),
    9: ("INT8", 1),
    10: ("FLOAT64", 8),
    11: ("COMPLEX128", 16),
    12: ("UINT64", 8),
    15: ("UINT32", 4),
    16: ("UINT16", 2),
    18: ("BFLOAT16", 2),
}

# Model table fields (schema.fbs): id -> (name, kind); "vec"/"str" are offsets.
_MODEL_FIELDS: dict[int, tuple[str, str]] = {
    0: ("version", "u32"),
    1: ("operator_codes", "vec"),
    2: ("subgraphs", "vec"),
    3: ("description", "str"),
    4: ("buffers", "vec"),
    5: ("metadata_buffer", "vec"),
    6: ("metadata", "vec"),
    7: ("signature_defs", "vec"),
}
_BUFFERS_FIELD = 4
_METADATA_FIELD = 6


# --------------------------------------------------------------------------
# Reading the graph TFLM sees
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TflmTensor:
    """One tensor of the (concatenated) subgraphs, as TFLM's allocator sees it."""

    index: int
    """Global index: subgraphs concatenated, the index the offline plan uses."""
    name: str
    type_name: str
    shape: tuple[int, ...]
    bytes: int
    first: int
    """First allocation scope (inclusive), -1 when nothing creates it."""
    last: int
    """Last allocation scope (inclusive), -1 when nothing uses it."""
    role: str
    """activation | input | output | constant | variable | empty."""

    @property
    def planned(self) -> bool:
        """True when TFLM's planner allocates it in the head (and the offline plan can place it)."""
        return self.role in ("activation", "input", "output")


@dataclass(frozen=True)
class ScratchRequest:
    """A ``RequestScratchBufferInArena`` of one op's ``Prepare``: always planned online by TFLM."""

    op: int
    bytes: int
    reason: str


@dataclass
class TflmGraph:
    """The tensors, ops and lifetimes of a ``.tflite`` file as TFLite Micro plans them."""

    file: str
    tensors: list[TflmTensor]
    ops: list[str]
    """Builtin operator name per op, in execution order (subgraph 0)."""
    subgraphs: int
    scratch: list[ScratchRequest] = field(default_factory=list)
    op_inputs: list[tuple[int, ...]] = field(default_factory=list)
    op_outputs: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def tensor_count(self) -> int:
        """``n`` of the offline plan: every tensor of every subgraph, constants included."""
        return len(self.tensors)

    @property
    def scopes(self) -> list[str]:
        """A label per allocation scope: scope 0 is the graph inputs, scope k + 1 is op k."""
        return ["graph inputs"] + [f"op {k} {name}" for k, name in enumerate(self.ops)]


class _Guard:
    """Bounds checks for reading a possibly corrupt flatbuffer with the `tflite` classes."""

    def __init__(self, size: int, file: str) -> None:
        self.size = size
        self.file = file

    def count(self, n: int, what: str) -> int:
        if n < 0 or 4 * n > self.size:
            raise UserError(f"malformed TFLite file: {what} claims {n} entries", self.file)
        return n


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def check_tflite_bytes(data: bytes, file: str) -> None:
    """Refuse anything that is not a TFLite flatbuffer (one clear error)."""
    if len(data) < 16:
        raise UserError(f"not a TFLite model: the file has only {len(data)} bytes", file)
    if bytes(data[4:8]) != IDENTIFIER:
        raise UserError(
            f"not a TFLite model: flatbuffer file identifier is {bytes(data[4:8])!r}, expected {IDENTIFIER!r}",
            file,
        )


def read_tflm_graph(data: bytes, file: str = "<tflite>") -> TflmGraph:
    """TFLM's view of a model: tensor sizes, roles and allocation scopes (`UserError` when malformed)."""
    check_tflite_bytes(data, file)
    try:
        return _read_graph(bytes(data), file)
    except UserError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError, TypeError, AttributeError) as exc:
        raise UserError(f"malformed TFLite file (truncated or corrupt): {exc}", file) from None


def _read_graph(data: bytes, file: str) -> TflmGraph:
    import tflite

    guard = _Guard(len(data), file)
    model = tflite.Model.GetRootAsModel(data, 0)
    n_sub = guard.count(model.SubgraphsLength(), "the subgraph list")
    if n_sub == 0:
        raise UserError("the model has no subgraph", file)
    n_buffers = guard.count(model.BuffersLength(), "the buffer list")
    has_data = []
    for i in range(n_buffers):
        b = model.Buffers(i)
        has_data.append(b is not None and (b.DataLength() > 0 or (b.Offset() > 1 and b.Size() > 0)))
    names = _builtin_names()
    codes: list[str] = []
    for i in range(guard.count(model.OperatorCodesLength(), "the operator code list")):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        codes.append(names.get(code, f"BUILTIN_{code}") if code != 32 else "CUSTOM")

    tensors: list[TflmTensor] = []
    graph = TflmGraph(file, tensors, [], n_sub)
    for s in range(n_sub):
        sg = model.Subgraphs(s)
        base = len(tensors)
        n_t = guard.count(sg.TensorsLength(), f"subgraph {s}'s tensor list")
        raw: list[tuple[str, str, tuple[int, ...], int, str]] = []
        for i in range(n_t):
            t = sg.Tensors(i)
            name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor{i}"
            shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else ()))
            type_name, width = _TYPE_SIZES.get(t.Type(), (f"type {t.Type()}", 0))
            buffer = t.Buffer()
            if buffer < 0 or (buffer >= n_buffers and buffer != 0):
                raise UserError(f"tensor '{name}' (#{i}) names buffer {buffer} of {n_buffers}", file)
            constant = buffer < n_buffers and has_data[buffer]
            if constant:
                role = "constant"
            elif t.IsVariable():
                role = "variable"
            else:
                role = "activation"
            count = 1
            for d in shape:
                count *= max(d, 0)
            if role == "activation" and width == 0:
                raise UserError(
                    f"tensor '{name}' (#{i}) has element type {type_name}, which nnopt cannot size for TFLM",
                    file,
                )
            nbytes = count * width
            if role == "activation" and nbytes == 0:
                role = "empty"
            raw.append((name, type_name, shape, nbytes, role))

        first = [-1] * n_t
        last = [-1] * n_t
        scope = 0

        def check(i: int, what: str, _n: int = n_t, _s: int = s) -> int:
            if not 0 <= i < _n:
                raise UserError(f"subgraph {_s}: {what} names tensor {i} of {_n}", file)
            return i

        sg_inputs = [check(int(i), "an input") for i in (sg.InputsAsNumpy() if sg.InputsLength() else ())]
        sg_outputs = [check(int(i), "an output") for i in (sg.OutputsAsNumpy() if sg.OutputsLength() else ())]
        for i in sg_inputs + sg_outputs:
            first[i] = last[i] = 0
        n_ops = guard.count(sg.OperatorsLength(), f"subgraph {s}'s operator list")
        for k in range(n_ops):
            op = sg.Operators(k)
            scope += 1
            ins = tuple(int(i) for i in (op.InputsAsNumpy() if op.InputsLength() else ()))
            outs = tuple(int(i) for i in (op.OutputsAsNumpy() if op.OutputsLength() else ()))
            for i in outs:
                check(i, f"operator {k}'s output")
                first[i] = last[i] = scope
            for i in ins:
                if i >= 0:
                    check(i, f"operator {k}'s input")
                    last[i] = max(last[i], scope)
            if s == 0:
                index = op.OpcodeIndex()
                if index >= len(codes):
                    raise UserError(f"operator {k} names operator code {index} of {len(codes)}", file)
                graph.ops.append(codes[index])
                graph.op_inputs.append(tuple(i + base if i >= 0 else i for i in ins))
                graph.op_outputs.append(tuple(i + base for i in outs))
                graph.scratch.extend(_scratch_requests(k, codes[index], op, raw, ins, outs))
        for i in sg_outputs:
            last[i] = scope
        in_set, out_set = set(sg_inputs), set(sg_outputs)
        for i, (name, type_name, shape, nbytes, role) in enumerate(raw):
            if role == "activation":
                role = "output" if i in out_set else "input" if i in in_set else "activation"
            tensors.append(TflmTensor(base + i, name, type_name, shape, nbytes, first[i], last[i], role))
    return graph


# --------------------------------------------------------------------------
# Scratch requests of TFLM's reference kernels
# --------------------------------------------------------------------------


def _scratch_requests(
    k: int,
    opname: str,
    op: Any,
    raw: Sequence[tuple[str, str, tuple[int, ...], int, str]],
    ins: tuple[int, ...],
    outs: tuple[int, ...],
) -> list[ScratchRequest]:
    """What the reference kernel of `opname` asks ``RequestScratchBufferInArena`` for, in request order.

    From tflite-micro's ``kernels/svdf.cc`` + ``svdf_common.cc`` and
    ``kernels/reduce_common.cc`` (the kernels the ``tflite-micro`` wheel
    links). Other reference kernels used by int8 CNNs (conv, depthwise,
    fully connected, pooling, add, softmax, reshape, pad, transpose, quantize)
    request none for int8 weights.
    """

    def dims(i: int) -> tuple[int, ...]:
        return raw[i][2]

    def count(i: int) -> int:
        n = 1
        for d in dims(i):
            n *= max(d, 0)
        return n

    if opname == "SVDF" and len(ins) >= 2 and ins[0] >= 0 and ins[1] >= 0:
        import tflite

        rank = 1
        table = op.BuiltinOptions()
        if table is not None:
            opts = tflite.SVDFOptions()
            opts.Init(table.Bytes, table.Pos)
            rank = max(opts.Rank(), 1)
        batch = dims(ins[0])[0] if dims(ins[0]) else 1
        filters = dims(ins[1])[0] if dims(ins[1]) else 1
        if raw[ins[0]][1] == "INT8":
            return [
                ScratchRequest(k, batch * filters * 4, "SVDF feature accumulators"),
                ScratchRequest(k, batch * (filters // rank) * 4, "SVDF output accumulators"),
            ]
        return [ScratchRequest(k, batch * filters * 4, "SVDF feature accumulators")]
    if opname in ("MEAN", "SUM") and ins and outs and raw[ins[0]][1] in ("INT8", "INT16"):
        return [ScratchRequest(k, count(outs[0]) * 4, f"{opname} int32 sums")]
    if opname == "REDUCE_MAX" and len(ins) >= 2:
        return [
            ScratchRequest(k, 4 * len(dims(ins[0])), "REDUCE_MAX index"),
            ScratchRequest(k, 4 * count(ins[1]), "REDUCE_MAX axes"),
        ]
    return []


# --------------------------------------------------------------------------
# The planning problem and the plan
# --------------------------------------------------------------------------


@dataclass
class TflmPlan:
    """An nnopt plan of TFLM's problem, with what TFLM will report for it."""

    graph: TflmGraph
    plan: Plan
    offsets: list[int]
    """One entry per tensor (the metadata's offsets): a byte offset, or -1."""
    predicted_head: int
    """The head TFLM reports with this plan: fixed tensors plus its own online scratch placement."""
    tflm_head: int
    """The head TFLM's own greedy planner reaches without a plan (nnopt's re-implementation)."""
    scratch_offsets: list[int]
    """Where TFLM's greedy will put each scratch request around the fixed tensors."""

    def words(self) -> list[int]:
        """The int32 metadata: ``[version, num_subgraphs, n, offsets...]``."""
        return [OFFLINE_VERSION, self.graph.subgraphs, self.graph.tensor_count, *self.offsets]


def _scratch_name(k: int, req: ScratchRequest) -> str:
    return f"scratch{k}"


def tflm_problem(graph: TflmGraph) -> Problem:
    """TFLM's packing problem: planned tensors, then scratch requests, sizes aligned to 16.

    A buffer's lifetime is its inclusive scope range ``[first, last]``, i.e.
    ``[first, last + 1)``; a tensor nothing creates (first = -1) is widened to
    start at scope 0, which only adds conflicts, so the plan stays valid for
    TFLM. Scratch buffers live during their op's scope only.
    """
    buffers: list[Buffer] = []
    for t in graph.tensors:
        if not t.planned:
            continue
        lo = max(t.first, 0)
        hi = max(t.last, lo) + 1
        buffers.append(
            Buffer(
                f"t{t.index}",
                align_up(t.bytes, TFLM_ALIGNMENT),
                lo,
                hi,
                TFLM_ALIGNMENT,
                kind=t.role,
                values=(t.name,),
            )
        )
    for k, req in enumerate(graph.scratch):
        if req.bytes > 0:
            scope = req.op + 1
            buffers.append(
                Buffer(
                    _scratch_name(k, req),
                    align_up(req.bytes, TFLM_ALIGNMENT),
                    scope,
                    scope + 1,
                    TFLM_ALIGNMENT,
                    kind="scratch",
                    values=(f"op {req.op} {req.reason}",),
                )
            )
    return Problem(buffers, name=graph.file)


def _tflm_online_order(problem: Problem, online: Sequence[int]) -> list[int]:
    """TFLM's order for online buffers: size descending, ties in reverse add order."""
    return sorted(online, key=lambda i: (-problem.buffers[i].padded_size, -i))


def simulate_tflm(problem: Problem, fixed: dict[int, int]) -> tuple[list[int], int]:
    """Replay TFLM's GreedyMemoryPlanner: `fixed` buffers at their offsets, the rest first-fit by size.

    Returns every buffer's offset and the head. With no fixed buffers this is
    TFLM's own plan (its head matches the measured one on every model we ran).
    """
    pinned = Problem(
        [
            Buffer(b.name, b.size, b.lower, b.upper, b.alignment, fixed.get(i), b.kind, b.values)
            for i, b in enumerate(problem.buffers)
        ],
        name=problem.name,
    )
    online = [i for i in range(len(problem.buffers)) if i not in fixed]
    offsets, head = place_in_order(pinned, [*fixed, *_tflm_online_order(problem, online)])
    return offsets, head


def plan_tflm(graph: TflmGraph, allocator: str = "portfolio", options: Options | None = None) -> TflmPlan:
    """Plan TFLM's problem with an nnopt allocator and predict TFLM's head with the plan."""
    if graph.subgraphs > 1:
        raise UserError(
            f"the model has {graph.subgraphs} subgraphs; TFLite Micro indexes offline offsets by the "
            "subgraph-local tensor index, so nnopt only writes plans for single-subgraph models",
            graph.file,
        )
    problem = tflm_problem(graph)
    return tflm_plan_from(graph, plan_buffers(problem, allocator, options))


def tflm_plan_from(graph: TflmGraph, plan: Plan) -> TflmPlan:
    """The metadata offsets of a plan of `tflm_problem(graph)`, and the heads TFLM reports with and without it.

    TFLM's greedy is replayed on the fixed offsets to place the online scratch
    buffers; the result is checked by the independent verifier again.
    """
    problem = plan.problem
    tensors = [t for t in graph.tensors if t.planned]
    offsets = [ONLINE] * graph.tensor_count
    fixed: dict[int, int] = {}
    for i, t in enumerate(tensors):
        offsets[t.index] = plan.offsets[i]
        fixed[i] = plan.offsets[i]
    predicted, head = simulate_tflm(problem, fixed) if problem.buffers else ([], 0)
    verify_plan(problem, predicted)
    _, tflm_head = simulate_tflm(problem, {}) if problem.buffers else ([], 0)
    return TflmPlan(graph, plan, offsets, head, tflm_head, predicted[len(tensors) :])


# --------------------------------------------------------------------------
# Raw flatbuffer access: the Model root table
# --------------------------------------------------------------------------


def _u32(data: bytes, pos: int) -> int:
    value: int = struct.unpack_from("<I", data, pos)[0]
    return value


def _root_fields(data: bytes, file: str) -> tuple[int, dict[int, int]]:
    """The root table's position and ``field id -> absolute position of the field``."""
    root = _u32(data, 0)
    if root + 4 > len(data):
        raise UserError("malformed TFLite file: the root table lies past the end", file)
    vtable = root - struct.unpack_from("<i", data, root)[0]
    if not 0 <= vtable <= len(data) - 4:
        raise UserError("malformed TFLite file: the root vtable lies outside the file", file)
    vt_size, _ = struct.unpack_from("<HH", data, vtable)
    if vt_size < 4 or vt_size % 2 or vtable + vt_size > len(data):
        raise UserError("malformed TFLite file: bad root vtable", file)
    fields: dict[int, int] = {}
    for fid in range((vt_size - 4) // 2):
        off = struct.unpack_from("<H", data, vtable + 4 + 2 * fid)[0]
        if off:
            if fid not in _MODEL_FIELDS:
                raise UserError(
                    f"the model's root table has field {fid}, unknown to nnopt's TFLite writer "
                    "(a newer schema?); refusing to rewrite it",
                    file,
                )
            if root + off + 4 > len(data):
                raise UserError("malformed TFLite file: a root field lies past the end", file)
            fields[fid] = root + off
    return root, fields


def _vector(data: bytes, field_pos: int, file: str) -> tuple[int, int]:
    """(position of the first element, length) of the vector an offset field points to."""
    start = field_pos + _u32(data, field_pos)
    if start + 4 > len(data):
        raise UserError("malformed TFLite file: a vector lies past the end", file)
    n = _u32(data, start)
    if start + 4 + 4 * n > len(data):
        raise UserError("malformed TFLite file: a vector runs past the end", file)
    return start + 4, n


def _string_at(data: bytes, pos: int) -> bytes:
    n = _u32(data, pos)
    return data[pos + 4 : pos + 4 + n]


def _table_field(data: bytes, table: int, fid: int) -> int | None:
    """Absolute position of field `fid` of the table at `table`, or None when absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    vt_size = struct.unpack_from("<H", data, vtable)[0]
    if 4 + 2 * fid >= vt_size:
        return None
    off = struct.unpack_from("<H", data, vtable + 4 + 2 * fid)[0]
    return table + off if off else None


def _metadata_entries(data: bytes, fields: dict[int, int], file: str) -> list[tuple[int, bytes, int]]:
    """(table position, name, buffer index) of every metadata entry."""
    if _METADATA_FIELD not in fields:
        return []
    first, n = _vector(data, fields[_METADATA_FIELD], file)
    out = []
    for k in range(n):
        slot = first + 4 * k
        table = slot + _u32(data, slot)
        name_field = _table_field(data, table, 0)
        name = _string_at(data, name_field + _u32(data, name_field)) if name_field is not None else b""
        buf_field = _table_field(data, table, 1)
        buffer = _u32(data, buf_field) if buf_field is not None else 0
        out.append((table, name, buffer))
    return out


def read_offline_plan(data: bytes, file: str = "<tflite>") -> list[int] | None:
    """The int32 words of the file's ``OfflineMemoryAllocation`` entry, or None when it has none."""
    check_tflite_bytes(data, file)
    data = bytes(data)
    try:
        _, fields = _root_fields(data, file)
        entries = _metadata_entries(data, fields, file)
        for _, name, buffer in entries:
            if name != METADATA_NAME.encode():
                continue
            first, n = _vector(data, fields[_BUFFERS_FIELD], file)
            if buffer >= n:
                raise UserError(f"{METADATA_NAME} names buffer {buffer} of {n}", file)
            slot = first + 4 * buffer
            table = slot + _u32(data, slot)
            data_field = _table_field(data, table, 0)
            if data_field is None:
                return []
            start = data_field + _u32(data, data_field)
            size = _u32(data, start)
            return list(struct.unpack_from(f"<{size // 4}i", data, start + 4))
    except (struct.error, IndexError) as exc:
        raise UserError(f"malformed TFLite file: {exc}", file) from None
    return None


class _Prefix:
    """Bytes placed before the original file; positions are absolute in the new file."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def pad(self, alignment: int, extra: int = 0) -> None:
        """Pad so that position ``len + extra`` is a multiple of `alignment`."""
        while (len(self.buf) + extra) % alignment:
            self.buf.append(0)

    def put(self, raw: bytes) -> int:
        pos = len(self.buf)
        self.buf += raw
        return pos

    def patch_u32(self, pos: int, value: int) -> None:
        struct.pack_into("<I", self.buf, pos, value)


def write_offline_plan(data: bytes, words: Sequence[int], file: str = "<tflite>") -> bytes:
    """The model with an ``OfflineMemoryAllocation`` entry holding `words` (any old entry replaced).

    The original bytes follow a new prefix unchanged (see the module docstring).
    """
    check_tflite_bytes(data, file)
    data = bytes(data)
    try:
        return _write(data, words, file)
    except (struct.error, IndexError) as exc:
        raise UserError(f"malformed TFLite file: {exc}", file) from None


def _write(data: bytes, words: Sequence[int], file: str) -> bytes:
    root, fields = _root_fields(data, file)
    if _BUFFERS_FIELD not in fields:
        raise UserError("the model has no buffer list (buffer 0 is required by the schema)", file)
    buf_first, n_buffers = _vector(data, fields[_BUFFERS_FIELD], file)
    old_buffers = [buf_first + 4 * k + _u32(data, buf_first + 4 * k) for k in range(n_buffers)]
    for k, table in enumerate(old_buffers):
        off_field = _table_field(data, table, 1)
        if off_field is not None and struct.unpack_from("<Q", data, off_field)[0] > 1:
            raise UserError(
                f"buffer {k} stores its data after the flatbuffer (a model over 2 GB); "
                "nnopt cannot rewrite such files",
                file,
            )
    meta = [
        (table, buffer)
        for table, name, buffer in _metadata_entries(data, fields, file)
        if name != METADATA_NAME.encode()
    ]

    # Layout of the prefix (every reference points forward):
    #   root offset, "TFL3", root vtable, root table, buffers vector, metadata vector,
    #   new Buffer (vtable, table), its data vector, new Metadata (vtable, table), name, padding.
    p = _Prefix()
    p.put(b"\0\0\0\0" + IDENTIFIER)
    keep = sorted(fields)
    present = sorted(set(keep) | {_BUFFERS_FIELD, _METADATA_FIELD})
    n_slots = max(present) + 1
    vt_size = 4 + 2 * n_slots
    table_size = 4 + 4 * len(present)
    p.pad(4, vt_size)
    vtable = p.put(bytes(vt_size))
    table = p.put(bytes(table_size))
    struct.pack_into("<HH", p.buf, vtable, vt_size, table_size)
    struct.pack_into("<i", p.buf, table, table - vtable)
    p.patch_u32(0, table)
    slot_of: dict[int, int] = {}
    for k, fid in enumerate(present):
        slot_of[fid] = table + 4 + 4 * k
        struct.pack_into("<H", p.buf, vtable + 4 + 2 * fid, 4 + 4 * k)

    # The two new vectors.
    buffers_vec = p.put(struct.pack("<I", n_buffers + 1) + bytes(4 * (n_buffers + 1)))
    meta_vec = p.put(struct.pack("<I", len(meta) + 1) + bytes(4 * (len(meta) + 1)))

    # The new Buffer table: one field, `data` ([ubyte]).
    p.pad(4)
    b_vtable = p.put(struct.pack("<HHH", 6, 8, 4))
    p.pad(4)
    b_table = p.put(struct.pack("<iI", 0, 0))
    struct.pack_into("<i", p.buf, b_table, b_table - b_vtable)
    payload = struct.pack(f"<{len(words)}i", *words)
    p.pad(16, 4)
    b_data = p.put(struct.pack("<I", len(payload)) + payload)
    p.patch_u32(b_table + 4, b_data - (b_table + 4))

    # The new Metadata table: name (string), buffer (uint).
    p.pad(4)
    m_vtable = p.put(struct.pack("<HHHH", 8, 12, 4, 8))
    p.pad(4)
    m_table = p.put(struct.pack("<iII", 0, 0, n_buffers))
    struct.pack_into("<i", p.buf, m_table, m_table - m_vtable)
    name = METADATA_NAME.encode()
    p.pad(4)
    m_name = p.put(struct.pack("<I", len(name)) + name + b"\0")
    p.patch_u32(m_table + 4, m_name - (m_table + 4))
    p.pad(16)
    shift = len(p.buf)

    def forward(slot: int, target_in_old: int) -> None:
        p.patch_u32(slot, target_in_old + shift - slot)

    for k, old in enumerate(old_buffers):
        forward(buffers_vec + 4 + 4 * k, old)
    new_slot = buffers_vec + 4 + 4 * n_buffers
    p.patch_u32(new_slot, b_table - new_slot)
    for k, (old, _) in enumerate(meta):
        forward(meta_vec + 4 + 4 * k, old)
    new_slot = meta_vec + 4 + 4 * len(meta)
    p.patch_u32(new_slot, m_table - new_slot)

    for fid in present:
        slot = slot_of[fid]
        if fid == _BUFFERS_FIELD:
            p.patch_u32(slot, buffers_vec - slot)
        elif fid == _METADATA_FIELD:
            p.patch_u32(slot, meta_vec - slot)
        elif _MODEL_FIELDS[fid][1] == "u32":
            p.patch_u32(slot, _u32(data, fields[fid]))
        else:
            forward(slot, fields[fid] + _u32(data, fields[fid]))
    del root
    return bytes(p.buf) + data

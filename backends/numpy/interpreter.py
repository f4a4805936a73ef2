"""Execute an `nn.graph` op by op on numpy arrays: the semantic reference of nnopt.

Float tensors are float32 arrays; quantized tensors hold their stored integers
in the storage dtype (int8, uint8, int16, ...). `prepare` turns a graph into a
`Program` once (parameters from `qparams.get`, weight matrices, window
geometry, lookup tables); `Program.run` then executes it, releasing every value
right after its last use so that peak memory follows the graph's live set.
`run` prepares and runs in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from nnopt.backends.numpy.arrays import Kernel, const_value, element_dtype
from nnopt.backends.numpy.kernels_common import COMMON_MAKERS
from nnopt.backends.numpy.kernels_float import FLOAT_MAKERS
from nnopt.backends.numpy.kernels_int import INT_MAKERS
from nnopt.compiler.diagnostics import UserError, op_error
from nnopt.dialects import nn, qparams
from nnopt.dialects.quant import UniformQuantizedType

DumpHook = Callable[[str, Operation, np.ndarray], None]
"""``dump(name, op, value)``, called for every op result as it is computed."""

Inputs = Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray


def select_graph(module_or_graph: ModuleOp | nn.GraphOp, graph: str | None = None) -> nn.GraphOp:
    """The graph to run: `module_or_graph` itself, the graph named `graph`, or the module's only graph."""
    if isinstance(module_or_graph, nn.GraphOp):
        if graph is not None and module_or_graph.sym_name.data != graph.removeprefix("@"):
            raise UserError(
                f"graph '{graph}' requested, but the given graph is '@{module_or_graph.sym_name.data}'"
            )
        return module_or_graph
    graphs = [op for op in module_or_graph.walk() if isinstance(op, nn.GraphOp)]
    names = ", ".join(f"@{g.sym_name.data}" for g in graphs) or "none"
    if graph is not None:
        for g in graphs:
            if g.sym_name.data == graph.removeprefix("@"):
                return g
        raise UserError(f"no graph named '{graph}' in the module (graphs: {names})")
    if len(graphs) != 1:
        raise UserError(f"the module holds {len(graphs)} graphs ({names}); choose one with graph=")
    return graphs[0]


def value_names(graph: nn.GraphOp) -> dict[SSAValue, str]:
    """Names of the graph's values as xDSL's printer assigns them (name hints with suffixes, else %N)."""
    names: dict[SSAValue, str] = {}
    used: dict[str, int] = {}
    counter = 0
    values: list[SSAValue] = list(graph.block.args)
    for op in graph.block.ops:
        values.extend(op.results)
    for v in values:
        if v.name_hint:
            k = used.get(v.name_hint, 0)
            names[v] = v.name_hint if k == 0 else f"{v.name_hint}_{k}"
            used[v.name_hint] = k + 1
        else:
            names[v] = f"%{counter}"
            counter += 1
    return names


def make_kernel(op: Operation) -> Kernel:
    """Prepare one op: its kernel, with its parameters, geometry and tables computed now."""
    kind = type(op)
    try:
        if isinstance(op, nn.ConstOp):
            value = const_value(op)
            return lambda args: value
        if qparams.is_quantized_op(op):
            maker = INT_MAKERS.get(kind)
            if maker is None:
                raise op_error(op, "on quantized tensors is not supported by the numpy interpreter")
            assert isinstance(op, nn.QuantizableOp)
            try:
                return maker(op, qparams.get(op), op.rounding_mode())
            except KeyError as exc:
                raise op_error(op, f"qparams lack the entry {exc}") from None
        if kind in COMMON_MAKERS:
            return COMMON_MAKERS[kind](op)
        float_maker = FLOAT_MAKERS.get(kind)
        if float_maker is None or not op.results:
            raise op_error(op, "is not supported by the numpy interpreter")
        return float_maker(op)
    except qparams.QuantParamError as exc:
        raise op_error(op, str(exc)) from None


@dataclass
class _Step:
    op: Operation
    kernel: Kernel
    operands: list[int]
    result: int
    frees: list[int]
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]


class Program:
    """A graph prepared for repeated execution (see `prepare`)."""

    def __init__(self, graph: nn.GraphOp) -> None:
        self.graph = graph
        self.input_names = graph.input_names()
        self.output_names = graph.output_names()
        self._input_values = list(graph.block.args)
        slots: dict[SSAValue, int] = {v: i for i, v in enumerate(self._input_values)}
        ops = [op for op in graph.block.ops if not isinstance(op, nn.OutputOp)]
        for op in ops:
            if len(op.results) != 1:
                raise op_error(op, "is not supported by the numpy interpreter")
            slots[op.results[0]] = len(slots)
        last_use: dict[int, int] = {}
        for i, op in enumerate(ops):
            for v in op.operands:
                last_use[slots[v]] = i
        outputs = graph.output.values
        self._outputs = [slots[v] for v in outputs]
        keep = set(self._outputs)
        frees: list[list[int]] = [[] for _ in ops]
        self._free_at_start = [
            s for s in range(len(self._input_values)) if s not in last_use and s not in keep
        ]
        for slot in range(len(slots)):
            if slot in keep:
                continue
            if slot in last_use:
                frees[last_use[slot]].append(slot)
            elif slot >= len(self._input_values):
                frees[slot - len(self._input_values)].append(slot)
        self._steps = [
            _Step(
                op,
                make_kernel(op),
                [slots[v] for v in op.operands],
                slots[op.results[0]],
                frees[i],
                tuple(nn.shape_of(op.results[0])),
                element_dtype(nn.elem_of(op.results[0])),
            )
            for i, op in enumerate(ops)
        ]
        self._num_slots = len(slots)
        self._names: dict[SSAValue, str] | None = None

    def run(self, inputs: Inputs, *, dump: DumpHook | None = None) -> dict[str, np.ndarray]:
        """Execute the graph; outputs keyed by `GraphOp.output_names()` (see `run`)."""
        return self._execute(_bind_inputs(self.graph, inputs), dump)

    def _execute(self, bound: list[np.ndarray | None], dump: DumpHook | None) -> dict[str, np.ndarray]:
        env: list[np.ndarray | None] = [None] * self._num_slots
        env[: len(self._input_values)] = bound
        bound.clear()  # the environment is now the only owner of converted inputs
        for s in self._free_at_start:
            env[s] = None
        if dump is not None and self._names is None:
            self._names = value_names(self.graph)
        for step in self._steps:
            args = [env[i] for i in step.operands]
            result = step.kernel(args)  # type: ignore[arg-type]
            del args
            if result.shape != step.shape or result.dtype != step.dtype:
                raise AssertionError(
                    f"numpy kernel of '{step.op.name}' returned {result.dtype}{list(result.shape)}, "
                    f"expected {step.dtype}{list(step.shape)}"
                )
            env[step.result] = result
            if dump is not None:
                assert self._names is not None
                dump(self._names[step.op.results[0]], step.op, result)
            del result
            for s in step.frees:
                env[s] = None
        results: dict[str, np.ndarray] = {}
        for name, slot in zip(self.output_names, self._outputs, strict=True):
            value = env[slot]
            assert value is not None
            results[name] = value
        return results


def prepare(module_or_graph: ModuleOp | nn.GraphOp, *, graph: str | None = None) -> Program:
    """Prepare a graph once for repeated `Program.run` calls (unsupported ops raise `UserError` here)."""
    return Program(select_graph(module_or_graph, graph))


_MEMO = "_nnopt_numpy_program"


def _fingerprint(graph: nn.GraphOp) -> tuple[object, ...]:
    """Everything preparation reads: every op, its operands, properties, attributes, result types and names."""
    items: list[object] = [
        tuple(graph.properties.values()),
        tuple(graph.attributes.values()),
        tuple((a.type, a.name_hint) for a in graph.block.args),
    ]
    for op in graph.block.ops:
        items.append(
            (
                op,
                tuple(op.operands),
                tuple(op.properties.items()),
                tuple(op.attributes.items()),
                tuple((r.type, r.name_hint) for r in op.results),
            )
        )
    return tuple(items)


def _program(graph: nn.GraphOp) -> Program:
    """The graph's prepared program, reused while the graph is unchanged (kept on the graph op)."""
    fingerprint = _fingerprint(graph)
    memo = getattr(graph, _MEMO, None)
    if memo is not None and memo[0] == fingerprint:
        program: Program = memo[1]
        return program
    program = Program(graph)
    setattr(graph, _MEMO, (fingerprint, program))
    return program


def _check_input(name: str, value: object, expected: SSAValue) -> np.ndarray:
    shape = nn.shape_of(expected)
    elem = nn.elem_of(expected)
    arr = np.asarray(value)
    if tuple(arr.shape) != tuple(shape):
        raise UserError(
            f"input '{name}' has shape {list(arr.shape)}, the graph expects {list(shape)} ({expected.type})"
        )
    dtype = element_dtype(elem)
    if isinstance(elem, UniformQuantizedType):
        if arr.dtype.kind not in "iu":
            raise UserError(
                f"input '{name}' must hold the stored integers of {elem} ({dtype}), got an array of {arr.dtype}"
            )
        info = np.iinfo(dtype)  # type: ignore[type-var]
        narrowed = elem.qmin > info.min or elem.qmax < info.max
        if arr.size and (arr.dtype != dtype or narrowed):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < elem.qmin or hi > elem.qmax:
                raise UserError(
                    f"input '{name}' has values in [{lo}, {hi}], outside the storage range "
                    f"[{elem.qmin}, {elem.qmax}] of {elem}"
                )
        return arr.astype(dtype, copy=False)
    if dtype.kind == "f":
        if arr.dtype.kind != "f":
            raise UserError(
                f"input '{name}' must be a float array ({expected.type}), got an array of {arr.dtype}"
            )
        return arr.astype(np.float32, copy=False)
    if arr.dtype != dtype:
        raise UserError(f"input '{name}' must be an array of {dtype} ({expected.type}), got {arr.dtype}")
    return arr


def _bind_inputs(graph: nn.GraphOp, inputs: Inputs) -> list[np.ndarray | None]:
    names = graph.input_names()
    args = graph.block.args
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        extra = [k for k in inputs if k not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(repr(n) for n in missing)}")
            if extra:
                parts.append(f"unknown {', '.join(repr(str(k)) for k in extra)}")
            raise UserError(
                f"graph @{graph.sym_name.data} takes inputs {', '.join(repr(n) for n in names) or '(none)'}: "
                + "; ".join(parts)
            )
        values = [inputs[n] for n in names]
    else:
        values = list(inputs)
        if len(values) != len(args):
            raise UserError(f"graph @{graph.sym_name.data} takes {len(args)} inputs, {len(values)} given")
    return [_check_input(n, v, a) for n, v, a in zip(names, values, args, strict=True)]


def run(
    module_or_graph: ModuleOp | nn.GraphOp,
    inputs: Inputs,
    *,
    graph: str | None = None,
    dump: DumpHook | None = None,
    arenas: bool = False,
) -> dict[str, np.ndarray]:
    """Run a graph on numpy inputs and return its outputs keyed by `GraphOp.output_names()`.

    `inputs` is keyed by `GraphOp.input_names()` or positional. With several
    graphs in a module, `graph` names the one to run. `dump(name, op, value)`
    sees every op result (``name`` is the SSA name hint or ``%<index>``).
    Bad inputs and unsupported ops raise `UserError`. The prepared program is
    kept with the graph and reused by later calls while the graph is unchanged
    (`prepare` gives explicit control). With `arenas`, a planned graph runs inside
    real arenas at its planned places (`nnopt.backends.numpy.arena.run_planned`).
    """
    if arenas:
        from nnopt.backends.numpy.arena import run_planned

        return run_planned(module_or_graph, inputs, graph=graph, dump=dump)
    g = select_graph(module_or_graph, graph)
    bound = _bind_inputs(g, inputs)  # report input mistakes before preparing anything
    return _program(g)._execute(bound, dump)

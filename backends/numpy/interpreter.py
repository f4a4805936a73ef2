"""Execute an `nn.graph` op by op on numpy arrays: the semantic reference of nnopt.

Float tensors are float32 arrays; quantized tensors hold their stored integers
in the storage dtype (int8, uint8, int16, ...). `prepare` turns a graph into a
`Program` once (parameters from `qparams.get`, weight matrices, window
geometry, lookup tables); `Program.run` then executes it, releasing every value
right after its last use so that peak memory follows the graph's live set.
`run` prepares and runs in one call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from nnopt.backends.numpy.arrays import Kernel, const_value, element_dtype
from nnopt.backends.numpy.kernels_common import COMMON_MAKERS
from nnopt.backends.numpy.kernels_float import FLOAT_MAKERS
from nnopt.backends.numpy.kernels_int import FC_STAGE, INT_MAKERS, fc_chain_kernel
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


@dataclass(frozen=True)
class _InputSpec:
    name: str
    value: SSAValue
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]
    plain: bool
    """An array of exactly this dtype and shape is valid as it is (every value of the dtype is storable)."""


class Program:
    """A graph prepared for repeated execution (see `prepare`).

    Preparation computes every kernel's parameters, and evaluates once the ops
    whose operands are all constants (weights, dequantized weights, ...): they
    sit in the environment template that every run starts from. Without a
    `dump` hook, a run executes only the remaining ops, with chains of 8-bit
    FULLY_CONNECTED layers fused (`_fuse`; result shapes and dtypes are checked
    on the first run); with one, every op runs on its own.
    """

    def __init__(self, graph: nn.GraphOp) -> None:
        self.graph = graph
        self.input_names = graph.input_names()
        self.output_names = graph.output_names()
        self._input_values = list(graph.block.args)
        self._inputs = [_input_spec(n, v) for n, v in zip(self.input_names, self._input_values, strict=True)]
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
        # The fast path: constant-only ops evaluated now, into the template of every run's environment.
        self._template: list[np.ndarray | None] = [None] * self._num_slots
        static: set[int] = set()
        dynamic: list[_Step] = []
        for step in self._steps:
            if isinstance(step.op, nn.ConstOp) or (step.operands and all(s in static for s in step.operands)):
                value = step.kernel([self._template[s] for s in step.operands])  # type: ignore[misc]
                _check_result(step, value)
                self._template[step.result] = value
                static.add(step.result)
            else:
                dynamic.append(step)
        self._static_outputs = static & keep
        self._fast = [
            (kernel, operands, last.result, tuple(s for s in frees if s not in static), last)
            for kernel, operands, frees, last in _fuse(dynamic, keep)
        ]
        self._checked = False  # the first fast run checks every result's shape and dtype

    def run(self, inputs: Inputs, *, dump: DumpHook | None = None) -> dict[str, np.ndarray]:
        """Execute the graph; outputs keyed by `GraphOp.output_names()` (see `run`)."""
        return self._execute(self._bind(inputs), dump)

    def _bind(self, inputs: Inputs) -> list[np.ndarray | None]:
        """The inputs checked as `_bind_inputs` does, plain arrays of the right dtype and shape at once."""
        specs = self._inputs
        values: list[object]
        if isinstance(inputs, np.ndarray):
            values = [inputs]
        elif isinstance(inputs, Mapping):
            if len(inputs) != len(specs) or any(s.name not in inputs for s in specs):
                return _bind_inputs(self.graph, inputs)  # the error message
            values = [inputs[s.name] for s in specs]
        else:
            values = list(inputs)
        if len(values) != len(specs):
            return _bind_inputs(self.graph, inputs)
        bound: list[np.ndarray | None] = []
        for spec, v in zip(specs, values, strict=True):
            if type(v) is np.ndarray and spec.plain and v.dtype == spec.dtype and v.shape == spec.shape:
                bound.append(v)
            else:
                bound.append(_check_input(spec.name, v, spec.value))
        return bound

    def _execute(self, bound: list[np.ndarray | None], dump: DumpHook | None) -> dict[str, np.ndarray]:
        if dump is None:
            return self._execute_fast(bound)
        env: list[np.ndarray | None] = [None] * self._num_slots
        env[: len(self._input_values)] = bound
        bound.clear()  # the environment is now the only owner of converted inputs
        for s in self._free_at_start:
            env[s] = None
        if self._names is None:
            self._names = value_names(self.graph)
        for step in self._steps:
            args = [env[i] for i in step.operands]
            result = step.kernel(args)  # type: ignore[arg-type]
            del args
            _check_result(step, result)
            env[step.result] = result
            dump(self._names[step.op.results[0]], step.op, result)
            del result
            for s in step.frees:
                env[s] = None
        return self._results(env, copy_static=False)

    def _execute_fast(self, bound: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        env = self._template.copy()
        env[: len(bound)] = bound
        bound.clear()
        for s in self._free_at_start:
            env[s] = None
        if not self._checked:
            for kernel, operands, result_slot, frees, last in self._fast:
                result = kernel([env[i] for i in operands])  # type: ignore[misc]
                _check_result(last, result)
                env[result_slot] = result
                del result
                for s in frees:
                    env[s] = None
            self._checked = True
            return self._results(env, copy_static=True)
        for kernel, operands, result_slot, frees, _ in self._fast:
            env[result_slot] = kernel([env[i] for i in operands])  # type: ignore[misc]
            for s in frees:
                env[s] = None
        return self._results(env, copy_static=True)

    def _results(self, env: list[np.ndarray | None], *, copy_static: bool) -> dict[str, np.ndarray]:
        results: dict[str, np.ndarray] = {}
        for name, slot in zip(self.output_names, self._outputs, strict=True):
            value = env[slot]
            assert value is not None
            if copy_static and slot in self._static_outputs:
                value = value.copy()  # the template's value must survive what the caller does with it
            results[name] = value
        return results


def _fuse(steps: list[_Step], keep: set[int]) -> list[tuple[Kernel, list[int], list[int], _Step]]:
    """The steps as (kernel, operands, frees, last step), chains of 8-bit FULLY_CONNECTED ops fused.

    A layer joins the previous one's chain when it is the only user of that
    layer's result and the result is not a graph output (see `FcStage`).
    """
    uses: dict[int, int] = {}
    for step in steps:
        for s in step.operands:
            uses[s] = uses.get(s, 0) + 1
    fused: list[tuple[Kernel, list[int], list[int], _Step]] = []
    i = 0
    while i < len(steps):
        chain = [steps[i]]
        while getattr(chain[-1].kernel, FC_STAGE, None) is not None and i + len(chain) < len(steps):
            cur, nxt = chain[-1], steps[i + len(chain)]
            if (
                getattr(nxt.kernel, FC_STAGE, None) is None
                or nxt.operands[0] != cur.result
                or uses.get(cur.result) != 1
                or cur.result in keep
            ):
                break
            chain.append(nxt)
        frees = [s for step in chain for s in step.frees]
        if len(chain) == 1:
            fused.append((chain[0].kernel, chain[0].operands, frees, chain[0]))
        else:
            stages = [getattr(step.kernel, FC_STAGE) for step in chain]
            fused.append((fc_chain_kernel(stages), chain[0].operands[:1], frees, chain[-1]))
        i += len(chain)
    return fused


def _check_result(step: _Step, result: np.ndarray) -> None:
    if result.shape != step.shape or result.dtype != step.dtype:
        raise AssertionError(
            f"numpy kernel of '{step.op.name}' returned {result.dtype}{list(result.shape)}, "
            f"expected {step.dtype}{list(step.shape)}"
        )


def _input_spec(name: str, value: SSAValue) -> _InputSpec:
    elem = nn.elem_of(value)
    dtype = element_dtype(elem)
    plain = True
    if isinstance(elem, UniformQuantizedType):
        info = np.iinfo(dtype)  # type: ignore[type-var]
        plain = elem.qmin <= info.min and elem.qmax >= info.max
    return _InputSpec(name, value, tuple(nn.shape_of(value)), dtype, plain)


def prepare(module_or_graph: ModuleOp | nn.GraphOp, *, graph: str | None = None) -> Program:
    """Prepare a graph once for repeated `Program.run` calls (unsupported ops raise `UserError` here)."""
    return Program(select_graph(module_or_graph, graph))


_MEMO = "_nnopt_numpy_program"

_OP_STATE = operator.attrgetter("_next_op", "_operands", "properties", "attributes")
"""What preparation reads from an op, in one C call (its results never change: xDSL sets them once)."""
_NAME = operator.attrgetter("_name")


class _Snapshot:
    """Everything preparation reads, to tell cheaply whether a graph changed since.

    Every op of the graph's block and their order, operands, properties,
    attributes and result names; the block's arguments and their names; the
    graph's own properties and attributes. (Attributes and types are immutable,
    xDSL replaces an op's operand tuple when an operand changes, and the
    properties and attributes dictionaries are compared with copies.) The
    comparisons run in C over lists, so a check costs microseconds.
    """

    def __init__(self, graph: nn.GraphOp) -> None:
        block = graph.block
        self.graph_properties = dict(graph.properties)
        self.graph_attributes = dict(graph.attributes)
        self.block = block
        self.args = block.args
        self.arg_names = list(map(_NAME, self.args))
        self.ops = list(block.ops)
        self.first = self.ops[0] if self.ops else None
        self.states = [
            (nxt, operands, dict(props), dict(attrs))
            for nxt, operands, props, attrs in map(_OP_STATE, self.ops)
        ]
        self.values = [r for op in self.ops for r in op.results]
        self.value_names = list(map(_NAME, self.values))

    def matches(self, graph: nn.GraphOp) -> bool:
        block = graph.block
        return (
            block is self.block
            and block.first_op is self.first
            and block.args is self.args
            and graph.properties == self.graph_properties
            and graph.attributes == self.graph_attributes
            and list(map(_OP_STATE, self.ops)) == self.states
            and list(map(_NAME, self.values)) == self.value_names
            and list(map(_NAME, self.args)) == self.arg_names
        )


def _kept(graph: nn.GraphOp) -> Program | None:
    """The graph's kept program when the graph is unchanged since it was prepared."""
    memo = getattr(graph, _MEMO, None)
    if memo is not None and memo[0].matches(graph):
        program: Program = memo[1]
        return program
    return None


def _program(graph: nn.GraphOp) -> Program:
    """The graph's prepared program, reused while the graph is unchanged (kept on the graph op)."""
    program = _kept(graph)
    if program is None:
        program = Program(graph)
        setattr(graph, _MEMO, (_Snapshot(graph), program))
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
    program = _kept(g)
    if program is not None:
        return program._execute(program._bind(inputs), dump)
    bound = _bind_inputs(g, inputs)  # report input mistakes before preparing anything
    return _program(g)._execute(bound, dump)

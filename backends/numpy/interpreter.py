"""Execute an `nn.graph` op by op on numpy arrays: the semantic reference of nnopt.

Float tensors are float32 arrays; quantized tensors hold their stored integers
in the storage dtype (int8, uint8, int16, ...). Every value is released right
after its last use, so peak memory follows the graph's live set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from nnopt.backends.numpy.kernels_common import COMMON_KERNELS, const, element_dtype
from nnopt.backends.numpy.kernels_float import FLOAT_KERNELS
from nnopt.backends.numpy.kernels_int import INT_KERNELS
from nnopt.compiler.diagnostics import UserError, op_error
from nnopt.dialects import nn, qparams
from nnopt.dialects.quant import UniformQuantizedType

DumpHook = Callable[[str, Operation, np.ndarray], None]
"""``dump(name, op, value)``, called for every op result as it is computed."""


def select_graph(module_or_graph: ModuleOp | nn.GraphOp, graph: str | None = None) -> nn.GraphOp:
    """The graph to run: `module_or_graph` itself, the graph named `graph`, or the module's only graph."""
    if isinstance(module_or_graph, nn.GraphOp):
        if graph is not None and module_or_graph.sym_name.data != graph:
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


@dataclass
class _Plan:
    ops: list[Operation]
    free_after: list[list[SSAValue]]
    free_at_start: list[SSAValue]


def _plan(graph: nn.GraphOp) -> _Plan:
    """Op order and, for each op, the values whose last use it is."""
    ops = list(graph.block.ops)
    last_use: dict[SSAValue, int] = {}
    for i, op in enumerate(ops):
        for v in op.operands:
            last_use[v] = i
    free_after: list[list[SSAValue]] = [[] for _ in ops]
    free_at_start: list[SSAValue] = [a for a in graph.block.args if a not in last_use]
    for i, op in enumerate(ops):
        for r in op.results:
            free_after[last_use.get(r, i)].append(r)
    for arg in graph.block.args:
        if arg in last_use:
            free_after[last_use[arg]].append(arg)
    return _Plan(ops, free_after, free_at_start)


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
        if arr.size and (int(arr.min()) < elem.qmin or int(arr.max()) > elem.qmax):
            raise UserError(
                f"input '{name}' has values in [{int(arr.min())}, {int(arr.max())}], outside the storage range "
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


def _bind_inputs(
    graph: nn.GraphOp, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray
) -> list[np.ndarray]:
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


def _execute(op: Operation, args: list[np.ndarray]) -> np.ndarray:
    kind = type(op)
    try:
        if isinstance(op, nn.ConstOp):
            return const(op)
        if qparams.is_quantized_op(op):
            kernel = INT_KERNELS.get(kind)
            if kernel is None:
                raise op_error(op, "on quantized tensors is not supported by the numpy interpreter")
            assert isinstance(op, nn.QuantizableOp)
            try:
                params = qparams.get(op)
                return kernel(op, args, params, op.rounding_mode())
            except KeyError as exc:
                raise op_error(op, f"qparams lack the entry {exc}") from None
        if kind in COMMON_KERNELS:
            return COMMON_KERNELS[kind](op, args)
        float_kernel = FLOAT_KERNELS.get(kind)
        if float_kernel is None:
            raise op_error(op, "is not supported by the numpy interpreter")
        return float_kernel(op, args)
    except qparams.QuantParamError as exc:
        raise op_error(op, str(exc)) from None


def run(
    module_or_graph: ModuleOp | nn.GraphOp,
    inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    *,
    graph: str | None = None,
    dump: DumpHook | None = None,
) -> dict[str, np.ndarray]:
    """Run a graph on numpy inputs and return its outputs keyed by `GraphOp.output_names()`.

    `inputs` is keyed by `GraphOp.input_names()` or positional. With several
    graphs in a module, `graph` names the one to run. `dump(name, op, value)`
    sees every op result (``name`` is the SSA name hint or ``%<index>``).
    Bad inputs and unsupported ops raise `UserError`.
    """
    g = select_graph(module_or_graph, graph)
    bound = _bind_inputs(g, inputs)
    plan = _plan(g)
    names = value_names(g) if dump is not None else {}
    env: dict[SSAValue, np.ndarray] = dict(zip(g.block.args, bound, strict=True))
    del bound
    for v in plan.free_at_start:
        env.pop(v, None)
    outputs: dict[str, np.ndarray] = {}
    for op, frees in zip(plan.ops, plan.free_after, strict=True):
        if isinstance(op, nn.OutputOp):
            for name, v in zip(g.output_names(), op.values, strict=True):
                outputs[name] = env[v]
        elif op.results:
            args = [env[v] for v in op.operands]
            result = _execute(op, args)
            del args
            _check_result(op, result)
            env[op.results[0]] = result
            if dump is not None:
                dump(names[op.results[0]], op, result)
            del result
        else:
            raise op_error(op, "is not supported by the numpy interpreter")
        for v in frees:
            env.pop(v, None)
    return outputs


def _check_result(op: Operation, result: np.ndarray) -> None:
    expected = tuple(nn.shape_of(op.results[0]))
    dtype = element_dtype(nn.elem_of(op.results[0]))
    if tuple(result.shape) != expected or result.dtype != dtype:
        raise AssertionError(
            f"numpy kernel of '{op.name}' returned {result.dtype}{list(result.shape)}, "
            f"expected {dtype}{list(expected)}"
        )

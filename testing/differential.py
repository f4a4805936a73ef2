"""Differential checks: a pass (or a plan) must not change what a graph computes.

    from nnopt.testing import assert_same_outputs, run_pipeline

    planned = run_pipeline(module, "nn-merge-buffers,nn-plan-arena")
    assert_same_outputs(module, planned)        # bit-identical by default

Planned graphs (``nn.arenas``) run inside real arenas
(`nnopt.backends.numpy.arena.run_planned`), so a wrong plan fails the check:
either an `ArenaError` names the value that was overwritten while live, or the
outputs differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

if TYPE_CHECKING:
    from nnopt.compiler.plugins import Registry


@lru_cache(maxsize=1)
def _registry() -> Registry:
    from nnopt.compiler.registry import build_registry

    return build_registry(entry_points=False)


def run_pipeline(module: ModuleOp, pipeline: str) -> ModuleOp:
    """A clone of `module` after the passes of `pipeline` (``a,b{k=v}`` or ``builtin.module(...)``)."""
    from nnopt.compiler.opt import build_pipeline
    from nnopt.compiler.pipeline import mlir_pipeline_to_xdsl
    from nnopt.compiler.registry import make_context

    registry = _registry()
    passes = build_pipeline(registry, mlir_pipeline_to_xdsl(pipeline))
    ctx: Context = make_context(registry)
    clone = module.clone()
    for p in passes:
        p.apply(ctx, clone)
        clone.verify()
    return clone


def random_inputs(
    module: ModuleOp | nn.GraphOp, seed: int = 0, graph: str | None = None
) -> dict[str, np.ndarray]:
    """Seeded inputs by name: standard normal floats, uniform integers over a quantized storage range."""
    from nnopt.backends.numpy import select_graph

    g = select_graph(module, graph)
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for name, arg in zip(g.input_names(), g.block.args, strict=True):
        elem = nn.elem_of(arg)
        shape = nn.shape_of(arg)
        if isinstance(elem, UniformQuantizedType):
            inputs[name] = rng.integers(elem.qmin, elem.qmax, size=shape, endpoint=True).astype(
                elem.numpy_dtype
            )
        else:
            inputs[name] = rng.standard_normal(shape).astype(np.float32)
    return inputs


def run_any(
    module: ModuleOp | nn.GraphOp, inputs: Mapping[str, np.ndarray], graph: str | None = None
) -> dict[str, np.ndarray]:
    """Outputs of a graph: inside its arenas when it is planned, else with the plain interpreter."""
    from nnopt.backends.numpy import run, select_graph
    from nnopt.backends.numpy.arena import is_planned, run_planned

    g = select_graph(module, graph)
    if is_planned(g):
        return run_planned(g, inputs)
    return run(g, inputs)


def assert_same_outputs(
    module_a: ModuleOp | nn.GraphOp,
    module_b: ModuleOp | nn.GraphOp,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    seed: int = 0,
    rtol: float = 0.0,
    atol: float = 0.0,
    graph: str | None = None,
) -> dict[str, np.ndarray]:
    """Fail (AssertionError) unless both graphs give the same outputs; returns `module_a`'s outputs.

    Inputs default to `random_inputs(module_a, seed)`. With ``rtol = atol = 0``
    the outputs must be bit-identical (NaNs in the same places); otherwise
    floats are compared with those tolerances. Planned graphs run in arenas; a
    value overwritten while live or an in-place hazard fails the check too.
    """
    if inputs is None:
        inputs = random_inputs(module_a, seed, graph)
    from nnopt.backends.numpy.arena import ArenaError

    try:
        out_a = run_any(module_a, inputs, graph)
        out_b = run_any(module_b, inputs, graph)
    except ArenaError as exc:
        raise AssertionError(f"a planned graph does not run as planned: {exc}") from exc
    if sorted(out_a) != sorted(out_b):
        raise AssertionError(f"the graphs have different outputs: {sorted(out_a)} vs {sorted(out_b)}")
    for name, a in out_a.items():
        b = out_b[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise AssertionError(f"output '{name}': {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
        if (rtol == 0.0 and atol == 0.0) or a.dtype.kind not in "fc":
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                bad = int(np.sum(a != b))
                raise AssertionError(f"output '{name}' differs in {bad} of {a.size} elements")
        else:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"output '{name}'")
    return out_a


def assert_pipeline_preserves_outputs(
    module: ModuleOp,
    pipeline: str,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    seed: int = 0,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> ModuleOp:
    """Run `pipeline` on a clone of `module`, check the outputs did not change, return the clone."""
    result = run_pipeline(module, pipeline)
    assert_same_outputs(module, result, inputs, seed=seed, rtol=rtol, atol=atol)
    return result

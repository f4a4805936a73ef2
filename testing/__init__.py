"""Hypothesis strategies and checkers for users' own passes and allocators.

`graph_specs()` draws random valid `nn` graphs (build them with `build_graph`);
`buffer_problems()` draws packing problems for allocators, checked with
`assert_valid_plan` and `assert_at_least_lower_bound`. `assert_same_outputs`
and `run_pipeline` check that a pass (or a memory plan, run in real arenas)
leaves what a graph computes unchanged.
"""

from nnopt.testing.differential import (
    assert_pipeline_preserves_outputs,
    assert_same_outputs,
    random_inputs,
    run_any,
    run_pipeline,
)
from nnopt.testing.graphs import GraphSpec, LayerSpec, build_graph, graph_specs, spec_seed
from nnopt.testing.plans import assert_at_least_lower_bound, assert_valid_plan, buffer_problems

__all__ = [
    "GraphSpec",
    "LayerSpec",
    "assert_at_least_lower_bound",
    "assert_pipeline_preserves_outputs",
    "assert_same_outputs",
    "assert_valid_plan",
    "buffer_problems",
    "build_graph",
    "graph_specs",
    "random_inputs",
    "run_any",
    "run_pipeline",
    "spec_seed",
]

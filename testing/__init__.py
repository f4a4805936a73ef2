"""Hypothesis strategies and checkers for users' own passes and allocators.

`graph_specs()` draws random valid `nn` graphs (build them with `build_graph`);
`buffer_problems()` draws packing problems for allocators, checked with
`assert_valid_plan` and `assert_at_least_lower_bound`.
"""

from nnopt.testing.graphs import GraphSpec, LayerSpec, build_graph, graph_specs, spec_seed
from nnopt.testing.plans import assert_at_least_lower_bound, assert_valid_plan, buffer_problems

__all__ = [
    "GraphSpec",
    "LayerSpec",
    "assert_at_least_lower_bound",
    "assert_valid_plan",
    "buffer_problems",
    "build_graph",
    "graph_specs",
    "spec_seed",
]

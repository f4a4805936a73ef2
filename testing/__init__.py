"""Hypothesis strategies and checkers for users' own passes and allocators.

`graph_specs()` draws random valid `nn` graphs (build them with `build_graph`).
"""

from nnopt.testing.graphs import GraphSpec, LayerSpec, build_graph, graph_specs, spec_seed

__all__ = ["GraphSpec", "LayerSpec", "build_graph", "graph_specs", "spec_seed"]

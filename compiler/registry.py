"""What nnopt knows: a curated set of xDSL dialects and passes, nnopt's own, and plugins.

Everything is registered as a lazy factory, so start-up imports no pass or
dialect module until it is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import get_all_dialects
from xdsl.transforms import get_all_passes as get_xdsl_passes

from nnopt.compiler.plugins import Registry, add_file_plugin, entry_point_universes
from nnopt.compiler.universe import NNOPT_UNIVERSE

XDSL_DIALECTS = ("builtin", "func", "arith", "tensor", "memref", "linalg", "bufferization")
"""The xDSL dialects nnopt registers (not all 80 of them)."""

XDSL_PASSES = ("canonicalize", "cse", "dce")
"""The xDSL passes nnopt registers."""


def build_registry(plugin_files: Sequence[str] = (), *, entry_points: bool = True) -> Registry:
    """The registry of passes and dialects: xDSL's curated set, nnopt, entry-point and file plugins."""
    registry = Registry()
    xdsl_dialects = get_all_dialects()
    for name in XDSL_DIALECTS:
        registry.add_dialect(name, xdsl_dialects[name], "xDSL")
    xdsl_passes = get_xdsl_passes()
    for name in XDSL_PASSES:
        registry.add_pass(name, xdsl_passes[name], "xDSL")
    registry.add_universe(NNOPT_UNIVERSE, "nnopt")
    if entry_points:
        for source, universe in entry_point_universes():
            registry.add_universe(universe, source)
    for path in plugin_files:
        add_file_plugin(registry, path)
    return registry


def make_context(registry: Registry | None = None) -> Context:
    """An xDSL context with every registered dialect (loaded lazily)."""
    registry = build_registry() if registry is None else registry
    ctx = Context()
    for name, factory in registry.dialects.items():
        ctx.register_dialect(name, factory)
    return ctx

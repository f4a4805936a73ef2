"""Printing and parsing are inverse: random valid graphs print -> parse -> print to the same text."""

from __future__ import annotations

from io import StringIO

from hypothesis import HealthCheck, given, settings
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from nnopt.compiler.diagnostics import verify_module
from nnopt.compiler.mlir_input import parse_mlir
from nnopt.compiler.registry import make_context
from nnopt.testing import GraphSpec, build_graph, graph_specs

CTX = make_context()


def _print(module: ModuleOp, generic: bool = False) -> str:
    out = StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs())
def test_custom_format_round_trips(spec: GraphSpec) -> None:
    text = _print(build_graph(spec))
    reparsed = parse_mlir(CTX, text, "roundtrip.mlir")
    verify_module(reparsed)
    assert _print(reparsed) == text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs())
def test_generic_format_round_trips(spec: GraphSpec) -> None:
    module = build_graph(spec)
    generic = _print(module, generic=True)
    reparsed = parse_mlir(CTX, generic, "generic.mlir")
    assert _print(reparsed) == _print(module)
    assert reparsed.is_structurally_equivalent(module)

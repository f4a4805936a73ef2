"""`nn-lifetimes`: print the live interval of every tensor (or buffer) in the current op order."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import compute_lifetimes


@dataclass(frozen=True)
class LifetimesPass(ModulePass):
    """Report live intervals and the liveness lower bound of every graph (IR unchanged)."""

    name = "nn-lifetimes"

    alignment: int = 16
    """Alignment used for the lower bound."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for graph in op.walk():
            if isinstance(graph, nn.GraphOp):
                lifetimes = compute_lifetimes(graph)
                print(f"// lifetimes of @{graph.sym_name.data}", file=sys.stderr)
                for line in lifetimes.table().splitlines():
                    print(f"//   {line}", file=sys.stderr)

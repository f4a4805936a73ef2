"""A single-file nnopt pass plugin: count ops per kind and annotate each graph.

    nnopt-opt model.mlir --load-pass-plugin examples/plugins/count_ops.py \
        --pass-pipeline='builtin.module(demo-count-ops{report=true})'

Every `ModulePass` subclass defined in a file given to `--load-pass-plugin`
is registered under its `name`. Third-party passes should use a prefix of
their own (`demo-` here) so they never clash with nnopt's `nn-` passes.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass

from nnopt.dialects.nn import GraphOp


@dataclass(frozen=True)
class CountOpsPass(ModulePass):
    """Attach `demo.op_counts = {op name = count}` to every nn.graph; optionally print a table."""

    name = "demo-count-ops"

    report: bool = False
    """Also print the counts to stderr."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for graph in op.walk():
            if not isinstance(graph, GraphOp):
                continue
            counts = Counter(inner.name for inner in graph.block.ops)
            graph.attributes["demo.op_counts"] = DictionaryAttr(
                {name: IntegerAttr(n, i64) for name, n in sorted(counts.items())}
            )
            if self.report:
                print(f"@{graph.sym_name.data}:", file=sys.stderr)
                for name, n in counts.most_common():
                    print(f"  {n:5d}  {name}", file=sys.stderr)

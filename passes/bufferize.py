"""`nn-bufferize`: give every activation value a buffer, and every op that needs it a scratch buffer.

Each graph input and each op result (constants aside) gets its own buffer
``b<k>``, written by its producer in place of a fresh allocation (destination
passing): the op's ``nn.place`` attribute, or the graph argument's, names the
buffer. Ops that need temporary memory get a scratch buffer ``s<k>`` in
``nn.scratch``. The graph lists every buffer in ``nn.buffers``. Graphs that
are already bufferized are left alone, so the pass is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp
from xdsl.ir import Attribute
from xdsl.passes import ModulePass

from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import executed_ops
from nnopt.passes.analysis.scratch import scratch_bytes


def bufferize_graph(graph: nn.GraphOp, alignment: int = 16) -> None:
    """Attach buffers and places to one graph (no-op when it already has them)."""
    if nn.BUFFERS_KEY in graph.attributes:
        return
    buffers: dict[str, Attribute] = {}
    outputs = set(graph.output.values)
    arg_attrs = (
        [dict(a.data) for a in graph.arg_attrs.data]
        if graph.arg_attrs is not None
        else [{} for _ in graph.block.args]
    )
    for i, arg in enumerate(graph.block.args):
        name = f"b{len(buffers)}"
        kind = "variable" if nn.VARIABLE_KEY in arg_attrs[i] else "output" if arg in outputs else "input"
        buffers[name] = nn.BufferAttr(nn.tensor_bytes(arg), alignment, kind)
        arg_attrs[i][nn.PLACE_KEY] = nn.PlaceAttr(name)
    if graph.block.args:
        graph.arg_attrs = ArrayAttr([DictionaryAttr(a) for a in arg_attrs])
    scratch_count = 0
    for op in executed_ops(graph):
        if len(op.results) == 1:
            name = f"b{len(buffers)}"
            kind = "output" if op.results[0] in outputs else "activation"
            buffers[name] = nn.BufferAttr(nn.tensor_bytes(op.results[0]), alignment, kind)
            op.attributes[nn.PLACE_KEY] = nn.PlaceAttr(name)
        need = scratch_bytes(op)
        if need > 0:
            name = f"s{scratch_count}"
            scratch_count += 1
            buffers[name] = nn.BufferAttr(need, alignment, "scratch")
            op.attributes[nn.SCRATCH_KEY] = nn.PlaceAttr(name)
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(buffers)


@dataclass(frozen=True)
class BufferizePass(ModulePass):
    """Give every activation value its own buffer (destination passing) and ops their scratch."""

    name = "nn-bufferize"

    alignment: int = 16
    """Alignment of every buffer in bytes (a power of two)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            from nnopt.compiler.diagnostics import UserError

            raise UserError(f"nn-bufferize: alignment must be a power of two, got {self.alignment}")
        for graph in op.walk():
            if isinstance(graph, nn.GraphOp):
                bufferize_graph(graph, self.alignment)

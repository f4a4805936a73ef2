"""``nnopt-opt -t c``: print the C library of a planned module (header, source, weights).

    nnopt-opt model.tflite -p nn-bufferize,nn-merge-buffers,nn-plan-arena -t 'c{lib=kws}'

Each file is preceded by a ``// ----- FILE -----`` line. The whole project
(test program, vectors, Makefile) comes from ``nnopt compile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.target import Target

from nnopt.compiler.diagnostics import UserError


@dataclass(frozen=True)
class CTarget(Target):
    """The C99 backend as an xDSL target."""

    name = "c"

    lib: str = ""
    """C name prefix (default: the graph's name)."""
    graph: str = ""
    """The graph to print when the module holds several."""

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        from nnopt.backends.c import generate_library, is_planned, library_name
        from nnopt.backends.numpy.interpreter import select_graph

        graph = select_graph(module, self.graph or None)
        if not is_planned(graph):
            raise UserError(
                f"target 'c' needs a memory-planned graph; add the planning passes, e.g. "
                f"-p nn-bufferize,nn-merge-buffers,nn-plan-arena (graph @{graph.sym_name.data} has no plan)"
            )
        prefix = library_name(self.lib or graph.sym_name.data)
        src = generate_library(graph, prefix, f"@{graph.sym_name.data}")
        for path, text in src.files.items():
            output.write(f"// ----- {path} -----\n{text}")

"""The C99 backend: a planned `nn.graph` printed as a self-contained C project.

`generate_project(graph, name=..., source=...)` returns every file of the
project by relative path: the library (``<name>.h``, ``<name>.c``,
``<name>_weights.h``), a test program with input/output vectors recorded from
nnopt's numpy interpreter, a benchmark program, a Makefile, a README and the
Cortex-M4 support files. `nnopt compile MODEL --emit c -o DIR` writes them;
``nnopt-opt -t c`` prints the library sources of an already planned module.

The graph must be memory-planned (``nn-bufferize`` ... ``nn-plan-arena``):
every arena offset in the C code is read from the plan.
"""

from __future__ import annotations

import numpy as np

from nnopt.backends.c.emit import CSources, generate
from nnopt.backends.c.model import is_planned, read_graph
from nnopt.backends.c.names import identifier
from nnopt.backends.c.project import Vectors, input_vectors, project_files
from nnopt.dialects import nn

__all__ = ["CSources", "generate_library", "generate_project", "is_planned", "library_name"]


def library_name(text: str) -> str:
    """A C prefix for a model name (lower-case identifier, at most 40 characters)."""
    return identifier(text.lower(), "model")[:40].rstrip("_") or "model"


def generate_library(graph: nn.GraphOp, name: str, source: str) -> CSources:
    """The library sources of a planned graph."""
    return generate(read_graph(graph), name, source)


def record_vectors(graph: nn.GraphOp, src: CSources, count: int, seed: int) -> Vectors:
    """`count` seeded input vectors and the numpy interpreter's outputs for them."""
    from nnopt.backends.numpy.interpreter import prepare

    inputs = input_vectors(src, count, seed)
    program = prepare(graph)
    outputs: list[list[np.ndarray]] = [[] for _ in src.outputs]
    names = graph.input_names()
    for v in range(count):
        with np.errstate(all="ignore"):
            result = program.run({n: arr[v] for n, arr in zip(names, inputs, strict=True)})
        for i, out_name in enumerate(graph.output_names()):
            outputs[i].append(np.asarray(result[out_name]))
    out_arrays = [
        np.stack(o) if o else np.zeros((0, *p.access.shape))
        for o, p in zip(outputs, src.outputs, strict=True)
    ]
    return Vectors(inputs, out_arrays)


def generate_project(
    graph: nn.GraphOp,
    *,
    name: str,
    source: str,
    target: str = "host",
    vectors: int = 10,
    seed: int = 0,
) -> tuple[CSources, dict[str, str]]:
    """The library and every project file (Makefile, README, test program and vectors, ARM support)."""
    src = generate_library(graph, name, source)
    recorded = record_vectors(graph, src, vectors, seed)
    return src, project_files(src, source, target, recorded)

"""The model files the sections measure, how nnopt loads them, and their seeded inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, ShapedType

from benchmarks.common import Context
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

MODEL_SUFFIXES = (".tflite", ".onnx", ".nn", ".mlir")


@dataclass(frozen=True)
class ModelFile:
    """A model on disk."""

    path: Path

    @property
    def name(self) -> str:
        """File name without the extension."""
        return self.path.stem

    @property
    def kind(self) -> str:
        """The extension without its dot: tflite, onnx, nn, mlir."""
        return self.path.suffix.lstrip(".")

    @property
    def label(self) -> str:
        """How the model is named in tables (.nn examples keep their extension)."""
        return self.path.name if self.kind in ("nn", "mlir") else self.name


def shared_models(ctx: Context) -> list[ModelFile]:
    """Every model file in ../shared/models that passes the filter (sorted by name)."""
    if not ctx.models_dir.is_dir():
        return []
    return [
        ModelFile(p)
        for p in sorted(ctx.models_dir.iterdir())
        if p.suffix in MODEL_SUFFIXES and ctx.wants(p.name)
    ]


def example_models(ctx: Context) -> list[ModelFile]:
    """The example `.nn` models of the repository."""
    if not ctx.examples_dir.is_dir():
        return []
    return [ModelFile(p) for p in sorted(ctx.examples_dir.glob("*.nn")) if ctx.wants(p.name)]


def load(model: ModelFile) -> ModuleOp:
    """nnopt's module for a model file (raises `UserError` when nnopt cannot read it)."""
    from nnopt.compiler.frontends import load_model

    return load_model(str(model.path))


def only_graph(module: ModuleOp) -> nn.GraphOp:
    """The single graph of a module."""
    graphs = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    if len(graphs) != 1:
        raise ValueError(f"expected one nn.graph, found {len(graphs)}")
    return graphs[0]


def seeded_inputs(graph: nn.GraphOp, seed: int = 0) -> list[np.ndarray]:
    """One input per graph argument, like ``nnopt run --seed``: uniform storage integers or N(0, 1) floats."""
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray] = []
    for arg in graph.block.args:
        t = arg.type
        assert isinstance(t, ShapedType)
        shape = tuple(t.get_shape())
        elem = t.get_element_type()  # type: ignore[attr-defined]
        if isinstance(elem, UniformQuantizedType):
            values = rng.integers(elem.qmin, elem.qmax, size=shape, endpoint=True)
            arrays.append(values.astype(elem.numpy_dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays

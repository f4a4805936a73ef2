"""Single-op int8 .tflite models run in the real TFLite Micro interpreter (the `tflite_micro` wheel).

Models are built without TensorFlow through `tflite_micro`'s ``model_editor``.
TFLM can crash the process on a bad model, so `run_tflm` executes every model in
one child process and returns its outputs (or the error text) per case.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:  # pragma: no cover - depends on the optional peer package
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

    HAVE_TFLM = True
except ImportError:  # pragma: no cover
    HAVE_TFLM = False

_DTYPES = {
    np.dtype(np.float32): 0,
    np.dtype(np.int32): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int64): 4,
    np.dtype(np.int16): 7,
    np.dtype(np.int8): 9,
}


@dataclass
class T:
    """A tensor of a single-op model: shape, dtype, optional quantization and constant data."""

    shape: tuple[int, ...]
    dtype: Any
    scales: list[float] | None = None
    zero_points: list[int] | None = None
    axis: int | None = None
    data: np.ndarray | None = None
    name: str = ""
    _tensor: Any = field(default=None, repr=False)

    def build(self) -> Any:
        quant = None
        if self.scales is not None:
            zps = self.zero_points if self.zero_points is not None else [0] * len(self.scales)
            quant = me.Quantization(scales=list(self.scales), zero_points=list(zps), axis=self.axis)
        kwargs: dict[str, Any] = {
            "shape": tuple(self.shape),
            "dtype": _DTYPES[np.dtype(self.dtype)],
            "quantization": quant,
            "name": self.name or None,
        }
        if self.data is not None:
            kwargs["data"] = np.ascontiguousarray(self.data, dtype=self.dtype)
        self._tensor = me.Tensor(**kwargs)
        return self._tensor


def single_op_model(
    opcode_name: str,
    inputs: list[T | None],
    outputs: list[T],
    options_name: str | None = None,
    options: dict[str, Any] | None = None,
) -> bytes:
    """A .tflite flatbuffer with one builtin operator; non-constant inputs become graph inputs."""
    opcode = getattr(tfl.BuiltinOperator, opcode_name)
    in_tensors = [None if t is None else t.build() for t in inputs]
    out_tensors = [t.build() for t in outputs]
    op = me.Operator(opcode=opcode, inputs=in_tensors, outputs=out_tensors)
    if options_name is not None:
        opts = getattr(tfl, f"{options_name}T")()
        for k, v in (options or {}).items():
            setattr(opts, k, v)
        op._fb.builtinOptionsType = getattr(tfl.BuiltinOptions, options_name)
        op._fb.builtinOptions = opts
    graph_inputs = [t._tensor for t in inputs if t is not None and t.data is None]
    sg = me.Subgraph(
        tensors=[t for t in in_tensors + out_tensors if t is not None],
        operators=[op],
        inputs=graph_inputs,
        outputs=out_tensors,
    )
    model = me.Model(subgraphs=[sg])
    return bytes(model.build())


def _child(out_path: str) -> None:  # pragma: no cover - runs in the child process
    from tflite_micro.python.tflite_micro import runtime

    cases = pickle.load(sys.stdin.buffer)
    with open(out_path, "ab") as out:
        for model, inputs, n_outputs in cases:
            result: list[np.ndarray] | str
            try:
                arena = max(64 * 1024, 20 * len(model))
                interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
                for i, x in enumerate(inputs):
                    interp.set_input(x, i)
                interp.invoke()
                result = [np.array(interp.get_output(i)) for i in range(n_outputs)]
            except Exception as exc:
                result = f"{type(exc).__name__}: {exc}"
            pickle.dump(result, out)
            out.flush()


def _read_frames(path: str) -> list[list[np.ndarray] | str]:
    frames: list[list[np.ndarray] | str] = []
    if not os.path.exists(path):
        return frames
    with open(path, "rb") as f:
        while True:
            try:
                frames.append(pickle.load(f))
            except EOFError:
                return frames


def run_tflm(cases: list[tuple[bytes, list[np.ndarray]]], n_outputs: int = 1) -> list[list[np.ndarray] | str]:
    """Run every (model, inputs) case in child TFLM processes; per case the outputs or an error text.

    A case that crashes the interpreter is reported as ``"crashed"`` and the
    remaining cases continue in a fresh child.
    """
    results: list[list[np.ndarray] | str] = []
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        while len(results) < len(cases):
            out_path = os.path.join(tmp, f"out{len(results)}.pkl")
            todo = cases[len(results) :]
            code = (
                f"import sys; sys.path.insert(0, {here!r}); "
                f"from tests import q_tflm_oracle as o; o._child({out_path!r})"
            )
            proc = subprocess.run(
                [sys.executable, "-c", code],
                input=pickle.dumps([(m, i, n_outputs) for m, i in todo]),
                capture_output=True,
                timeout=600,
                check=False,
            )
            done = _read_frames(out_path)
            results.extend(done)
            if len(results) < len(cases) and proc.returncode != 0:
                results.append(f"crashed (exit {proc.returncode}): {proc.stderr.decode()[-500:]}")
            elif len(results) < len(cases):
                raise RuntimeError(f"TFLM child stopped early: {proc.stderr.decode()[-2000:]}")
    return results

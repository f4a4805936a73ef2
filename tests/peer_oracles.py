"""Peer runtimes as oracles for imported models.

* TFLite Micro (`tflite_micro` wheel) runs in a child process (it can crash
  the process on bad arenas) with ``kPreserveAllTensors``, so that every
  intermediate tensor of the first input can be compared too.
* LiteRT (`ai_edge_litert`) with its reference kernels (``BUILTIN_REF``).
* onnxruntime with graph optimizations disabled, and `onnx.reference`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HAVE_TFLM = importlib.util.find_spec("tflite_micro") is not None
HAVE_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None

_TFLM_CHILD = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime

model_path, in_path, out_path, n_out, tensors = sys.argv[1:6]
tensors = [int(t) for t in tensors.split(",") if t]
xs = np.load(in_path)
interp = runtime.Interpreter.from_bytes(
    open(model_path, "rb").read(),
    arena_size=256 << 20,
    intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
)
out = {}
for k in range(len(xs.files)):
    interp.set_input(xs[str(k)], 0)
    interp.invoke()
    for j in range(int(n_out)):
        out[f"out{k}_{j}"] = interp.get_output(j)
    if k == 0:
        for t in tensors:
            out[f"t{t}"] = np.asarray(interp.GetTensor(t, 0)["tensor_data"])
np.savez(out_path, **out)
"""


def run_tflm(
    model: bytes, inputs: list[np.ndarray], n_outputs: int = 1, tensors: list[int] | None = None
) -> tuple[list[list[np.ndarray]], dict[int, np.ndarray]]:
    """Outputs of TFLM for each (single-input) sample, and the listed tensors after the first sample."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.tflite"
        model_path.write_bytes(model)
        np.savez(Path(tmp) / "in.npz", **{str(k): x for k, x in enumerate(inputs)})
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _TFLM_CHILD,
                str(model_path),
                str(Path(tmp) / "in.npz"),
                str(Path(tmp) / "out.npz"),
                str(n_outputs),
                ",".join(str(t) for t in tensors or []),
            ],
            capture_output=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"TFLM child failed (exit {proc.returncode}): {proc.stderr.decode()[-2000:]}")
        res = np.load(Path(tmp) / "out.npz")
        outputs = [[res[f"out{k}_{j}"] for j in range(n_outputs)] for k in range(len(inputs))]
        extra = {t: res[f"t{t}"] for t in tensors or []}
    return outputs, extra


def litert(model: bytes | str) -> object:
    """A LiteRT interpreter with reference kernels, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"model_path": model} if isinstance(model, str) else {"model_content": model}
    interp = Interpreter(**kwargs, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    return interp


def run_litert(model: bytes | str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of LiteRT's reference kernels for one sample (inputs in graph order)."""
    interp = litert(model)
    for detail, x in zip(interp.get_input_details(), inputs, strict=True):  # type: ignore[attr-defined]
        interp.set_tensor(detail["index"], x)  # type: ignore[attr-defined]
    interp.invoke()  # type: ignore[attr-defined]
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]  # type: ignore[attr-defined]


def run_ort(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime on the CPU with every graph optimization disabled."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def run_onnx_reference(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """`onnx.reference.ReferenceEvaluator`."""
    from onnx.reference import ReferenceEvaluator

    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]


def float_copy_of_hybrid(model: bytes) -> bytes:
    """A hybrid TFLite model with its int8 weights dequantized into float32 buffers.

    LiteRT runs hybrid ops by quantizing activations on the fly; this copy is
    the float graph nnopt imports (weights through ``nn.dequantize``), so LiteRT's
    float kernels give the exact oracle for it.
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    for t in sg.tensors:
        buf = m.buffers[t.buffer]
        if t.type != s.TensorType.INT8 or buf.data is None or len(buf.data) == 0 or t.quantization is None:
            continue
        q = np.asarray(buf.data, np.uint8).view(np.int8).reshape(t.shape).astype(np.float64)
        scales = np.asarray(t.quantization.scale, np.float64)
        zps = np.asarray(
            t.quantization.zeroPoint if t.quantization.zeroPoint is not None else [0], np.float64
        )
        if scales.size > 1:
            shape = [1] * q.ndim
            shape[t.quantization.quantizedDimension] = -1
            scales, zps = scales.reshape(shape), zps.reshape(shape)
        real = (scales.astype(np.float32) * (q - zps).astype(np.float32)).astype(np.float32)
        buf.data = np.frombuffer(real.tobytes(), np.uint8)
        t.type = s.TensorType.FLOAT32
        t.quantization = None
    b = flatbuffers.Builder(len(model) * 2)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())

"""The numpy interpreter: nnopt's semantic reference for float and integer (quantized) graphs.

``run(module_or_graph, inputs)`` executes an `nn.graph` and returns its outputs by
name. Float ops follow TFLite's reference kernels; quantized ops are bit-exact
with TFLite Micro's reference kernels (``tflite_double``), its single-rounding
build (``single``) or ONNX's reference (``onnx_rint``), reading their integers
through `nnopt.dialects.qparams`.
"""

from nnopt.backends.numpy.interpreter import DumpHook, Program, prepare, run, select_graph, value_names

__all__ = ["DumpHook", "Program", "prepare", "run", "select_graph", "value_names"]

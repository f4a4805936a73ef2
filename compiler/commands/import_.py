"""``nnopt import MODEL -o OUT.mlir``: a TFLite or ONNX model as `nn` IR."""

from __future__ import annotations

import argparse
import sys
from io import StringIO

from nnopt.compiler.diagnostics import atomic_output


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt import``."""
    p = subparsers.add_parser(
        "import",
        help="import a .tflite or .onnx model as nn IR",
        description=(
            "Import a TFLite flatbuffer or an ONNX model as an nn.graph. Quantization is kept "
            "exactly as the file has it; ONNX's NCHW layout becomes NHWC with explicit "
            "transposes, which a cleanup (nn-propagate-transposes, canonicalize) then removes "
            "where it can."
        ),
    )
    p.add_argument("model", help="the .tflite or .onnx file")
    p.add_argument("-o", "--output", help="write the IR here (default: stdout)")
    p.add_argument(
        "--keep-layout",
        action="store_true",
        help="skip the layout cleanup: keep every transpose the ONNX import inserts",
    )
    p.add_argument("--print-debuginfo", action="store_true", help="print op locations (tensor names)")
    p.add_argument("--print-op-generic", action="store_true", help="print the generic op form")


def run(args: argparse.Namespace) -> int | None:
    """Import the model and print (or write) its IR."""
    from xdsl.context import Context
    from xdsl.targets.mlir import MLIRTarget

    from nnopt.compiler.importers import import_model

    module = import_model(args.model, cleanup=not args.keep_layout)
    stream = StringIO()
    # Printed exactly as `nnopt-opt` prints, so that `nnopt-opt OUT.mlir` reproduces the file.
    target = MLIRTarget(print_generic_format=args.print_op_generic, print_debuginfo=args.print_debuginfo)
    target.emit(Context(), module, stream)
    if args.output is None:
        sys.stdout.write(stream.getvalue())
        return 0
    with atomic_output(args.output) as handle:
        handle.write(stream.getvalue())  # type: ignore[attr-defined]
    return 0

"""Model frontends by file extension; each is imported only when a file of its kind is read.

A frontend is ``(data: bytes, name: str, ctx: Context) -> ModuleOp``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import ParseError

from nnopt.compiler.diagnostics import UserError, parse_error, verify_module
from nnopt.compiler.mlir_input import parse_mlir

Frontend = Callable[[bytes, str, Context], ModuleOp]

FRONTENDS: dict[str, str] = {}
"""Extension -> ``module:function`` of the frontend that reads it (besides ``.mlir``)."""

FRONTENDS["nn"] = "nnopt.compiler.frontend.lower:parse_nn"
FRONTENDS["tflite"] = "nnopt.compiler.importers.tflite:import_tflite"
FRONTENDS["onnx"] = "nnopt.compiler.importers.onnx:import_onnx"


def load_frontend(ext: str) -> Frontend:
    """The frontend function for a file extension."""
    module_name, func = FRONTENDS[ext].split(":")
    frontend: Frontend = getattr(importlib.import_module(module_name), func)
    return frontend


def load_model(path: str, ctx: Context | None = None) -> ModuleOp:
    """Read a model file of any known kind (``.mlir`` or a registered frontend) and verify it.

    Every problem (unreadable file, unknown extension, syntax or verification
    error) is a `UserError`, located when possible.
    """
    from nnopt.compiler.registry import make_context  # here: it loads the pass registry

    if os.path.isdir(path):
        raise UserError(f"cannot read '{path}': it is a directory")
    if not os.path.exists(path):
        raise UserError(f"cannot read '{path}': no such file")
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext != "mlir" and ext not in FRONTENDS:
        known = ", ".join(f".{e}" for e in ["mlir", *sorted(FRONTENDS)])
        what = f"unknown model format '.{ext}'" if ext else "no file extension to tell its format"
        raise UserError(f"cannot read '{path}': {what} (known: {known})")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UserError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if ctx is None:
        ctx = make_context()
    try:
        module = parse_mlir(ctx, data, path) if ext == "mlir" else load_frontend(ext)(data, path, ctx)
    except ParseError as exc:
        raise parse_error(exc) from None
    verify_module(module)
    return module

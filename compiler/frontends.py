"""Model frontends by file extension; each is imported only when a file of its kind is read.

A frontend is ``(data: bytes, name: str, ctx: Context) -> ModuleOp``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

Frontend = Callable[[bytes, str, Context], ModuleOp]

FRONTENDS: dict[str, str] = {}
"""Extension -> ``module:function`` of the frontend that reads it (besides ``.mlir``)."""


def load_frontend(ext: str) -> Frontend:
    """The frontend function for a file extension."""
    module_name, func = FRONTENDS[ext].split(":")
    frontend: Frontend = getattr(importlib.import_module(module_name), func)
    return frontend

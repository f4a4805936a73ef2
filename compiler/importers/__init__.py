"""Importers of third-party model files (TFLite flatbuffers, ONNX protobufs) into the `nn` dialect.

Each importer reads the file into plain Python data first (checking every
index, count and size before anything is allocated), then builds one
`nn.graph`. Errors a file can cause are `UserError`s naming the file and the
tensor or operator.
"""

from __future__ import annotations

from nnopt.compiler.importers.common import IMPORTERS, import_model, sniff_format

__all__ = ["IMPORTERS", "import_model", "sniff_format"]

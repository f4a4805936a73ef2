"""Parsing `.mlir` text with source locations stamped on every op."""

from __future__ import annotations

import dataclasses
from bisect import bisect_right

from xdsl.context import Context
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr, UnknownLoc
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Span

from nnopt.compiler.diagnostics import UserError


def decode_text(data: bytes | str, name: str) -> str:
    """Decode model or IR text, with one clear error on bytes that are not UTF-8."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError("input is not UTF-8 text (is this a binary file?)", f"{name}:{line}:{col}") from None


class LocatingParser(Parser):
    """An xDSL parser that gives every op without an explicit `loc(...)` its
    ``file:line:col`` as a `FileLineColLoc` (xDSL's parser stamps nothing)."""

    def __init__(self, ctx: Context, text: str, name: str, line_offset: int = 0) -> None:
        super().__init__(ctx, text, name)
        self._file = StringAttr(name)
        self._line_offset = line_offset
        starts = [0]
        pos = text.find("\n")
        while pos >= 0:
            starts.append(pos + 1)
            pos = text.find("\n", pos + 1)
        self._line_starts = starts

    def current_span(self) -> Span[str]:
        """The span of the token the parser is looking at."""
        span: Span[str] = self._current_token.span
        return span

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        op = super().parse_operation()
        if isinstance(op.location, UnknownLoc):
            line = bisect_right(self._line_starts, start)
            col = start - self._line_starts[line - 1] + 1
            op.location = FileLineColLoc(self._file, IntAttr(line + self._line_offset), IntAttr(col))
        return op


def parse_mlir(
    ctx: Context,
    data: bytes | str,
    name: str,
    *,
    line_offset: int = 0,
    implicit_module: bool = True,
) -> ModuleOp:
    """Parse MLIR text into a module whose ops carry source locations."""
    text = decode_text(data, name)
    parser = LocatingParser(ctx, text, name, line_offset)
    try:
        return parser.parse_module(implicit_module)
    except VerifyException as exc:
        # Attributes and types verify as they are built: report where parsing stood.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid attribute"
        span = dataclasses.replace(parser.current_span(), line_offset=line_offset)
        raise ParseError(span, message) from None

"""Diagnostics: one clear ``file:line:col: error: ...`` line, a non-zero exit, never a traceback.

Everything a user can get wrong (bad IR, bad model files, bad options, a model
that does not fit) is raised as `UserError` (or an xDSL parse/verify error) and
turned into a message by `run_cli`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from xdsl.dialects.builtin import (
    ArrayAttr,
    CallSiteLoc,
    FileLineColLoc,
    FusedLoc,
    ModuleOp,
    NameLoc,
    UnknownLoc,
)
from xdsl.ir import Attribute, Operation
from xdsl.utils.exceptions import ParseError, VerifyException


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback.

    `location` is a ``file:line:col`` prefix (or a file name) when one is known.
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        return f"{prefix}error: {self.message}"


def format_location(loc: Attribute | None) -> str | None:
    """``file:line:col`` (or a name) for an op location, None when unknown."""
    if loc is None or isinstance(loc, UnknownLoc):
        return None
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    if isinstance(loc, NameLoc):
        inner = format_location(loc.location)
        return f"{inner} ({loc.desc.data})" if inner else loc.desc.data
    if isinstance(loc, CallSiteLoc):
        return format_location(loc.callee)
    if isinstance(loc, FusedLoc) and isinstance(loc.locations, ArrayAttr):
        for sub in loc.locations.data:
            text = format_location(sub)
            if text:
                return text
    return None


def op_location(op: Operation) -> str | None:
    """The formatted location of `op`, or of its closest located ancestor."""
    cur: Operation | None = op
    while cur is not None:
        text = format_location(cur.location)
        if text:
            return text
        cur = cur.parent_op()
    return None


def op_error(op: Operation, message: str) -> UserError:
    """A `UserError` about `op` in MLIR's style: ``loc: error: 'nn.conv2d' op message``."""
    return UserError(f"'{op.name}' op {message}", op_location(op))


def verify_module(module: ModuleOp) -> None:
    """Verify every op, pre-order; raise a located `UserError` on the first failure."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed to verify"
            for prefix in (f"'{op.name}' ", f"{op.name}: ", f"Operation {op.name}: "):
                message = message.removeprefix(prefix)
            raise op_error(op, message) from None


def parse_error(exc: ParseError) -> UserError:
    """Turn xDSL's `ParseError` into a located `UserError` with the source line and caret."""
    span = exc.span
    try:
        loc = span.get_location()
        line_start = span.input.get_start_of_line(span.start)
        content = span.input.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        line_end = content.find("\n", line_start)
        text = content[line_start : line_end if line_end >= 0 else len(content)]
        if len(text) > 200:
            text = text[:200] + " ..."
        caret = " " * min(loc.col - 1, 200) + "^"
        message = exc.msg.strip().splitlines()[0] if exc.msg.strip() else "parse error"
        return UserError(f"{message}\n{text}\n{caret}", f"{loc.file}:{loc.line}:{loc.col}")
    except Exception:  # pragma: no cover - defensive: never let formatting fail
        return UserError(exc.msg)


def describe(exc: BaseException) -> str:
    """The one-message rendering of an error."""
    if isinstance(exc, ParseError):
        return str(parse_error(exc))
    if isinstance(exc, UserError):
        return str(exc)
    return f"error: {exc}"


@contextmanager
def atomic_output(path: str, mode: str = "w") -> Iterator[object]:
    """Write to `path` only if the block succeeds (nothing half-written)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_cli(main: Callable[[], int | None]) -> int:
    """Run a command-line entry point with nnopt's error policy; returns the exit code."""
    try:
        code = main()
        return 0 if code is None else code
    except (UserError, ParseError) as exc:
        print(describe(exc), file=sys.stderr)
        return 1
    except VerifyException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "verification failed"
        print(f"error: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except MemoryError:
        print("error: out of memory (is a shape absurdly large?)", file=sys.stderr)
        return 1
    except OSError as exc:
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {name}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("NNOPT_TRACEBACK"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in nnopt; rerun with NNOPT_TRACEBACK=1 for the traceback",
            file=sys.stderr,
        )
        return 2

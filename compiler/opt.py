"""``nnopt-opt``: an ``mlir-opt``-style driver over nnopt's dialects and passes.

Reads ``.mlir`` (or stdin) and registered model formats, runs a pass
pipeline given as ``--pass-pipeline='builtin.module(a,b{k=v})'`` or
``-p a,b{k=v}``, and prints the IR. Errors are one located line, exit 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from io import BytesIO, StringIO
from typing import IO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline, get_pass_option_infos
from xdsl.printer import Printer
from xdsl.utils.arg_spec import parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError, ParseError
from xdsl.utils.target import Target
from xdsl.xdsl_opt_main import xDSLOptMain

from nnopt.compiler.diagnostics import UserError, parse_error, run_cli, verify_module
from nnopt.compiler.frontends import FRONTENDS, load_frontend
from nnopt.compiler.mlir_input import parse_mlir
from nnopt.compiler.pipeline import mlir_pipeline_to_xdsl
from nnopt.compiler.plugins import Registry, add_file_plugin
from nnopt.compiler.registry import build_registry

TEXT_FRONTENDS = ("nn",)
"""Model formats that are text, so `--split-input-file` can split them."""


def _pre_scan(args: Sequence[str] | None, flag: str) -> list[str]:
    """Values of a repeatable option, read before the real argument parser exists."""
    argv = list(sys.argv[1:] if args is None else args)
    found: list[str] = []
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            found.append(arg.split("=", 1)[1])
    return found


def build_pipeline(registry: Registry, spec: str) -> list[ModulePass]:
    """Instantiate the passes of an xDSL pipeline string, with one clear error per mistake."""
    if not spec.strip():
        return []
    try:
        specs = list(parse_pipeline(spec))
    except ArgSpecParseError as exc:
        raise UserError(f"malformed pass pipeline '{spec}': {str(exc).splitlines()[-1].strip()}") from None
    except ValueError as exc:
        raise UserError(f"malformed pass pipeline '{spec}': {exc}") from None
    passes: list[ModulePass] = []
    for arg_spec in specs:
        factory = registry.passes.get(arg_spec.name)
        if factory is None:
            known = ", ".join(sorted(registry.passes))
            raise UserError(f"unknown pass '{arg_spec.name}'; available passes: {known}")
        cls = factory()
        try:
            passes.append(cls.from_pass_spec(arg_spec))
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"pass '{arg_spec.name}': {_option_problem(str(exc))}; accepted options: {_options(cls)}"
            ) from None
    return passes


def _options(cls: type[ModulePass]) -> str:
    """`name: type = default` for every option of a pass."""
    parts = []
    for info in get_pass_option_infos(cls):
        text = f"{info.name}: {info.expected_type.replace(chr(39), '')}"
        if info.default_value is not None:
            text += f" = {info.default_value}"
        parts.append(text)
    return ", ".join(parts) or "none"


_INCOMPATIBLE = re.compile(r"Incompatible types: given \((.*?),?\), expected <class '(\w+)'>")


def _option_problem(message: str) -> str:
    """xDSL's option errors, reworded for users."""
    match = _INCOMPATIBLE.search(message)
    if match:
        return f"expected a {match.group(2)} value, got {match.group(1)}"
    return message


class NNOptMain(xDSLOptMain):
    """nnopt's opt driver: curated xDSL dialects/passes, nnopt's own, plugins, MLIR pipelines."""

    version_format = "nnopt-opt (nnopt 0.1.0, built on xdsl {xdsl_version})"
    registry: Registry

    def __init__(self, args: Sequence[str] | None = None) -> None:
        # Plugin files must be known before argparse lists the passes in --help.
        self._plugin_files = _pre_scan(args, "--load-pass-plugin")
        super().__init__(description="nnopt modular optimizer driver", args=args)

    # -- registration ---------------------------------------------------
    def register_all_dialects(self) -> None:
        self.registry = build_registry()
        for path in self._plugin_files:
            add_file_plugin(self.registry, path)
        for name, factory in self.registry.dialects.items():
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        for name, factory in self.registry.passes.items():
            self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        from xdsl.targets import get_all_targets

        self.available_targets["mlir"] = get_all_targets()["mlir"]
        self.available_targets["c"] = _c_target

    def register_all_frontends(self) -> None:
        self.available_frontends["mlir"] = lambda io: self._parse_mlir_chunk(io.read(), 0)
        for ext in FRONTENDS:
            self.available_frontends[ext] = self._model_frontend(ext)

    def _model_frontend(self, ext: str) -> Callable[[IO[bytes]], ModuleOp]:
        def parse(io: IO[bytes]) -> ModuleOp:
            return load_frontend(ext)(io.read(), self.get_input_name(), self.ctx)

        return parse

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--pass-pipeline",
            type=str,
            default=None,
            help="pass pipeline in MLIR syntax, e.g. 'builtin.module(cse,canonicalize)'",
        )
        arg_parser.add_argument(
            "--load-pass-plugin",
            action="append",
            default=[],
            metavar="FILE.py",
            help="register every ModulePass subclass defined in FILE.py",
        )
        arg_parser.add_argument(
            "--mlir-print-ir-after-all",
            action="store_true",
            help="print the IR after every pass to stderr (MLIR's flag)",
        )
        arg_parser.add_argument(
            "--list-passes", action="store_true", help="list the available passes and exit"
        )

    # -- pipeline ---------------------------------------------------------
    def setup_pipeline(self) -> None:
        spec = self.args.passes
        if self.args.pass_pipeline is not None:
            if spec:
                raise UserError("give either --pass-pipeline or -p, not both")
            spec = mlir_pipeline_to_xdsl(self.args.pass_pipeline)
        self.passes = build_pipeline(self.registry, spec)

        def callback(previous: ModulePass | None, module: ModuleOp, following: ModulePass | None) -> None:
            if previous is None:
                return
            if not self.args.disable_verify:
                try:
                    verify_module(module)
                except UserError as exc:
                    raise UserError(f"after pass '{previous.name}': {exc.message}", exc.location) from None
            if self.args.mlir_print_ir_after_all or (self.args.print_between_passes and following):
                stream = sys.stderr if self.args.mlir_print_ir_after_all else sys.stdout
                print(f"// -----// IR Dump After {previous.name} //----- //", file=stream)
                Printer(stream=stream).print_op(module)
                print(file=stream)

        self.pipeline = PassPipeline(tuple(self.passes), callback)

    # -- parsing and running ------------------------------------------
    def _parse_mlir_chunk(self, data: bytes, line_offset: int) -> ModuleOp:
        return parse_mlir(
            self.ctx,
            data,
            self.get_input_name(),
            line_offset=line_offset,
            implicit_module=not self.args.no_implicit_module,
        )

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0) -> ModuleOp | None:
        if file_extension == "mlir":
            return self._parse_mlir_chunk(chunk.read(), start_offset)
        if file_extension in TEXT_FRONTENDS and start_offset:
            # Keep line numbers counted from the start of the file for later chunks.
            return self.available_frontends[file_extension](BytesIO(b"\n" * start_offset + chunk.read()))
        return self.available_frontends[file_extension](chunk)

    def prepare_input(self) -> tuple[list[tuple[IO[bytes], int]], str]:
        try:
            return super().prepare_input()
        except ValueError as exc:
            known = ", ".join(f".{e}" for e in self.available_frontends)
            raise UserError(f"{exc}; nnopt-opt reads {known}") from None

    def list_passes(self) -> None:
        """Print every registered pass with its source and summary."""
        width = max(len(n) for n in self.registry.passes)
        for name in sorted(self.registry.passes):
            cls = self.registry.passes[name]()
            doc = (cls.__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
            print(f"{name:<{width}}  [{self.registry.pass_sources[name]}] {summary}")

    def run(self) -> None:
        if self.args.list_passes:
            self.list_passes()
            return
        chunks, file_extension = self.prepare_input()
        outputs: list[str] = []
        failed = False
        try:
            for i, (chunk, offset) in enumerate(chunks):
                if i > 0:
                    outputs.append("// -----\n")
                try:
                    module = self.parse_chunk(chunk, file_extension, offset)
                    if module is None:
                        continue
                    if not self.args.disable_verify:
                        verify_module(module)
                    self.apply_passes(module)
                    outputs.append(self.output_resulting_program(module))
                except (ParseError, UserError) as exc:
                    err = parse_error(exc) if isinstance(exc, ParseError) else exc
                    if self.args.verify_diagnostics or self.args.parsing_diagnostics:
                        outputs.append(f"{err}\n")
                    else:
                        raise err from None
                finally:
                    chunk.close()
        except UserError:
            failed = True
            raise
        finally:
            if not failed:
                self._write("".join(outputs))

    def _write(self, text: str) -> None:
        if self.args.output_file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        from nnopt.compiler.diagnostics import atomic_output

        with atomic_output(self.args.output_file) as handle:
            handle.write(text)  # type: ignore[attr-defined]


def _c_target() -> type[Target]:
    from nnopt.backends.c.target import CTarget

    return CTarget


def output_module(ctx: Context, module: ModuleOp, generic: bool = False) -> str:
    """Print a module the way ``nnopt-opt`` does."""
    stream = StringIO()
    Printer(stream=stream, print_generic_format=generic).print_op(module)
    stream.write("\n")
    return stream.getvalue()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``nnopt-opt``."""

    def _run() -> None:
        NNOptMain(args=args).run()

    return run_cli(_run)


if __name__ == "__main__":
    sys.exit(main())

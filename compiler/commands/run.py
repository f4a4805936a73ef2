"""``nnopt run``: execute a model with the numpy reference interpreter.

::

    nnopt run MODEL [--input NAME=FILE.npy ...] [--input FILE.npy|FILE.npz] [--seed N]
                    [--graph NAME] [--output out.npz|out.npy] [--dump-dir DIR]

Reads any model a frontend reads (``.nn``, ``.mlir``, ...), feeds the inputs,
prints every output's shape, dtype and a summary, and optionally saves the
outputs and every intermediate tensor. Every mistake is one ``error:`` line.

``--dump-dir DIR`` holds ``NNNN_<name>.npy`` per graph input and op result in
execution order (constants are skipped) and ``index.json``:
``{"tensors": [{"index", "file", "name", "op", "type", "shape", "dtype",
"location"}, ...]}``, so two runs (say before and after a pass) can be diffed
layer by layer. The folder appears only when the run succeeds; an existing
dump folder is replaced, any other non-empty folder is refused.

A planned model (after ``nn-plan-arena``) runs inside real arenas, every value
read from and written to its planned place, so a wrong plan shows up as an
error naming the clobbered value (`nnopt.backends.numpy.arena`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, ShapedType
from xdsl.ir import Attribute, Operation

from nnopt.compiler.diagnostics import UserError, atomic_output, op_location
from nnopt.compiler.frontends import load_model
from nnopt.dialects.nn import ConstOp, GraphOp, graph_arenas, is_float
from nnopt.dialects.quant import UniformQuantizedType

INDEX_FILE = "index.json"
"""Name of the index written into a ``--dump-dir``."""

VALUES_SHOWN = 16
"""Outputs with at most this many elements are printed in full."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt run``."""
    parser = subparsers.add_parser(
        "run",
        help="run a model with the numpy reference interpreter",
        description="Run a model (.nn, .mlir, ...) with the numpy reference interpreter and print its outputs.",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.nn, .mlir, or an imported format)")
    parser.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help="an input: NAME=FILE.npy, a bare FILE.npy for a single-input model, "
        "or FILE.npz holding arrays named after the inputs (repeatable)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="feed seeded random values to every input not given with --input "
        "(float: standard normal; quantized: uniform over the storage range)",
    )
    parser.add_argument(
        "--graph", default=None, metavar="NAME", help="the nn.graph to run (when there are several)"
    )
    parser.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="FILE",
        help="save the outputs: out.npz (by name) or out.npy (one output)",
    )
    parser.add_argument(
        "--dump-dir",
        default=None,
        metavar="DIR",
        help=f"write every intermediate tensor to DIR (one .npy per op result, in order, and {INDEX_FILE})",
    )


# --------------------------------------------------------------------------
# Graph and inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """What the graph expects of one input."""

    name: str
    shape: tuple[int, ...]
    element: Attribute

    @property
    def quantized(self) -> UniformQuantizedType | None:
        """The quantized element type, if any."""
        return self.element if isinstance(self.element, UniformQuantizedType) else None

    def describe(self) -> str:
        """``f32[1, 49, 10, 1]`` (storage type and quantized type when quantized)."""
        shape = "[" + ", ".join(str(d) for d in self.shape) + "]"
        q = self.quantized
        return f"{q.storage_type}{shape} {q}" if q is not None else f"{self.element}{shape}"


def select_graph(module: ModuleOp, name: str | None) -> GraphOp:
    """The graph to run: the only one, or the one called `name`."""
    graphs = [op for op in module.walk() if isinstance(op, GraphOp)]
    if not graphs:
        raise UserError("the model holds no nn.graph to run")
    if name is not None:
        for graph in graphs:
            if graph.sym_name.data == name:
                return graph
        known = ", ".join(g.sym_name.data for g in graphs)
        raise UserError(f"no graph named '{name}' (graphs: {known})")
    if len(graphs) > 1:
        known = ", ".join(g.sym_name.data for g in graphs)
        raise UserError(f"the model holds {len(graphs)} graphs ({known}); choose one with --graph NAME")
    return graphs[0]


def input_specs(graph: GraphOp) -> list[InputSpec]:
    """Name, shape and element type of every graph input."""
    specs: list[InputSpec] = []
    for name, arg in zip(graph.input_names(), graph.block.args, strict=True):
        t = arg.type
        if not isinstance(t, ShapedType):
            raise UserError(f"input '{name}' has type {t}, which nnopt run cannot feed")
        specs.append(InputSpec(name, tuple(t.get_shape()), t.get_element_type()))  # type: ignore[attr-defined]
    return specs


def _load_array_file(path: str) -> np.ndarray | dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise UserError(f"input file '{path}' not found")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise UserError(f"input file '{path}' is not a .npy or .npz file (save it with numpy.save)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read input file '{path}': {exc} (expected a .npy or .npz file)") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    try:
        return {key: np.asarray(loaded[key]) for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read input file '{path}': {exc}") from None
    finally:
        loaded.close()


def convert_input(spec: InputSpec, array: np.ndarray, origin: str) -> np.ndarray:
    """Check `array` against what input `spec` expects; return it in the interpreter's dtype."""
    where = f"input '{spec.name}' ({origin})"
    if tuple(array.shape) != spec.shape:
        raise UserError(f"{where} has shape {list(array.shape)}, expected {list(spec.shape)}")
    q = spec.quantized
    if q is not None:
        if not np.issubdtype(array.dtype, np.integer):
            raise UserError(
                f"{where} has dtype {array.dtype}, expected integers of the storage type of {q} (quantize first)"
            )
        if array.size and (int(array.min()) < q.qmin or int(array.max()) > q.qmax):
            raise UserError(f"{where} has values outside the storage range [{q.qmin}, {q.qmax}] of {q}")
        return array.astype(q.numpy_dtype)
    if is_float(spec.element):
        if not np.issubdtype(array.dtype, np.floating):
            raise UserError(
                f"{where} has dtype {array.dtype}, expected floating-point values ({spec.element})"
            )
        return array.astype(np.float32)
    raise UserError(f"{where}: nnopt run cannot feed element type {spec.element}")


def random_input(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    """Seeded random values for an input: standard normal floats, or uniform storage integers."""
    q = spec.quantized
    if q is not None:
        return rng.integers(q.qmin, q.qmax, size=spec.shape, endpoint=True).astype(q.numpy_dtype)
    if is_float(spec.element):
        return rng.standard_normal(spec.shape).astype(np.float32)
    raise UserError(f"input '{spec.name}': nnopt run cannot make random values of type {spec.element}")


def gather_inputs(
    specs: Sequence[InputSpec], given: Sequence[str], seed: int | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Inputs by name from ``--input`` options and ``--seed``; also says where each came from."""
    by_name = {s.name: s for s in specs}
    names = ", ".join(by_name) or "none"
    arrays: dict[str, np.ndarray] = {}
    origins: dict[str, str] = {}

    def add(name: str, array: np.ndarray, origin: str) -> None:
        if name not in by_name:
            raise UserError(f"the model has no input named '{name}' (inputs: {names})")
        if name in arrays:
            raise UserError(f"input '{name}' is given twice ({origins[name]} and {origin})")
        arrays[name] = convert_input(by_name[name], array, origin)
        origins[name] = origin

    for item in given:
        name, sep, path = item.partition("=")
        named = bool(sep) and name in by_name
        if sep and not named and not os.path.isfile(item):
            if not name:
                raise UserError(f"--input '{item}': missing input name before '='")
            raise UserError(f"the model has no input named '{name}' (inputs: {names})")
        if not named:
            path = item
        loaded = _load_array_file(path)
        if isinstance(loaded, dict):
            if named:
                if len(loaded) != 1:
                    raise UserError(
                        f"'{path}' holds {len(loaded)} arrays; give a .npy file for input '{name}'"
                    )
                add(name, next(iter(loaded.values())), path)
            else:
                for key, array in loaded.items():
                    add(key, array, f"{path}:{key}")
        elif named:
            add(name, loaded, path)
        else:
            if len(specs) != 1:
                raise UserError(
                    f"the model has {len(specs)} inputs ({names}): name them with --input NAME=FILE.npy"
                )
            add(specs[0].name, loaded, path)

    if seed is not None:
        if seed < 0:
            raise UserError(f"--seed must be a non-negative integer, got {seed}")
        rng = np.random.default_rng(seed)
        for spec in specs:
            if spec.name not in arrays:
                arrays[spec.name] = random_input(spec, rng)
                origins[spec.name] = f"random (seed {seed})"
    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise UserError(
            f"missing input(s) {', '.join(missing)}: give --input NAME=FILE.npy or --seed N for random values"
        )
    return arrays, origins


# --------------------------------------------------------------------------
# Dumps and outputs
# --------------------------------------------------------------------------


def _sanitise(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return cleaned[:80] or "value"


class DumpWriter:
    """Writes every tensor of a run to a fresh folder, then moves it into place in one step."""

    def __init__(self, target: str) -> None:
        self.target = target = os.path.normpath(target)
        if os.path.exists(target):
            if not os.path.isdir(target):
                raise UserError(f"--dump-dir '{target}' exists and is not a directory")
            if not self._is_replaceable(target):
                raise UserError(
                    f"--dump-dir '{target}' is not empty and is not an nnopt dump; choose a new or empty folder"
                )
        parent = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(parent):
            raise UserError(f"--dump-dir '{target}': folder '{parent}' does not exist")
        self.tmp = tempfile.mkdtemp(prefix=".nnopt-dump-", dir=parent)
        self.entries: list[dict[str, Any]] = []

    @staticmethod
    def _is_replaceable(folder: str) -> bool:
        content = os.listdir(folder)
        if not content:
            return True
        return INDEX_FILE in content and all(n == INDEX_FILE or n.endswith(".npy") for n in content)

    def add(self, name: str, kind: str, array: np.ndarray, type_text: str, location: str | None) -> None:
        """Save one tensor."""
        array = np.asarray(array)
        file = f"{len(self.entries):04d}_{_sanitise(name)}.npy"
        np.save(os.path.join(self.tmp, file), array, allow_pickle=False)
        self.entries.append(
            {
                "index": len(self.entries),
                "file": file,
                "name": name,
                "op": kind,
                "type": type_text,
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "location": location,
            }
        )

    def dump(self, name: str, op: Operation, array: np.ndarray) -> None:
        """The interpreter's per-result callback (constants are weights, not activations: skipped)."""
        if isinstance(op, ConstOp):
            return
        type_text = str(op.results[0].type) if len(op.results) == 1 else ""
        self.add(name, op.name, array, type_text, op_location(op))

    def commit(self) -> None:
        """Write the index and move the folder to its place."""
        with open(os.path.join(self.tmp, INDEX_FILE), "w") as handle:
            rows = ",\n".join("  " + json.dumps(entry) for entry in self.entries)
            handle.write('{"tensors": [\n' + rows + "\n]}\n")
        if os.path.exists(self.target):
            shutil.rmtree(self.target)
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        """Remove everything written so far."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _stats(values: np.ndarray) -> str:
    text = f"min {values.min():.6g}  max {values.max():.6g}  mean {values.mean():.6g}"
    if values.ndim >= 1 and values.size == values.shape[-1] and values.size > 1:
        text += f"  argmax {int(np.argmax(values.reshape(-1)))}"
    return text


def _values(array: np.ndarray) -> str:
    flat = np.array2string(
        array.reshape(-1), separator=", ", max_line_width=100, formatter={"float_kind": lambda v: f"{v:.6g}"}
    )
    return "\n  " + flat.replace("\n", "\n  ")


def summary(name: str, array: np.ndarray, type_text: str, element: Attribute | None = None) -> str:
    """One output: name, type and shape, min/max/mean (argmax for one row) and small values.

    A per-tensor quantized output also gets the same summary of its real values.
    """
    head = f"{name}: {type_text}"
    if array.size == 0:
        return head + "  (empty)"
    text = f"{head}  {_stats(array.astype(np.float64))}"
    if array.size <= VALUES_SHOWN:
        text += _values(array)
    if isinstance(element, UniformQuantizedType) and not element.is_per_axis:
        real = element.scale * (array.astype(np.float64) - element.zero_point)
        text += f"\n  real values: {_stats(real)}"
        if array.size <= VALUES_SHOWN:
            text += _values(real.astype(np.float32))
    return text


def describe_type(t: Attribute) -> str:
    """``f32[1, 12]``, or ``i8[1, 12] !quant.uniform<...>`` for a quantized tensor."""
    if not isinstance(t, ShapedType):
        return str(t)
    shape = "[" + ", ".join(str(d) for d in t.get_shape()) + "]"
    element = t.get_element_type()  # type: ignore[attr-defined]
    if isinstance(element, UniformQuantizedType):
        return f"{element.storage_type}{shape} {element}"
    return f"{element}{shape}"


def _write_npz(handle: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    # Written by hand rather than np.savez(**arrays): an output may be called "file".
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def save_outputs(path: str, outputs: Mapping[str, np.ndarray]) -> None:
    """Save to ``.npz`` (arrays named after the outputs) or ``.npy`` (a single output), atomically."""
    if path.endswith(".npy"):
        (array,) = outputs.values()
        with atomic_output(path, "wb") as handle:
            np.save(handle, array, allow_pickle=False)  # type: ignore[arg-type]
    else:
        with atomic_output(path, "wb") as handle:
            _write_npz(handle, outputs)  # type: ignore[arg-type]


def _check_output_path(path: str, n_outputs: int, names: Sequence[str]) -> None:
    if not path.endswith((".npz", ".npy")):
        raise UserError(f"--output '{path}': use a .npz file (or .npy for a single-output model)")
    if path.endswith(".npy") and n_outputs != 1:
        raise UserError(
            f"--output '{path}': the model has {n_outputs} outputs ({', '.join(names)}); save them to a .npz file"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"--output '{path}': folder '{parent}' does not exist")


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int | None:
    """Run ``nnopt run``."""
    from nnopt.backends.numpy import run as interpret
    from nnopt.backends.numpy.arena import is_planned

    module = load_model(args.model)
    graph = select_graph(module, args.graph)
    specs = input_specs(graph)
    output_names = graph.output_names()
    if args.output is not None:
        _check_output_path(args.output, len(output_names), output_names)
    inputs, origins = gather_inputs(specs, args.input, args.seed)
    writer = DumpWriter(args.dump_dir) if args.dump_dir is not None else None
    try:
        if writer is not None:
            for spec, arg in zip(specs, graph.block.args, strict=True):
                writer.add(spec.name, "input", inputs[spec.name], str(arg.type), None)
        planned = is_planned(graph)
        outputs = interpret(
            module,
            inputs,
            graph=graph.sym_name.data,
            dump=writer.dump if writer is not None else None,
            arenas=planned,
        )
        if writer is not None:
            writer.commit()
    finally:
        if writer is not None:
            writer.abort()

    print(f"graph @{graph.sym_name.data} ({args.model})")
    if planned:
        sizes = ", ".join(f"{space} {size:,} B" for space, size in sorted(graph_arenas(graph).items()))
        print(f"planned: ran inside the arenas ({sizes}), every value at its planned place")
    for spec in specs:
        print(f"input  {spec.name}: {spec.describe()} <- {origins[spec.name]}")
    for name, value in zip(output_names, graph.output.values, strict=True):
        element = value.type.get_element_type() if isinstance(value.type, ShapedType) else None  # type: ignore[attr-defined]
        print("output " + summary(name, np.asarray(outputs[name]), describe_type(value.type), element))
    if args.output is not None:
        save_outputs(args.output, {n: np.asarray(outputs[n]) for n in output_names})
        print(f"saved {len(output_names)} output(s) to {args.output}")
    if writer is not None:
        print(f"dumped {len(writer.entries)} tensors to {writer.target}/ (see {INDEX_FILE})")
    return 0

"""``nnopt quantize``: post-training quantization of a float model, with a quality report.

::

    nnopt quantize MODEL (--calibration FILE.npz | --calibration-seed N) -o OUT.mlir
                   [--report] [--json FILE] [--method minmax|percentile|mse] [--percentile P]
                   [--weights per-channel|per-tensor|tflite] [--activations int8|int16]
                   [--rounding tflite_double|single|onnx_rint] [--skip OP,OP,...]
                   [--interface float|quantized] [--samples N] [--input-range LO:HI]

Runs the ``nn-quantize`` pass and writes the quantized IR. ``--report``
prints, per layer (worst first), the SNR and cosine similarity of the
quantized graph against the float one on the calibration samples, and for
each output its SNR and, for classifiers, the top-1 agreement. ``--json``
writes the same report for machines. Synthetic calibration samples
(``--calibration-seed``) are labelled as weaker everywhere they are reported.
"""

from __future__ import annotations

import argparse
import json
import os
from io import StringIO
from typing import Any

from nnopt.compiler.diagnostics import UserError, atomic_output
from nnopt.compiler.frontends import load_model
from nnopt.dialects import nn


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt quantize``."""
    from nnopt.passes.analysis.calibration import METHODS
    from nnopt.passes.quantize import ACTIVATION_TYPES, INTERFACES, WEIGHT_MODES

    p = subparsers.add_parser(
        "quantize",
        help="post-training int8 quantization with a per-layer quality report",
        description=(
            "Quantize a float model (.nn, .mlir, .tflite, .onnx) to int8 after calibrating on sample "
            "inputs, and report how close each layer stays to float."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="float model file")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--calibration",
        metavar="FILE.npz",
        help="calibration samples: arrays keyed by input name, samples along the first axis",
    )
    source.add_argument(
        "--calibration-seed",
        type=int,
        metavar="N",
        help="synthetic calibration samples from this seed (weaker than real data)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.mlir", help="write the quantized IR here")
    p.add_argument("--report", action="store_true", help="print the per-layer quality table")
    p.add_argument("--json", metavar="FILE", default=None, help="write the quality report as JSON")
    p.add_argument("--method", choices=METHODS, default="minmax", help="activation range calibration")
    p.add_argument(
        "--percentile", type=float, default=99.99, metavar="P", help="kept percentile of --method percentile"
    )
    p.add_argument(
        "--weights",
        choices=WEIGHT_MODES,
        default="per-channel",
        help="weight scales (tflite: per-channel convolutions, per-tensor fully connected)",
    )
    p.add_argument("--activations", choices=ACTIVATION_TYPES, default="int8", help="activation type")
    p.add_argument("--rounding", choices=nn.ROUNDING_MODES, default="tflite_double", help="requantization")
    p.add_argument("--skip", default="", metavar="OP,OP", help="ops to keep in float (SSA or tensor names)")
    p.add_argument(
        "--interface",
        choices=INTERFACES,
        default="float",
        help="float: quantize inputs and dequantize outputs inside the graph; quantized: integer I/O",
    )
    p.add_argument("--samples", type=int, default=32, metavar="N", help="number of synthetic samples")
    p.add_argument(
        "--input-range",
        default="",
        metavar="LO:HI",
        help="synthetic samples uniform in [LO, HI] (default: standard normal)",
    )
    p.add_argument(
        "--rows", type=int, default=0, metavar="N", help="show only the N worst layers (default: all)"
    )


def _check_path(option: str, path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"{option} '{path}': folder '{parent}' does not exist")
    if os.path.isdir(path):
        raise UserError(f"{option} '{path}' is a directory")


def _summary(record: Any, activations: str) -> list[str]:
    quantized = [layer for layer in record.layers if layer.quantized]
    floats = record.kept_float
    lines = [
        f"graph @{record.graph.sym_name.data}: {len(quantized)} ops in {activations}, {len(floats)} kept in float",
        f"calibration: {record.calibration}" + ("" if record.batched else " (run sample by sample)"),
    ]
    for layer in floats:
        lines.append(f"  float: {layer.name} ({layer.kind.removeprefix('nn.')}: {layer.note})")
    return lines


def run(args: argparse.Namespace) -> int | None:
    """Run ``nnopt quantize``."""
    from xdsl.context import Context
    from xdsl.targets.mlir import MLIRTarget

    from nnopt.passes.quantize import QuantizePass

    _check_path("-o", args.output)
    if args.json is not None:
        _check_path("--json", args.json)
    if args.rows < 0:
        raise UserError(f"--rows must be >= 0, got {args.rows}")
    if args.calibration_seed is not None and args.calibration_seed < 0:
        raise UserError(f"--calibration-seed must be a non-negative integer, got {args.calibration_seed}")
    module = load_model(args.model)
    qpass = QuantizePass(
        calibration=args.calibration or "",
        calibration_seed=-1 if args.calibration_seed is None else args.calibration_seed,
        samples=args.samples,
        input_range=args.input_range,
        method=args.method,
        percentile=args.percentile,
        weights=args.weights,
        activations=args.activations,
        rounding=args.rounding,
        skip=tuple(s for s in args.skip.split(",") if s.strip()),
        interface=args.interface,
    )
    records = qpass.run(module)
    reports = []
    if args.report or args.json is not None:
        for record in records:
            reports.append(record.compare(qpass.calibration_set(record.graph)))

    stream = StringIO()
    MLIRTarget().emit(Context(), module, stream)
    outputs: list[tuple[str, str]] = [(args.output, stream.getvalue())]
    if args.json is not None:
        doc = {
            "model": args.model,
            "options": {
                "method": args.method,
                "percentile": args.percentile,
                "weights": args.weights,
                "activations": args.activations,
                "rounding": args.rounding,
                "skip": list(qpass.skip),
                "interface": args.interface,
                "synthetic_calibration": args.calibration is None,
            },
            "graphs": [
                dict(
                    r.to_json(),
                    kept_float=[
                        {"name": lay.name, "op": lay.kind, "reason": lay.note} for lay in rec.kept_float
                    ],
                )
                for r, rec in zip(reports, records, strict=True)
            ],
        }
        outputs.append((args.json, json.dumps(doc, indent=1) + "\n"))
    for path, text in outputs:
        with atomic_output(path) as handle:
            handle.write(text)  # type: ignore[attr-defined]

    from nnopt.passes.analysis.quant_quality import render_text

    for i, record in enumerate(records):
        print("\n".join(_summary(record, args.activations)))
        if args.report:
            print()
            print(render_text(reports[i], args.rows))
    print(f"wrote {args.output}" + (f" and {args.json}" if args.json is not None else ""))
    return 0

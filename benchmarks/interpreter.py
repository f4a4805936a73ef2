"""Section 1: interpreter latency, nnopt's numpy interpreter vs LiteRT (reference kernels) vs TFLite Micro.

For every model of ../shared/models that nnopt runs: the same seeded input goes
to all three; every round times one inference of each, in turn (nnopt in this
process, the peers in their child processes, timing only ``invoke()``), so
all three see the same machine state. After one warm-up inference each, the
median of the rounds is reported, and the outputs are compared: nnopt against
TFLite Micro (bit-exact expected on integer models) and against LiteRT.
ONNX models are measured against onnxruntime with graph optimizations off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.common import (
    Column,
    Context,
    SectionResult,
    Table,
    median,
    ratio,
    short_error,
    single_thread_blas,
    spread,
)
from benchmarks.models import ModelFile, load, only_graph, seeded_inputs, shared_models
from benchmarks.peers import PeerError, PeerWorker, patch_quantized_dimension

NAME = "interpreter"
TITLE = "Interpreter latency"
DEFAULT_REPEAT = 11


@dataclass
class Measured:
    """Times (seconds) and outputs of one runner on one model."""

    times: list[float] = field(default_factory=list)
    outputs: list[np.ndarray] | None = None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        return median(self.times) if self.times and self.error is None else None

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times and self.error is None else None


def compare(ours: list[np.ndarray], theirs: list[np.ndarray] | None) -> tuple[bool | None, str]:
    """(bit-exact?, description) of two output lists."""
    if theirs is None:
        return None, "-"
    if len(ours) != len(theirs):
        return False, f"{len(ours)} vs {len(theirs)} outputs"
    worst, differ, total, exact, is_float = 0.0, 0, 0, True, False
    for a, b in zip(ours, theirs, strict=True):
        a = np.asarray(a)
        b = np.asarray(b)
        if a.size != b.size:
            return False, f"shapes {list(a.shape)} vs {list(b.shape)}"
        a, b = a.reshape(-1), b.reshape(-1)
        is_float = is_float or a.dtype.kind == "f" or b.dtype.kind == "f"
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        worst = max(worst, float(diff.max(initial=0.0)))
        differ += int(np.count_nonzero(diff))
        total += a.size
        exact = exact and bool(np.array_equal(a, b))
    if exact:
        return True, "bit-exact"
    if is_float:
        return False, f"max abs diff {worst:.2g}"
    return False, f"{differ}/{total} differ, max {worst:g} LSB"


def _dtype_label(model: ModelFile) -> str:
    tail = model.name.rsplit("_", 1)[-1]
    return tail if tail in ("int8", "f32", "hybrid") else "?"


def _measure_model(
    model: ModelFile, reps: int, ctx: Context
) -> tuple[dict[str, Measured], list[np.ndarray] | None, str | None]:
    """Run nnopt and the model's peers side by side; nnopt's outputs; why nnopt could not run it."""
    from nnopt.backends.numpy import run

    try:
        graph = only_graph(load(model))
    except Exception as exc:
        return {}, None, f"nnopt cannot load it: {short_error(exc, strip=str(model.path))}"
    inputs = seeded_inputs(graph)
    try:
        ours = list(run(graph, inputs).values())  # warm-up, and the reference outputs
    except Exception as exc:
        return {}, None, f"nnopt cannot run it: {short_error(exc, strip=str(model.path))}"

    data = model.path.read_bytes()
    peers: dict[str, PeerWorker] = {}
    results: dict[str, Measured] = {"nnopt": Measured(outputs=ours)}
    wanted = ["litert", "tflm"] if model.kind == "tflite" else ["ort"] if model.kind == "onnx" else []
    for kind in wanted:
        results[kind] = Measured()
        try:
            blob = patch_quantized_dimension(data)[0] if kind == "litert" else data
            worker = PeerWorker(kind, blob)
        except PeerError as exc:
            results[kind].error = short_error(exc)
            continue
        except Exception as exc:  # a missing peer package
            results[kind].error = short_error(exc)
            continue
        shapes = [s for s, _ in worker.info.inputs]
        if [tuple(x.shape) for x in inputs] != [tuple(s) for s in shapes]:
            results[kind].error = f"input shapes {shapes} differ from nnopt's"
            worker.close()
            continue
        try:
            results[kind].outputs = worker.run(inputs)[0]  # warm-up
            peers[kind] = worker
        except PeerError as exc:
            results[kind].error = short_error(exc)
            worker.close()
    try:
        for _ in range(reps):
            start = time.perf_counter()
            run(graph, inputs)
            results["nnopt"].times.append(time.perf_counter() - start)
            for kind, worker in list(peers.items()):
                try:
                    results[kind].times.append(worker.run(inputs)[1])
                except PeerError as exc:
                    results[kind].error = short_error(exc)
                    worker.close()
                    del peers[kind]
    finally:
        for worker in peers.values():
            worker.close()
    ctx.log(
        f"  {model.label}: "
        + ", ".join(
            f"{k} {m.seconds * 1e3:.2f} ms" for k, m in results.items() if isinstance(m.seconds, float)
        )
    )
    return results, ours, None


def _geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _measure_all(ctx: Context, reps: int, tflite: Table, onnx: Table, skipped: list[str]) -> None:
    """Every model of ../shared/models into one of the two tables (or `skipped`, with the reason)."""
    for model in shared_models(ctx):
        if model.kind not in ("tflite", "onnx"):
            continue
        ctx.log(f"[interpreter] {model.label}")
        measured, ours, why = _measure_model(model, reps, ctx)
        if why is not None or ours is None:
            skipped.append(f"`{model.label}`: {why}")
            continue
        nn_time = measured["nnopt"].seconds
        raw = {k: m.times for k, m in measured.items()}
        noise = {k: round(spread(m.times), 3) for k, m in measured.items() if len(m.times) > 1}
        if model.kind == "tflite":
            eq_tflm, tflm_text = compare(ours, measured["tflm"].outputs)
            _, litert_text = compare(ours, measured["litert"].outputs)
            row = tflite.add(
                model=model.label,
                dtype=_dtype_label(model),
                nnopt=nn_time,
                litert=measured["litert"].seconds,
                tflm=measured["tflm"].seconds,
                vs_litert=ratio(nn_time, measured["litert"].seconds),
                vs_tflm=ratio(nn_time, measured["tflm"].seconds),
                best_vs_litert=ratio(measured["nnopt"].best, measured["litert"].best),
                best_vs_tflm=ratio(measured["nnopt"].best, measured["tflm"].best),
                eq_tflm=(True if eq_tflm else tflm_text) if eq_tflm is not None else None,
                eq_litert=litert_text,
                bit_exact_tflm=eq_tflm,
                times=raw,
                spread=noise,
                noise=max(noise.values(), default=None),
            )
        else:
            _, ort_text = compare(ours, measured["ort"].outputs)
            row = onnx.add(
                model=model.label,
                nnopt=nn_time,
                ort=measured["ort"].seconds,
                vs_ort=ratio(nn_time, measured["ort"].seconds),
                eq_ort=ort_text,
                times=raw,
                spread=noise,
                noise=max(noise.values(), default=None),
            )
        table = tflite if model.kind == "tflite" else onnx
        for kind, m in measured.items():
            if m.error is not None:
                table.unavailable(row, kind, m.error)


def run(ctx: Context) -> SectionResult:
    """Measure every model; one table for .tflite models, one for .onnx models."""
    reps = ctx.reps(DEFAULT_REPEAT)
    result = SectionResult(NAME, TITLE, "", "")
    result.setup = [
        f"Median of {reps} rounds after one warm-up inference each; a round runs nnopt, LiteRT and TFLite Micro "
        "once each, in turn, on the same seeded input (`numpy.random.default_rng(0)`: uniform storage integers, "
        "N(0, 1) floats; `nnopt run --seed 0` feeds the same).",
        "nnopt: `nnopt.backends.numpy.run(graph, inputs)` on the imported graph, in this process (numpy with its "
        "default threading). LiteRT: `ai_edge_litert` `Interpreter(..., experimental_op_resolver_type="
        "OpResolverType.BUILTIN_REF, num_threads=1)`. TFLite Micro: the `tflite_micro` Python interpreter "
        "(reference kernels). Peers run in child processes and time `invoke()` only; the ratios are "
        "nnopt time / peer time (below 1: nnopt faster), from the medians; **best-of** divides the fastest "
        "rounds instead, which load from other jobs disturbs least. **noise**: the largest (max - min) / median over the "
        "rounds among the runners of the row.",
        "`tflm_person_detect_int8` goes to LiteRT with its bias `quantized_dimension` set to 0 in an in-memory "
        "copy (LiteRT rejects 3 on a 1-D tensor; the meaning is unchanged).",
    ]
    tflite = Table(
        "TFLite models: milliseconds per inference (median) and ratios",
        [
            Column("model", "model"),
            Column("dtype", "dtype"),
            Column("nnopt", "nnopt ms", "ms"),
            Column("litert", "LiteRT ref ms", "ms"),
            Column("tflm", "TFLM ms", "ms"),
            Column("vs_litert", "nnopt/LiteRT", "ratio"),
            Column("vs_tflm", "nnopt/TFLM", "ratio"),
            Column("best_vs_litert", "best-of nnopt/LiteRT", "ratio"),
            Column("eq_tflm", "nnopt = TFLM"),
            Column("eq_litert", "nnopt vs LiteRT"),
            Column("noise", "noise", "spread"),
        ],
    )
    onnx = Table(
        "ONNX models: milliseconds per inference (median), against onnxruntime (graph optimizations off, 1 thread)",
        [
            Column("model", "model"),
            Column("nnopt", "nnopt ms", "ms"),
            Column("ort", "onnxruntime ms", "ms"),
            Column("vs_ort", "nnopt/ORT", "ratio"),
            Column("eq_ort", "nnopt vs ORT"),
            Column("noise", "noise", "spread"),
        ],
    )
    skipped: list[str] = []
    with single_thread_blas() as threads:
        _measure_all(ctx, reps, tflite, onnx, skipped)
    result.setup[1] = result.setup[1].replace("numpy with its default threading", threads)
    if skipped:
        tflite.notes.append("Not measured (nnopt does not run them yet): " + "; ".join(skipped) + ".")
    result.tables = [t for t in (tflite, onnx) if t.rows or t.notes]
    result.commentary = _commentary(tflite)
    return result


def _commentary(table: Table) -> list[str]:
    lines: list[str] = []
    mlperf = [r for r in table.rows if str(r["model"]).startswith("mlperf_tiny_")]
    ratios = [r["vs_litert"] for r in mlperf if isinstance(r.get("vs_litert"), float)]
    if mlperf:
        faster = [r["model"] for r in mlperf if isinstance(r.get("vs_litert"), float) and r["vs_litert"] < 1]
        slower = [
            f"{r['model']} ({r['vs_litert']:.1f}x)"
            for r in mlperf
            if isinstance(r.get("vs_litert"), float) and r["vs_litert"] >= 1
        ]
        gm = _geomean(ratios)
        best = [r["best_vs_litert"] for r in mlperf if isinstance(r.get("best_vs_litert"), float)]
        best_gm = _geomean(best)
        best_faster = [v for v in best if v < 1]
        lines.append(
            f'Target "faster than LiteRT\'s reference kernels on every MLPerf Tiny model": '
            f"{'**met**' if not slower and ratios else '**not met**'} — nnopt is faster on {len(faster)} of "
            f"{len(mlperf)} MLPerf Tiny models"
            + (f"; slower on {', '.join(slower)}" if slower else "")
            + (f". Geometric mean of nnopt/LiteRT: {gm:.2f}x" if gm else "")
            + (f" (best-of rounds: {best_gm:.2f}x, faster on {len(best_faster)})." if best_gm else ".")
        )
    tiny = [
        r["model"]
        for r in table.rows
        if isinstance(r.get("vs_litert"), float) and r["vs_litert"] >= 1 and (r.get("litert") or 1) < 2e-3
    ]
    if tiny:
        lines.append(
            f"nnopt loses mostly where a LiteRT inference takes under 2 ms ({', '.join(tiny)}): there the "
            "interpreter's fixed cost per op (Python dispatch, checks) outweighs the arithmetic."
        )
    ints = [r for r in table.rows if r.get("dtype") == "int8"]
    if ints:
        exact = [r["model"] for r in ints if r.get("bit_exact_tflm") is True]
        not_exact = [f"{r['model']} ({r['eq_tflm']})" for r in ints if r.get("bit_exact_tflm") is False]
        unknown = [r["model"] for r in ints if r.get("bit_exact_tflm") is None]
        lines.append(
            f"Bit-exactness with TFLite Micro on the int8 models: {len(exact)} of {len(ints)} bit-exact"
            + (f"; differ: {', '.join(not_exact)}" if not_exact else "")
            + (f"; TFLM result missing: {', '.join(unknown)}" if unknown else "")
            + "."
        )
    lsb = [r["model"] for r in ints if r.get("bit_exact_tflm") is True and r.get("eq_litert") != "bit-exact"]
    if lsb:
        lines.append(
            f"Where nnopt equals TFLite Micro but not LiteRT ({', '.join(lsb)}), the two peers disagree with each "
            "other by the LSBs shown (LiteRT 2.3's reference kernels are not bit-identical to TFLite Micro's on "
            "these models); nnopt follows TFLite Micro."
        )
    all_ratios = [r["vs_tflm"] for r in table.rows if isinstance(r.get("vs_tflm"), float)]
    gm_tflm = _geomean(all_ratios)
    if gm_tflm:
        lines.append(
            f"Against TFLite Micro's Python interpreter the geometric mean of nnopt/TFLM is {gm_tflm:.2f}x."
        )
    lines.append(
        "The float and hybrid rows compare with LiteRT by the largest absolute difference; float kernels are "
        "not expected to be bit-exact (summation order differs)."
    )
    return lines

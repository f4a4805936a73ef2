"""Section 2: planned activation memory, nnopt vs TFLite Micro's planner vs Arm Vela (Sram_Only).

For every model of ../shared/models and examples/models, in one run:

* nnopt's liveness lower bound in the file's op order (most activation bytes,
  16-byte aligned, live at one step; scratch excluded);
* nnopt's arena after each planning pipeline whose passes exist (plain
  bufferize + plan-arena, then with nn-merge-buffers, then with nn-schedule
  and nn-merge-buffers);
* TFLite Micro's "Arena allocation head" from `print_allocations()` (the
  planned, non-persistent part of its arena), and nnopt's re-implementation
  of that planner (the ``tflm`` allocator) on nnopt's own buffers as a check;
* Vela's "Total SRAM used" in the Sram_Only memory mode (weights go to flash).
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp

from benchmarks.common import Column, Context, SectionResult, Table, median, ratio, short_error
from benchmarks.models import ModelFile, example_models, load, only_graph, seeded_inputs, shared_models
from benchmarks.peers import VELA_ARGS, PeerError, run_vela, tflm_allocations
from nnopt.dialects import nn

NAME = "planning"
TITLE = "Planning: activation memory against TFLite Micro and Vela"
DEFAULT_REPEAT = 3


@dataclass(frozen=True)
class Variant:
    """One planning pipeline."""

    key: str
    header: str
    passes: tuple[str, ...]


VARIANTS = (
    Variant("plain", "bufferize+plan", ("nn-bufferize", "nn-plan-arena")),
    Variant("merge", "+merge", ("nn-bufferize", "nn-merge-buffers", "nn-plan-arena")),
    Variant(
        "sched_merge", "+schedule+merge", ("nn-schedule", "nn-bufferize", "nn-merge-buffers", "nn-plan-arena")
    ),
)
"""The pipelines, least to most complete; the last one whose passes exist is "nnopt" in the ratios."""

REFERENCE: dict[str, tuple[int, int, int]] = {
    "mlperf_tiny_vww_mbv1_025_int8": (55_296, 73_728, 73_728),
    "tflm_person_detect_int8": (55_296, 55_296, 73_728),
    "mlperf_tiny_ic_resnet8_int8": (49_152, 49_152, 49_152),
    "tflm_xtensa_mobilenet_v2_224_int8": (2_451_840, 2_451_840, 1_505_280),
}
"""Numbers quoted by the issue: (lower bound, TFLM head, Vela Sram_Only) in bytes."""


@dataclass
class VariantResult:
    """Outcome of one pipeline on one model."""

    arena: int | None = None
    lower_bound: int | None = None
    optimal: bool | None = None
    allocator: str = ""
    times: list[float] = field(default_factory=list)
    error: str | None = None
    module: ModuleOp | None = None


def available_passes() -> set[str]:
    """Names of the passes registered in this checkout."""
    from nnopt.compiler.registry import build_registry

    return set(build_registry().passes)


def _plan_info(graph: nn.GraphOp) -> tuple[int, bool, str]:
    """(lower bound, proven optimal, allocator) summed / combined over the memory spaces."""
    info = graph.attributes.get("nn.plan")
    lower, optimal, allocators = 0, True, []
    if isinstance(info, DictionaryAttr):
        for space in info.data.values():
            if not isinstance(space, DictionaryAttr):
                continue
            lb = space.data.get("lower_bound")
            lower += lb.value.data if isinstance(lb, IntegerAttr) else 0
            opt = space.data.get("optimal")
            optimal = optimal and bool(getattr(opt, "value", None) and opt.value.data)  # type: ignore[union-attr]
            alloc = space.data.get("allocator")
            allocators.append(str(getattr(alloc, "data", "")))
    return lower, optimal, ", ".join(a for a in allocators if a)


def run_pipeline(module: ModuleOp, passes: tuple[str, ...], reps: int) -> VariantResult:
    """Apply a pipeline to `reps` clones of a module; arena, bound and median time."""
    from nnopt.compiler.opt import build_pipeline
    from nnopt.compiler.registry import build_registry, make_context

    registry = build_registry()
    result = VariantResult()
    for _ in range(reps):
        clone = module.clone()
        pipeline = build_pipeline(registry, ",".join(passes))
        xctx = make_context(registry)
        start = time.perf_counter()
        try:
            for p in pipeline:
                p.apply(xctx, clone)
        except Exception as exc:
            result.error = short_error(exc)
            return result
        result.times.append(time.perf_counter() - start)
        if result.module is None:
            graph = only_graph(clone)
            result.arena = sum(nn.graph_arenas(graph).values())
            result.lower_bound, result.optimal, result.allocator = _plan_info(graph)
            result.module = clone
    return result


def tflm_reimplementation(module: ModuleOp) -> int:
    """nnopt's re-implementation of TFLite Micro's greedy planner on nnopt's plain buffers."""
    from nnopt.passes.analysis.lifetimes import compute_lifetimes
    from nnopt.passes.bufferize import bufferize_graph
    from nnopt.passes.planning.allocators import plan_buffers

    clone = module.clone()
    graph = only_graph(clone)
    bufferize_graph(graph, 16)
    return plan_buffers(compute_lifetimes(graph).problem(16), "tflm").arena_bytes


def peak_note(module: ModuleOp) -> tuple[str, str]:
    """Where a planned graph's lower bound is reached: the op, and a note naming the biggest buffers live there."""
    from nnopt.passes.analysis.lifetimes import compute_lifetimes

    graph = only_graph(module)
    lifetimes = compute_lifetimes(graph)
    problem = lifetimes.problem(16)
    step = problem.peak_step()
    live = sorted(problem.live_at(step), key=lambda b: -b.padded_size)
    op = lifetimes.steps[step] if step < len(lifetimes.steps) else "the inputs"
    listing = ", ".join(f"{b.name} {b.padded_size:,} B" for b in live[:3])
    return op.split()[0], f"peak {problem.lower_bound():,} B at step {step} (`{op.split()[0]}`): {listing}"


def merge_report(module: ModuleOp) -> str | None:
    """What nn-merge-buffers did to a model, from its ``report=true`` text (None when it did nothing)."""
    from nnopt.compiler.opt import build_pipeline
    from nnopt.compiler.registry import build_registry, make_context

    registry = build_registry()
    clone, xctx, text = module.clone(), make_context(registry), io.StringIO()
    try:
        with contextlib.redirect_stderr(text):
            for p in build_pipeline(registry, "nn-bufferize,nn-merge-buffers{report=true}"):
                p.apply(xctx, clone)
    except Exception:
        return None
    out = text.getvalue()
    bound = re.search(
        r"lower bound '[^']*': ([\d,]+) -> ([\d,]+) bytes[^;\n]*(?:; ([\d,]+) after graph rewrites)?", out
    )
    if bound is None or bound.group(1) == bound.group(2):
        return None
    rewrites = ", ".join(f"{name} x{count}" for name, count in re.findall(r"rewrite ([\w-]+): (\d+)", out))
    kinds = Counter(re.findall(r"^//\s+(depthwise|elementwise|view|concat)\w*:", out, flags=re.M))
    shared = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    note = f"bound {bound.group(1)} -> {bound.group(2)} B"
    if bound.group(3):
        note += f" ({bound.group(3)} B after the graph rewrites{': ' + rewrites if rewrites else ''})"
    return note + (f"; sharing in place: {shared}" if shared else "")


def outputs_unchanged(original: ModuleOp, planned: ModuleOp) -> bool | str:
    """Run the interpreter on the planned module and on the original with the same input."""
    from nnopt.backends.numpy import run

    try:
        g0, g1 = only_graph(original), only_graph(planned)
        inputs = seeded_inputs(g0)
        a, b = run(g0, inputs), run(g1, inputs)
    except Exception as exc:
        return f"run failed: {short_error(exc)}"
    return all(np.array_equal(x, y) for x, y in zip(a.values(), b.values(), strict=True)) and len(a) == len(b)


def run(ctx: Context) -> SectionResult:
    """Measure every model."""
    reps = ctx.reps(DEFAULT_REPEAT)
    have = available_passes()
    variants = [v for v in VARIANTS if all(p in have for p in v.passes)]
    missing = sorted({p for v in VARIANTS for p in v.passes} - have)
    final = variants[-1] if variants else None
    result = SectionResult(NAME, TITLE, "", "")
    result.setup = [
        "All sizes in bytes, 16-byte aligned buffers. **LB** is nnopt's liveness lower bound in the file's op "
        "order (activations only, no scratch). The nnopt columns are the arena planned by each pipeline "
        "(`nnopt-opt -p <pipeline>`; `nn-plan-arena` with its defaults: portfolio allocator, 10 s exact-search "
        'limit), "LB after" the bound of the buffers the most complete pipeline planned.',
        "**TFLM head** is `Arena allocation head` printed by `tflite_micro`'s `print_allocations()` (the arena "
        "part its greedy planner fills; the tail of persistent structures is not counted). **TFLM re-impl** is "
        "nnopt's `tflm` allocator (TFLM's greedy) on nnopt's plain buffers: it equals the TFLM head when both "
        "see the same buffers.",
        f"**Vela** is `Total SRAM used` from `vela <model> {' '.join(VELA_ARGS)}` (Vela compiles for the "
        "Ethos-U NPU; its number includes its own fusions, so it is a peer, not the same problem).",
        f"Ratios use the most complete pipeline available (**{final.header if final else 'none'}**). Times: "
        f"median of {reps} runs of that whole pipeline on a fresh copy of the imported module.",
    ]
    if missing:
        result.setup.append(
            f"Not yet available in this checkout: {', '.join(f'`{p}`' for p in missing)}; the columns that need "
            "them are left out."
        )
    columns = [Column("model", "model"), Column("ops", "ops", "int"), Column("lb", "LB", "bytes")]
    columns += [Column(v.key, v.header, "bytes") for v in variants]
    columns += [
        Column("lb_after", "LB after", "bytes"),
        Column("tflm", "TFLM head", "bytes"),
        Column("tflm_reimpl", "TFLM re-impl", "bytes"),
        Column("vela", "Vela SRAM", "bytes"),
        Column("vs_tflm", "nnopt/TFLM", "ratio"),
        Column("vs_vela", "nnopt/Vela", "ratio"),
        Column("seconds", "plan s", "s"),
        Column("outputs", "outputs same"),
    ]
    table = Table("Activation memory per model (bytes)", columns)
    result.tables = [table]
    models = [m for m in shared_models(ctx) if m.kind in ("tflite", "onnx")] + example_models(ctx)
    peaks: list[str] = []
    merges: list[str] = []
    for model in models:
        ctx.log(f"[planning] {model.label}")
        row = table.add(model=model.label)
        module: ModuleOp | None = None
        try:
            module = load(model)
            graph = only_graph(module)
        except Exception as exc:
            table.unavailable(row, "lb", short_error(exc, strip=str(model.path)), "not imported")
        if module is not None:
            _plan_model(module, graph, variants, reps, row, table)
            if (
                isinstance(row.get("merge"), int)
                and isinstance(row.get("plain"), int)
                and row["merge"] < row["plain"]
            ):
                row["merge_report"] = merge_report(module)
                if row["merge_report"]:
                    merges.append(f"`{model.label}`: {row['merge_report']}")
        if model.kind == "tflite":
            _peers(model, row, table)
        best = row.get(final.key) if final else None
        row["vs_tflm"] = ratio(best, row.get("tflm")) if isinstance(best, int) else None
        row["vs_vela"] = ratio(best, row.get("vela")) if isinstance(best, int) else None
        final_module = row.pop("_final_module", None)
        vela = row.get("vela")
        if final_module is not None and isinstance(best, int) and isinstance(vela, int) and best > vela:
            row["peak_op"], note = peak_note(final_module)
            peaks.append(f"`{model.label}`: {note}")
        ctx.log(
            "  "
            + ", ".join(
                f"{k} {row[k]:,}"
                for k in ("lb", *(v.key for v in variants), "tflm", "vela")
                if isinstance(row.get(k), int)
            )
        )
    if merges:
        table.notes.append("What nn-merge-buffers changed (its `report=true`): " + "; ".join(merges) + ".")
    if peaks:
        table.notes.append("Where nnopt needs more than Vela, nnopt's peak: " + "; ".join(peaks) + ".")
    result.commentary = _commentary(table, final, missing)
    return result


def _plan_model(
    module: ModuleOp, graph: nn.GraphOp, variants: list[Variant], reps: int, row: dict, table: Table
) -> None:
    from nnopt.passes.analysis.lifetimes import compute_lifetimes, executed_ops

    row["ops"] = len(executed_ops(graph))
    row["lb"] = compute_lifetimes(graph).problem(16).lower_bound()
    results: dict[str, VariantResult] = {}
    for v in variants:
        res = run_pipeline(module, v.passes, reps)
        results[v.key] = res
        row[v.key] = res.arena
        if res.error is not None:
            table.unavailable(row, v.key, res.error, "error")
        row[f"{v.key}_seconds"] = median(res.times) if res.times else None
        row[f"{v.key}_lower_bound"] = res.lower_bound
        row[f"{v.key}_optimal"] = res.optimal
        row[f"{v.key}_allocator"] = res.allocator
    try:
        row["tflm_reimpl"] = tflm_reimplementation(module)
    except Exception as exc:
        table.unavailable(row, "tflm_reimpl", short_error(exc), "error")
    if variants:
        last = results[variants[-1].key]
        row["lb_after"] = last.lower_bound
        row["seconds"] = median(last.times) if last.times else None
        if last.module is not None:
            row["outputs"] = outputs_unchanged(module, last.module)
            row["_final_module"] = last.module


def _peers(model: ModelFile, row: dict, table: Table) -> None:
    try:
        row["tflm"] = tflm_allocations(model.path.read_bytes())["head"]
    except (PeerError, ImportError) as exc:
        table.unavailable(row, "tflm", short_error(exc))
    try:
        vela = run_vela(model.path)
        row["vela_npu_ops"], row["vela_cpu_ops"], row["vela_seconds"] = (
            vela.npu_ops,
            vela.cpu_ops,
            vela.seconds,
        )
        if vela.npu_ops == 0:
            table.unavailable(
                row, "vela", "Vela maps no operator to the NPU (float model), so it plans no SRAM"
            )
        elif vela.cpu_ops:
            table.unavailable(
                row,
                "vela",
                f"{vela.cpu_ops} operators stay on the CPU; Vela's {vela.sram_bytes} B cover the NPU part only",
                f"({vela.sram_bytes:,})",
            )
        else:
            row["vela"] = vela.sram_bytes
    except PeerError as exc:
        table.unavailable(row, "vela", short_error(exc))


def _commentary(table: Table, final: Variant | None, missing: list[str]) -> list[str]:
    lines: list[str] = []
    if final is None:
        return ["No planning pipeline is available in this checkout."]
    key = final.key
    with_tflm = [r for r in table.rows if isinstance(r.get(key), int) and isinstance(r.get("tflm"), int)]
    with_vela = [r for r in table.rows if isinstance(r.get(key), int) and isinstance(r.get("vela"), int)]
    at_lb = [r for r in table.rows if isinstance(r.get(key), int) and r.get(key) == r.get("lb_after")]
    planned = [r for r in table.rows if isinstance(r.get(key), int)]
    if with_tflm:
        below = [r["model"] for r in with_tflm if r[key] < r["tflm"]]
        above = [f"{r['model']} ({r[key] / r['tflm']:.2f}x)" for r in with_tflm if r[key] > r["tflm"]]
        lines.append(
            f"Against TFLite Micro's planner ({final.header}): nnopt needs less on {len(below)} of "
            f"{len(with_tflm)} models ({', '.join(below) or 'none'}), the same on "
            f"{len(with_tflm) - len(below) - len(above)}, more on {len(above)}"
            + (f" ({', '.join(above)})" if above else "")
            + "."
        )
    if with_vela:
        below = [r["model"] for r in with_vela if r[key] < r["vela"]]
        above = [f"{r['model']} ({r[key] / r['vela']:.2f}x)" for r in with_vela if r[key] > r["vela"]]
        lines.append(
            f"Against Vela (Sram_Only): nnopt needs less on {len(below)} of {len(with_vela)} models, the same on "
            f"{len(with_vela) - len(below) - len(above)}, more on {len(above)}"
            + (f" ({', '.join(above)})" if above else "")
            + "."
        )
    if planned:
        lines.append(
            f"nnopt's arena equals the lower bound of the buffers it planned on {len(at_lb)} of {len(planned)} "
            "models (every plan is checked by the independent verifier inside nn-plan-arena)."
        )
    mismatched = [
        r["model"]
        for r in table.rows
        if isinstance(r.get("tflm"), int)
        and isinstance(r.get("tflm_reimpl"), int)
        and r["tflm"] != r["tflm_reimpl"]
    ]
    checked = [
        r for r in table.rows if isinstance(r.get("tflm"), int) and isinstance(r.get("tflm_reimpl"), int)
    ]
    if checked:
        lines.append(
            f"nnopt's re-implementation of TFLM's planner reproduces the measured TFLM head on "
            f"{len(checked) - len(mismatched)} of {len(checked)} models"
            + (
                f" (differs on {', '.join(mismatched)}: the buffers differ, e.g. scratch or views)"
                if mismatched
                else ""
            )
            + "."
        )
    for name, (lb, tflm, vela) in REFERENCE.items():
        row = next((r for r in table.rows if r["model"] == name), None)
        if row is None:
            continue
        got = (row.get("lb"), row.get("tflm"), row.get("vela"))
        same = got == (lb, tflm, vela)
        lines.append(
            f"Issue reference for {name} (bound / TFLM / Vela = {lb:,} / {tflm:,} / {vela:,}): "
            + ("reproduced exactly." if same else f"measured {' / '.join(_fmt(g) for g in got)}.")
        )
    padded = [r["model"] for r in table.rows if r.get("peak_op") == "nn.pad"]
    if padded:
        lines.append(
            f"On {', '.join(padded)} nnopt's peak is an explicit `nn.pad` (PyTorch/ONNX exports pad before strided "
            "convolutions): the padded copy is live next to its input. Vela folds such a PAD into the "
            "convolution's own padding; `nn-fold-pad` (also run inside nn-merge-buffers) does the same."
        )
    if missing:
        lines.append(
            f"Missing passes at the time of this run: {', '.join(missing)}; their columns will appear when they land."
        )
    return lines


def _fmt(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)

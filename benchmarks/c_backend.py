"""Section: the generated C99 code (``nnopt compile --emit c``) against TFLite Micro and LiteRT.

For each MLPerf Tiny model of ../shared/models (int8 and float variants):

* the project is generated exactly as ``nnopt compile --target host`` does it
  (planning pipeline with a node-bounded exact search, 10 recorded vectors) and
  ``make test`` must pass: the C outputs equal the numpy interpreter's bit for
  bit (floats within the documented tolerance). The same 10 inputs go to
  TFLite Micro, whose outputs are compared with the recorded ones, so "C = TFLM"
  is checked on every vector;
* time per inference: the generated ``bench_<name>`` built with the project's
  Makefile (``cc -O2 -std=c99``, one thread), median of its runs, median over
  `repeat` launches; TFLite Micro's Python interpreter (reference kernels) and
  LiteRT with ``BUILTIN_REF`` kernels in child processes timing ``invoke()``
  only (`benchmarks.peers`), median of their rounds;
* instructions: ``valgrind --tool=callgrind --toggle-collect=<name>_run`` over one
  inference, per inference and per multiply-accumulate;
* Cortex-M4: ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4`` text/data/bss of the
  library with static arenas and its stack (``-fstack-usage``), against TFLite
  Micro's arena for the same model (``print_allocations``); ``make arm-test``
  runs the test program under ``qemu-system-arm -M mps2-an386``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Column, Context, SectionResult, Table, median, now, ratio, short_error
from benchmarks.models import ModelFile, shared_models
from benchmarks.peers import PeerWorker, patch_quantized_dimension, tflm_allocations

NAME = "c-backend"
TITLE = "Generated C (nnopt compile --emit c)"
DEFAULT_REPEAT = 5
VECTORS = 10


def _mlperf(ctx: Context) -> list[ModelFile]:
    return [m for m in shared_models(ctx) if m.name.startswith("mlperf_tiny_") and m.kind == "tflite"]


def _make(folder: Path, *targets: str, timeout: float = 1800) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(folder), *targets],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"make {' '.join(targets)} failed: {(proc.stdout + proc.stderr).strip()[-300:]}")
    return proc.stdout


def _bench_c(folder: Path, name: str, reps: int, runs: int) -> list[float]:
    times = []
    for _ in range(reps):
        out = subprocess.run(
            [str(folder / f"bench_{name}"), str(runs)], capture_output=True, text=True, check=True
        )
        match = re.search(r"us_per_inference ([0-9.]+)", out.stdout)
        assert match is not None, out.stdout
        times.append(float(match.group(1)) * 1e-6)
    return times


def _callgrind(folder: Path, name: str) -> int | None:
    if shutil.which("valgrind") is None:
        return None
    out_file = folder / "callgrind.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out_file}",
            f"--toggle-collect={name}_run",
            str(folder / f"bench_{name}"),
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    text = out_file.read_text()
    match = re.search(r"^summary:\s*(\d+)", text, re.MULTILINE) or re.search(
        r"^totals:\s*(\d+)", text, re.MULTILINE
    )
    return int(match.group(1)) if match else None


def _arm_size(folder: Path, name: str) -> tuple[int, int, int, int] | None:
    """text, data, bss and stack bytes of the library on Cortex-M4 (None without the toolchain)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        return None
    out = _make(folder, "arm-size")
    line = next(ln for ln in out.splitlines() if ln.split() and ln.split()[0].isdigit())
    text, data, bss = (int(v) for v in line.split()[:3])
    frames: dict[str, int] = {}
    for ln in (folder / f"{name}.arm.su").read_text().splitlines():
        parts = ln.split("\t")
        if len(parts) >= 2:
            frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    run_frame = frames.get(f"{name}_run", 0)
    callee = max((v for k, v in frames.items() if not k.startswith(f"{name}_run")), default=0)
    return text, data, bss, run_frame + callee


def _qemu(folder: Path) -> bool | str:
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        return "n/a"
    out = _make(folder, "arm-test", timeout=1800)
    return "PASS" in out


def _peer_times(
    kind: str, blob: bytes, inputs: list[np.ndarray], rounds: int
) -> tuple[list[float], list[np.ndarray]]:
    with PeerWorker(kind, blob) as worker:
        outputs = worker.run(inputs)[0]
        times = [worker.run(inputs)[1] for _ in range(rounds)]
    return times, outputs


def _compare(recorded: list[np.ndarray], theirs: list[list[np.ndarray]]) -> str | bool:
    worst = 0.0
    differ = 0
    total = 0
    exact = True
    floats = False
    for v, outs in enumerate(theirs):
        for i, out in enumerate(outs):
            ours = recorded[i][v].reshape(-1)
            other = np.asarray(out).reshape(-1)
            floats = floats or ours.dtype.kind == "f"
            diff = np.abs(ours.astype(np.float64) - other.astype(np.float64))
            worst = max(worst, float(diff.max(initial=0.0)))
            differ += int(np.count_nonzero(diff))
            total += ours.size
            exact = exact and bool(np.array_equal(ours, other))
    if exact:
        return True
    return f"max abs diff {worst:.2g}" if floats else f"{differ}/{total} differ (max {worst:g} LSB)"


def _measure(model: ModelFile, ctx: Context, work: Path, reps: int) -> dict[str, object]:
    from nnopt.backends.c import generate_library, library_name, record_vectors
    from nnopt.backends.c.project import project_files
    from nnopt.compiler.commands.compile import DEFAULT_NODE_LIMIT, plan_module, write_project
    from nnopt.compiler.frontends import load_model
    from nnopt.dialects import nn

    row: dict[str, object] = {"model": model.name}
    module = load_model(str(model.path))
    plan_module(module, "host", DEFAULT_NODE_LIMIT)
    graph = next(op for op in module.walk() if isinstance(op, nn.GraphOp))
    name = library_name(model.name)
    src = generate_library(graph, name, model.path.name)
    vectors = record_vectors(graph, src, VECTORS, 0)
    files = project_files(src, model.path.name, "host", vectors)
    folder = work / name
    write_project(str(folder), files)
    row["macs"] = src.macs
    row["arena"] = sum(src.arenas.values())
    row["weights"] = src.weight_bytes
    _make(folder, "test")
    row["c_eq_nnopt"] = True
    _make(folder, f"bench_{name}")
    ir = _callgrind(folder, name)
    if ir is not None:
        row["ir"] = ir
        row["ir_per_mac"] = round(ir / src.macs, 2) if src.macs else None
    # Peers: outputs on every recorded vector (C = TFLM), then timing rounds interleaved with
    # launches of the C benchmark, so that all three see the same machine state.
    blob = model.path.read_bytes()
    workers: dict[str, PeerWorker] = {}
    for kind in ("tflm", "litert"):
        try:
            data = patch_quantized_dimension(blob)[0] if kind == "litert" else blob
            worker = PeerWorker(kind, data)
        except Exception as exc:  # a peer that cannot load the model costs one cell
            row[kind] = f"n/a: {short_error(exc)}"
            continue
        try:
            outs = [worker.run([arr[v] for arr in vectors.inputs])[0] for v in range(VECTORS)]
            row[f"c_eq_{kind}"] = _compare(vectors.outputs, outs)
            workers[kind] = worker
        except Exception as exc:
            row[kind] = f"n/a: {short_error(exc)}"
            worker.close()
    runs = max(5, min(500, int(2e8 // max(src.macs, 1))))
    rounds = max(1, min(10, int(1e8 // max(src.macs, 1))))
    times: dict[str, list[float]] = {"c": [], **{k: [] for k in workers}}
    try:
        for _ in range(reps):
            times["c"] += _bench_c(folder, name, 1, runs)
            for kind, worker in workers.items():
                times[kind] += [worker.run([arr[0] for arr in vectors.inputs])[1] for _ in range(rounds)]
    finally:
        for worker in workers.values():
            worker.close()
    for kind, values in times.items():
        row[kind] = median(values)
        row[f"times_{kind}"] = values
    row["vs_tflm"] = ratio(row.get("tflm") if isinstance(row.get("tflm"), float) else None, row["c"])  # type: ignore[arg-type]
    row["vs_litert"] = ratio(row.get("litert") if isinstance(row.get("litert"), float) else None, row["c"])  # type: ignore[arg-type]
    sizes = _arm_size(folder, name)
    if sizes is not None:
        m4_text, m4_data, m4_bss, m4_stack = sizes
        row.update(
            m4_text=m4_text,
            m4_data=m4_data,
            m4_bss=m4_bss,
            m4_stack=m4_stack,
            m4_ram=m4_data + m4_bss + m4_stack,
        )
    try:
        alloc = tflm_allocations(blob)
        row["tflm_arena"] = alloc.get("total")
        row["ram_vs_tflm"] = ratio(row.get("m4_ram") or row["arena"], alloc.get("total"))  # type: ignore[arg-type]
    except Exception as exc:
        row["tflm_arena"] = f"n/a: {short_error(exc)}"
    if model.name.endswith("_int8") and any(k in model.name for k in ("kws", "ad_")):
        row["qemu"] = _qemu(folder)
    ctx.log(
        f"  {model.name}: C {row['c'] * 1e6:.1f} us"  # type: ignore[operator]
        + (f", TFLM {row['tflm'] * 1e6:.1f} us" if isinstance(row.get("tflm"), float) else "")  # type: ignore[operator]
        + (f", {row['ir_per_mac']:.2f} Ir/MAC" if isinstance(row.get("ir_per_mac"), float) else "")
    )
    return row


def run(ctx: Context) -> SectionResult:
    """Measure every MLPerf Tiny model."""
    reps = ctx.reps(DEFAULT_REPEAT)
    result = SectionResult(NAME, TITLE, "python -m benchmarks --only c-backend", now())
    result.setup = [
        "Project generated as `nnopt compile MODEL --target host --emit c` does (nn-schedule, nn-bufferize, "
        f"nn-merge-buffers, nn-plan-arena with a node-bounded exact search), {VECTORS} recorded vectors; "
        "`make test` must pass (C = numpy interpreter, integers bit for bit).",
        f"C: `bench_<name>` from the generated Makefile (`cc -std=c99 -O2 -ffp-contract=off`, one thread), "
        f"median over its runs, median of {reps} launches. TFLite Micro (`tflite_micro`, reference kernels) "
        "and LiteRT (`BUILTIN_REF`, 1 thread) time `invoke()` in child processes; their rounds are "
        "interleaved with the C launches (median). Speed-ups are peer time / C time.",
        "**C = TFLM**: TFLite Micro's outputs on the same recorded inputs against the recorded outputs (which "
        "the C reproduces). **Ir**: `valgrind --tool=callgrind --toggle-collect=<name>_run`, one inference "
        "(x86-64 instructions, a deterministic proxy).",
        "Cortex-M4: `arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard` object of the library "
        "with `-D<NAME>_STATIC_ARENAS`: text (code + weights, flash), bss (arenas), stack from "
        "`-fstack-usage`; **RAM** = data + bss + stack, against TFLite Micro's arena (`print_allocations`, "
        "total). **QEMU**: `make arm-test` under `qemu-system-arm -M mps2-an386` (KWS and AD).",
    ]
    speed = Table(
        "Time per inference (median) and speed-up of the generated C",
        [
            Column("model", "model"),
            Column("macs", "MACs", "int"),
            Column("c", "C ms", "ms"),
            Column("tflm", "TFLM ms", "ms"),
            Column("litert", "LiteRT ref ms", "ms"),
            Column("vs_tflm", "TFLM / C", "ratio"),
            Column("vs_litert", "LiteRT / C", "ratio"),
            Column("c_eq_nnopt", "C = nnopt", "bool"),
            Column("c_eq_tflm", "C = TFLM"),
            Column("ir", "Ir / inference", "int"),
            Column("ir_per_mac", "Ir/MAC"),
        ],
    )
    memory = Table(
        "Cortex-M4 footprint of the generated library vs TFLite Micro's arena",
        [
            Column("model", "model"),
            Column("weights", "weights B", "bytes"),
            Column("m4_text", "M4 text B", "bytes"),
            Column("m4_bss", "M4 bss (arena) B", "bytes"),
            Column("m4_stack", "stack B", "bytes"),
            Column("m4_ram", "RAM B", "bytes"),
            Column("tflm_arena", "TFLM arena B", "bytes"),
            Column("ram_vs_tflm", "RAM / TFLM", "ratio"),
            Column("qemu", "QEMU test"),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="nnopt-bench-c-") as tmp:
        for model in _mlperf(ctx):
            ctx.log(f"[c-backend] {model.name}")
            try:
                row = _measure(model, ctx, Path(tmp), reps)
            except Exception as exc:
                speed.notes.append(f"`{model.name}` not measured: {short_error(exc)}")
                continue
            for table in (speed, memory):
                table.add(**{c.key: row.get(c.key) for c in table.columns}, raw=dict(row))
            for key in ("tflm", "litert"):
                if isinstance(row.get(key), str):
                    speed.unavailable(speed.rows[-1], key, str(row[key]))
            if isinstance(row.get("tflm_arena"), str):
                memory.unavailable(memory.rows[-1], "tflm_arena", str(row["tflm_arena"]))
    result.tables = [speed, memory]
    result.commentary = _commentary(speed, memory)
    return result


def _commentary(speed: Table, memory: Table) -> list[str]:
    lines = []
    ints = [r for r in speed.rows if str(r["model"]).endswith("_int8")]
    if ints:
        ups = {str(r["model"]): r.get("vs_tflm") for r in ints}
        slow = [
            f"{m} ({v:.1f}x)" if isinstance(v, float) else m
            for m, v in ups.items()
            if not (isinstance(v, float) and v >= 3)
        ]
        inexact = [r["model"] for r in ints if r.get("c_eq_tflm") is not True]
        listed = ", ".join(
            f"{m.removeprefix('mlperf_tiny_')} {v:.1f}x" for m, v in ups.items() if isinstance(v, float)
        )
        lines.append(
            'Target "bit-exact and >= 3x faster than TFLM\'s reference kernels on every MLPerf Tiny model" '
            f"(int8): {'**met**' if not slow and not inexact else '**not met**'} — TFLM / C: {listed}"
            + (f"; below 3x: {', '.join(slow)}" if slow else "")
            + (f"; not bit-exact: {', '.join(inexact)}" if inexact else "")
            + "."
        )
    rows = [r for r in memory.rows if isinstance(r.get("ram_vs_tflm"), float)]
    if rows:
        bigger = [r["model"] for r in rows if r["ram_vs_tflm"] >= 1]
        lines.append(
            f'Target "smaller RAM total than TFLM needs": {"**met**" if not bigger else "**not met**"} on '
            f"{len(rows) - len(bigger)} of {len(rows)} models (RAM = arena + stack of the C library vs TFLite "
            "Micro's arena alone)" + (f"; not smaller: {', '.join(bigger)}" if bigger else "") + "."
        )
    return lines

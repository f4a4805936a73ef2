"""Peer tools, each driven from a child process so that a crash costs one row, not the run.

* `PeerWorker("litert" | "tflm" | "ort", model_bytes)` starts a child that loads the
  model once and then answers ``run(inputs)`` with the outputs and the seconds
  spent in ``invoke()`` alone (timed inside the child, so IPC is not counted).
  The child's C++ output (fds 1 and 2) goes to a log file: TFLite Micro prints
  its arena report there (``print_allocations``), and a crash's last words are
  quoted from it.
* `run_vela(path)` compiles a .tflite with Arm's Vela CLI in a temporary folder
  and reads "Total SRAM used" from its summary CSV.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

TFLM_ARENA = 32 * 1024 * 1024
"""Arena handed to TFLite Micro (the head it reports does not depend on it, as long as it fits)."""

VELA_ARGS = (
    "--accelerator-config",
    "ethos-u55-128",
    "--config",
    "Arm/vela.ini",
    "--system-config",
    "Ethos_U55_High_End_Embedded",
    "--memory-mode",
    "Sram_Only",
)
"""Vela 5.2 options: the Sram_Only memory mode is defined in its bundled Arm/vela.ini, for Ethos-U55 systems."""


class PeerError(Exception):
    """A peer could not load or run a model (the message says why, in one line)."""


@dataclass
class PeerInfo:
    """What a worker reports once the model is loaded."""

    inputs: list[tuple[tuple[int, ...], str]]
    outputs: list[tuple[tuple[int, ...], str]]
    allocations: dict[str, int] = field(default_factory=dict)
    """TFLite Micro only: ``total``, ``head`` (planned activations) and ``tail`` bytes."""


# --------------------------------------------------------------------------
# .tflite helpers
# --------------------------------------------------------------------------


def tflite_io_counts(model: bytes) -> tuple[int, int]:
    """Number of inputs and outputs of the first subgraph."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

    sg = tfl.Model.GetRootAs(model, 0).Subgraphs(0)
    return sg.InputsLength(), sg.OutputsLength()


def patch_quantized_dimension(model: bytes) -> tuple[bytes, int]:
    """A copy where a quantized dimension beyond a tensor's rank is set to 0 (LiteRT rejects it).

    `tflm_person_detect_int8` records ``quantized_dimension=3`` on 1-D per-tensor
    bias tensors; TFLite Micro ignores it, LiteRT 2.3 refuses the model. Setting
    it to 0 does not change the meaning of a single-scale quantization.
    Returns the bytes (unchanged when nothing needed fixing) and the number of
    tensors fixed.
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

    m = tfl.ModelT.InitFromPackedBuf(bytearray(model), 0)
    fixed = 0
    for sg in m.subgraphs or []:
        for t in sg.tensors or []:
            q = t.quantization
            rank = len(t.shape) if t.shape is not None else 0
            if q is not None and q.quantizedDimension and q.quantizedDimension >= max(rank, 1):
                q.quantizedDimension = 0
                fixed += 1
    if not fixed:
        return model, 0
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), fixed


# --------------------------------------------------------------------------
# The child process
# --------------------------------------------------------------------------


def _details(shape: Any, dtype: Any) -> tuple[tuple[int, ...], str]:
    return tuple(int(d) for d in np.asarray(shape).ravel()), np.dtype(dtype).name


class _LiteRT:
    def __init__(self, model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.interp = Interpreter(
            model_content=model,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            num_threads=1,
        )
        self.interp.allocate_tensors()
        self.ins = self.interp.get_input_details()
        self.outs = self.interp.get_output_details()
        self.info = PeerInfo(
            [_details(d["shape"], d["dtype"]) for d in self.ins],
            [_details(d["shape"], d["dtype"]) for d in self.outs],
        )

    def run(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        for d, x in zip(self.ins, inputs, strict=True):
            self.interp.set_tensor(d["index"], x)
        start = time.perf_counter()
        self.interp.invoke()
        seconds = time.perf_counter() - start
        return [np.array(self.interp.get_tensor(d["index"])) for d in self.outs], seconds


ALLOCATION_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


class _TFLM:
    def __init__(self, model: bytes, log_path: str, n_in: int, n_out: int) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.interp = runtime.Interpreter.from_bytes(model, arena_size=TFLM_ARENA + len(model))
        start = os.path.getsize(log_path)
        self.interp.print_allocations()  # C++ prints to fd 1, which is the log
        sys.stdout.flush()
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            text = handle.read()
        allocations = {k: int(v) for k, v in ALLOCATION_RE.findall(text)}
        self.n_in, self.n_out = n_in, n_out
        ins = [self.interp.get_input_details(i) for i in range(n_in)]
        outs = [self.interp.get_output_details(i) for i in range(n_out)]
        self.info = PeerInfo(
            [_details(d["shape"], d["dtype"]) for d in ins],
            [_details(d["shape"], d["dtype"]) for d in outs],
            allocations,
        )

    def run(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        for i, x in enumerate(inputs):
            self.interp.set_input(x, i)
        start = time.perf_counter()
        self.interp.invoke()
        seconds = time.perf_counter() - start
        return [np.array(self.interp.get_output(i)) for i in range(self.n_out)], seconds


class _ORT:
    def __init__(self, model: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.ins = self.sess.get_inputs()
        self.outs = self.sess.get_outputs()
        dt = {
            "tensor(float)": "float32",
            "tensor(int8)": "int8",
            "tensor(uint8)": "uint8",
            "tensor(int64)": "int64",
        }
        self.info = PeerInfo(
            [(tuple(d.shape), dt.get(d.type, d.type)) for d in self.ins],
            [(tuple(d.shape), dt.get(d.type, d.type)) for d in self.outs],
        )

    def run(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        feed = {d.name: x for d, x in zip(self.ins, inputs, strict=True)}
        start = time.perf_counter()
        outputs = self.sess.run(None, feed)
        seconds = time.perf_counter() - start
        return [np.array(o) for o in outputs], seconds


def _worker(conn: Connection, kind: str, model: bytes, log_path: str, n_in: int, n_out: int) -> None:
    """Child process main: load, report, then serve ``run`` requests until ``close``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    runner: _LiteRT | _TFLM | _ORT
    try:
        if kind == "litert":
            runner = _LiteRT(model)
        elif kind == "tflm":
            runner = _TFLM(model, log_path, n_in, n_out)
        elif kind == "ort":
            runner = _ORT(model)
        else:
            raise ValueError(f"unknown peer {kind}")
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", runner.info))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] != "run":
            return
        try:
            outputs, seconds = runner.run(msg[1])
            conn.send(("ok", outputs, seconds))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class PeerWorker:
    """A peer interpreter holding one model in a child process."""

    def __init__(self, kind: str, model: bytes, *, timeout: float = 600.0) -> None:
        self.kind = kind
        self.timeout = timeout
        n_in, n_out = tflite_io_counts(model) if kind == "tflm" else (0, 0)
        handle, self.log_path = tempfile.mkstemp(prefix=f"nnopt-bench-{kind}-", suffix=".log")
        os.close(handle)
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker, args=(child, kind, model, self.log_path, n_in, n_out), daemon=True
        )
        self.proc.start()
        child.close()
        try:
            msg = self._recv()
            if msg[0] == "error":
                raise PeerError(self._reason(msg[1]))
        except PeerError:
            self.close()
            raise
        self.info: PeerInfo = msg[1]

    def _log_tail(self, limit: int = 160) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                lines = [ln.strip() for ln in handle if ln.strip()]
        except OSError:
            return ""
        text = " / ".join(lines[-3:])
        return text if len(text) <= limit else "…" + text[-limit:]

    def _reason(self, message: str) -> str:
        tail = self._log_tail()
        text = " ".join(message.split())
        return f"{text} ({tail})" if tail and tail not in text else text

    def _recv(self) -> tuple[Any, ...]:
        if not self.conn.poll(self.timeout):
            self.proc.kill()
            raise PeerError(f"{self.kind}: no answer within {self.timeout:.0f} s")
        try:
            msg: tuple[Any, ...] = self.conn.recv()
        except (EOFError, ConnectionError):
            self.proc.join(5)
            code = self.proc.exitcode
            what = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            raise PeerError(f"crashed ({what}); {self._log_tail()}") from None
        return msg

    def run(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        """Outputs and invoke() seconds for one inference."""
        self.conn.send(("run", inputs))
        msg = self._recv()
        if msg[0] == "error":
            raise PeerError(self._reason(msg[1]))
        return msg[1], msg[2]

    def close(self) -> None:
        """Stop the child and remove its log."""
        try:
            if self.proc.is_alive():
                self.conn.send(("close",))
                self.proc.join(10)
        except (OSError, ValueError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)

    def __enter__(self) -> PeerWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tflm_allocations(model: bytes) -> dict[str, int]:
    """TFLite Micro's arena report (total / head / tail bytes) for a model."""
    with PeerWorker("tflm", model) as worker:
        if "head" not in worker.info.allocations:
            raise PeerError("print_allocations() printed no 'Arena allocation head'")
        return worker.info.allocations


# --------------------------------------------------------------------------
# Vela
# --------------------------------------------------------------------------


@dataclass
class VelaResult:
    """Vela's summary of one compilation."""

    sram_bytes: int | None
    npu_ops: int
    cpu_ops: int
    seconds: float


def vela_executable() -> list[str]:
    """The command that runs Vela: the ``vela`` script beside this Python, or on PATH."""
    here = Path(sys.executable).parent / "vela"
    if here.exists():
        return [str(here)]
    found = shutil.which("vela")
    if found:
        return [found]
    raise PeerError("ethos-u-vela is not installed (pip install ethos-u-vela)")


def run_vela(path: Path, timeout: float = 600.0) -> VelaResult:
    """Compile `path` with Vela (Sram_Only) and read Total SRAM used, in bytes."""
    with tempfile.TemporaryDirectory(prefix="nnopt-vela-") as tmp:
        cmd = [*vela_executable(), str(path), *VELA_ARGS, "--output-dir", tmp]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PeerError(f"vela: no result within {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            raise PeerError(f"vela exit {proc.returncode}: {' / '.join(lines[-2:])[:200]}")
        npu = re.search(r"NPU operators = (\d+)", text)
        cpu = re.search(r"CPU operators = (\d+)", text)
        sram: int | None = None
        summaries = list(Path(tmp).glob("*_summary_*.csv"))
        if summaries:
            with open(summaries[0], newline="", encoding="utf-8") as handle:
                row = next(csv.DictReader(handle), None)
            if row and row.get("sram_memory_used") not in (None, ""):
                sram = round(float(row["sram_memory_used"]) * 1024)  # KiB as a float: exact
        if sram is None:
            m = re.search(r"Total SRAM used\s+([\d.]+) KiB", text)
            sram = round(float(m.group(1)) * 1024) if m else None
        return VelaResult(sram, int(npu.group(1)) if npu else 0, int(cpu.group(1)) if cpu else 0, seconds)

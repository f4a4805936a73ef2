"""Simulate a mapped graph on analog tiles: conductance levels, converters, noise, drift, faults.

    from nnopt.backends.analog.simulator import AnalogModel

    model = AnalogModel(mapped_module)       # after nn-map-analog
    model.calibrate(calibration_inputs)      # when a converter range is "calibrated"
    chip = model.program(seed=0)             # programming noise, drift, faults: one chip instance
    outputs = model.run(inputs, chip)        # read noise and converters on every product

Mapped ops run as analog products block by block; every other op (and every op
of an unmapped graph) runs on the numpy interpreter's kernels. One block of a
matrix (see `nnopt.backends.analog.mapping`) computes, for input vectors ``X``:

1. **DAC**: ``s`` = the absolute maximum of each input vector (``abs-max``) or a
   calibrated full scale; ``x = X / s`` is quantized to ``2^b - 1`` symmetric
   levels over ``[-1, 1]`` (step ``2 / (2^b - 2)``) and clipped.
2. **Cells**: weights are normalized per block column, ``w / max|w[:, c]|``, and
   rounded to the levels ``-K..K`` (`TileTarget.levels`). A differential pair
   stores ``g+ = max(k, 0) / K`` and ``g- = max(-k, 0) / K``; an offset cell stores
   ``g = (k/K + 1) / 2`` against an exact reference column (effective weight
   ``2g - 1``). Programming adds ``N(0, sigma(g))`` to every programmed cell
   (erased cells stay off unless ``program_off_cells``), clipped at 0; drift
   multiplies by ``((t + t0) / t0)^-nu``; stuck cells are forced to 0 or g_max.
3. **Columns**: ``y = x @ (g+ - g-)`` plus read noise (``read`` x each cell's
   conductance, per read) and output noise.
4. **ADC**: quantized with step ``2 * bound / (2^b - 2)`` and clipped at
   ``bound`` (fixed, per-column calibrated, or the column's worst case); with
   bound management a vector whose output clips is re-run with half the input.
5. **Digital**: ``y * s * max|w[:, c]|`` (times the drift compensation), partial
   sums of row-split blocks added, bias and activation applied, and the result
   quantized to the op's output type when that is quantized.

Random numbers come from ``numpy.random.default_rng([seed, k])`` streams drawn in
a fixed order, so the same seed gives bit-identical results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from nnopt.backends.analog.ir import MappedOp, graph_target, read_mapping
from nnopt.backends.analog.matrices import MatrixOp, to_real
from nnopt.backends.numpy.arrays import activate, element_dtype, quantize_away
from nnopt.backends.numpy.interpreter import Inputs, _bind_inputs, make_kernel, select_graph, value_names
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets.tiles import TileTarget
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

MAX_BOUND_ROUNDS = 10
"""Bound management halves the input at most this many times (aihwkit: up to a factor ~1000)."""

AnalogDump = Callable[[str, Operation, np.ndarray], None]
"""``dump(name, op, real_value)`` for every op result of an analog run (real values)."""


@dataclass
class Block:
    """One rectangle of one op's matrix on a tile, with its programming targets."""

    op: int
    tile: int
    row: int
    col: int
    matrix_row: int
    matrix_col: int
    rows: int
    cols: int
    target: np.ndarray = field(repr=False)
    """``[rows, cols]`` normalized weights in [-1, 1] (k / K when the cells have levels)."""
    scale: np.ndarray = field(repr=False)
    """``[cols]`` real weight per normalized unit: the block column's max |w|."""
    nonzero: np.ndarray = field(repr=False)
    """``[rows, cols]`` float32 1.0 where the target weight is not zero."""
    share: np.ndarray = field(repr=False)
    """``[rows]`` non-zero cells of *other* blocks on the same word lines of the tile (parasitic)."""
    input_scale: float = 0.0
    """Calibrated DAC full scale (real units); 0 before calibration."""
    adc_bound: np.ndarray | None = field(repr=False, default=None)
    """ADC full scale per column (normalized units)."""

    @property
    def zero_weights(self) -> int:
        """Weights (inside the block) whose level is zero."""
        return int(self.rows * self.cols - self.nonzero.sum())


@dataclass
class ProgrammedBlock:
    """A block as one chip holds it."""

    weights: np.ndarray = field(repr=False)
    """Effective normalized weights (g+ - g-, or 2g - 1)."""
    square: np.ndarray | None = field(repr=False)
    """Sum of squared conductances per weight (read-noise variance), when read noise is on."""
    compensation: float = 1.0


@dataclass
class Chip:
    """One programmed instance of the mapping (one Monte Carlo seed)."""

    seed: int
    blocks: list[ProgrammedBlock]
    reads: np.random.Generator
    stuck: int = 0


@dataclass
class Counters:
    """Event counts of analog runs (summed over runs)."""

    vectors: int = 0
    dac: int = 0
    adc: int = 0
    macs: int = 0
    parasitic_macs: int = 0
    bus_bytes: int = 0
    partial_adds: int = 0
    clipped: int = 0
    """Output values that hit the ADC bound (before bound management)."""
    outputs: int = 0
    runs: int = 0

    def add(self, other: Counters) -> None:
        """Accumulate."""
        for key in self.__dataclass_fields__:
            setattr(self, key, getattr(self, key) + getattr(other, key))


def _quantize(x: np.ndarray, steps: int | None, bound: float | np.ndarray) -> np.ndarray:
    """Round to `steps` uniform steps over [-bound, bound] (aihwkit's UniformQuantize), then clip."""
    if steps is not None:
        res = 2.0 * np.asarray(bound) / steps
        x = np.round(x / res) * res
    return np.clip(x, -bound, bound)


class AnalogModel:
    """A mapped graph ready for simulation (see the module docstring)."""

    def __init__(
        self,
        module_or_graph: ModuleOp | nn.GraphOp,
        tiles: TileTarget | None = None,
        graph: str | None = None,
    ) -> None:
        self.graph = select_graph(module_or_graph, graph)
        target = tiles if tiles is not None else graph_target(self.graph)
        if target is None:
            raise UserError(
                f"graph @{self.graph.sym_name.data} is not mapped to analog tiles (run nn-map-analog)"
            )
        self.tiles: TileTarget = target
        self.mapped: list[MappedOp] = read_mapping(self.graph, target)
        self.matrices: list[MatrixOp] = [m.matrix for m in self.mapped]
        self._index: dict[Operation, int] = {m.matrix.op: i for i, m in enumerate(self.mapped)}
        self.blocks: list[Block] = []
        self.op_blocks: list[list[int]] = [[] for _ in self.mapped]
        for i, mop in enumerate(self.mapped):
            for t, r, c, mr, mc, nr, nc in sorted(mop.blocks, key=lambda b: (b[3], b[4], b[0])):
                self.op_blocks[i].append(len(self.blocks))
                self.blocks.append(self._make_block(i, mop.matrix, (t, r, c, mr, mc, nr, nc)))
        self._shares()
        self.ops = [op for op in self.graph.block.ops if not isinstance(op, nn.OutputOp)]
        self._kernels = {op: make_kernel(op) for op in self.ops if op not in self._index}
        self.names = value_names(self.graph)
        self.calibrated = False
        self.tile_count = 1 + max((b.tile for b in self.blocks), default=-1)

    # -- preparation --------------------------------------------------------
    def _make_block(self, op: int, m: MatrixOp, values: tuple[int, ...]) -> Block:
        t, r, c, mr, mc, nr, nc = values
        w = m.block(mr, mc, nr, nc)
        scale = np.abs(w).max(axis=0)
        scale[scale == 0] = 1.0
        target = w / scale
        levels = self.tiles.levels
        if levels is not None:
            target = np.round(target * levels) / levels
        nonzero = (target != 0).astype(np.float32)
        return Block(op, t, r, c, mr, mc, nr, nc, target, scale, nonzero, np.zeros(nr, dtype=np.float32))

    def _shares(self) -> None:
        """Non-zero cells of other blocks on each block's word lines (they conduct when those lines are driven)."""
        by_tile: dict[int, list[Block]] = {}
        for b in self.blocks:
            by_tile.setdefault(b.tile, []).append(b)
        for group in by_tile.values():
            if len(group) < 2:
                continue
            line = np.zeros(self.tiles.rows, dtype=np.float32)
            for b in group:
                line[b.row : b.row + b.rows] += b.nonzero.sum(axis=1)
            for b in group:
                b.share = line[b.row : b.row + b.rows] - b.nonzero.sum(axis=1)

    @property
    def needs_calibration(self) -> bool:
        """True when a converter range is calibrated from data."""
        return self.tiles.dac.range == "calibrated" or self.tiles.adc.range == "calibrated"

    def _adc_bounds(self) -> None:
        adc = self.tiles.adc
        for b in self.blocks:
            worst = np.abs(b.target).sum(axis=0)
            worst[worst == 0] = 1.0
            if adc.range == "fixed":
                b.adc_bound = np.full(b.cols, adc.bound)
            elif adc.range == "column-max" or b.adc_bound is None:
                b.adc_bound = worst

    def calibrate(self, samples: Sequence[Inputs]) -> None:
        """Set calibrated converter ranges from ideal runs on `samples` (per block, per column)."""
        if not samples:
            raise UserError("calibration needs at least one input sample")
        peak_x = np.zeros(len(self.blocks))
        peak_y = [np.zeros(b.cols) for b in self.blocks]
        dac = self.tiles.dac

        def probe(bi: int, x: np.ndarray) -> None:
            b = self.blocks[bi]
            peak_x[bi] = max(peak_x[bi], float(np.abs(x).max(initial=0.0)))
            if dac.range == "abs-max":
                s = np.abs(x).max(axis=1, keepdims=True)
                s[s == 0] = 1.0
                y = (x / s) @ b.target
                peak_y[bi] = np.maximum(peak_y[bi], np.abs(y).max(axis=0))

        for sample in samples:
            self._execute(sample, None, None, probe)
        for bi, b in enumerate(self.blocks):
            b.input_scale = dac.headroom * peak_x[bi] if peak_x[bi] > 0 else 1.0
        if dac.range == "calibrated":  # ADC peaks need the final DAC scales: a second pass
            for sample in samples:
                self._execute(sample, None, None, self._probe_fixed(peak_y))
        adc = self.tiles.adc
        for bi, b in enumerate(self.blocks):
            worst = np.abs(b.target).sum(axis=0)
            worst[worst == 0] = 1.0
            bound = adc.headroom * peak_y[bi]
            b.adc_bound = np.where(bound > 0, bound, worst) if adc.range == "calibrated" else None
        self._adc_bounds()
        self.calibrated = True

    def _probe_fixed(self, peak_y: list[np.ndarray]) -> Callable[[int, np.ndarray], None]:
        def probe(bi: int, x: np.ndarray) -> None:
            b = self.blocks[bi]
            y = np.clip(x / b.input_scale, -1.0, 1.0) @ b.target
            peak_y[bi] = np.maximum(peak_y[bi], np.abs(y).max(axis=0))

        return probe

    # -- programming ----------------------------------------------------------
    def program(self, seed: int) -> Chip:
        """One chip: programming noise, drift and stuck cells drawn from `seed`."""
        if self.needs_calibration and not self.calibrated:
            raise UserError(
                f"tile target '{self.tiles.name}' has calibrated converter ranges: calibrate first"
            )
        if not self.calibrated:
            self._adc_bounds()
        noise = self.tiles.noise
        rng = np.random.default_rng([seed, 1])
        c0, c1, c2 = noise.programming
        drift = noise.time > 0 and (noise.drift_nu > 0 or noise.drift_nu_std > 0)
        factor = (noise.time + noise.drift_t0) / noise.drift_t0
        stuck = 0
        blocks: list[ProgrammedBlock] = []
        for b in self.blocks:
            if self.tiles.encoding == "differential":
                devices = [np.maximum(b.target, 0.0), np.maximum(-b.target, 0.0)]
            else:
                devices = [(b.target + 1.0) / 2.0]
            programmed: list[np.ndarray] = []
            before = 0.0
            after = 0.0
            for g in devices:
                out = g.copy()
                if any(noise.programming):
                    on = np.ones(g.shape, dtype=bool) if noise.program_off_cells else g > 0
                    sigma = c0 + c1 * g + c2 * g * g
                    out = np.where(on, g + sigma * rng.standard_normal(g.shape), g)
                    np.maximum(out, 0.0, out=out)
                if drift:
                    before += float(np.abs(out).sum())
                    nu = np.abs(noise.drift_nu + noise.drift_nu_std * rng.standard_normal(g.shape))
                    out = out * factor ** (-nu)
                    after += float(np.abs(out).sum())
                if noise.stuck_off > 0 or noise.stuck_on > 0:
                    u = rng.random(g.shape)
                    off = u < noise.stuck_off
                    on_ = (u >= noise.stuck_off) & (u < noise.stuck_off + noise.stuck_on)
                    out = np.where(off, 0.0, np.where(on_, 1.0, out))
                    stuck += int(off.sum() + on_.sum())
                programmed.append(out)
            if len(programmed) == 2:
                weights = programmed[0] - programmed[1]
                square = programmed[0] ** 2 + programmed[1] ** 2 if noise.read > 0 else None
            else:
                weights = 2.0 * programmed[0] - 1.0
                square = 4.0 * programmed[0] ** 2 if noise.read > 0 else None
            comp = before / after if drift and noise.drift_compensation and after > 0 else 1.0
            blocks.append(ProgrammedBlock(weights, square, comp))
        return Chip(seed, blocks, np.random.default_rng([seed, 2]), stuck)

    # -- one block ----------------------------------------------------------
    def _mvm(self, bi: int, x: np.ndarray, chip: Chip, counts: Counters | None) -> np.ndarray:
        b = self.blocks[bi]
        pb = chip.blocks[bi]
        tiles = self.tiles
        dac, adc, noise = tiles.dac, tiles.adc, tiles.noise
        if dac.range == "abs-max":
            s = np.abs(x).max(axis=1, keepdims=True)
            s[s == 0] = 1.0
        else:
            s = np.full((x.shape[0], 1), b.input_scale)
        assert b.adc_bound is not None
        bound = b.adc_bound
        y = np.empty((x.shape[0], b.cols))
        todo = np.arange(x.shape[0])
        reduction = np.ones((x.shape[0], 1))
        rounds = 0
        while True:
            xn = x[todo] / (s[todo] * reduction[todo])
            xq = _quantize(xn, dac.steps, 1.0)
            out = xq @ pb.weights
            if noise.read > 0:
                assert pb.square is not None
                out += chip.reads.standard_normal(out.shape) * (noise.read * np.sqrt((xq * xq) @ pb.square))
            if noise.output > 0:
                out += chip.reads.standard_normal(out.shape) * noise.output
            clipped = np.abs(out) >= bound
            out = _quantize(out, adc.steps, bound)
            if counts is not None:
                counts.dac += xq.size
                counts.adc += out.size
                counts.bus_bytes += xq.size * dac.bytes_per_value + out.size * adc.bytes_per_value
                if rounds == 0:
                    counts.clipped += int(clipped.sum())
                    counts.outputs += out.size
            y[todo] = out
            again = clipped.any(axis=1)
            if not adc.bound_management or not again.any() or rounds >= MAX_BOUND_ROUNDS:
                break
            todo = todo[again]
            reduction[todo] *= 2.0
            rounds += 1
        if counts is not None:
            active = (x != 0).astype(np.float32)
            counts.macs += int((active @ b.nonzero).sum())
            counts.parasitic_macs += int((active @ b.share).sum())
        return y * (s * reduction) * (b.scale * pb.compensation)

    # -- a whole run ------------------------------------------------------------
    def _matrix_op(
        self,
        i: int,
        x_value: np.ndarray,
        chip: Chip | None,
        counts: Counters | None,
        probe: Callable[[int, np.ndarray], None] | None,
    ) -> np.ndarray:
        m = self.matrices[i]
        op = m.op
        x = to_real(x_value, op.operands[0])
        patches = m.patches(x)
        y = np.zeros((patches.shape[0], m.cols))
        covered = np.zeros(m.cols, dtype=np.int64)
        for bi in self.op_blocks[i]:
            b = self.blocks[bi]
            part = patches[:, b.matrix_row : b.matrix_row + b.rows]
            if probe is not None:
                probe(bi, part)
                out = part @ (b.target * b.scale)
            elif chip is None:
                out = part @ (b.target * b.scale)
            else:
                out = self._mvm(bi, part, chip, counts)
            y[:, b.matrix_col : b.matrix_col + b.cols] += out
            covered[b.matrix_col : b.matrix_col + b.cols] += 1
        if counts is not None:
            counts.vectors += patches.shape[0] * len(self.op_blocks[i])
            counts.partial_adds += patches.shape[0] * int(np.maximum(covered - 1, 0).sum())
        if m.bias is not None:
            y = y + m.bias
        activation = (
            op.activation()
            if isinstance(op, nn.FullyConnectedOp | nn.Conv2DOp | nn.DepthwiseConv2DOp)
            else "none"
        )
        y = activate(y.reshape(m.output_shape()), activation)
        result: SSAValue = op.results[0]
        elem = nn.elem_of(result)
        if isinstance(elem, UniformQuantizedType):
            q = quantize_away(y.astype(np.float32), elem.scale, elem.zero_point)
            return np.clip(q, elem.qmin, elem.qmax).astype(elem.numpy_dtype)
        return y.astype(element_dtype(elem))

    def _execute(
        self,
        inputs: Inputs,
        chip: Chip | None,
        counts: Counters | None,
        probe: Callable[[int, np.ndarray], None] | None = None,
        dump: AnalogDump | None = None,
    ) -> dict[str, np.ndarray]:
        bound = _bind_inputs(self.graph, inputs)
        env: dict[SSAValue, np.ndarray] = {}
        for arg, value in zip(self.graph.block.args, bound, strict=True):
            assert value is not None
            env[arg] = value
        for op in self.ops:
            index = self._index.get(op)
            args = [env[v] for v in op.operands]
            if index is not None:
                result = self._matrix_op(index, args[0], chip, counts, probe)
            else:
                result = self._kernels[op](args)
            env[op.results[0]] = result
            if dump is not None and not isinstance(op, nn.ConstOp):
                dump(self.names[op.results[0]], op, to_real(result, op.results[0]))
        if counts is not None:
            counts.runs += 1
        return {n: env[v] for n, v in zip(self.graph.output_names(), self.graph.output.values, strict=True)}

    def run(
        self,
        inputs: Inputs,
        chip: Chip | None = None,
        *,
        counts: Counters | None = None,
        dump: AnalogDump | None = None,
    ) -> dict[str, np.ndarray]:
        """One inference (outputs by name, in the graph's element types); `chip` None: exact products.

        `counts` accumulates the events of the run (DAC/ADC conversions, MACs,
        bus bytes); `dump` sees every op result as real values.
        """
        if chip is None:
            return self._execute(inputs, None, None, None, dump)
        return self._execute(inputs, chip, counts, None, dump)

    # -- statistics of the mapping ----------------------------------------------
    def op_of(self, i: int) -> Operation:
        """The op of mapped matrix `i`."""
        return self.matrices[i].op

    def layer_name(self, i: int) -> str:
        """The SSA name of mapped op `i`'s result."""
        return self.names[self.matrices[i].op.results[0]]


def real_outputs(graph: nn.GraphOp, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Graph outputs as real values (quantized outputs dequantized), float64."""
    return {
        name: to_real(outputs[name], value)
        for name, value in zip(graph.output_names(), graph.output.values, strict=True)
    }


def snr_db(reference: np.ndarray, value: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum (value - ref)^2)``; inf when equal."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    err = np.asarray(value, dtype=np.float64).reshape(-1) - ref
    noise = float(np.dot(err, err))
    signal = float(np.dot(ref, ref))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def top1_agreement(reference: np.ndarray, value: np.ndarray) -> float:
    """Fraction of rows (last axis) whose argmax agrees."""
    ref = np.asarray(reference).reshape(-1, reference.shape[-1])
    val = np.asarray(value).reshape(-1, reference.shape[-1])
    return float(np.mean(ref.argmax(axis=1) == val.argmax(axis=1)))

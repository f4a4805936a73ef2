"""The analog simulator against the numpy interpreter: ideal tiles, tiling, converter bits, seeds, noise."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nnopt.backends.analog.evaluate import evaluate
from nnopt.backends.analog.reference import float_twin
from nnopt.backends.analog.simulator import AnalogModel, Counters, real_outputs, snr_db
from nnopt.backends.numpy import run
from nnopt.compiler.commands.run import input_specs, random_input
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.compiler.targets.tiles import TileTarget, load_tiles
from nnopt.dialects import nn
from nnopt.passes.map_analog import map_graph

from .conftest import shared_path
from .test_analog_mapping import SMALL

IDEAL = load_tiles("ideal")


def load_graph(path: Path | str) -> nn.GraphOp:
    return next(op for op in load_model(str(path)).walk() if isinstance(op, nn.GraphOp))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    return path


def samples_for(graph: nn.GraphOp, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    specs = input_specs(graph)
    return [{s.name: random_input(s, rng) for s in specs} for _ in range(n)]


def outputs(
    graph: nn.GraphOp,
    tiles: TileTarget,
    samples: Sequence[dict[str, np.ndarray]],
    seed: int = 0,
    pack: bool = True,
) -> np.ndarray:
    """The first output of every sample on one chip, as real values."""
    map_graph(graph, tiles, pack)
    model = AnalogModel(graph)
    if model.needs_calibration:
        model.calibrate(samples)
    chip = model.program(seed)
    return np.stack([next(iter(real_outputs(graph, model.run(s, chip)).values())) for s in samples])


def reference(graph: nn.GraphOp, samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    return np.stack([np.asarray(next(iter(run(graph, s).values())), dtype=np.float64) for s in samples])


def test_ideal_tiles_equal_the_float_reference(small: Path) -> None:
    graph = load_graph(small)
    samples = samples_for(graph, 6)
    assert snr_db(reference(graph, samples), outputs(graph, IDEAL, samples)) >= 100


def test_ideal_float_models_of_shared(tmp_path: Path) -> None:
    for name in ("mlperf_tiny_ad_autoencoder_f32.tflite", "mlperf_tiny_ic_resnet8_f32.tflite"):
        graph = load_graph(shared_path("models", name))
        samples = samples_for(graph, 2)
        assert snr_db(reference(graph, samples), outputs(graph, IDEAL, samples)) >= 100, name


def test_splitting_over_tiles_changes_nothing_in_ideal_arithmetic(small: Path) -> None:
    graph = load_graph(small)
    samples = samples_for(graph, 4)
    whole = outputs(graph, IDEAL.with_changes(rows=4096, cols=4096), samples)
    for rows, cols, pack in ((5, 3, True), (7, 4, False), (16, 16, True)):
        split = outputs(graph, IDEAL.with_changes(rows=rows, cols=cols), samples, pack=pack)
        assert AnalogModel(graph).tile_count > 5
        assert snr_db(whole, split) >= 100, (rows, cols, pack)


def test_converter_bits_give_six_db_per_bit(small: Path) -> None:
    """DAC = ADC = 4/6/8/10 bits, calibrated ranges, nothing else: ~6 dB per bit (+-2)."""
    graph = load_graph(small)
    samples = samples_for(graph, 8)
    ref = reference(graph, samples)
    snrs = []
    for bits in (4, 6, 8, 10):
        tiles = IDEAL.with_changes(dac_bits=bits, adc_bits=bits, adc_range="calibrated")
        snrs.append(snr_db(ref, outputs(graph, tiles, samples)))
    slopes = [(b - a) / 2 for a, b in itertools.pairwise(snrs)]
    assert all(4.0 <= s <= 8.0 for s in slopes), (snrs, slopes)
    assert 4.0 <= (snrs[-1] - snrs[0]) / 6 <= 8.0


def test_converter_bits_on_the_ad_autoencoder() -> None:
    graph = load_graph(shared_path("models", "mlperf_tiny_ad_autoencoder_f32.tflite"))
    samples = samples_for(graph, 16)
    ref = reference(graph, samples)
    snrs = [
        snr_db(
            ref, outputs(graph, IDEAL.with_changes(dac_bits=b, adc_bits=b, adc_range="calibrated"), samples)
        )
        for b in (4, 6, 8, 10)
    ]
    slopes = [(b - a) / 2 for a, b in itertools.pairwise(snrs)]
    assert all(4.0 <= s <= 8.0 for s in slopes), (snrs, slopes)


def test_same_seed_same_bits_other_seed_other_bits(small: Path) -> None:
    graph = load_graph(small)
    samples = samples_for(graph, 3)
    noisy = load_tiles("membrain-like").with_changes(
        noise_stuck_off=0.01,
        noise_output=0.01,
        noise_time=3600.0,
        noise_drift_nu=0.05,
        noise_drift_nu_std=0.01,
    )
    a = outputs(graph, noisy, samples, seed=7)
    b = outputs(graph, noisy, samples, seed=7)
    c = outputs(graph, noisy, samples, seed=8)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_more_noise_less_snr(small: Path) -> None:
    graph = load_graph(small)
    samples = samples_for(graph, 6)
    ref = reference(graph, samples)
    base = IDEAL.with_changes(bits_per_cell=4)
    quiet = snr_db(ref, outputs(graph, base, samples))
    mean = []
    for sigma in (0.01, 0.05):
        tiles = base.with_changes(noise_programming=sigma)
        mean.append(np.mean([snr_db(ref, outputs(graph, tiles, samples, seed=s)) for s in range(4)]))
    assert quiet > mean[0] > mean[1]


def test_cell_levels_quantize_weights(small: Path) -> None:
    graph = load_graph(small)
    map_graph(graph, IDEAL.with_changes(bits_per_cell=2))
    model = AnalogModel(graph)
    for block in model.blocks:
        levels = block.target * 3  # 2-bit cells in a differential pair: levels -3..3
        assert np.allclose(levels, np.round(levels)) and np.abs(levels).max() <= 3
    offset = IDEAL.with_changes(bits_per_cell=3, encoding="offset")
    map_graph(graph, offset)
    assert all(np.abs(b.target * 3).max() <= 3 for b in AnalogModel(graph).blocks)


def test_stuck_cells_and_counts(small: Path) -> None:
    graph = load_graph(small)
    map_graph(graph, IDEAL.with_changes(noise_stuck_on=0.5))
    model = AnalogModel(graph)
    chip = model.program(0)
    cells = sum(b.rows * b.cols for b in model.blocks) * 2
    assert 0.4 * cells < chip.stuck < 0.6 * cells
    counts = Counters()
    sample = samples_for(graph, 1)[0]
    model.run(sample, chip, counts=counts)
    # every block reads each of its op's vectors once: DAC = rows x vectors, ADC = cols x vectors
    dac = sum(b.rows * model.matrices[b.op].vectors for b in model.blocks)
    adc = sum(b.cols * model.matrices[b.op].vectors for b in model.blocks)
    assert (counts.dac, counts.adc, counts.runs) == (dac, adc, 1)
    assert 0 < counts.macs <= sum(b.rows * b.cols * model.matrices[b.op].vectors for b in model.blocks)


def test_bound_management_recovers_clipped_outputs(small: Path) -> None:
    graph = load_graph(small)
    samples = samples_for(graph, 4)
    ref = reference(graph, samples)
    tight = IDEAL.with_changes(adc_bits=10, adc_range="fixed", adc_bound=0.5)
    managed = tight.with_changes(adc_bound_management=True)
    assert snr_db(ref, outputs(graph, managed, samples)) > snr_db(ref, outputs(graph, tight, samples)) + 10


def test_calibration_is_required_when_the_target_says_so(small: Path) -> None:
    graph = load_graph(small)
    map_graph(graph, load_tiles("membrain-like"))
    with pytest.raises(UserError, match="calibrate first"):
        AnalogModel(graph).program(0)
    with pytest.raises(UserError, match="not mapped"):
        AnalogModel(load_graph(small))


def test_int8_model_against_its_references() -> None:
    graph = load_graph(shared_path("models", "tflm_hello_world_int8.tflite"))
    samples = samples_for(graph, 16)
    map_graph(graph, IDEAL)
    model = AnalogModel(graph)
    ev = evaluate(model, samples, seeds=2)
    assert ev.quantized and ev.snr_model.mean >= 30  # ideal products, requantized: within an LSB or so
    twin = float_twin(graph)
    assert all(not nn.is_quantized(v) for op in twin.block.ops for v in op.results)
    assert ev.model_vs_float_snr is not None and ev.model_vs_float_snr > 20

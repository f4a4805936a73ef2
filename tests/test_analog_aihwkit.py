"""Cross-check of the analog simulator against IBM aihwkit (skipped when aihwkit / torch are absent).

Same digits MLP, matched converters and programming noise (see `benchmarks.analog`): converters alone
give the same SNR to rounding, programming noise the same mean SNR within 1.5 dB over 5 seeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.analog import _mean_std, aihwkit_available, aihwkit_digits, digits_mlp, nnopt_digits
from nnopt.backends.analog.simulator import snr_db

pytestmark = pytest.mark.skipif(
    aihwkit_available() is not None, reason="aihwkit (extra peers-analog) is not installed"
)


@pytest.mark.parametrize(
    ("bits", "levels", "sigma", "tolerance"), [(6, None, 0.0, 0.05), (8, 15, 0.0, 0.05), (8, 15, 0.02, 1.5)]
)
def test_snr_matches_aihwkit(
    tmp_path: Path, bits: int, levels: int | None, sigma: float, tolerance: float
) -> None:
    graph, weights, xte, _ = digits_mlp(tmp_path)
    ours, _, ref = nnopt_digits(graph, xte, bits, levels, sigma, 5)
    theirs = [snr_db(ref, out) for out in aihwkit_digits(weights, xte, bits, levels, sigma, 5)]
    assert abs(_mean_std(ours)[0] - _mean_std(theirs)[0]) <= tolerance, (ours, theirs)

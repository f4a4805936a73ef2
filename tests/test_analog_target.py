"""Tile targets: presets, validation with located errors, round trip through data, --set overrides."""

from __future__ import annotations

import dataclasses

import pytest

from nnopt.compiler.commands.analog import apply_overrides
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets.tiles import load_tiles, parse_tiles, preset_names, tiles_from_data

MINIMAL = """name = "chip"
[tile]
rows = 64
cols = 32
"""


def test_presets_load_and_describe_themselves() -> None:
    assert preset_names() == ["aihwkit-inference", "ideal", "membrain-like"]
    membrain = load_tiles("membrain-like")
    assert (membrain.rows, membrain.cols, membrain.grid_rows, membrain.grid_cols) == (256, 256, 3, 4)
    assert membrain.levels == 15 and membrain.cells_per_weight == 2
    assert any("assumed" in note for note in membrain.notes)
    ideal = load_tiles("ideal")
    assert ideal.is_ideal and ideal.levels is None and ideal.dac.steps is None
    aihw = load_tiles("aihwkit-inference")
    # aihwkit's IOParameters: inp_res = 1/(2^7 - 2), out_res = 1/(2^9 - 2), out_bound 12, out_noise 0.06
    assert aihw.dac.steps == 126 and aihw.adc.steps == 510 and aihw.adc.bound == 12.0
    assert aihw.noise.output == 0.06 and aihw.noise.program_off_cells
    assert aihw.noise.programming == pytest.approx((0.26348 / 25, 1.9650 / 25, -1.1731 / 25), rel=1e-3)
    assert (aihw.rows, aihw.cols) == (512, 512)


def test_defaults_and_levels() -> None:
    t = parse_tiles(MINIMAL, "chip.toml")
    assert t.bits_per_cell == 4 and t.encoding == "differential" and t.levels == 15
    assert t.dac.bits == 8 and t.adc.range == "calibrated"
    offset = parse_tiles(MINIMAL + 'bits_per_cell = 3\nencoding = "offset"\n', "chip.toml")
    assert offset.levels == 3 and offset.cells_per_weight == 1


def test_round_trip_through_data() -> None:
    for name in preset_names():
        t = load_tiles(name)
        back = tiles_from_data(t.to_data(), "ir")
        assert dataclasses.replace(back, source=t.source) == t


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("bits_per_cell = 40\n", "chip.toml:5:17", "cell bits must be between 1 and 24"),
        ('encoding = "ternary"\n', "chip.toml:5:12", "'encoding' must be one of differential, offset"),
        ("colums = 3\n", "chip.toml:5:1", "did you mean 'cols'"),
        ("[noise]\nprogramming = [0.0, -0.1]\n", "chip.toml:6:15", "negative somewhere"),
        ("[noise]\nstuck_off = 2\n", "chip.toml:6:13", "probability"),
        ('[adc]\nrange = "log"\n', "chip.toml:6:9", "'range' must be one of calibrated, column-max, fixed"),
        ('[energy]\nmac = "3 parsecs"\n', "chip.toml:6:7", "unknown unit"),
        ("[tile2]\n", "chip.toml:1:1", "unknown key 'tile2'"),
    ],
)
def test_mistakes_are_located(extra: str, where: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_tiles(MINIMAL + extra, "chip.toml")
    assert info.value.location == where
    assert message in info.value.message


def test_missing_tile_table_and_bad_toml() -> None:
    with pytest.raises(UserError, match="missing required key 'tile'"):
        parse_tiles('name = "x"\n', "chip.toml")
    with pytest.raises(UserError) as info:
        parse_tiles("name = \n", "chip.toml")
    assert info.value.location == "chip.toml:1:8"


def test_load_errors_name_the_presets(tmp_path) -> None:
    with pytest.raises(UserError, match="presets: aihwkit-inference, ideal, membrain-like"):
        load_tiles("membrane")
    with pytest.raises(UserError, match="not found"):
        load_tiles(str(tmp_path / "none.toml"))
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL.replace('name = "chip"\n', ""))
    assert load_tiles(str(path)).name == "mine"


def test_overrides() -> None:
    t = apply_overrides(
        load_tiles("membrain-like"), ["dac.bits=6", "noise.programming=[0.01, 0.02]", "adc.range=fixed"]
    )
    assert t.dac.bits == 6 and t.noise.programming == (0.01, 0.02, 0.0) and t.adc.range == "fixed"
    assert apply_overrides(t, ["tile.bits_per_cell=ideal"]).levels is None
    with pytest.raises(UserError, match=r"expected SECTION\.KEY=VALUE"):
        apply_overrides(t, ["bits=6"])
    with pytest.raises(UserError, match="unknown section 'dax'"):
        apply_overrides(t, ["dax.bits=6"])
    with pytest.raises(UserError, match="DAC bits must be between"):
        apply_overrides(t, ["dac.bits=0"])

"""Analog tile targets: the crossbar tiles, converters, noise and energy of an in-memory-compute chip.

    from nnopt.compiler.targets.tiles import load_tiles

    tiles = load_tiles("membrain-like")        # a preset, or "path/to/chip.toml"
    print(tiles.rows, tiles.cols, tiles.levels, tiles.dac.bits, tiles.noise.programming)

A tile target is a TOML file (schema and every default: ``docs/analog.md``)::

    name = "my-chip"
    [tile]
    rows = 256                  # word lines: inputs per tile
    cols = 256                  # weight columns: outputs per tile
    bits_per_cell = 4           # 2^bits conductance levels per cell, or "ideal" (continuous)
    encoding = "differential"   # a pair of cells per weight, or "offset" (one cell, mid level = 0)
    [grid]
    rows = 3                    # tiles stacked in a grid sharing one analog-digital bus
    cols = 4
    [dac]
    bits = 8                    # or "ideal"
    range = "abs-max"           # per input vector and tile, or "calibrated" (fixed, from calibration data)
    [adc]
    bits = 8
    range = "calibrated"        # per-column gain from calibration data, "column-max" or "fixed" (bound)
    [noise]
    programming = 0.01          # sigma as a fraction of g_max, or [c0, c1, c2]: c0 + c1*g + c2*g^2
    [mapping]
    depthwise = "block-diagonal"
    [energy]
    mac = "250 fJ"

Vendors publish no tile sizes, bit counts or energies, so every value is a
parameter; the presets say which values are assumptions. Every mistake is a
`UserError` located at ``file:line:col`` of the offending key. `to_data` and
`tiles_from_data` carry a target through the IR (the graph attribute
``analog.target``) so that a mapped module can be simulated on its own.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from nnopt.compiler.targets.description import (
    _Locator,
    _Reader,
    load_toml,
    preset_file_text,
    preset_files,
    read_description,
    resolve_description,
)

ENCODINGS = ("differential", "offset")
"""Signed-weight encodings: a pair of cells (w+ and w-), or one cell whose mid level is zero."""

DAC_RANGES = ("abs-max", "calibrated")
"""Input range handling: scale each input vector by its absolute maximum (per tile), or a fixed
per-tile full scale measured on calibration inputs (inputs beyond it clip)."""

ADC_RANGES = ("calibrated", "column-max", "fixed")
"""Output range handling: per-column full scale from calibration inputs (per-column gain), the
column's worst case (sum of |w|: never clips), or one fixed bound for every column."""

DEPTHWISE_MODES = ("block-diagonal", "digital")
"""How depthwise (and grouped) convolutions are mapped: diagonal blocks on tiles, or left digital."""

_MAC_UNITS = {"": 1e-12, "pj": 1e-12, "nj": 1e-9, "fj": 1e-15}
_BYTE_UNITS = {"": 1e-12, "pj/b": 1e-12, "pj/byte": 1e-12, "nj/b": 1e-9, "fj/b": 1e-15}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0, "d": 86400.0, "y": 31557600.0}


@dataclass(frozen=True)
class Converter:
    """A DAC or an ADC."""

    bits: int | None
    """Resolution; None for an ideal converter (no quantization)."""
    range: str
    """See `DAC_RANGES` / `ADC_RANGES`."""
    bound: float = 1.0
    """ADC ``fixed`` range: full scale in normalized units (one fully-on cell at full input = 1)."""
    headroom: float = 1.0
    """``calibrated`` ranges: full scale = headroom x the largest magnitude seen in calibration."""
    bound_management: bool = False
    """ADC only (aihwkit's iterative bound management): halve the input while an output clips."""

    @property
    def steps(self) -> int | None:
        """Quantization steps from -full scale to +full scale (``2^bits - 2``), None when ideal.

        A b-bit converter covers ``[-1, 1]`` with the symmetric codes
        ``-(2^(b-1) - 1) .. 2^(b-1) - 1`` (aihwkit's ``res = 1 / (2^b - 2)``)."""
        return None if self.bits is None else (1 << self.bits) - 2

    @property
    def bytes_per_value(self) -> int:
        """Bytes one converted value takes on the bus (4 for an ideal converter: a float)."""
        return 4 if self.bits is None else max(1, math.ceil(self.bits / 8))


@dataclass(frozen=True)
class Noise:
    """Device non-idealities, all in units of g_max (the largest cell conductance)."""

    programming: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Programming noise sigma = c0 + c1*g + c2*g^2 for a target conductance g in [0, 1]."""
    program_off_cells: bool = False
    """False: cells whose target is 0 (erased) stay exactly off; True: they get programming noise
    too, clipped at 0 (aihwkit programs both cells of every pair)."""
    read: float = 0.0
    """Read noise per read: sigma relative to the cell's own conductance."""
    output: float = 0.0
    """Gaussian noise added to every column before the ADC, in normalized units."""
    drift_nu: float = 0.0
    """Mean drift exponent: g(t) = g * ((t + t0) / t0)^-nu, nu = |N(drift_nu, drift_nu_std)| per cell."""
    drift_nu_std: float = 0.0
    drift_t0: float = 20.0
    """Seconds from programming to the first read (the drift reference)."""
    time: float = 0.0
    """Seconds after programming at which inference runs (0: no drift)."""
    drift_compensation: bool = True
    """Rescale each tile's outputs by its programmed/drifted conductance ratio (global drift compensation)."""
    stuck_off: float = 0.0
    """Probability that a cell is stuck at 0 (off)."""
    stuck_on: float = 0.0
    """Probability that a cell is stuck at g_max."""

    @property
    def is_quiet(self) -> bool:
        """True when no noise, drift or fault is enabled."""
        return (
            not any(self.programming)
            and self.read == 0
            and self.output == 0
            and (self.time == 0 or (self.drift_nu == 0 and self.drift_nu_std == 0))
            and self.stuck_off == 0
            and self.stuck_on == 0
        )


@dataclass(frozen=True)
class Energy:
    """Energy per event, in joules."""

    mac: float = 250e-15
    """One analog multiply-accumulate: a conducting cell (non-zero weight) under a non-zero input."""
    dac: float = 0.0
    """One DAC conversion (one word line driven for one input vector)."""
    adc: float = 0.0
    """One ADC conversion (one column read for one input vector)."""
    bus: float = 0.0
    """One byte moved over the analog-digital bus (inputs in, column results out)."""
    digital_add: float = 0.0
    """One digital addition of partial sums (a matrix split over tiles along its rows)."""


@dataclass(frozen=True)
class TileTarget:
    """An analog in-memory-compute target: tile geometry, cells, converters, noise, mapping, energy."""

    name: str
    rows: int
    """Word lines (inputs) per tile."""
    cols: int
    """Weight columns (outputs) per tile; a differential pair takes two bit lines per column."""
    bits_per_cell: int | None
    """Conductance levels per cell are 2^bits; None: continuous (ideal)."""
    encoding: str
    grid_rows: int
    grid_cols: int
    dac: Converter
    adc: Converter
    noise: Noise
    depthwise: str = "block-diagonal"
    energy: Energy = field(default_factory=Energy)
    description: str = ""
    notes: tuple[str, ...] = ()
    source: str = ""

    @property
    def cells_per_weight(self) -> int:
        """Cells one weight occupies: 2 for a differential pair, 1 with an offset."""
        return 2 if self.encoding == "differential" else 1

    @property
    def levels(self) -> int | None:
        """Largest weight level K: weights take the levels -K..K (None: continuous).

        Differential: each cell of the pair has 2^bits levels, so K = 2^bits - 1
        (4-bit cells: +-15). Offset: one cell whose middle level is zero, so
        K = (2^bits - 1) // 2 (4-bit cells: +-7)."""
        if self.bits_per_cell is None:
            return None
        top = (1 << self.bits_per_cell) - 1
        return top if self.encoding == "differential" else top // 2

    @property
    def tiles_per_grid(self) -> int:
        """Tiles in one grid (one chip)."""
        return self.grid_rows * self.grid_cols

    @property
    def is_ideal(self) -> bool:
        """Continuous cells, ideal converters that never clip, and no noise."""
        return (
            self.bits_per_cell is None
            and self.dac.bits is None
            and self.adc.bits is None
            and self.dac.range == "abs-max"
            and self.adc.range == "column-max"
            and self.noise.is_quiet
        )

    def with_changes(self, **changes: Any) -> TileTarget:
        """A copy with some fields replaced; ``dac_bits``, ``adc_bits``, ``programming`` ... reach inside.

        Keys: any field of `TileTarget`, plus ``dac_<field>``, ``adc_<field>``,
        ``noise_<field>`` and ``energy_<field>`` for the nested parts
        (``programming`` may be a single number)."""
        import dataclasses

        nested: dict[str, dict[str, Any]] = {"dac": {}, "adc": {}, "noise": {}, "energy": {}}
        top: dict[str, Any] = {}
        for key, value in changes.items():
            prefix, _, rest = key.partition("_")
            if prefix in nested and rest:
                if rest == "programming" and isinstance(value, int | float):
                    value = (float(value), 0.0, 0.0)
                nested[prefix][rest] = value
            else:
                top[key] = value
        for part, values in nested.items():
            if values:
                top[part] = dataclasses.replace(getattr(self, part), **values)
        return dataclasses.replace(self, **top)

    def to_data(self) -> dict[str, Any]:
        """The target as TOML-shaped data (``tiles_from_data`` reads it back)."""

        def bits(b: int | None) -> int | str:
            return "ideal" if b is None else b

        n, e = self.noise, self.energy
        return {
            "name": self.name,
            "description": self.description,
            "notes": list(self.notes),
            "tile": {
                "rows": self.rows,
                "cols": self.cols,
                "bits_per_cell": bits(self.bits_per_cell),
                "encoding": self.encoding,
            },
            "grid": {"rows": self.grid_rows, "cols": self.grid_cols},
            "dac": {"bits": bits(self.dac.bits), "range": self.dac.range, "headroom": self.dac.headroom},
            "adc": {
                "bits": bits(self.adc.bits),
                "range": self.adc.range,
                "bound": self.adc.bound,
                "headroom": self.adc.headroom,
                "bound_management": self.adc.bound_management,
            },
            "noise": {
                "programming": list(n.programming),
                "program_off_cells": n.program_off_cells,
                "read": n.read,
                "output": n.output,
                "drift_nu": n.drift_nu,
                "drift_nu_std": n.drift_nu_std,
                "drift_t0": n.drift_t0,
                "time": n.time,
                "drift_compensation": n.drift_compensation,
                "stuck_off": n.stuck_off,
                "stuck_on": n.stuck_on,
            },
            "mapping": {"depthwise": self.depthwise},
            "energy": {
                "mac": f"{e.mac * 1e15:.6g} fJ",
                "dac": f"{e.dac * 1e15:.6g} fJ",
                "adc": f"{e.adc * 1e15:.6g} fJ",
                "bus": f"{e.bus * 1e15:.6g} fJ/B",
                "digital_add": f"{e.digital_add * 1e15:.6g} fJ",
            },
        }

    def summary_lines(self) -> list[str]:
        """A few human-readable lines describing the target (for reports)."""
        cell = "continuous" if self.bits_per_cell is None else f"{self.bits_per_cell}-bit"
        lv = "" if self.levels is None else f" (levels -{self.levels}..{self.levels})"

        def conv(c: Converter, what: str) -> str:
            bits = "ideal" if c.bits is None else f"{c.bits}-bit"
            extra = f", bound {c.bound:g}" if c.range == "fixed" else ""
            return f"{what} {bits} {c.range}{extra}"

        n = self.noise
        prog = (
            ", ".join(f"{c:g}" for c in n.programming) if any(n.programming[1:]) else f"{n.programming[0]:g}"
        )
        return [
            f"tile {self.rows}x{self.cols} weights, {cell} cells{lv}, {self.encoding} "
            f"({self.cells_per_weight} cell(s) per weight), grid {self.grid_rows}x{self.grid_cols} "
            f"= {self.tiles_per_grid} tiles",
            f"{conv(self.dac, 'DAC')}; {conv(self.adc, 'ADC')}",
            f"noise: programming sigma {prog} g_max, read {n.read:g}, output {n.output:g}, "
            f"drift nu {n.drift_nu:g}+-{n.drift_nu_std:g} at t={n.time:g} s, "
            f"stuck off/on {n.stuck_off:g}/{n.stuck_on:g}",
        ]


# --------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "notes", "tile", "grid", "dac", "adc", "noise", "mapping", "energy")
_TILE_KEYS = ("rows", "cols", "bits_per_cell", "encoding")
_GRID_KEYS = ("rows", "cols")
_DAC_KEYS = ("bits", "range", "headroom")
_ADC_KEYS = ("bits", "range", "bound", "headroom", "bound_management")
_NOISE_KEYS = (
    "programming",
    "program_off_cells",
    "read",
    "output",
    "drift_nu",
    "drift_nu_std",
    "drift_t0",
    "time",
    "drift_compensation",
    "stuck_off",
    "stuck_on",
)
_MAPPING_KEYS = ("depthwise",)
_ENERGY_KEYS = ("mac", "dac", "adc", "bus", "digital_add")

MAX_BITS = 24
"""Converter and cell resolutions above this are refused (use "ideal")."""

MAX_TILE = 1 << 16
"""Largest tile side accepted."""


class _NoLocation(_Locator):
    """Locations for data that did not come from a file (an IR attribute): the source name only."""

    def __init__(self, source: str) -> None:
        super().__init__("", source)

    def table(self, table: str, index: int | None = None) -> str:
        return self.filename

    def key(self, table: str, key: str, index: int | None = None, value: bool = True) -> str:
        return self.filename


def _table(top: _Reader, key: str, where: _Locator, required: bool = False) -> _Reader:
    data = top.raw(key, None, required)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise top.error(key, f"'{key}' must be a table ([{key}])")
    return _Reader(data, where, key, None, f"[{key}]")


def _bits(r: _Reader, key: str, default: int | str, what: str) -> int | None:
    value = r.raw(key, default)
    if value == "ideal":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise r.error(key, f"'{key}' must be a number of bits or \"ideal\", got {_show(value)}")
    if not 1 <= value <= MAX_BITS:
        raise r.error(key, f'{what} bits must be between 1 and {MAX_BITS} (or "ideal"), got {value}')
    return value


def _choice(r: _Reader, key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = r.string(key, default)
    if value not in allowed:
        raise r.error(key, f"'{key}' must be one of {', '.join(allowed)}; got \"{value}\"")
    return value


def _fraction(r: _Reader, key: str, default: float) -> float:
    value = r.number(key, default)
    if value > 1:
        raise r.error(key, f"'{key}' is a probability and must be at most 1, got {value:g}")
    return value


def _show(value: Any) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else repr(value)
    )


def _programming(r: _Reader) -> tuple[float, float, float]:
    value = r.raw("programming", 0.0)
    if isinstance(value, bool):
        raise r.error("programming", f"'programming' must be a number or [c0, c1, c2], got {_show(value)}")
    if isinstance(value, int | float):
        coeffs = [float(value)]
    elif isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        if not 1 <= len(value) <= 3:
            raise r.error("programming", f"'programming' takes 1 to 3 coefficients, got {len(value)}")
        coeffs = [float(v) for v in value]
    else:
        raise r.error("programming", f"'programming' must be a number or [c0, c1, c2], got {_show(value)}")
    coeffs += [0.0] * (3 - len(coeffs))
    c0, c1, c2 = coeffs
    # sigma(g) = c0 + c1 g + c2 g^2 must stay >= 0 on [0, 1]: check the ends and the vertex
    points = [0.0, 1.0] + ([-c1 / (2 * c2)] if c2 != 0 and 0 < -c1 / (2 * c2) < 1 else [])
    if any(c0 + c1 * g + c2 * g * g < -1e-12 for g in points) or not all(math.isfinite(c) for c in coeffs):
        raise r.error("programming", f"programming sigma {coeffs} is negative somewhere on [0, g_max]")
    return (c0, c1, c2)


def tiles_from_data(
    data: Mapping[str, Any], source: str = "<tiles>", where: _Locator | None = None, default_name: str = ""
) -> TileTarget:
    """Validate TOML-shaped data (a parsed file, or `TileTarget.to_data`) into a `TileTarget`."""
    loc = where if where is not None else _NoLocation(source)
    top = _Reader(data, loc, "", None, "tile target")
    top.check_unknown(_TOP_KEYS)
    name = top.string("name", default_name or None, required=not default_name)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", name):
        raise top.error("name", f"tile target name '{name}' may hold only letters, digits, '.', '_' and '-'")
    description = top.string("description", "")
    notes = top.raw("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise top.error("notes", "'notes' must be a list of strings")

    tile = _table(top, "tile", loc, required=True)
    tile.check_unknown(_TILE_KEYS)
    rows = tile.integer("rows", 0, minimum=1) if tile.has("rows") else tile.raw("rows", required=True)
    cols = tile.integer("cols", 0, minimum=1) if tile.has("cols") else tile.raw("cols", required=True)
    for key, value in (("rows", rows), ("cols", cols)):
        if value > MAX_TILE:
            raise tile.error(key, f"tile {key} must be at most {MAX_TILE}, got {value}")
    cell_bits = _bits(tile, "bits_per_cell", 4, "cell")
    encoding = _choice(tile, "encoding", "differential", ENCODINGS)
    if encoding == "offset" and cell_bits == 1:
        raise tile.error("bits_per_cell", "an offset encoding needs at least 2 bits per cell (3 levels)")

    grid = _table(top, "grid", loc)
    grid.check_unknown(_GRID_KEYS)
    grid_rows = grid.integer("rows", 1, minimum=1)
    grid_cols = grid.integer("cols", 1, minimum=1)

    dac_r = _table(top, "dac", loc)
    dac_r.check_unknown(_DAC_KEYS)
    dac = Converter(
        bits=_bits(dac_r, "bits", 8, "DAC"),
        range=_choice(dac_r, "range", "abs-max", DAC_RANGES),
        headroom=dac_r.number("headroom", 1.0, positive=True),
    )
    adc_r = _table(top, "adc", loc)
    adc_r.check_unknown(_ADC_KEYS)
    adc_bits = _bits(adc_r, "bits", 8, "ADC")
    adc_range = _choice(adc_r, "range", "calibrated", ADC_RANGES)
    adc = Converter(
        bits=adc_bits,
        range=adc_range,
        bound=adc_r.number("bound", 12.0, positive=True),
        headroom=adc_r.number("headroom", 1.0, positive=True),
        bound_management=adc_r.boolean("bound_management", False),
    )
    if adc.bound_management and adc_range == "column-max":
        raise adc_r.error(
            "bound_management", "bound management needs a range that can clip (fixed or calibrated)"
        )

    nz = _table(top, "noise", loc)
    nz.check_unknown(_NOISE_KEYS)
    noise = Noise(
        programming=_programming(nz),
        program_off_cells=nz.boolean("program_off_cells", False),
        read=nz.number("read", 0.0),
        output=nz.number("output", 0.0),
        drift_nu=nz.number("drift_nu", 0.0),
        drift_nu_std=nz.number("drift_nu_std", 0.0),
        drift_t0=nz.quantity("drift_t0", _TIME_UNITS, "20 s", 20.0, positive=True),
        time=nz.quantity("time", _TIME_UNITS, "1 h", 0.0),
        drift_compensation=nz.boolean("drift_compensation", True),
        stuck_off=_fraction(nz, "stuck_off", 0.0),
        stuck_on=_fraction(nz, "stuck_on", 0.0),
    )
    if noise.stuck_off + noise.stuck_on > 1:
        raise nz.error("stuck_on", "stuck_off + stuck_on must be at most 1")

    mp = _table(top, "mapping", loc)
    mp.check_unknown(_MAPPING_KEYS)
    depthwise = _choice(mp, "depthwise", "block-diagonal", DEPTHWISE_MODES)

    en = _table(top, "energy", loc)
    en.check_unknown(_ENERGY_KEYS)
    energy = Energy(
        mac=en.quantity("mac", _MAC_UNITS, "250 fJ", 250e-15),
        dac=en.quantity("dac", _MAC_UNITS, "0.5 pJ", 0.0),
        adc=en.quantity("adc", _MAC_UNITS, "2 pJ", 0.0),
        bus=en.quantity("bus", _BYTE_UNITS, "50 pJ/B", 0.0),
        digital_add=en.quantity("digital_add", _MAC_UNITS, "0.1 pJ", 0.0),
    )
    return TileTarget(
        name=name,
        rows=rows,
        cols=cols,
        bits_per_cell=cell_bits,
        encoding=encoding,
        grid_rows=grid_rows,
        grid_cols=grid_cols,
        dac=dac,
        adc=adc,
        noise=noise,
        depthwise=depthwise,
        energy=energy,
        description=description,
        notes=tuple(notes),
        source=source,
    )


def parse_tiles(text: str, filename: str = "<tiles>", default_name: str = "") -> TileTarget:
    """Read and validate a tile target description (TOML text)."""
    data = load_toml(text, filename)
    return tiles_from_data(data, filename, _Locator(text, filename), default_name)


# --------------------------------------------------------------------------
# Presets and files
# --------------------------------------------------------------------------


def preset_names() -> list[str]:
    """Names of the shipped tile presets, sorted."""
    return preset_files(__name__)


def preset_text(name: str) -> str:
    """The TOML text of a shipped tile preset."""
    return preset_file_text(__name__, name)


@lru_cache(maxsize=32)
def _load_preset(name: str) -> TileTarget:
    return parse_tiles(preset_text(name), f"<tiles preset {name}>", default_name=name)


@lru_cache(maxsize=32)
def _load_file(path: str, mtime: float) -> TileTarget:
    text = read_description(path, "tile target")
    return parse_tiles(text, path, default_name=os.path.splitext(os.path.basename(path))[0])


def load_tiles(spec: str | TileTarget) -> TileTarget:
    """A tile target from a preset name or a ``.toml`` path (a `TileTarget` is returned as is)."""
    if isinstance(spec, TileTarget):
        return spec
    return resolve_description(
        spec,
        kind="tile target",
        file_kind="tile target",
        presets=preset_names(),
        from_file=lambda path: _load_file(path, os.path.getmtime(path)),
        from_preset=_load_preset,
    )


__all__ = [
    "ADC_RANGES",
    "DAC_RANGES",
    "DEPTHWISE_MODES",
    "ENCODINGS",
    "Converter",
    "Energy",
    "Noise",
    "TileTarget",
    "load_tiles",
    "parse_tiles",
    "preset_names",
    "preset_text",
    "tiles_from_data",
]

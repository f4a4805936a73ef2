"""Target descriptions: a processor and its memories, read from TOML and validated.

A target file (schema: ``docs/targets.md``) looks like::

    name = "stm32f746"
    description = "STM32F746 (Cortex-M7, 216 MHz)"

    [processor]
    core = "Cortex-M7"
    clock_mhz = 216
    cache = "4 KiB"            # data cache in front of the memories marked cached
    dma = true                 # overlay copies may run during the previous layer
    [processor.macs_per_cycle]
    conv2d = 0.9
    default = 0.5

    [[memory]]
    name = "sram"
    kind = "sram"
    capacity = "256 KiB"
    read_bandwidth = "4 B/cycle"
    ...

Every mistake is a `UserError` located at ``file:line:col`` of the offending
key (TOML syntax errors too). Sizes accept ``"384 KiB"`` / ``"2 MB"`` (K and M
are powers of two) or plain bytes; bandwidths ``"50 MB/s"`` / ``"4 B/cycle"``
or MB/s; latencies ``"30 ns"`` / ``"7 cycles"`` or ns; energies ``"12 pJ/B"``
or pJ per byte; powers ``"30 uW"`` / ``"2 mW"``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from nnopt.compiler.diagnostics import UserError

T = TypeVar("T")

MEMORY_KINDS = ("tcm", "sram", "mram", "flash", "sdram", "qspi-flash", "l2", "ddr", "ram")
"""Kinds of memory a target can describe."""

NON_VOLATILE_KINDS = ("mram", "flash", "qspi-flash")
"""Kinds that keep their contents without power (the default of ``volatile``)."""

OP_KINDS = (
    "conv2d",
    "conv2d_1x1",
    "depthwise_conv2d",
    "fully_connected",
    "matmul",
    "elementwise",
    "pool",
    "other",
)
"""Op classes of the throughput model (``macs_per_cycle`` keys besides ``default``)."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


# --------------------------------------------------------------------------
# The description
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """One memory of a target (a memory space of the IR and a section of the C output)."""

    name: str
    kind: str
    capacity: int
    """Bytes usable by nnopt."""
    volatile: bool
    read_bandwidth: float
    """Bytes per second, sustained (burst) reads."""
    write_bandwidth: float
    """Bytes per second; 0 when the memory cannot be written at run time."""
    read_latency: float = 0.0
    """Seconds per access beyond the streaming time (first word of a burst, wait states)."""
    write_latency: float = 0.0
    read_energy: float = 0.0
    """Joules per byte read."""
    write_energy: float = 0.0
    """Joules per byte written."""
    leakage: float = 0.0
    """Watts drawn while the memory is powered (standby / retention)."""
    power_off: bool = False
    """True when the memory can be powered off while it holds nothing."""
    cached: bool = False
    """True when the processor's data cache sits in front of this memory."""
    burst: int = 4
    """Bytes per uncached access (the latency is paid once per access)."""
    section: str = ""
    """The C linker section that places data in this memory."""
    alignment: int = 16
    """Alignment of the arena and of every buffer in this memory."""

    @property
    def writable(self) -> bool:
        """True when activations could be written here at run time."""
        return self.write_bandwidth > 0

    def read_seconds_per_byte(self, line: int = 0) -> float:
        """Time to read one byte: streaming time plus the access latency spread over an access.

        With a cache line of `line` bytes (a cached memory streams whole lines),
        the latency is spread over the line instead of over one `burst`.
        """
        chunk = max(line, self.burst) if line else self.burst
        return 1.0 / self.read_bandwidth + self.read_latency / chunk

    def write_seconds_per_byte(self) -> float:
        """Time to write one byte (infinite when the memory is read-only)."""
        if self.write_bandwidth <= 0:
            return float("inf")
        return 1.0 / self.write_bandwidth + self.write_latency / self.burst


@dataclass(frozen=True)
class Processor:
    """The compute side: clock, throughput per op class, data cache, DMA, power."""

    core: str
    clock_hz: float
    macs_per_cycle: Mapping[str, float]
    """Per op class (see `OP_KINDS`); ``default`` for classes not listed. For elementwise ops,
    pools and the rest, the count is element operations rather than MACs."""
    cache_bytes: int = 0
    """Data cache in front of the memories marked ``cached`` (0: none)."""
    cache_line: int = 32
    dma: bool = False
    """A DMA engine can copy overlays while the processor computes."""
    mac_energy: float = 0.0
    """Joules per MAC (or element operation)."""
    base_power: float = 0.0
    """Watts drawn by the running core besides the MACs (clock tree, leakage, fetch)."""

    def throughput(self, op_class: str) -> float:
        """MACs (or element operations) per cycle for an op class."""
        rate = self.macs_per_cycle.get(op_class)
        if rate is None and op_class == "conv2d_1x1":
            rate = self.macs_per_cycle.get("conv2d")
        if rate is None:
            rate = self.macs_per_cycle.get("default", 1.0)
        return rate


@dataclass(frozen=True)
class Target:
    """A device: one processor and its memories, as read from a target description."""

    name: str
    description: str
    processor: Processor
    memories: tuple[Memory, ...]
    source: str = ""
    """The file the description was read from (a preset's package path for presets)."""
    notes: tuple[str, ...] = field(default=())

    def memory(self, name: str) -> Memory:
        """The memory called `name` (a `UserError` naming the known ones otherwise)."""
        for m in self.memories:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.memories)
        raise UserError(f"target '{self.name}' has no memory '{name}' (memories: {known})")

    def has_memory(self, name: str) -> bool:
        """True when the target has a memory called `name`."""
        return any(m.name == name for m in self.memories)

    @property
    def names(self) -> tuple[str, ...]:
        """Memory names in description order."""
        return tuple(m.name for m in self.memories)

    def by_speed(self, memories: tuple[Memory, ...] | None = None) -> tuple[Memory, ...]:
        """Memories fastest first (read time per byte, then write time, then name)."""
        pool = self.memories if memories is None else memories
        return tuple(sorted(pool, key=lambda m: (self.read_cost(m), m.write_seconds_per_byte(), m.name)))

    def read_cost(self, memory: Memory) -> float:
        """Seconds per byte of a streaming read from `memory` (through the cache when it has one)."""
        line = self.processor.cache_line if memory.cached and self.processor.cache_bytes else 0
        return memory.read_seconds_per_byte(line)

    @property
    def volatile_memories(self) -> tuple[Memory, ...]:
        """The memories activations may live in (volatile and writable), fastest first."""
        return self.by_speed(tuple(m for m in self.memories if m.volatile and m.writable))

    @property
    def fastest(self) -> Memory:
        """The fastest memory activations may live in."""
        return self.volatile_memories[0]

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (what ``nnopt targets --json`` writes)."""
        p = self.processor
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "processor": {
                "core": p.core,
                "clock_mhz": p.clock_hz / 1e6,
                "macs_per_cycle": dict(p.macs_per_cycle),
                "cache_bytes": p.cache_bytes,
                "cache_line": p.cache_line,
                "dma": p.dma,
                "mac_energy_pj": p.mac_energy * 1e12,
                "base_power_mw": p.base_power * 1e3,
            },
            "memories": [
                {
                    "name": m.name,
                    "kind": m.kind,
                    "capacity": m.capacity,
                    "volatile": m.volatile,
                    "read_bandwidth_mb_s": m.read_bandwidth / 1e6,
                    "write_bandwidth_mb_s": m.write_bandwidth / 1e6,
                    "read_latency_ns": m.read_latency * 1e9,
                    "write_latency_ns": m.write_latency * 1e9,
                    "read_energy_pj_per_byte": m.read_energy * 1e12,
                    "write_energy_pj_per_byte": m.write_energy * 1e12,
                    "leakage_uw": m.leakage * 1e6,
                    "power_off": m.power_off,
                    "cached": m.cached,
                    "burst": m.burst,
                    "section": m.section,
                    "alignment": m.alignment,
                }
                for m in self.memories
            ],
        }


# --------------------------------------------------------------------------
# Locating keys in the TOML text (tomllib gives values, not positions)
# --------------------------------------------------------------------------


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*(\]\]?)\s*(#.*)?$")


class _Locator:
    """Finds ``file:line:col`` of a key of a table (or of the n-th entry of an array of tables)."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str, bool]] = []  # (line index, table path, is array)
        for i, line in enumerate(self.lines):
            match = _HEADER.match(line)
            if match and (match.group(1) == "[[") == (match.group(3) == "]]"):
                path = match.group(2).replace('"', "").replace(" ", "")
                self.headers.append((i, path, match.group(1) == "[["))

    def _table_range(self, table: str, index: int | None) -> tuple[int, int] | None:
        """Line range [start, end) of a table body; `index` picks the n-th ``[[table]]``."""
        if not table:
            end = self.headers[0][0] if self.headers else len(self.lines)
            return (0, end)
        seen = -1
        for k, (line, path, _) in enumerate(self.headers):
            if path != table:
                continue
            seen += 1
            if index is not None and seen != index:
                continue
            # the next header (a sub-table such as [processor.macs_per_cycle] too) ends the body
            end = self.headers[k + 1][0] if k + 1 < len(self.headers) else len(self.lines)
            return (line, end)
        return None

    def here(self, line: int, col: int) -> str:
        return f"{self.filename}:{line + 1}:{col + 1}"

    def table(self, table: str, index: int | None = None) -> str:
        """Location of a table's header (the file start when not found)."""
        rng = self._table_range(table, index)
        if rng is None or not table:
            return f"{self.filename}:1:1"
        line = rng[0]
        return self.here(line, len(self.lines[line]) - len(self.lines[line].lstrip()))

    def key(self, table: str, key: str, index: int | None = None, value: bool = True) -> str:
        """Location of `key` in `table` (its value when `value`), else of the table."""
        rng = self._table_range(table, index)
        if rng is None:
            # an inline table: `parent = { key = ... }` or a dotted key
            parent, _, leaf = table.rpartition(".")
            rng_parent = self._table_range(parent, index)
            if rng_parent is not None:
                for i in range(*rng_parent):
                    line = self.lines[i]
                    if re.match(rf"^\s*{re.escape(leaf)}\s*=", line):
                        inner = re.search(rf"[{{,]\s*({re.escape(key)})\s*=\s*", line)
                        if inner:
                            return self.here(i, inner.end() if value else inner.start(1))
                        return self.here(i, len(line) - len(line.lstrip()))
            return self.table(table, index)
        pattern = re.compile(rf'^(\s*)("?{re.escape(key)}"?)\s*=\s*')
        for i in range(*rng):
            match = pattern.match(self.lines[i])
            if match:
                return self.here(i, match.end() if value else len(match.group(1)))
        return self.table(table, index)


# --------------------------------------------------------------------------
# Quantities with units
# --------------------------------------------------------------------------

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ/]*)\s*$")

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}
_SIZE_UNITS |= {"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
_BANDWIDTH_UNITS = {"": 1e6, "b/s": 1.0, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9}
_LATENCY_UNITS = {"": 1e-9, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_ENERGY_UNITS = {"": 1e-12, "pj/b": 1e-12, "pj/byte": 1e-12, "nj/b": 1e-9, "nj/byte": 1e-9, "pj/bit": 8e-12}
_MAC_ENERGY_UNITS = {"": 1e-12, "pj": 1e-12, "nj": 1e-9, "fj": 1e-15}
_POWER_UNITS = {"uw": 1e-6, "µw": 1e-6, "mw": 1e-3, "w": 1.0, "nw": 1e-9}


class _Reader:
    """Typed access to one table of the parsed TOML, with located errors."""

    def __init__(
        self, data: Mapping[str, Any], where: _Locator, table: str, index: int | None, what: str
    ) -> None:
        self.data = data
        self.where = where
        self.table = table
        self.index = index
        self.what = what
        self.used: set[str] = set()

    def error(self, key: str, message: str, value: bool = True) -> UserError:
        return UserError(f"{self.what}: {message}", self.where.key(self.table, key, self.index, value))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise UserError(
                    f"{self.what}: missing required key '{key}'", self.where.table(self.table, self.index)
                )
            return default
        return self.data[key]

    def string(self, key: str, default: str | None = None, required: bool = False) -> str:
        value = self.raw(key, default, required)
        if not isinstance(value, str):
            raise self.error(key, f"'{key}' must be a string, got {_show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"'{key}' must be true or false, got {_show(value)}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"'{key}' must be an integer, got {_show(value)}")
        if value < minimum:
            raise self.error(key, f"'{key}' must be at least {minimum}, got {value}")
        return value

    def number(
        self, key: str, default: float | None = None, required: bool = False, positive: bool = False
    ) -> float:
        value = self.raw(key, default, required)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"'{key}' must be a number, got {_show(value)}")
        if value < 0 or (positive and value == 0):
            raise self.error(
                key, f"'{key}' must be {'positive' if positive else 'non-negative'}, got {value}"
            )
        return float(value)

    def quantity(
        self,
        key: str,
        units: Mapping[str, float],
        example: str,
        default: float | None = None,
        required: bool = False,
        positive: bool = False,
        extra: Callable[[str, float], float | None] | None = None,
    ) -> float:
        """A number in the default unit or a ``"<number> <unit>"`` string, converted to SI.

        A missing key gives `default`, which is already in SI units."""
        if key not in self.data:
            self.raw(key, default, required)
            return 0.0 if default is None else default
        value = self.raw(key)
        if isinstance(value, bool):
            raise self.error(
                key, f"'{key}' must be a number or a quantity like \"{example}\", got {_show(value)}"
            )
        if isinstance(value, int | float):
            if "" not in units:
                raise self.error(key, f"'{key}' needs a unit, e.g. \"{example}\"")
            amount, factor = float(value), units[""]
        elif isinstance(value, str):
            match = _QUANTITY.match(value)
            if match is None:
                raise self.error(key, f'\'{key}\' must look like "{example}", got "{value}"')
            amount = float(match.group(1))
            unit = match.group(2).lower()
            converted = extra(unit, amount) if extra is not None else None
            if converted is not None:
                if converted < 0 or (positive and converted == 0):
                    raise self.error(key, f"'{key}' must be positive, got \"{value}\"")
                return converted
            if unit not in units:
                known = ", ".join(
                    sorted({u for u in units if u} | ({"B/cycle", "cycles"} if extra else set()))
                )
                raise self.error(key, f"unknown unit '{match.group(2)}' in '{key}' (known: {known})")
            factor = units[unit]
        else:
            raise self.error(
                key, f"'{key}' must be a number or a quantity like \"{example}\", got {_show(value)}"
            )
        if amount < 0 or (positive and amount == 0):
            raise self.error(
                key, f"'{key}' must be {'positive' if positive else 'non-negative'}, got {_show(value)}"
            )
        return amount * factor

    def size(self, key: str, default: int | None = None, required: bool = False) -> int:
        value = self.quantity(key, _SIZE_UNITS, "384 KiB", default, required, positive=True)
        if value != int(value):
            raise self.error(key, f"'{key}' must be a whole number of bytes, got {value}")
        return int(value)

    def check_unknown(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(allowed)})"
                raise self.error(key, f"unknown key '{key}'{hint}", value=False)


def _show(value: Any) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else repr(value)
    )


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "notes", "processor", "memory")
_PROCESSOR_KEYS = (
    "core",
    "clock_mhz",
    "macs_per_cycle",
    "cache",
    "cache_line",
    "dma",
    "mac_energy",
    "base_power",
)
_MEMORY_KEYS = (
    "name",
    "kind",
    "capacity",
    "volatile",
    "read_bandwidth",
    "write_bandwidth",
    "read_latency",
    "write_latency",
    "read_energy",
    "write_energy",
    "leakage",
    "power_off",
    "cached",
    "burst",
    "section",
    "alignment",
)


def load_toml(text: str, filename: str) -> dict[str, object]:
    """Parse TOML; a syntax error becomes one `UserError` at ``file:line:col``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if match:
            location = f"{filename}:{match.group(1)}:{match.group(2)}"
            message = message[: match.start()].strip()
        elif "(at end of document)" in message:
            location = f"{filename}:{len(text.splitlines()) or 1}:1"
            message = message.replace("(at end of document)", "").strip()
        else:
            location = filename
        raise UserError(f"invalid TOML: {message}", location) from None


def preset_files(package: str) -> list[str]:
    """Names of the ``<name>.toml`` presets shipped in `package`, sorted."""
    folder = resources.files(package)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_file_text(package: str, name: str) -> str:
    """The text of the preset ``<name>.toml`` shipped in `package`."""
    return resources.files(package).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def read_description(path: str, what: str) -> str:
    """A description file's text; unreadable or non-UTF-8 files are one `UserError` naming `what`."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UserError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} '{path}' is not UTF-8 text") from None


def resolve_description(
    spec: str,
    *,
    kind: str,
    file_kind: str,
    presets: list[str],
    from_file: Callable[[str], T],
    from_preset: Callable[[str], T],
) -> T:
    """A preset name or a ``.toml`` path, loaded by `from_preset` or `from_file`.

    `kind` names the thing in messages about names (``target``), `file_kind`
    in messages about files (``target description``).
    """
    text = spec.strip()
    if not text:
        raise UserError(f"no {kind} given (a preset name or a .toml file)")
    if text.endswith(".toml") or os.sep in text or "/" in text:
        if not os.path.isfile(text):
            raise UserError(f"{file_kind} '{text}' not found")
        return from_file(text)
    if text not in presets:
        raise UserError(f"unknown {kind} '{text}' (presets: {', '.join(presets)}; or give a FILE.toml)")
    return from_preset(text)


def parse_target(text: str, filename: str = "<target>", default_name: str = "") -> Target:
    """Read and validate a target description (TOML text)."""
    data = load_toml(text, filename)
    where = _Locator(text, filename)
    top = _Reader(data, where, "", None, "target")
    top.check_unknown(_TOP_KEYS)
    name = top.string("name", default_name or None, required=not default_name)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", name):
        raise top.error("name", f"target name '{name}' may hold only letters, digits, '.', '_' and '-'")
    description = top.string("description", "")
    notes_raw = top.raw("notes", [])
    if not isinstance(notes_raw, list) or not all(isinstance(n, str) for n in notes_raw):
        raise top.error("notes", "'notes' must be a list of strings")

    proc_data = top.raw("processor", required=True)
    if not isinstance(proc_data, dict):
        raise top.error("processor", "'processor' must be a table ([processor])")
    processor = _parse_processor(_Reader(proc_data, where, "processor", None, "[processor]"))

    mem_list = top.raw("memory", required=True)
    if not isinstance(mem_list, list) or not all(isinstance(m, dict) for m in mem_list):
        raise top.error("memory", "'memory' must be an array of tables ([[memory]])")
    if not mem_list:
        raise UserError("target: at least one [[memory]] is needed", f"{filename}:1:1")
    memories: list[Memory] = []
    for i, entry in enumerate(mem_list):
        label = f"[[memory]] #{i + 1}" + (f" '{entry['name']}'" if isinstance(entry.get("name"), str) else "")
        reader = _Reader(entry, where, "memory", i, label)
        memory = _parse_memory(reader, processor)
        if any(m.name == memory.name for m in memories):
            raise reader.error("name", f"a memory called '{memory.name}' is already described")
        memories.append(memory)
    if not any(m.volatile and m.writable for m in memories):
        raise UserError(
            "target: activations need a volatile, writable memory, and none is described",
            where.table("memory", 0),
        )
    return Target(name, description, processor, tuple(memories), filename, tuple(notes_raw))


def _parse_processor(r: _Reader) -> Processor:
    r.check_unknown(_PROCESSOR_KEYS)
    core = r.string("core", "")
    clock = r.number("clock_mhz", required=True, positive=True) * 1e6
    rates_raw = r.raw("macs_per_cycle", 1.0)
    rates: dict[str, float] = {}
    if isinstance(rates_raw, bool):
        raise r.error("macs_per_cycle", "'macs_per_cycle' must be a number or a table of op kind = number")
    if isinstance(rates_raw, int | float):
        if rates_raw <= 0:
            raise r.error("macs_per_cycle", f"'macs_per_cycle' must be positive, got {rates_raw}")
        rates["default"] = float(rates_raw)
    elif isinstance(rates_raw, dict):
        sub = _Reader(rates_raw, r.where, "processor.macs_per_cycle", None, "[processor.macs_per_cycle]")
        sub.check_unknown((*OP_KINDS, "default"))
        for key in rates_raw:
            rates[key] = sub.number(key, positive=True)
        rates.setdefault("default", 1.0)
    else:
        raise r.error("macs_per_cycle", "'macs_per_cycle' must be a number or a table of op kind = number")
    cache = 0
    if r.has("cache"):
        value = r.raw("cache")
        cache = 0 if value == 0 else r.size("cache")
    line = r.integer("cache_line", 32, minimum=1)
    if line & (line - 1):
        raise r.error("cache_line", f"'cache_line' must be a power of two, got {line}")
    return Processor(
        core=core,
        clock_hz=clock,
        macs_per_cycle=rates,
        cache_bytes=cache,
        cache_line=line,
        dma=r.boolean("dma", False),
        mac_energy=r.quantity("mac_energy", _MAC_ENERGY_UNITS, "3 pJ", 0.0),
        base_power=r.quantity("base_power", _POWER_UNITS | {"": 1e-3}, "2 mW", 0.0),
    )


def _parse_memory(r: _Reader, processor: Processor) -> Memory:
    r.check_unknown(_MEMORY_KEYS)
    name = r.string("name", required=True)
    if not _NAME.match(name):
        raise r.error(
            "name", f"memory name '{name}' must be lower-case letters, digits and '_' (a C identifier)"
        )
    kind = r.string("kind", required=True)
    if kind not in MEMORY_KINDS:
        raise r.error("kind", f"unknown memory kind '{kind}' (known: {', '.join(MEMORY_KINDS)})")
    capacity = r.size("capacity", required=True)
    volatile = r.boolean("volatile", kind not in NON_VOLATILE_KINDS)

    def per_cycle(unit: str, amount: float) -> float | None:
        if unit in ("b/cycle", "byte/cycle", "bytes/cycle"):
            return amount * processor.clock_hz
        return None

    def cycles(unit: str, amount: float) -> float | None:
        if unit in ("cycle", "cycles"):
            return amount / processor.clock_hz
        return None

    read_bw = r.quantity(
        "read_bandwidth", _BANDWIDTH_UNITS, "50 MB/s", required=True, positive=True, extra=per_cycle
    )
    default_write = read_bw if volatile or kind == "mram" else 0.0
    write_bw = r.quantity("write_bandwidth", _BANDWIDTH_UNITS, "50 MB/s", default_write, extra=per_cycle)
    if volatile and write_bw <= 0:
        raise r.error("write_bandwidth", "a volatile memory must be writable (write_bandwidth > 0)")
    read_latency = r.quantity("read_latency", _LATENCY_UNITS, "30 ns", 0.0, extra=cycles)
    write_latency = r.quantity("write_latency", _LATENCY_UNITS, "30 ns", read_latency, extra=cycles)
    read_energy = r.quantity("read_energy", _ENERGY_UNITS, "12 pJ/B", 0.0)
    write_energy = r.quantity("write_energy", _ENERGY_UNITS, "12 pJ/B", read_energy)
    leakage = r.quantity("leakage", _POWER_UNITS | {"": 1e-6}, "30 uW", 0.0)
    alignment = r.integer("alignment", 16, minimum=1)
    if alignment & (alignment - 1):
        raise r.error("alignment", f"'alignment' must be a power of two, got {alignment}")
    burst = r.integer("burst", 4, minimum=1)
    cached = r.boolean("cached", False)
    if cached and processor.cache_bytes == 0:
        raise r.error("cached", "'cached = true' but [processor] has no cache (set processor.cache)")
    section = r.string("section", f".nnopt.{name}")
    if not re.match(r"^[.A-Za-z_][.A-Za-z0-9_$]*$", section):
        raise r.error("section", f"'{section}' is not a valid linker section name")
    return Memory(
        name=name,
        kind=kind,
        capacity=capacity,
        volatile=volatile,
        read_bandwidth=read_bw,
        write_bandwidth=write_bw,
        read_latency=read_latency,
        write_latency=write_latency,
        read_energy=read_energy,
        write_energy=write_energy,
        leakage=leakage,
        power_off=r.boolean("power_off", False),
        cached=cached,
        burst=burst,
        section=section,
        alignment=alignment,
    )

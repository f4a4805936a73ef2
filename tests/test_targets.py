"""Target descriptions: the presets, units, validation with located errors, `nnopt targets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets import load_target, parse_target, preset_names

from .conftest import assert_user_error, run_tool

KIB = 1024
MIB = 1 << 20

MINIMAL = """\
name = "board"
[processor]
clock_mhz = 100
[[memory]]
name = "sram"
kind = "sram"
capacity = "64 KiB"
read_bandwidth = "4 B/cycle"
"""


def test_every_preset_loads_and_has_a_home_for_activations() -> None:
    names = preset_names()
    expected = {"apollo4-plus", "host", "l2-2mb-ddr", "l2-4mb-ddr"}
    for part in ("stm32f469", "stm32f746", "stm32h743"):
        expected |= {part, f"{part}-ext"}
    assert expected <= set(names)
    for name in names:
        t = load_target(name)
        assert t.name == name
        assert t.volatile_memories, name
        assert all(m.section and m.alignment > 0 for m in t.memories)


def test_tinyops_parts_have_the_published_sizes() -> None:
    # TinyOps (Sadiq et al. 2022): 256/320/512 KB SRAM, 1/1/2 MB flash, 180/216/400 MHz, 0/4/16 KB D-cache
    for name, sram, flash, mhz, cache in (
        ("stm32f469", 256, 1, 180, 0),
        ("stm32f746", 320, 1, 216, 4),
        ("stm32h743", 512, 2, 400, 16),
    ):
        t = load_target(name)
        assert sum(m.capacity for m in t.memories if m.volatile) == sram * KIB
        assert sum(m.capacity for m in t.memories if m.kind == "flash") == flash * MIB
        assert t.processor.clock_hz == mhz * 1e6
        assert t.processor.cache_bytes == cache * KIB
        ext = load_target(f"{name}-ext")
        extra = {m.name: m for m in ext.memories if not t.has_memory(m.name)}
        assert {m.kind for m in extra.values()} == {"sdram", "qspi-flash"}
        assert all(m.capacity == 8 * MIB for m in extra.values())
        assert [m.volatile for m in extra.values() if m.kind == "qspi-flash"] == [False]


def test_apollo_memories_and_speed_order() -> None:
    t = load_target("apollo4-plus")
    assert [m.name for m in t.by_speed()] == ["tcm", "ssram", "mram"]
    assert t.memory("tcm").capacity == 384 * KIB
    assert not t.memory("mram").volatile and t.memory("mram").cached
    assert t.fastest.name == "tcm"
    assert [m.name for m in t.volatile_memories] == ["tcm", "ssram"]


def test_units_are_converted() -> None:
    t = parse_target(
        MINIMAL.replace('"4 B/cycle"', '"50 MB/s"')
        + 'read_latency = "3 cycles"\nwrite_latency = "20 ns"\nread_energy = "1 pJ/bit"\nleakage = "2 mW"\n'
        + '[[memory]]\nname = "flash"\nkind = "flash"\ncapacity = 1048576\nread_bandwidth = 200\n'
        + "read_energy = 30\nleakage = 5\n"
    )
    sram, flash = t.memories
    assert sram.capacity == 64 * KIB and flash.capacity == MIB
    assert sram.read_bandwidth == 50e6 and sram.write_bandwidth == 50e6
    assert sram.read_latency == pytest.approx(3 / 100e6) and sram.write_latency == pytest.approx(20e-9)
    assert sram.read_energy == pytest.approx(8e-12) and sram.write_energy == pytest.approx(8e-12)
    assert sram.leakage == pytest.approx(2e-3)
    assert flash.read_bandwidth == 200e6 and flash.read_energy == pytest.approx(30e-12)
    assert flash.leakage == pytest.approx(5e-6)
    assert not flash.volatile and flash.write_bandwidth == 0 and not flash.writable
    assert flash.section == ".nnopt.flash" and flash.alignment == 16


def test_bytes_per_cycle_follow_the_clock() -> None:
    t = parse_target(MINIMAL)
    assert t.memories[0].read_bandwidth == 400e6


@pytest.mark.parametrize(
    ("change", "location", "fragment"),
    [
        (('kind = "sram"', 'kind = "sram"\ncolour = 3'), ":7:1", "unknown key 'colour'"),
        (('kind = "sram"', 'kind = "sram"\ncapacityy = 3'), ":7:1", "did you mean 'capacity'"),
        (('capacity = "64 KiB"', 'capacity = "64 parsecs"'), ":7:12", "unknown unit 'parsecs'"),
        (('capacity = "64 KiB"', "capacity = -5"), ":7:12", "must be positive"),
        (('capacity = "64 KiB"\n', ""), ":4:1", "missing required key 'capacity'"),
        (("clock_mhz = 100", "clock_mhz = 0"), ":3:13", "'clock_mhz' must be positive"),
        (('kind = "sram"', 'kind = "eeprom"'), ":6:8", "unknown memory kind 'eeprom'"),
        (('name = "sram"', 'name = "My SRAM"'), ":5:8", "must be lower-case"),
        (
            ('read_bandwidth = "4 B/cycle"', 'read_bandwidth = "4 B/cycle"\ncached = true'),
            ":9:10",
            "no cache",
        ),
        (('kind = "sram"', 'kind = "flash"'), ":4:1", "activations need a volatile"),
        (
            ("[processor]", "[processor]\nmacs_per_cycle = { conv2d = 1, convv = 2 }"),
            ":3:32",
            "unknown key 'convv'",
        ),
        (("clock_mhz = 100", "clock_mhz = 100 100"), ":3:17", "invalid TOML"),
    ],
)
def test_mistakes_are_located(tmp_path: Path, change: tuple[str, str], location: str, fragment: str) -> None:
    path = tmp_path / "board.toml"
    path.write_text(MINIMAL.replace(*change, 1))
    with pytest.raises(UserError) as info:
        load_target(str(path))
    text = str(info.value)
    assert f"{path}{location}: error:" in text, text
    assert fragment in text, text


def test_duplicate_memory_and_second_table_location(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(
        MINIMAL + '\n[[memory]]\nname = "sram"\nkind = "tcm"\ncapacity = 1024\nread_bandwidth = 10\n'
    )
    with pytest.raises(UserError, match="already described") as info:
        load_target(str(path))
    assert f"{path}:11:8" in str(info.value)


def test_unknown_preset_and_missing_file() -> None:
    with pytest.raises(UserError, match=r"unknown target 'nope'.*apollo4-plus"):
        load_target("nope")
    with pytest.raises(UserError, match="not found"):
        load_target("no/such/board.toml")


def test_file_name_gives_the_default_name(tmp_path: Path) -> None:
    path = tmp_path / "myboard.toml"
    path.write_text(MINIMAL.replace('name = "board"\n', ""))
    assert load_target(str(path)).name == "myboard"


def test_cli_lists_and_describes(tmp_path: Path) -> None:
    out = tmp_path / "targets.json"
    result = run_tool("nnopt", "targets", "--json", str(out))
    assert result.code == 0, result.err
    for name in preset_names():
        assert name in result.out
    data = json.loads(out.read_text())
    assert {d["name"] for d in data} == set(preset_names())
    result = run_tool("nnopt", "targets", "stm32h743-ext")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    memory_rows = [
        line.split()[0]
        for line in lines
        if line.split() and line.split()[0] in ("sram", "flash", "sdram", "qspi")
    ]
    assert memory_rows == ["sram", "flash", "sdram", "qspi"]  # fastest first
    assert "16.0 KiB" in result.out


def test_cli_reports_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace('capacity = "64 KiB"', 'capacity = "lots"'))
    assert_user_error(run_tool("nnopt", "targets", str(path)), f"{path}:7:12", "capacity")

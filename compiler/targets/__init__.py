"""Target descriptions: the memories and processor of a device, from TOML (``docs/targets.md``).

    from nnopt.compiler.targets import load_target

    target = load_target("stm32f746-ext")      # a preset, or "path/to/board.toml"
    for memory in target.memories:
        print(memory.name, memory.capacity, memory.section, memory.alignment)

Presets ship as package data next to this file (``<name>.toml``);
`preset_names()` lists them. Backends read the memory names (the IR's memory
spaces), their C section names and alignments from here.
"""

from __future__ import annotations

import os
from functools import lru_cache

from nnopt.compiler.targets.description import (
    MEMORY_KINDS,
    NON_VOLATILE_KINDS,
    OP_KINDS,
    Memory,
    Processor,
    Target,
    parse_target,
    preset_file_text,
    preset_files,
    read_description,
    resolve_description,
)

__all__ = [
    "MEMORY_KINDS",
    "NON_VOLATILE_KINDS",
    "OP_KINDS",
    "Memory",
    "Processor",
    "Target",
    "load_target",
    "parse_target",
    "preset_names",
    "preset_text",
]


def preset_names() -> list[str]:
    """Names of the shipped target presets, sorted."""
    return preset_files(__name__)


def preset_text(name: str) -> str:
    """The TOML text of a shipped preset."""
    return preset_file_text(__name__, name)


@lru_cache(maxsize=64)
def _load_preset(name: str) -> Target:
    return parse_target(preset_text(name), f"<preset {name}>", default_name=name)


@lru_cache(maxsize=64)
def _load_file(path: str, absolute: str, mtime: float) -> Target:
    text = read_description(path, "target description")
    default = os.path.splitext(os.path.basename(path))[0]
    return parse_target(text, path, default_name=default)


def load_target(spec: str | Target) -> Target:
    """A target from a preset name or a ``.toml`` file path (a `Target` is returned as is).

    Unknown names and unreadable or invalid files raise a `UserError` (located
    at ``file:line:col`` for mistakes inside a file).
    """
    if isinstance(spec, Target):
        return spec
    return resolve_description(
        spec,
        kind="target",
        file_kind="target description",
        presets=preset_names(),
        from_file=lambda path: _load_file(path, os.path.abspath(path), os.path.getmtime(path)),
        from_preset=_load_preset,
    )

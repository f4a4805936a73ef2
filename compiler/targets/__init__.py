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
from importlib import resources

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets.description import (
    MEMORY_KINDS,
    NON_VOLATILE_KINDS,
    OP_KINDS,
    Memory,
    Processor,
    Target,
    parse_target,
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
    folder = resources.files(__name__)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of a shipped preset."""
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def _load_preset(name: str) -> Target:
    return parse_target(preset_text(name), f"<preset {name}>", default_name=name)


@lru_cache(maxsize=64)
def _load_file(path: str, absolute: str, mtime: float) -> Target:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UserError(f"cannot read target description '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"target description '{path}' is not UTF-8 text") from None
    default = os.path.splitext(os.path.basename(path))[0]
    return parse_target(text, path, default_name=default)


def load_target(spec: str | Target) -> Target:
    """A target from a preset name or a ``.toml`` file path (a `Target` is returned as is).

    Unknown names and unreadable or invalid files raise a `UserError` (located
    at ``file:line:col`` for mistakes inside a file).
    """
    if isinstance(spec, Target):
        return spec
    text = spec.strip()
    if not text:
        raise UserError("no target given (a preset name or a .toml file)")
    if text.endswith(".toml") or os.sep in text or "/" in text:
        if not os.path.isfile(text):
            raise UserError(f"target description '{text}' not found")
        return _load_file(text, os.path.abspath(text), os.path.getmtime(text))
    names = preset_names()
    if text not in names:
        raise UserError(f"unknown target '{text}' (presets: {', '.join(names)}; or give a FILE.toml)")
    return _load_preset(text)

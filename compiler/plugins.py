"""Third-party passes and dialects.

* Installed packages declare the entry-point group ``nnopt.plugins``; each
  entry point is an `xdsl.universe.Universe` (dialects, passes, targets).
* ``--load-pass-plugin FILE.py`` registers every concrete `ModulePass`
  subclass defined in that file under its ``name``.

A pass name registered twice is an error that names both sources.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

from nnopt.compiler.diagnostics import UserError

ENTRY_POINT_GROUP = "nnopt.plugins"

PassFactory = Callable[[], type[ModulePass]]
DialectFactory = Callable[[], Dialect]


@dataclass
class Registry:
    """Pass and dialect factories with the source each came from."""

    passes: dict[str, PassFactory] = field(default_factory=dict)
    pass_sources: dict[str, str] = field(default_factory=dict)
    dialects: dict[str, DialectFactory] = field(default_factory=dict)
    dialect_sources: dict[str, str] = field(default_factory=dict)

    def add_pass(self, name: str, factory: PassFactory, source: str) -> None:
        """Register a pass; a duplicate name is a `UserError` naming both sources."""
        if name in self.passes:
            raise UserError(f"pass '{name}' is defined twice: by {self.pass_sources[name]} and by {source}")
        self.passes[name] = factory
        self.pass_sources[name] = source

    def add_dialect(self, name: str, factory: DialectFactory, source: str) -> None:
        """Register a dialect; a duplicate name is a `UserError` naming both sources."""
        if name in self.dialects:
            raise UserError(
                f"dialect '{name}' is defined twice: by {self.dialect_sources[name]} and by {source}"
            )
        self.dialects[name] = factory
        self.dialect_sources[name] = source

    def add_universe(self, universe: Universe, source: str) -> None:
        """Register everything a plugin `Universe` contributes."""
        for name, factory in universe.all_dialects.items():
            self.add_dialect(name, factory, source)
        for name, pass_factory in universe.all_passes.items():
            self.add_pass(name, pass_factory, source)


def entry_point_universes() -> list[tuple[str, Universe]]:
    """The `Universe` objects installed packages publish under ``nnopt.plugins``."""
    found: list[tuple[str, Universe]] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = f"plugin '{ep.name}' ({ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise UserError(f"cannot load {source}: {exc}") from None
        if not isinstance(obj, Universe):
            raise UserError(f"{source} is not an xdsl.universe.Universe")
        found.append((source, obj))
    return found


def _factory(cls: type[ModulePass]) -> PassFactory:
    return lambda: cls


def passes_in_file(path: str) -> dict[str, type[ModulePass]]:
    """Load a Python file and return the concrete `ModulePass` subclasses it defines."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"pass plugin file not found: {path}")
    module_name = f"nnopt_plugin_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot load pass plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UserError(f"cannot load pass plugin {path}: {type(exc).__name__}: {exc}") from None
    found: dict[str, type[ModulePass]] = {}
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, ModulePass)
            and obj.__module__ == module_name
            and not inspect.isabstract(obj)
            and isinstance(getattr(obj, "name", None), str)
        ):
            if obj.name in found:
                raise UserError(f"pass '{obj.name}' is defined twice in {path}")
            found[obj.name] = obj
    if not found:
        raise UserError(f"pass plugin {path} defines no ModulePass subclass with a name")
    return found


def add_file_plugin(registry: Registry, path: str) -> list[str]:
    """Register the passes of a plugin file; returns their names."""
    names: list[str] = []
    for name, cls in passes_in_file(path).items():
        registry.add_pass(name, _factory(cls), f"plugin file {path}")
        names.append(name)
    return names

"""nnopt's passes, one per file, registered lazily by their kebab-case names."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Name -> factory for every nnopt pass; factories import their module on first use."""
    return {}

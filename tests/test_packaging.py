"""The package layout: every code folder is packaged, and only as `nnopt.*`."""

from __future__ import annotations

import tomllib

from .conftest import ROOT

CODE = {
    "compiler": "nnopt.compiler",
    "dialects": "nnopt.dialects",
    "passes": "nnopt.passes",
    "backends": "nnopt.backends",
    "testing": "nnopt.testing",
}


def test_every_code_folder_is_a_listed_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {package: folder for folder, package in CODE.items()}
    listed = set(config["packages"])
    for folder, package in CODE.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *rel.parts])
            assert name in listed, f"{name} is missing from [tool.setuptools] packages"
            assert (init.parent / "py.typed").exists(), f"{init.parent} has no py.typed"


def test_xdsl_is_pinned() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "xdsl==0.74.*" in deps

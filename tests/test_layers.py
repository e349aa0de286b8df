"""Layering: which part of rayflavor may import which (docs/architecture.md says the same).

Every module belongs to one layer, named by its place in the package; a layer imports only
the layers listed for it, and only the third-party packages listed for it:

    foundation     rayflavor, rayflavor.configfile, rayflavor.messages, rayflavor.settings_model, rayflavor.richness,
                   rayflavor.examples: no other rayflavor module; the standard library, numpy (click inside a function)
    physics        foundation; numpy and numba only (no torch, pymoo, polars, pyarrow, Ray)
    methods        physics, foundation; torch, pymoo, pyarrow -- never Ray
    storage        physics, foundation; pyarrow, polars -- never analysis, methods, orchestration, Ray
    analysis       storage, methods, physics, foundation; polars, matplotlib -- never orchestration, Ray
    orchestration  every layer above but bench and cli; the only library layer that imports Ray
    bench          every layer but cli (benchmarks drive orchestration, storage and methods alike)
    cli            every layer, lazily: importing any cli module loads neither Ray nor torch

Two checks. Statically, every ``import`` statement of every module (those inside functions
too, found with :mod:`ast`) must point to an allowed layer and an allowed package. At import
time, each layer's modules are imported together in a fresh interpreter (the same trick as
pip-tools' test_circular_imports, so nothing imported by another test can hide a violation),
and only orchestration and bench may have loaded Ray.  Modules are discovered with
:mod:`pkgutil`, so a new module is checked without editing this file, and a new top-level
module fails until it is given a layer.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rayflavor

FOUNDATION = {"rayflavor", "rayflavor.configfile", "rayflavor.messages", "rayflavor.settings_model", "rayflavor.richness",
              "rayflavor.examples"}
LAYERS = ("foundation", "physics", "methods", "storage", "analysis", "orchestration", "bench", "cli")

#: layer -> the rayflavor layers it may import besides itself
MAY_IMPORT = {
    "foundation": set(),
    "physics": {"foundation"},
    "methods": {"physics", "foundation"},
    "storage": {"physics", "foundation"},
    "analysis": {"storage", "methods", "physics", "foundation"},
    "orchestration": {"analysis", "storage", "methods", "physics", "foundation"},
    "bench": {"orchestration", "analysis", "storage", "methods", "physics", "foundation"},
    "cli": set(LAYERS) - {"cli"},
}

#: layer -> the third-party packages it may import (anything else outside the standard library fails)
THIRD_PARTY = {
    "foundation": {"numpy", "click"},
    "physics": {"numpy", "numba"},
    "methods": {"numpy", "torch", "pymoo", "pyarrow"},
    "storage": {"numpy", "pyarrow", "polars"},
    "analysis": {"numpy", "polars", "pyarrow", "matplotlib"},
    "orchestration": {"numpy", "torch", "pyarrow", "polars", "ray", "rich"},
    "bench": {"numpy", "torch", "pyarrow", "polars", "ray", "matplotlib"},
    "cli": {"numpy", "polars", "click"},
}

#: layer -> packages that importing all its modules (in a fresh interpreter) must not load
NOT_LOADED = {
    "foundation": {"ray", "torch", "pymoo", "polars", "pyarrow"},
    "physics": {"ray", "torch", "pymoo", "polars", "pyarrow"},
    "methods": {"ray"},
    "storage": {"ray", "torch", "pymoo"},
    "analysis": {"ray"},
    "cli": {"ray", "torch"},
}


def all_modules() -> list[str]:
    """Every module of the rayflavor package (pkgutil, so nothing is listed by hand)."""
    return sorted(["rayflavor"] + [m.name for m in pkgutil.walk_packages(rayflavor.__path__, "rayflavor.")])


MODULES = all_modules()


def layer_of(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    raise AssertionError(f"{module} belongs to no layer: move it into one, or add it to FOUNDATION")


def imports_of(module: str) -> set[str]:
    """Absolute names of everything ``module`` imports, at top level or inside functions
    (``from a import b`` gives both ``a`` and ``a.b``: b may be a module)."""
    path = Path(importlib.util.find_spec(module).origin)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def rayflavor_module(name: str) -> str | None:
    """The rayflavor module that ``name`` is or lies in (``pkg.attr`` -> ``pkg``); None outside rayflavor."""
    while name.split(".")[0] == "rayflavor":
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def forbidden_imports(module: str) -> list[str]:
    mine = layer_of(module)
    bad = set()
    for name in imports_of(module):
        top = name.split(".")[0]
        if top == "rayflavor":
            target = rayflavor_module(name)
            if target is not None and layer_of(target) not in MAY_IMPORT[mine] | {mine}:
                bad.add(f"{target} ({layer_of(target)})")
        elif top not in sys.stdlib_module_names and top != "__future__" and top not in THIRD_PARTY[mine]:
            bad.add(top)
    return sorted(bad)


def test_every_module_has_a_layer_and_every_layer_modules():
    assert {layer_of(m) for m in MODULES} == set(LAYERS)
    physics = [m for m in MODULES if layer_of(m) == "physics"]
    assert {"rayflavor.physics.bands", "rayflavor.physics.params", "rayflavor.physics.fn_kernel",
            "rayflavor.physics.seesaw_kernel"} <= set(physics)  # the files the hand-written list left out


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_down(module):
    bad = forbidden_imports(module)
    assert not bad, f"{module} ({layer_of(module)}) imports {bad}"


def test_only_orchestration_and_bench_import_ray():
    users = sorted(m for m in MODULES if any(n.split(".")[0] == "ray" for n in imports_of(m)))
    assert users and {layer_of(m) for m in users} <= {"orchestration", "bench"}, users


def _loaded_after(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


@pytest.mark.parametrize("layer", sorted(NOT_LOADED))
def test_importing_a_layer_loads_no_forbidden_package(layer):
    loaded = _loaded_after([m for m in MODULES if layer_of(m) == layer]) & NOT_LOADED[layer]
    assert not loaded, f"importing the {layer} modules loads {sorted(loaded)}"


def test_the_check_sees_an_arrow_up(tmp_path, monkeypatch):
    """A storage module importing analysis inside a function (the dedupe's old arrow) is caught."""
    pkg = tmp_path / "rayflavor" / "storage"
    pkg.mkdir(parents=True)
    (pkg / "upward.py").write_text("def f():\n    from rayflavor.analysis.discovery import island_times\n"
                                   "    import ray\n")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: type("S", (), {"origin": str(pkg / "upward.py")}))
    assert forbidden_imports("rayflavor.storage.upward") == ["ray", "rayflavor.analysis.discovery (analysis)"]

"""Layering: the physics never imports Ray or torch; methods never import Ray.

Each check imports the modules in a fresh interpreter (the same trick as pip-tools'
test_circular_imports), so nothing imported by another test can hide a violation.
"""

import subprocess
import sys

import pytest

PHYSICS = ["rayflavor.physics.linalg", "rayflavor.physics.mixing", "rayflavor.physics.seesaw",
           "rayflavor.physics.fn", "rayflavor.physics.losses", "rayflavor.physics.data",
           "rayflavor.physics.seesaw_symmetry", "rayflavor.physics.casas_ibarra"]


def _imported_after(modules):
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_physics_imports_neither_ray_nor_torch():
    loaded = _imported_after(PHYSICS)
    assert "ray" not in loaded and "torch" not in loaded and "pymoo" not in loaded


@pytest.mark.parametrize("package", ["rayflavor.methods.ga", "rayflavor.methods.diffusion", "rayflavor.methods"])
def test_methods_do_not_import_ray(package):
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    mods = [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    assert "ray" not in _imported_after(mods or [package])

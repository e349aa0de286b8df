"""No default is stated twice: a library function does not repeat a settings field's default.

Every settings class declares each setting once (:mod:`rayflavor.settings_model`).  A function of
the rayflavor package whose parameter has the NAME of a settings field and a literal default
(a number, a string or a bool; ``None`` means "not given" and is allowed) states that setting's
default a second time, and the two drift apart (``coordinates="paper"`` against the chain's
``casas-ibarra-m3edge``, ``steps=40`` against ``ReferenceSettings.steps=60``).  Such a function
takes the settings object, or the argument without a default.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from rayflavor.settings_model import base_type, fields_of

PACKAGE = Path(__file__).resolve().parents[1] / "rayflavor"
#: the physics layer sits below every settings class and states its own conventions (``ordering="NO"``
#: of a data-set lookup, ``regime="up"`` of a random FN point); the settings take their physics defaults
#: from its named constants (``fn.DEFAULT_MASS_TOLERANCE``), so it is not checked
UNCHECKED = ("physics",)
#: names whose literal default is a convention of every function that takes them, not a run setting:
#: ``seed=0`` (the first random stream of any helper) and ``ordering="NO"`` (the labels' ordering of
#: every seesaw lookup, the physics layer's convention)
CONVENTIONS = ("seed", "ordering")
#: class fields that share a setting's name but hold something else (file:class.field -> what it is)
NOT_SETTINGS = {
    "rayflavor/methods/ga/island.py:Counters.restarts": "the number of restarts an island has made",
    "rayflavor/methods/diffusion/training.py:Normalizer.coordinates": "a stored network's coordinates; networks "
                                                                      "saved before there was a choice are 'paper'",
}


def settings_classes() -> list[type]:
    from rayflavor.methods.diffusion import settings as ds
    from rayflavor.methods.diffusion.sampleset import SampleSet
    from rayflavor.methods.ga.config import IslandConfig
    from rayflavor.methods.reference import ReferenceSettings
    from rayflavor.orchestration.scan_settings import ScanSettings

    return [ScanSettings, IslandConfig, ReferenceSettings, ds.SamplingSettings, ds.SelectionSettings,
            ds.TuneSettings, ds.RecoverySettings, ds.FinetuneSettings, ds.ChainSettings, SampleSet]


def setting_names() -> dict[str, list[str]]:
    """``{field name: [Class.field, ...]}`` of every setting holding a plain value (a nested settings
    object's field, e.g. ``island``, is a table, not a value a parameter could repeat)."""
    names: dict[str, list[str]] = {}
    for cls in settings_classes():
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        declared = fields_of(cls)
        for f in dataclasses.fields(cls):
            tp = declared[f.name][1] if f.name in declared else hints[f.name]
            if dataclasses.is_dataclass(base_type(tp)[0]) or f.name.startswith("_"):
                continue
            names.setdefault(f.name, []).append(f"{cls.__name__}.{f.name}")
    return names


def _literal(node: ast.expr) -> bool:
    """A default written as a literal number, string or bool (``None``: "not given", allowed)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and node.value is not None


def defaults_in(source: str) -> list[tuple[int, str, str, str]]:
    """``(line, where, name, default source)`` of every literal parameter default and every literal
    default of a class field (a dataclass field is a parameter of its ``__init__``) in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None \
                        and _literal(item.value):
                    out.append((item.lineno, f"{node.name}.{item.target.id}", item.target.id, ast.unparse(item.value)))
            continue
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        a = node.args
        positional = [*a.posonlyargs, *a.args]
        pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults))
        pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
        for arg, default in pairs:
            if _literal(default):
                out.append((node.lineno, f"{getattr(node, 'name', '<lambda>')}({arg.arg}=)", arg.arg,
                            ast.unparse(default)))
    return out


def repeated_defaults(files=None) -> list[str]:
    names = setting_names()
    settings_sources = {Path(__import__(c.__module__, fromlist=["x"]).__file__).resolve(): c.__name__
                        for c in settings_classes()}
    out = []
    for path in files or sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if rel.parts[1] in UNCHECKED:
            continue
        settings_here = {name for p, name in settings_sources.items() if p == path.resolve()}
        for line, where, param, default in defaults_in(path.read_text()):
            if param not in names or param in CONVENTIONS or f"{rel}:{where}" in NOT_SETTINGS:
                continue
            if where.split(".")[0] in settings_here:  # the declaration itself
                continue
            out.append(f"{rel}:{line} {where.replace('=)', '=' + default + ')')} repeats {', '.join(names[param])}")
    return out


def test_no_library_signature_repeats_a_settings_default():
    found = repeated_defaults()
    assert not found, "defaults stated twice (take the settings object, or make the argument required):\n" + \
        "\n".join(found)


def test_the_check_finds_a_repeated_default_and_allows_named_constants(tmp_path):
    """The check is not vacuous: ``islands=64`` and ``coordinates="paper"`` are found, a named
    constant, ``None`` and a parameter that is no setting are not."""
    f = tmp_path / "rayflavor" / "orchestration" / "fake.py"
    f.parent.mkdir(parents=True)
    f.write_text("def scan_many(*, islands=64, seed=None, tolerance=fn.DEFAULT, verbose=True):\n    pass\n"
                 "def train(run, coordinates='paper', every=-1):\n    pass\n"
                 "class Objectives:\n    mass_tolerance: float = 0.2\n    data: object = None\n")
    global PACKAGE
    real, PACKAGE = PACKAGE, f.parents[1]
    try:
        found = repeated_defaults([f])
    finally:
        PACKAGE = real
    assert [line.split(" repeats")[0] for line in found] == [
        "rayflavor/orchestration/fake.py:1 scan_many(islands=64)",
        "rayflavor/orchestration/fake.py:3 train(coordinates='paper')",
        "rayflavor/orchestration/fake.py:3 train(every=-1)",
        "rayflavor/orchestration/fake.py:6 Objectives.mass_tolerance"]


@pytest.mark.parametrize("cls", settings_classes()[:-1], ids=lambda c: c.__name__)
def test_every_numeric_setting_has_an_upper_bound(cls):
    from rayflavor.settings_model import bounds

    for name, (s, tp) in fields_of(cls).items():
        inner, _ = base_type(tp)
        if inner in (int, float) and s.choices is None:
            assert bounds(s, inner)[1] is not None, f"{cls.__name__}.{name}"

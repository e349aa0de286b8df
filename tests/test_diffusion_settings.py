"""Diffusion settings: one definition of every default, presets, config files, manifests; module layering.

No Ray: the commands are invoked with the Ray work replaced by a recorder.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from dataclasses import replace
from click.testing import CliRunner

from rayflavor import configfile
from rayflavor.cli import diffusion as cli_diffusion
from rayflavor.cli.main import cli
from rayflavor.methods.diffusion.sampleset import SampleSet
from rayflavor.methods.diffusion.settings import (PRESETS, ChainSettings, FinetuneSettings, RecoverySettings,
                                                  SamplingSettings, SelectionSettings, TuneSettings)

ROOT = Path(__file__).resolve().parents[1]


def p_bound() -> str:
    return PRESETS[ChainSettings]["paper"].sampling.bound


def test_library_callers_get_the_cli_chain():
    """The library's defaults are the values users get from the CLI."""
    c = ChainSettings()
    assert (c.teacher, c.teacher_tasks, c.teacher_live, c.teacher_steps) == ("importance", 16, 1000, 40_000)
    assert (c.rounds, c.sampling.guidance, c.final_network, c.final_guidance) == (0, 1.0, "best", 1.0)
    assert (c.final_physics, c.final_project, c.final_orbits, c.second_final) == (0, 200, 10, True)
    # the teacher mixes along the orbits like a reference; the network works in Casas-Ibarra coordinates and
    # conditions each final point on the labels of one of its solutions
    t = c.teacher_reference()  # the exact sampler, from the chain's seed on its own random stream
    assert (t.method, t.tasks, t.proposals, t.seed, t.stream) == ("importance", 16, 1_000_000, 0, 1)
    nested = replace(c, teacher="nested").teacher_reference()  # mixes along the orbits like a reference
    assert (nested.method, nested.orbits, nested.stream, nested.n_live) == ("nested", 1, 1, 1000)
    exact = replace(c, teacher="importance", teacher_tasks=3, teacher_proposals=1000, seed=7).teacher_reference()
    assert (exact.method, exact.tasks, exact.proposals, exact.seed, exact.stream) == ("importance", 3, 1000, 7, 1)
    # the importance teacher draws past the prior box's faces (1.1), unless told the box (1); nested draws inside it
    assert (t.box, replace(c, teacher_box=1.0).teacher_reference().box, nested.box) == (1.1, 1.0, 1.0)
    # a run.json or --config file of an earlier release names the nested teacher 'reference'
    assert ChainSettings(teacher="reference") == ChainSettings(teacher="nested")
    assert (c.coordinates, c.final_labels, c.final_sampling(0, 0, 0).labels) == ("casas-ibarra-m3edge", "solutions",
                                                                          "solutions")
    from rayflavor.methods.reference import ReferenceSettings

    assert ReferenceSettings().orbits == 1
    s = PRESETS[ChainSettings]["self"]  # the self-training chain measured before the teacher, unchanged
    assert (s.teacher, s.rounds, s.final_physics, s.final_project, s.final_orbits, s.sampling, s.selection, s.tune) == \
        ("none", 30, 3, 0, 0, replace(c.sampling, bound="clamp"), c.selection, c.tune)
    assert (s.coordinates, s.final_labels) == ("paper", "central")
    p = PRESETS[ChainSettings]["paper"]
    assert (p.coordinates, p.final_labels, p.final_sampling(0, 0, 0).labels) == ("paper", "central", "central")
    # the network-only final sample redraws what leaves the prior box; the projected one and the presets bound it
    assert (c.final_sampling(0, 0, 0).outside, c.final_sampling(0, 200, 10).outside) == ("redraw", "bound")
    assert (s.final_sampling(0, 0, 0).outside, p.final_sampling(0, 0, 0).outside, c.sampling.outside) == \
        ("bound", "bound", "bound")
    assert (c.sampling.bound, FinetuneSettings().sampling.bound, p_bound()) == ("reflect", "clamp", "clamp")
    assert (c.sampling.n, c.tune.steps, c.train_steps, c.n_final) == (20_000, 2000, 20_000, 100_000)
    f = FinetuneSettings()
    assert (f.selection.select, f.selection.n_best, f.selection.pool, f.tune.refit, f.selection.per_solution) == \
        ("nearest", 300, "union", "solutions", 30.0)
    assert (f.sampling.n, f.sampling.guidance, f.tune.steps) == (200_000, 8.0, 100_000)
    p = PRESETS[ChainSettings]["paper"]
    assert p.teacher == "none"
    assert (p.rounds, p.train_steps, p.tune.steps, p.tune.refit, p.sampling.clip, p.sampling.sampler,
            p.sampling.steps, p.sampling.guidance, p.final_guidance, p.final_network, p.final_physics,
            p.selection.select, p.selection.pool, p.selection.min_select, p.n_final, p.second_final) == \
        (1, 100_000, 100_000, "none", 0.0, "ddpm", 1000, 8.0, 8.0, "last", 0, "cuts", "round", 0, 30_000_000, False)


@pytest.mark.parametrize("bad, message", [
    (lambda: SamplingSettings(guidance=float("nan")), "guidance must be a finite number"),
    (lambda: SamplingSettings(n=20, shards=30), "shards (30) must not exceed n (20)"),
    (lambda: SamplingSettings(steps=0), "steps must be an integer in [1, 1000], not 0"),
    (lambda: SelectionSettings(select="best"), "select must be one of nearest, cuts"),
    (lambda: TuneSettings(refit="all"), "refit must be one of solutions, none"),
    (lambda: ChainSettings(seed=-1), "seed must be an integer in [0, 9223372036854775807], not -1"),
    (lambda: ChainSettings(seed=2**63), "seed must be an integer in [0, 9223372036854775807]"),
    (lambda: ChainSettings(n_data=10.0), "n_data must be an integer in [10, "),
    (lambda: ChainSettings(rounds=3), "rounds (3) need teacher 'none'"),
    (lambda: ChainSettings(teacher="self"), "teacher must be one of importance, nested, none"),
    (lambda: ChainSettings(teacher_live=5), "teacher_live must be an integer in [20, "),
    (lambda: ChainSettings(sampling=SamplingSettings(physics=3)), "orbit resampling in the fine-tuning rounds are not"),
    (lambda: ChainSettings(sampling=SamplingSettings(project=50)), "orbit resampling in the fine-tuning rounds are not"),
    (lambda: ChainSettings(sampling=SamplingSettings(orbits=5)), "orbit resampling in the fine-tuning rounds are not"),
    (lambda: SamplingSettings(project=-1), "project must be an integer in [0, "),
    (lambda: SamplingSettings(orbits=-2), "orbits must be an integer in [0, "),
    (lambda: ChainSettings(final_orbits=-1), "final_orbits must be an integer in [0, "),
    (lambda: ChainSettings(coordinates="polar"), "coordinates must be one of paper, casas-ibarra, casas-ibarra-m3edge"),
    (lambda: ChainSettings(teacher_orbits=-1), "teacher_orbits must be an integer in [0, "),
    (lambda: ChainSettings(teacher_box=0.9), "teacher_box must be a finite number in [1, 2], not 0.9"),
    (lambda: ChainSettings(final_physics=3), "final_physics (3) needs coordinates 'paper'"),
    (lambda: SamplingSettings(labels="mean"), "labels must be one of central, solutions"),
    (lambda: RecoverySettings(max_failures=-2), "max_failures must be an integer in [-1, "),
    (lambda: SamplingSettings(labels="solutions", ordering="IO"), "use labels 'central' for IO"),
])
def test_settings_refuse_bad_values_in_one_line(bad, message):
    with pytest.raises(ValueError) as e:
        bad()
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.fixture
def recorded_chain(monkeypatch):
    """``diffusion run`` with the chain replaced by a recorder of its settings (no Ray)."""
    import rayflavor.orchestration.diffusion_pipeline as pipeline

    seen = []

    def fake_chain(run, settings, **kw):
        seen.append(settings)
        pipeline.write_run_manifest(run, settings)
        return {"solutions": 0, "n": 1, "fraction": 0.0, "distinct_solutions": 0, "total_seconds": 0.0}

    monkeypatch.setattr(pipeline, "run_chain", fake_chain)
    monkeypatch.setattr(cli_diffusion, "_ray", lambda ctx: None)
    return seen


def test_run_settings_precedence_default_preset_config_option(tmp_path, recorded_chain):
    run = str(tmp_path / "run")
    invoke = lambda *a: CliRunner().invoke(cli, ["diffusion", "run", run, *a], catch_exceptions=False)
    assert invoke().exit_code == 0
    assert recorded_chain[-1] == ChainSettings()
    assert invoke("--preset", "paper").exit_code == 0
    assert recorded_chain[-1] == PRESETS[ChainSettings]["paper"]
    cfg = tmp_path / "c.toml"
    cfg.write_text("rounds = 4\n[sampling]\nguidance = 2.5\n[tune]\nsteps = 300\n")
    assert invoke("--preset", "paper", "--config", str(cfg), "--rounds", "2").exit_code == 0
    got = recorded_chain[-1]
    assert got.rounds == 2 and got.sampling.guidance == 2.5 and got.tune.steps == 300  # option > config
    assert got.sampling.sampler == "ddpm" and got.tune.refit == "none"  # the rest from the preset
    # the stored manifest holds every setting and is itself a valid --config file
    stored = json.loads((Path(run) / "run.json").read_text())
    assert stored["settings"] == configfile.to_mapping(got)
    assert invoke("--config", str(Path(run) / "run.json")).exit_code == 0
    assert recorded_chain[-1] == got


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "0.8"], "No such option"),
    (["--final-temperature", "0.8"], "No such option"),
    (["--tighten", "0.5"], "No such option"),
    (["--physics-guidance", "3"], "No such option"),  # in the rounds
    (["--spread", "100"], "No such option"),  # measured and not adopted: removed
    (["--select", "cuts"], "No such option"),  # in --config now
    (["--seed", "-1"], "seed must be an integer in [0, 9223372036854775807], not -1"),
    (["--seed", "9223372036854775808"], "seed must be an integer in [0, 9223372036854775807]"),
    (["--n-data", "2.5"], "'2.5' is not a valid integer"),
    (["--coordinates", "polar"], "'polar' is not one of"),
    (["--config", "{cfg}", "--workers", "2"], "final_physics (2) needs coordinates 'paper'"),
    (["--config", "{bad}"], "refit must be one of solutions, none, not 'all'"),
])
def test_removed_and_bad_run_options_are_refused_before_anything_is_written(tmp_path, recorded_chain, args, fragment):
    run = tmp_path / "run"
    (tmp_path / "c.toml").write_text("final_physics = 2\n")
    (tmp_path / "bad.toml").write_text("[tune]\nrefit = 'all'\n")
    args = [a.format(cfg=tmp_path / "c.toml", bad=tmp_path / "bad.toml") for a in args]
    r = CliRunner().invoke(cli, ["diffusion", "run", str(run), *args])
    assert r.exit_code == 2 and fragment in r.output, r.output
    assert not recorded_chain and not run.exists()


def test_a_config_file_sets_the_restarts_of_every_training_of_the_chain(tmp_path, recorded_chain):
    cfg = tmp_path / "c.toml"
    cfg.write_text("teacher = 'none'\nrounds = 2\n[recovery]\nmax_failures = 7\n")
    assert CliRunner().invoke(cli, ["diffusion", "run", str(tmp_path / "run"), "--config", str(cfg)]).exit_code == 0
    got = recorded_chain[-1]
    assert got.recovery == RecoverySettings(7) and got.finetune().recovery == RecoverySettings(7)
    assert ChainSettings().recovery.max_failures == FinetuneSettings().recovery.max_failures == 3
    cfg.write_text("[recovery]\nmax_failures = -5\n")
    r = CliRunner().invoke(cli, ["diffusion", "run", str(tmp_path / "run2"), "--config", str(cfg)])
    assert r.exit_code == 2 and "max_failures must be an integer in [-1, " in r.output and len(r.output.strip().splitlines()) == 1


def test_bad_config_file_is_refused_in_one_line(tmp_path, recorded_chain):
    cfg = tmp_path / "c.toml"
    cfg.write_text("rounds = 4\n[sampling]\ntemperature = 0.5\n")
    r = CliRunner().invoke(cli, ["diffusion", "run", str(tmp_path / "run"), "--config", str(cfg)])
    assert r.exit_code == 2 and "temperature" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_sample_manifest_stores_every_setting_and_old_manifests_stay_readable():
    s = SampleSet(network="tuned-2", sampling=SamplingSettings(n=10, shards=2, bound="clamp"), seed=3)
    m = s.manifest()
    assert {"network", "seed", "keep", "data", "settings"} <= set(m)
    assert m["settings"] == configfile.to_mapping(s.sampling)  # whole, defaults included
    assert m["settings"]["physics"] == 0 and SampleSet.from_manifest(m) == s
    assert configfile.from_mapping(SamplingSettings, m["settings"]) == s.sampling  # a valid settings table
    assert s.tag() == "tuned-2-ddim50-g8-NO-clip1-n10-s3"  # the tags of existing runs are unchanged
    old = {"network": "pre", "sampler": "ddim", "steps": 50, "guidance": 8.0, "ordering": "NO", "n": 10, "shards": 2,
           "seed": 0, "keep": "all", "clip": None, "data": "nufit-6.0-sk", "temperature": 1.0}
    assert SampleSet.from_manifest(old).sampling.clip == 0.0  # written before: no physics key, clip null
    assert SampleSet.from_manifest(old).sampling.bound == "clamp"  # and no bound: the clamp it was drawn with
    with pytest.raises(ValueError, match="temperature 0.7, an option that no longer exists"):
        SampleSet.from_manifest({**old, "temperature": 0.7})


DIFFUSION_MODULES = sorted(
    ["rayflavor.methods.diffusion." + p.stem for p in (ROOT / "rayflavor/methods/diffusion").glob("*.py")
     if p.stem != "__init__"]
    + ["rayflavor.orchestration." + p.stem for p in (ROOT / "rayflavor/orchestration").glob("diffusion_*.py")]
    + ["rayflavor.cli.diffusion", "rayflavor.storage.runs"])


def _imports(module: str) -> set[str]:
    """rayflavor modules imported anywhere in ``module``'s source (also inside functions)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rayflavor"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rayflavor"))
    return found & set(DIFFUSION_MODULES)


def test_diffusion_modules_have_no_import_cycle():
    graph = {m: _imports(m) for m in DIFFUSION_MODULES}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, f"import cycle: {' -> '.join(stack + [m, n])}"
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
    # methods never reach into orchestration, storage or the CLI
    for m in DIFFUSION_MODULES:
        if m.startswith("rayflavor.methods."):
            assert not any(n.startswith(("rayflavor.orchestration", "rayflavor.storage", "rayflavor.cli"))
                           for n in graph[m]), m


@pytest.mark.parametrize("module", DIFFUSION_MODULES)
def test_each_diffusion_module_imports_alone(module):
    """In a fresh interpreter, so an import order set up by another module cannot hide a cycle."""
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_settings_name_exactly_the_coordinate_systems_the_network_code_knows():
    from rayflavor.methods.diffusion import coordinates, settings

    assert settings.COORDINATES == coordinates.SYSTEMS

"""Targets (``scan --target 'm_ee<1e-4'``): the parser, the shaped residual, the island's bookkeeping,
scan.json and ``--resume``, and a tiny scan that records and reports them."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayflavor import configfile
from rayflavor.cli.main import cli
from rayflavor.methods.ga.config import ISLAND_PRESETS, IslandConfig
from rayflavor.methods.ga.island import make_island
from rayflavor.methods.ga.problem import NEAR_SUM
from rayflavor.orchestration.scan_settings import ScanSettings, differences
from rayflavor.physics import data, fn
from rayflavor.physics import targets as T
from rayflavor.storage.location import resolve

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))
NAMES = list(T.OBSERVABLES)

# ------------------------------------------------------------------------------------ the parser

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["1e-4", "nan", "inf",
                    "-0", "0", "1_0", "abc", "", "1e999", "0x10", "--1"]), st.text(max_size=6))
target_texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, o, v, sp: f"{n}{sp}{o}{sp}{v}", st.one_of(st.sampled_from(NAMES), st.text(max_size=8)),
              st.sampled_from(["<", "<=", ">", ">=", "=", "<<", "=>", ""]), numbers, st.sampled_from(["", " ", "\t", "\n"])),
)


@given(target_texts)
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_is_refused_in_one_line(text):
    try:
        t = T.parse(text)
    except ValueError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg
        return
    assert t.name in T.OBSERVABLES and t.op in T.OPERATORS and math.isfinite(t.value)
    assert T.parse(t.text) == t  # the canonical spelling reads back as the same target
    assert not T.OBSERVABLES[t.name].positive or t.value > 0


@given(target_texts)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_target_option_gives_settings_or_one_error_line_exit_2(text):
    res = CliRunner().invoke(cli, ["config", "show", "scan", f"--target={text}"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 0:
        assert f"targets = [\"{T.parse(text).text}\"]" in res.output
    else:
        assert res.exit_code == 2
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), res.output


@pytest.mark.parametrize("text, words", [
    ("m_bb<1", "unknown observable"), ("m_ee<nan", "not a finite number"), ("m_ee<inf", "not a finite number"),
    ("m_ee<1e-4x", "not a finite number"), ("m_ee=1", "not NAME<VALUE"), ("m_ee<0", "must be > 0"),
])
def test_bad_targets_exit_2_with_one_line_naming_the_known_observables(text, words):
    res = CliRunner().invoke(cli, ["scan", "--target", text, "--out", "never-written"])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error:") and words in lines[0], res.output
    if words in ("unknown observable", "not NAME<VALUE"):
        assert all(n in lines[0] for n in NAMES)
    assert not Path("never-written").exists()


def test_targets_are_stored_canonically_once_and_a_config_file_takes_them(tmp_path):
    a = IslandConfig(targets=("m_ee < 1e-4", "m_ee<0.0001", "pmns_delta>=180"))
    assert a.targets == ("m_ee<0.0001", "pmns_delta>=180")
    assert a.objective_names[-2:] == ["m_ee<0.0001", "pmns_delta>=180"]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[island]\ntargets = ["m_ee<1e-4"]\n')
    res = CliRunner().invoke(cli, ["config", "show", "scan", "--config", str(cfg), "--target", "m_sum>0.1"])
    assert res.exit_code == 0 and 'targets = ["m_sum>0.1"]  # command line' in res.output, res.output
    cfg.write_text('[island]\ntargets = "m_ee<1e-4"\n')
    res = CliRunner().invoke(cli, ["config", "show", "scan", "--config", str(cfg)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output


# ------------------------------------------------------------------------------------ the residual

values = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-8, 10.0),
                            st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -1.0])), min_size=1, max_size=20)
targets = st.builds(lambda n, o, v: T.parse(f"{n}{o}{v!r}"), st.sampled_from(NAMES), st.sampled_from(T.OPERATORS),
                    st.floats(1e-9, 1e3))


@given(targets, values)
@settings(max_examples=300, deadline=None)
def test_the_residual_is_zero_exactly_where_the_target_is_met(t, v):
    o = np.array(v)
    r, met = t.residual(o), t.met(o)
    assert np.isfinite(r).all()
    assert (r[met] == 0).all() and (r[~met] > 0).all()
    assert not met[~np.isfinite(o)].any()


@given(targets, st.floats(1e-6, 1e3), st.floats(1e-6, 1e3))
@settings(max_examples=200, deadline=None)
def test_the_residual_grows_with_the_distance_from_the_target(t, a, b):
    lo, hi = sorted((a, b))
    side = np.array([lo, hi]) * t.value + (t.value if t.op[0] == "<" else 0.0)  # both on the far side ...
    if t.op[0] == ">":
        side = t.value / (1.0 + np.array([hi, lo]))  # ... nearer to the target last
        r = t.residual(side)
        assert r[0] >= r[1]
    else:
        r = t.residual(side)
        assert r[1] >= r[0]


def test_the_objective_matrix_ends_with_the_distance_to_each_targets_corner():
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["fast"], targets=("m_ee<1e-4", "max_mass_error<0.05"))
    isl = make_island(cfg, ds, island=0, seed=0)
    x = fn.random_parameters(50, np.random.default_rng(1))
    res = isl.objectives.evaluate(x)
    R = isl.shaper.residuals(res)
    F = isl._objective_matrix(res, R)
    assert F.shape == (50, len(fn.OBJECTIVES) + 2) == (50, len(isl.names))
    err = np.max([np.abs(res[m] / ds.get(m).central - 1) for m in fn.MASSES], axis=0)
    want = np.column_stack([T.parse("m_ee<1e-4").residual(res["m_ee"]), T.parse("max_mass_error<0.05").residual(err)])
    assert (want == 0).any() and (want > 0).any()
    def corner(F):  # the distance to the corner, 0 only on valid models meeting the target
        s = F[:, :-2].sum(axis=1, keepdims=True)
        return s + np.exp(-s / NEAR_SUM) * want

    assert np.allclose(F[:, -2:], corner(F), rtol=1e-12, atol=0)
    assert R.shape[1] == len(isl.shaper.columns)  # not a residual of the refinement
    paper = make_island(replace(ISLAND_PRESETS["paper"], targets=cfg.targets), ds, island=0, seed=0)
    Fp = paper._objective_matrix(res, R)
    assert np.allclose(Fp[:, -2:], corner(Fp), rtol=1e-12, atol=0)
    zero = (F[:, -2:] == 0)
    assert np.array_equal(zero, (want == 0) & (F[:, :-2] == 0).all(axis=1, keepdims=True))


@given(st.lists(st.tuples(st.lists(st.sampled_from([0.0, 1e-12, 0.3, 2.0, 1e3, 1e30]), min_size=3, max_size=3),
                          st.sampled_from([1e-6, 5e-5, 1e-4, 2e-3, float("nan")])), min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_the_target_objective_is_zero_exactly_on_valid_models_meeting_the_target(rows):
    from rayflavor.methods.ga.problem import Objectives

    ob = Objectives(data=data.load(RELAXED), mass_tolerance=0.2, targets=(T.parse("m_ee<1e-4"),))
    F = np.array([f for f, _ in rows])
    mee = np.array([m for _, m in rows])
    col = ob.with_targets(F, {"valid": np.ones(len(rows), bool), "m_ee": mee})[:, -1]
    physics_ok = (F == 0).all(axis=1)
    assert np.isfinite(col).all() and (col >= F.sum(axis=1)).all()
    assert np.array_equal(col == 0, physics_ok & (mee < 1e-4))


def test_only_target_meeting_models_count_towards_target_valid():
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["fast"], pop_size=20, target_valid=2, targets=("m_ee<1e-4",))
    isl = make_island(cfg, ds, island=0, seed=0)
    x = fn.random_parameters(6, np.random.default_rng(2))
    res = isl.objectives.evaluate(x)
    res["valid"] = np.ones(6, dtype=bool)  # the bookkeeping, not the physics, is tested here
    met = np.array([True, False, True, False, True, False])
    isl._harvest(x, res, met)
    rows = isl.drain()
    assert rows["targets_met"].tolist() == [True, False, True, False, False]  # row 4: target_valid reached
    assert (isl.c.n_found, isl.c.n_met) == (5, 2)
    charges = x[:, :18]
    assert isl._is_tabu(charges).tolist() == [True, True, True, True, False, True]  # every stored model, as without targets
    isl._check_stop()
    assert isl.status()["stop_reason"] == "target-valid" and isl.status()["n_targets_met"] == 2
    plain = make_island(replace(cfg, targets=()), ds, island=0, seed=0)
    plain._harvest(x, res, np.ones(6, dtype=bool))
    assert "targets_met" not in plain.drain() and plain.c.n_found == 2  # no targets: as before


# ------------------------------------------------------------------------------------ scan.json and --resume

def test_resume_and_a_retried_job_refuse_another_target(tmp_path):
    stored = ScanSettings(seed=1, island=replace(ISLAND_PRESETS["fast"], targets=("m_ee<1e-4",)))
    out = resolve(tmp_path / "o")
    (out / "scan.json").write_json({"settings": configfile.to_mapping(stored)})
    res = CliRunner().invoke(cli, ["scan", "--resume", "--out", out.uri, "--target", "m_ee<1e-3"])
    assert res.exit_code == 2 and "island.targets cannot change" in res.output, res.output
    assert differences(stored, replace(stored, island=replace(stored.island, targets=("m_ee<1e-3",)))) == ["island.targets"]
    assert differences(stored, replace(stored, island=replace(stored.island, targets=("m_ee < 0.0001",)))) == []
    assert configfile.from_mapping(ScanSettings, configfile.to_mapping(stored)) == stored


@pytest.mark.ray
def test_a_tiny_scan_records_meets_and_reports_its_targets(ray_session, tmp_path):
    out = tmp_path / "scan"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[island]\nmass_tolerance = 0.9\ntarget_valid = 3\n")
    res = CliRunner().invoke(cli, ["scan", "--islands", "2", "--time-limit", "150s", "--seed", "1", "--out", str(out),
                                   "--data", RELAXED, "--config", str(cfg), "--no-live", "--target", "m_ee<10"])
    assert res.exit_code == 0, res.output
    df = pl.read_parquet(out / "models.parquet")
    assert df.height >= 1 and df["targets_met"].all()
    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert fn.evaluate(x, data=data.load(RELAXED), mass_tolerance=0.9)["valid"].all()  # validity unchanged
    assert f"{df.height} distinct models meet m_ee<10" in res.output
    doc = resolve(out / "scan.json").read_json()
    assert doc["settings"]["island"]["targets"] == ["m_ee<10"]
    # a target no model meets is reported as such (dedupe reads the targets from scan.json)
    doc["settings"]["island"]["targets"] = ["m_ee<10", "m_sum>100"]
    resolve(out / "scan.json").write_json(doc)
    res = CliRunner().invoke(cli, ["dedupe", str(out)])
    assert res.exit_code == 0 and "no model meets m_sum>100" in res.output, res.output
    assert f"{df.height} distinct models meet m_ee<10" in res.output

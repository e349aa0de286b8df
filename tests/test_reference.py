"""The reference sampler on problems with known answers, and the fidelity distances on planted samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rayflavor.analysis import fidelity
from rayflavor.methods.reference import Box, constrained_chains, ess, nested_to_set, split_rhat

A, RA, B, RB = np.array([-0.5, 0.0]), 0.1, np.array([0.5, 0.0]), 0.2  # two disks, areas 1 : 4


def _two_disks(x):
    return np.maximum(np.minimum(np.linalg.norm(x - A, axis=1) - RA, np.linalg.norm(x - B, axis=1) - RB), 0.0)


BOX = Box(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([False, False]))


def _prior(n, rng):
    return rng.uniform(-1.0, 1.0, (n, 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_nested_sampling_visits_separated_modes_in_proportion(seed):
    r = nested_to_set(_two_disks, _prior, BOX, n_live=500, k=50, steps=30, rng=np.random.default_rng(seed))
    assert r.reached and np.all(r.loss == 0)
    small = np.mean(np.linalg.norm(r.points - A, axis=1) < RA)
    assert 0.13 < small < 0.27  # the small disk holds 1/5 of the set's area
    assert abs(r.log_volume - math.log(math.pi * (RA**2 + RB**2) / 4)) < 0.5  # ln(prior fraction of the set)


def test_constrained_chains_are_uniform_in_the_set():
    r = nested_to_set(_two_disks, _prior, BOX, n_live=400, k=40, steps=30, rng=np.random.default_rng(3))
    ch = constrained_chains(r.points, _two_disks, BOX, draws=100, thin=5, burn=100, rng=np.random.default_rng(4))
    s = ch.flat()
    assert np.all(_two_disks(s) == 0)
    big = s[np.linalg.norm(s - B, axis=1) < RB]
    # uniform in a disk: E[r^2] = R^2 / 2, and the angle is uniform (mean direction ~ 0)
    assert np.mean(np.sum((big - B) ** 2, axis=1)) / RB**2 == pytest.approx(0.5, abs=0.03)
    assert np.hypot(*np.mean(big - B, axis=0)) < 0.02
    assert 0.1 < ch.acceptance < 0.5


def _ring(x):  # an annulus around the origin: invariant under rotations
    r = np.linalg.norm(x, axis=1)
    return np.maximum(np.maximum(0.5 - r, r - 0.7), 0.0)


def _rotate(x, rng):  # an exact symmetry of the ring and of the (uniform) target
    a = rng.uniform(0, 2 * math.pi, len(x))
    c, s = np.cos(a), np.sin(a)
    return np.column_stack([c * x[:, 0] - s * x[:, 1], s * x[:, 0] + c * x[:, 1]])


def test_a_symmetry_move_mixes_what_the_walk_alone_cannot():
    """Chains all started in one corner of a ring: in 100 steps the walk alone stays near it, a
    rotation move before every kept state makes the states uniform in angle (R-hat ~1) and keeps
    them uniform in radius."""
    rng = np.random.default_rng(7)
    ang = rng.uniform(0, 0.3, 200)
    rad = np.sqrt(rng.uniform(0.25, 0.49, 200))
    starts = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
    plain = constrained_chains(starts, _ring, BOX, draws=50, thin=2, burn=20, rng=np.random.default_rng(8))
    moved = constrained_chains(starts, _ring, BOX, draws=50, thin=2, burn=20, rng=np.random.default_rng(8),
                               move=_rotate)
    angle = lambda ch: np.arctan2(ch.samples[..., 1], ch.samples[..., 0])  # noqa: E731
    assert np.all(_ring(moved.flat()) == 0)
    resultant = lambda a: np.hypot(np.cos(a).mean(), np.sin(a).mean())  # noqa: E731 - 1: one direction, 0: uniform
    assert resultant(angle(plain)) > 0.5  # the walk alone stays near where it started
    assert resultant(angle(moved)) < 0.03  # uniform in angle
    r2 = np.sum(moved.flat() ** 2, axis=1)
    assert np.mean(r2) == pytest.approx((0.25 + 0.49) / 2, abs=0.01)  # uniform in the annulus: E[r^2] = mid
    assert split_rhat(np.cos(angle(moved))) < 1.05


def test_periodic_coordinates_wrap():
    box = Box(np.array([-math.pi, 0.0]), np.array([math.pi, 1.0]), np.array([True, False]))

    def band(x):  # the set straddles the seam at +-pi
        return np.maximum(np.abs(np.angle(np.exp(1j * (x[:, 0] - math.pi)))) - 0.3, 0.0)

    r = nested_to_set(band, lambda n, rng: np.column_stack([rng.uniform(-math.pi, math.pi, n), rng.uniform(0, 1, n)]),
                      box, n_live=300, k=30, steps=30, rng=np.random.default_rng(5))
    assert r.reached
    assert 0.35 < np.mean(r.points[:, 0] > 0) < 0.65  # both sides of the seam, equally
    ch = constrained_chains(r.points, band, box, draws=60, thin=5, burn=60, rng=np.random.default_rng(6))
    side = ch.samples[:, :, 0] > 0
    assert (side[0] != side[-1]).any()  # chains cross the seam


def test_chains_must_start_in_the_set():
    with pytest.raises(ValueError, match="start inside"):
        constrained_chains(np.array([[0.0, 0.9]]), _two_disks, BOX, draws=2, thin=1, burn=0, rng=np.random.default_rng(0))


def test_rhat_and_ess_on_known_chains():
    rng = np.random.default_rng(7)
    iid = rng.standard_normal((1000, 4))
    assert split_rhat(iid) < 1.01 and 3000 < ess(iid) < 5000
    stuck = iid + np.array([0.0, 0.0, 3.0, 3.0])  # two chains in another mode
    assert split_rhat(stuck) > 1.5
    rho = 0.9  # AR(1): ESS = N (1 - rho) / (1 + rho)
    x = np.zeros((4000, 4))
    e = rng.standard_normal((4000, 4))
    for t in range(1, 4000):
        x[t] = rho * x[t - 1] + math.sqrt(1 - rho**2) * e[t]
    assert ess(x) == pytest.approx(16000 * (1 - rho) / (1 + rho), rel=0.3)


def test_ks_and_kuiper_on_planted_samples():
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0, 1, 5000), rng.uniform(0, 1, 5000)
    assert fidelity.ks_statistic(a, b) < 0.04
    assert fidelity.ks_statistic(a, b + 0.2) == pytest.approx(0.2, abs=0.04)  # shift of a uniform by 0.2
    assert fidelity.ks_statistic(a, a + 5) == 1.0
    # Kuiper is blind to where the circle is cut; KS is not
    th = np.mod(rng.vonmises(0.0, 1.0, 4000), 2 * math.pi)
    ph = np.mod(rng.vonmises(math.pi / 2, 1.0, 4000), 2 * math.pi)
    v = fidelity.kuiper_statistic(th, ph)
    for rot in (1.0, 2.5, 4.0):
        assert fidelity.kuiper_statistic(th + rot, ph + rot) == pytest.approx(v, abs=1e-9)
    ks = [fidelity.ks_statistic(np.mod(th + r, 2 * math.pi), np.mod(ph + r, 2 * math.pi)) for r in (0.0, 2.36)]
    assert abs(ks[0] - ks[1]) > 0.05  # about 0.32 against 0.41: KS depends on the cut
    assert v >= max(ks)  # V = D+ + D- bounds the KS statistic at any cut
    assert fidelity.kuiper_statistic(th, th) == 0.0


def test_face_fraction_and_fidelity_table():
    lo, hi = np.zeros(2), np.ones(2)
    x = np.array([[0.005, 0.5], [0.5, 0.5], [0.5, 0.999], [0.3, 0.3]])
    assert fidelity.face_fraction(x, lo, hi) == 0.5
    assert fidelity.face_fraction(x, lo, hi, skip=np.array([True, False])) == 0.25
    rng = np.random.default_rng(9)

    def table(n, shift):
        cols = {k: rng.uniform(0, 1, n) + shift for k, _ in fidelity.PREDICTIONS if k != "log10_m3_gev"}
        cols["log10_h2_over_m3_ev"] = rng.uniform(-1, 0, n) + shift
        return cols

    f = fidelity.fidelity(table(2000, 0.0), table(2000, 0.5), x, x, lo, hi)
    assert f.worst > 0.4 and set(f.distances) == {k for k, _ in fidelity.PREDICTIONS}
    assert "Kuiper" in f.table() and "above" in f.table()


# ---------------------------------------------------------------------------- the seesaw reference

TINY = dict(tasks=2, n_live=60, k=6, steps=10, draws=4, thin=2, burn=20)


def test_seesaw_reference_task_is_a_pure_function_of_its_seed():
    """A retried task gives the same rows; every kept state is an exact solution."""
    from rayflavor.methods.reference import ReferenceSettings
    from rayflavor.orchestration.reference import run_task
    from rayflavor.physics import data, seesaw

    s = ReferenceSettings(**TINY)
    a, b = run_task(s, 1), run_task(s, 1)
    assert np.array_equal(a["samples"], b["samples"]) and a["samples"].shape == (4, 60, 23)
    res = seesaw.evaluate(a["samples"].reshape(-1, 23), ordering="NO", data=data.load(seesaw.DEFAULT_DATA))
    assert np.all(res["solution"])
    assert -40 < a["nested"]["log_prior_fraction"] < -15  # a tiny corner of the prior (~e^-30)


def test_seesaw_reference_on_ray_writes_solutions_columns(ray_session, tmp_path):
    import polars as pl

    from rayflavor import configfile
    from rayflavor.analysis.fidelity import PREDICTIONS
    from rayflavor.methods.reference import ReferenceSettings
    from rayflavor.orchestration.reference import build_reference
    from rayflavor.physics import seesaw

    s = ReferenceSettings(**TINY, seed=3)
    build_reference(str(tmp_path), s, log=lambda *_: None)
    df = pl.read_parquet(tmp_path / "reference.parquet")
    assert df.height == 2 * 60 * 4 and df["solution"].all()
    assert set(seesaw.PARAMETERS) <= set(df.columns) and {"delta_cp", "m_sum", "m_bb", "task", "chain"} <= set(df.columns)
    assert sorted(df["task"].unique().to_list()) == [0, 1]
    # the stored manifest is a valid --config file that rebuilds the same settings
    stored = configfile.from_mapping(ReferenceSettings, configfile.load_config(tmp_path / "reference.json"))
    assert stored == s
    diag = json.loads((tmp_path / "reference.json").read_text())["diagnostics"]
    assert set(diag) == {k for k, _ in PREDICTIONS} and all(v["ess"] > 0 for v in diag.values())


@pytest.mark.parametrize("args, fragment", [
    (["--n-live", "50"], "k must be smaller than n_live"),
    (["--seed", "-1"], "seed must be an integer in [0, 9223372036854775807], not -1"),
    (["--orbits", "-1"], "orbits must be an integer in [0, 10000], not -1"),
    (["--config", "missing.toml"], "no such file"),
    (["--method", "importance", "--ordering", "IO"], "normal ordering only"),
    (["--method", "exact"], "'exact' is not one of"),
])
def test_reference_cli_rejects_bad_settings_in_one_line(tmp_path, args, fragment):
    from click.testing import CliRunner

    from rayflavor.cli.main import cli

    r = CliRunner().invoke(cli, ["diffusion", "reference", str(tmp_path / "run"), *args])
    assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def _write_solutions(path, x, guidance):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rayflavor.physics import data, seesaw

    res = seesaw.evaluate(x, ordering="NO", data=data.load(seesaw.DEFAULT_DATA))
    cols = {name: x[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    cols["ordering"] = np.full(len(x), "NO").astype(object)
    cols["physics_guidance"] = np.asarray(guidance, dtype=np.int32)
    pq.write_table(pa.table(cols), path)


def test_analyze_reference_prints_fidelity_per_guidance_and_draws_the_overlay(tmp_path):
    """A run drawn from the reference itself is close to it; a run holding only one half of the
    delta_CP circle is far from it in delta_CP (Kuiper), and the table says so."""
    from click.testing import CliRunner

    from rayflavor.cli.main import cli
    from rayflavor.methods.reference import ReferenceSettings
    from rayflavor.orchestration.reference import run_task
    from rayflavor.physics import data, seesaw

    s = ReferenceSettings(n_live=80, k=8, steps=10, draws=10, thin=2, burn=20)
    x = np.concatenate([run_task(s, t)["samples"].reshape(-1, 23) for t in (0, 1)])
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    _write_solutions(ref_dir / "reference.parquet", x, np.zeros(len(x)))
    dcp = seesaw.evaluate(x, ordering="NO", data=data.load(seesaw.DEFAULT_DATA))["delta_cp"]
    run = tmp_path / "run"
    run.mkdir()
    half = x[dcp < np.pi]
    guided = x[::3]
    _write_solutions(run / "solutions.parquet", np.concatenate([half, guided]),
                     np.r_[np.zeros(len(half)), np.full(len(guided), 3)])
    r = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(ref_dir)])
    assert r.exit_code == 0, r.output
    blocks = {}
    for block in r.output.split("\n\n"):
        head = block.splitlines()[0] if block.strip() else ""
        if "fidelity against the reference" in head:
            label = head.split(":")[0]
            rows = {line.split()[0]: line.split() for line in block.splitlines()[2:]}
            blocks[label] = rows
    assert set(blocks) == {"all solutions", "network only", "physics guidance 3 steps"}
    assert blocks["network only"]["delta_cp"][1] == "Kuiper" and blocks["network only"]["m_sum"][1] == "KS"
    far = float(blocks["network only"]["delta_cp"][2])
    near = float(blocks["physics guidance 3 steps"]["delta_cp"][2])
    assert far > 0.4 and near < 0.2 and blocks["network only"]["delta_cp"][3:] == ["—", "above"]
    (ref_dir / "reference.json").write_text(json.dumps({"noise_floor": {"delta_cp": 0.05}}))
    r2 = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(ref_dir)])
    row = next(line for line in r2.output.splitlines() if line.startswith("delta_cp"))
    assert row.split()[3] == "0.050" and "even and odd tasks" in r2.output
    assert "the diffusion paper side by side" in r2.output and "| Σm median [meV] | 60.3 |" in r2.output
    assert (run / "analysis" / "seesaw_fidelity.png").is_file()
    bad = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "no reference.parquet" in bad.output
    # a reference.json that is not a mapping is a courtesy lost, not a traceback
    for doc in ("[1, 2]", json.dumps({"settings": [1]})):
        (ref_dir / "reference.json").write_text(doc)
        odd = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(ref_dir)])
        assert odd.exit_code == 0 and "fidelity against the reference" in odd.output, odd.output
    # a set drawn past the prior box's faces (a teacher's setting) is not a reference
    (ref_dir / "reference.json").write_text(json.dumps({"noise_floor": {}, "settings": {"box": 1.1}}))
    wide = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(ref_dir)])
    assert wide.exit_code == 2 and "drawn with box = 1.1" in wide.output and "Traceback" not in wide.output


def test_noise_floor_compares_even_and_odd_tasks():
    from rayflavor.analysis.fidelity import PREDICTIONS, ks_statistic, kuiper_statistic
    from rayflavor.orchestration.reference import noise_floor

    rng = np.random.default_rng(4)
    n = 4000
    task = np.repeat(np.arange(4), n // 4)
    pred = {name: rng.uniform(0, 2 * math.pi, n) for name, _ in PREDICTIONS}
    shifted = next(name for name, kind in PREDICTIONS if kind != "circular")
    pred[shifted] = np.where(task % 2 == 1, pred[shifted] + 1.0, pred[shifted])  # odd tasks shifted
    floor = noise_floor(pred, task)
    even = task % 2 == 0
    assert floor[shifted] == pytest.approx(ks_statistic(pred[shifted][even], pred[shifted][~even])) and floor[shifted] > 0.1
    circ = next(name for name, kind in PREDICTIONS if kind == "circular")
    assert floor[circ] == pytest.approx(kuiper_statistic(pred[circ][even], pred[circ][~even])) and floor[circ] < 0.1
    assert noise_floor(pred, np.zeros(n, int)) is None


def test_mbb_band_membership_and_alpha31_near_zero():
    import polars as pl

    from rayflavor.analysis.paper_seesaw import in_mbb_band, summary
    from rayflavor.physics import bands, data, seesaw

    ds = data.load(seesaw.DEFAULT_DATA)
    ml = np.array([1e-4, 1e-3, 1e-2, 5e-2])
    lo, hi = bands.mee_band(ds, "NO", ml, n_sigma=3.0)
    assert np.all(in_mbb_band(ml, 0.5 * (lo + hi), ds))
    assert not np.any(in_mbb_band(ml, 2.0 * hi, ds))
    assert not np.any(in_mbb_band(ml[lo > 0], 0.5 * lo[lo > 0], ds))
    n = 200
    df = pl.DataFrame({"m_sum": np.full(n, 0.06), "delta_cp": np.linspace(0, np.pi, n), "log10_h2_over_m3_ev": np.zeros(n),
                       "m1_over_m3": np.full(n, 0.5), "m2_over_m3": np.full(n, 0.7),
                       "alpha31": np.r_[np.radians(np.full(20, 355.0)), np.full(n - 20, np.pi)],
                       "m1": np.full(n, 1e-2), "m_bb": np.full(n, 0.5 * (lo[2] + hi[2]))})
    s = summary(df, ds)
    assert s["α31 within 10° of 0"] == "10.0 %" and s["m_ββ inside the NO band"] == "100.0 %"
    assert s["Σm median [meV]"] == "60.0" and s["δCP quartiles 25/50/75 % [deg]"] == "45 / 90 / 135"

"""The exact importance sampler of the seesaw solution set: its Jacobian, heavy-mass factor,
multiplicity, normalisation on a reduced prior with a brute-force answer, the written reference,
and its agreement with the random-walk reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rayflavor.analysis.fidelity import PREDICTIONS, ks_statistic, prediction_columns
from rayflavor.methods import reference_importance as imp
from rayflavor.methods.reference import ReferenceSettings, task_ess
from rayflavor.physics import casas_ibarra, data, seesaw

WINDOWS = seesaw.solution_windows(data.load(seesaw.DEFAULT_DATA), "NO")
BOX = imp.solution_box(WINDOWS, 4.0)


def ks_critical(n: float, m: float, alpha: float = 1e-3) -> float:
    """Two-sample KS critical value (asymptotic) at level ``alpha`` for effective sizes n, m."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def _interior(n: int, seed: int, im_scale: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Light coordinates away from the chart's edges, random det R signs and heavy coordinates."""
    rng = np.random.default_rng(seed)
    x = BOX.lower + (0.1 + 0.8 * rng.uniform(size=(n, 18))) * (BOX.upper - BOX.lower)
    x[:, [13, 15, 17]] *= im_scale
    x[:, 0] = rng.uniform(-3.0, -0.5, n)
    heavy = imp.sample_heavy(n, rng)
    heavy[:, 0:2] = np.sort(rng.uniform(0.05, 0.95, (n, 2)), axis=1)  # away from r1 = r2 and the box
    heavy[:, 2] = rng.uniform(-1.0, 2.5, n)
    heavy[:, 3:] = rng.uniform(-3.0, 3.0, (n, 2))
    return x, rng.choice([-1.0, 1.0], n), heavy


def test_jacobian_matches_central_differences_of_the_map():
    x, sign, heavy = _interior(40, 0)
    numeric = imp.numeric_jacobian(x, sign, heavy)
    analytic = imp.light_jacobian(x) * (heavy[:, 0] * heavy[:, 1]) ** 3 * 10.0 ** (-9 * heavy[:, 2])
    np.testing.assert_allclose(numeric / analytic, 1.0, rtol=1e-5)


def test_jacobian_is_the_volume_of_small_boxes():
    """The image of a small coordinate cube has volume |det| times the cube's (the map is linear at that scale)."""
    x, sign, heavy = _interior(6, 1)
    h = 1e-5
    for k in range(len(x)):
        # 23 edge vectors of the cube, mapped; the parallelepiped's volume is |det| of the images
        z = np.concatenate([x[k], heavy[k]])
        e = np.eye(23) * h
        corner = imp.parameters(z[None, :18], sign[k:k + 1], z[None, 18:])
        edges = imp.parameters((z + e)[:, :18], np.full(23, sign[k]), (z + e)[:, 18:]) - corner
        volume = abs(np.linalg.det(edges))
        expected = (imp.light_jacobian(x[k:k + 1])[0] * (heavy[k, 0] * heavy[k, 1]) ** 3
                    * 10.0 ** (-9 * heavy[k, 2]) * h ** 23)
        assert volume == pytest.approx(expected, rel=1e-3)


def test_heavy_factor_is_each_rows_scaling():
    """At one light point, the full Jacobian over many heavy points is (r1 r2)^3 10^(-9 g) times one number."""
    x, sign, heavy = _interior(12, 3)
    x[:], sign[:] = x[0], sign[0]
    numeric = imp.numeric_jacobian(x, sign, heavy)
    ratio = numeric / ((heavy[:, 0] * heavy[:, 1]) ** 3 * 10.0 ** (-9 * heavy[:, 2]))
    np.testing.assert_allclose(ratio, imp.light_jacobian(x[:1])[0], rtol=1e-5)


def test_heavy_masses_are_drawn_from_their_jacobian_factor():
    rng = np.random.default_rng(4)
    h = imp.sample_heavy(200_000, rng)
    lo = seesaw.PRIOR["mass_ratio"][0]
    g0, g1 = seesaw.PRIOR["log10_h2_over_m3_ev"]
    k = 9 * math.log(10)
    u = (h[:, :2] ** 4 - lo ** 4) / (1 - lo ** 4)  # the order statistics of two uniforms
    cdfs = [(u[:, 0], lambda t: 1 - (1 - t) ** 2), (u[:, 1], lambda t: t ** 2),
            (h[:, 2], lambda g: -np.expm1(-k * (g - g0)) / -np.expm1(-k * (g1 - g0))),
            ((h[:, 3] + np.pi) / (2 * np.pi), lambda t: t)]
    crit = ks_critical(len(h), 1e12)
    for v, cdf in cdfs:
        v = np.sort(v)
        d = np.max(np.abs(np.arange(1, len(v) + 1) / len(v) - cdf(v)))
        assert d < crit
    assert np.all(h[:, 0] <= h[:, 1])
    # Z_heavy is the integral of the factor: a plain Monte Carlo over the heavy box agrees
    r = rng.uniform(lo, 1, (400_000, 2))
    g = rng.uniform(g0, g1, 400_000)
    f = np.where(r[:, 0] <= r[:, 1], (r[:, 0] * r[:, 1]) ** 3 * 10.0 ** (-9 * g), 0.0)
    mc = f.mean() * (1 - lo) ** 2 * (g1 - g0) * (2 * np.pi) ** 2
    assert mc == pytest.approx(imp.heavy_normalisation(), rel=0.05)


def test_every_point_has_exactly_two_preimages_in_the_chart():
    rng = np.random.default_rng(5)
    n = 300
    x = BOX.lower + rng.uniform(size=(n, 18)) * (BOX.upper - BOX.lower)
    sign = rng.choice([-1.0, 1.0], n)
    count = imp.multiplicity_check(x, sign, imp.sample_heavy(n, rng), BOX)
    assert imp.MULTIPLICITY == 2
    assert np.all(count == imp.MULTIPLICITY), np.bincount(count)


def test_importance_weights_give_the_prior_probability_of_a_reduced_set(monkeypatch):
    """A reduced prior (heavy ratios >= 0.2, log10(<H>^2/M3) in [-1.22, -1]) where plain prior draws
    land in a light-coordinate box often: the mean weight is that box's prior probability, and the
    resampled draws follow the prior draws inside it."""
    monkeypatch.setitem(seesaw.PRIOR, "mass_ratio", (0.2, 1.0))
    monkeypatch.setitem(seesaw.PRIOR, "log10_h2_over_m3_ev", (-1.22, -1.0))
    lo, hi, im_max = [-2.5, -2.5, -1.2], [-1.5, -1.5, -0.7], 1.0
    rng = np.random.default_rng(6)
    c = casas_ibarra.to_coordinates(seesaw.sample_prior(300_000, rng))
    hit = np.all((c[:, :3] >= lo) & (c[:, :3] <= hi), axis=1) & (np.max(np.abs(c[:, [13, 15, 17]]), axis=1) <= im_max)
    p_brute, se_brute = hit.mean(), math.sqrt(hit.mean() * (1 - hit.mean()) / len(hit))
    box = imp.solution_box(WINDOWS, im_max)
    lower, upper = box.lower.copy(), box.upper.copy()
    lower[:3], upper[:3], lower[3:6], upper[3:6] = lo, hi, 0.0, 1.0
    out = imp.draw(400_000, imp.LightBox(lower, upper), rng, None, bound=1.0)
    w, n = out["weight"], out["counts"]["proposals"]
    p_imp = w.sum() / n
    se_imp = math.sqrt((np.sum(w ** 2) / n - p_imp ** 2) / n)
    assert abs(p_imp - p_brute) < 4 * math.hypot(se_imp, se_brute)
    assert se_imp < 0.1 * p_imp  # the check has power: a factor 2 (a missed sign or multiplicity) fails
    ess = imp.kish_ess(w)
    rows = imp.systematic_resample(w, int(ess), rng)
    for j in (0, 1, 2, 4, 15):
        assert ks_statistic(out["x"][rows, j], c[hit, j]) < ks_critical(ess, hit.sum())


def test_shell_weights_extrapolate_a_falling_tail_and_flag_a_flat_one():
    rng = np.random.default_rng(10)
    x = BOX.lower + rng.uniform(size=(80_000, 18)) * (BOX.upper - BOX.lower)
    im = np.max(np.abs(x[:, [13, 15, 17]]), axis=1)
    falling = imp.shell_weights(x, np.exp(-3.0 * im), BOX)["im_z"]
    q = falling["last_shell"] / falling["previous_shell"]
    assert 0 < q < 1 and falling["beyond_cut"] == pytest.approx(falling["last_shell"] * q / (1 - q))
    assert imp.shell_weights(x, np.exp(0.5 * im), BOX)["im_z"]["beyond_cut"] is None


def test_kish_ess_and_systematic_resampling():
    assert imp.kish_ess(np.ones(50)) == pytest.approx(50)
    assert imp.kish_ess(np.array([1.0, 0.0, 0.0])) == pytest.approx(1)
    w = np.array([0.5, 0.25, 0.125, 0.125])
    idx = imp.systematic_resample(w, 8, np.random.default_rng(7))
    assert np.bincount(idx, minlength=4).tolist() == [4, 2, 1, 1]


def test_draws_are_solutions_and_the_cheap_indicator_is_exact():
    """Every weighted draw is a 3 sigma solution by seesaw.evaluate, and the |U| read off the light
    coordinates (the indicator checked before Y is built) are those of the built Y."""
    rng = np.random.default_rng(8)
    out = imp.draw(60_000, BOX, rng, WINDOWS, bound=1.0)
    res = seesaw.evaluate(out["params"], ordering="NO", data=data.load(seesaw.DEFAULT_DATA))
    assert len(out["weight"]) > 100 and np.all(res["solution"])
    # the |U| of the light coordinates are those of the built Y (to rounding: the indicator and
    # seesaw.evaluate can disagree only within ~1e-6 of a window's edge)
    au = np.stack([res[n] for n in seesaw.ABS_U], axis=1)
    np.testing.assert_allclose(imp.abs_u(out["x"]), au, atol=1e-6)


def test_settings_reject_importance_for_inverted_ordering():
    with pytest.raises(ValueError, match="normal ordering"):
        ReferenceSettings(method="importance", ordering="IO")
    with pytest.raises(ValueError, match="method"):
        ReferenceSettings(method="mcmc")
    with pytest.raises(ValueError, match=r"box \(1.1\) is a setting of method importance"):
        ReferenceSettings(box=1.1)


@pytest.mark.ray
def test_importance_reference_on_ray_writes_weights_and_the_resampled_set(ray_session, tmp_path):
    import polars as pl

    from rayflavor.orchestration.reference import build_reference

    s = ReferenceSettings(method="importance", tasks=2, proposals=40_000, seed=1)
    summary = build_reference(str(tmp_path), s, log=lambda _: None)
    weighted = pl.read_parquet(tmp_path / "reference_weighted.parquet")
    table = pl.read_parquet(tmp_path / "reference.parquet")
    stored = json.loads((tmp_path / "reference.json").read_text())
    assert stored["method"] == "importance" and stored["settings"]["method"] == "importance"
    assert stored["proposals"] == 80_000 and stored["multiplicity"] == 2
    assert len(weighted) == stored["weighted_draws"] and (weighted["weight"] > 0).all()
    assert stored["ess"] == pytest.approx(imp.kish_ess(weighted["weight"].to_numpy()))
    assert abs(len(table) - round(stored["ess"])) <= 2 and table["solution"].all()
    assert set(table["task"].unique()) <= {0, 1} and set(stored["cut_off"]) == {"im_z", "log10_m1_low", "log10_m1_high"}
    assert -33 < stored["prior_fraction"]["ln"] < -30  # nested sampling's ln prior fraction is -31.5
    assert summary["rows"] == len(table)
    from rayflavor.bench.seeds import reference_rate

    assert reference_rate(stored) == (stored["ess"], stored["ess_per_core_second"])  # bench diffusion-seeds reads it


@pytest.mark.slow
def test_importance_agrees_with_the_random_walk_reference():
    """Both samplers within their combined noise on every prediction: KS below the alpha = 0.001
    critical value of the two effective sizes (importance: Kish ESS; random walk: between-task
    batch-means ESS, which sees the tasks' disagreement that its within-chain ESS misses)."""
    from rayflavor.orchestration.reference import _table, run_importance_task, run_task

    s = ReferenceSettings(tasks=6, n_live=300, k=30, steps=40, draws=5, thin=10, burn=40, seed=9)
    results = [run_task(s, i) for i in range(s.tasks)]
    x = np.concatenate([r["samples"].reshape(-1, 23) for r in results])
    task = np.concatenate([np.full(r["samples"].shape[0] * r["samples"].shape[1], r["task"]) for r in results])
    walk = prediction_columns(_table(x, s))
    si = ReferenceSettings(method="importance", tasks=1, proposals=300_000, seed=9)
    r = run_importance_task(si, 0)
    ess = imp.kish_ess(r["weight"])
    rows = imp.systematic_resample(r["weight"], int(ess), np.random.default_rng(9))
    exact = prediction_columns(_table(r["params"][rows], si))
    for name, kind in PREDICTIONS:
        v = np.cos(walk[name]) if kind == "circular" else walk[name]
        n_walk = task_ess(v, task)
        assert ks_statistic(walk[name], exact[name]) < ks_critical(ess, n_walk), name


def test_a_wider_bound_keeps_the_same_draws_with_the_same_weights_and_adds_only_draws_past_the_face():
    """``bound > 1`` continues the prior's density past the box's faces: from the same random
    stream it keeps every draw that ``bound = 1`` keeps, with the same weight, plus draws whose
    largest |Re Y|, |Im Y| lies in (1, bound]; and nothing else changes (the counts before the box)."""
    inner = imp.draw(60_000, BOX, np.random.default_rng(11), WINDOWS, bound=1.0)
    outer = imp.draw(60_000, BOX, np.random.default_rng(11), WINDOWS, bound=1.1)
    big = np.max(np.abs(outer["params"][:, :18]), axis=1)
    assert inner["counts"]["in_windows"] == outer["counts"]["in_windows"]
    assert np.all(big <= 1.1) and np.any(big > 1.0)
    kept = big <= 1.0
    assert outer["counts"]["in_box"] == len(big) > inner["counts"]["in_box"] == kept.sum()
    np.testing.assert_array_equal(outer["params"][kept], inner["params"])
    np.testing.assert_array_equal(outer["weight"][kept], inner["weight"])
    res = seesaw.evaluate(outer["params"][~kept], ordering="NO", data=data.load(seesaw.DEFAULT_DATA))
    assert np.all(res["solution"])  # past the face, still inside every 3 sigma window

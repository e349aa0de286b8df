"""The island's parts without stepping an island: settings and presets, the one log10 Lambda
range, the shaper's grouping by name, the Levenberg-Marquardt refinement."""

import json
from dataclasses import asdict, fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor import configfile
from rayflavor.methods.ga import problem
from rayflavor.methods.ga.config import ISLAND_PRESETS, MAX_POP_SIZE, IslandConfig
from rayflavor.methods.ga.problem import I_LAMBDA, Objectives, Space
from rayflavor.methods.ga.refine import damped_steps, levenberg_marquardt, probe_groups
from rayflavor.methods.ga.shaping import Shaper
from rayflavor.physics import data, fn

# The FN paper's 17 objectives (sec. III.2-III.4), in the order of fn.OBJECTIVES.
PAPER_OBJECTIVES = [
    "ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta",
    "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta",
    "dm21", "dm3l",
    "mass_q1", "mass_q2", "mass_q3", "mass_e", "mass_mu", "mass_tau",
    "n_negative",
]


def test_presets_are_explicit_and_the_defaults_are_the_fast_preset():
    assert ISLAND_PRESETS["fast"] == IslandConfig()
    p = ISLAND_PRESETS["paper"]
    assert (p.method, p.pop_size, p.n_partitions, p.n_offsprings) == ("paper", 156, 2, 156)
    assert (p.refine_top, p.neighbours, p.charge_rate, p.restarts) == (0, 0, 0.0, 0)
    f = ISLAND_PRESETS["fast"]
    assert (f.pop_size, f.n_partitions, f.n_offsprings, f.refine_top, f.neighbours) == (100, 1, 200, 8, 12)
    assert f.restarts > 0
    for cfg in ISLAND_PRESETS.values():  # no None meaning "depends on the method"
        none = {f.name for f in fields(cfg) if getattr(cfg, f.name) is None}
        assert none <= {"max_exponent", "log10_lambda"}
        assert IslandConfig(**asdict(cfg)) == cfg


def test_presets_round_trip_through_the_settings_files():
    for cfg in ISLAND_PRESETS.values():
        assert configfile.from_mapping(IslandConfig, json.loads(json.dumps(configfile.to_mapping(cfg)))) == cfg
    with pytest.raises(configfile.ConfigError, match="pop_size must be an integer"):
        configfile.replace_from(ISLAND_PRESETS["paper"], {"pop_size": 10**6})


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(log10_lambda=float("nan")), "log10_lambda must be a finite number in [8, 16]"),
        (dict(log10_lambda=float("inf")), "log10_lambda must be a finite number in [8, 16]"),
        (dict(log10_lambda=17.0), "log10_lambda must be a finite number in [8, 16]"),
        (dict(pop_size=1_000_000), f"pop_size must be an integer in [4, {MAX_POP_SIZE}]"),
        (dict(pop_size=2), "pop_size must be an integer in [4,"),
        (dict(mass_tolerance=0.0), "mass_tolerance must be a finite number in (0, 1)"),
        (dict(mass_tolerance=float("nan")), "mass_tolerance must be a finite number in (0, 1)"),
        (dict(method="quick"), "method must be one of fast, paper, not 'quick'"),
        (dict(ordering="XO"), "ordering must be one of any, NO, IO, not 'XO'"),
        (dict(regime="left"), "regime must be one of up, down, not 'left'"),
        (dict(target_valid=0), "target_valid must be an integer in [1, "),
        (dict(patience=2.5), "patience must be an integer in [1, "),
        (dict(restarts=-1), "restarts must be an integer in [0, 1000000]"),
        (dict(restarts=10**7), "restarts must be an integer in [0, 1000000]"),
        (dict(max_exponent=-1), "max_exponent must be an integer in [0, 100]"),
        (dict(n_partitions=6), "reference directions"),
        (dict(offspring_ratio=0.0), "offspring_ratio must be a finite number in (0, 10]"),
        (dict(offspring_ratio=0.001), "gives 0 offspring at pop_size 100"),
        (dict(pop_size=5000, offspring_ratio=3.0), "gives 15000 offspring"),
        (dict(method="paper"), "method 'paper' has no refinement"),
    ],
)
def test_bad_settings_raise_one_line(change, message):
    with pytest.raises(ValueError) as exc:
        replace(IslandConfig(), **change)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_one_log10_lambda_range():
    assert fn.LOG10_LAMBDA_RANGE == (8.0, 16.0)  # what the scan has always searched
    assert not hasattr(problem, "LOG10_LAMBDA_RANGE")
    xl, xu = Space("up").bounds()
    assert (xl[I_LAMBDA], xu[I_LAMBDA]) == fn.LOG10_LAMBDA_RANGE
    x = fn.random_parameters(1000, np.random.default_rng(0))
    lam = x[:, fn.PARAMETERS.index("log10_lambda_gev")]
    assert fn.LOG10_LAMBDA_RANGE[0] <= lam.min() and lam.max() <= fn.LOG10_LAMBDA_RANGE[1]
    assert IslandConfig(log10_lambda=16.0).log10_lambda == 16.0


def test_objective_list_is_the_papers():
    assert fn.objective_names() == PAPER_OBJECTIVES
    assert fn.objective_names(force_io=True, max_exponent=4) == PAPER_OBJECTIVES + ["io", "max_exponent"]


@pytest.mark.parametrize("data_name, tol, force_io, max_exponent",
                         [("nufit-6.0+pdg-2024", 0.2, False, None), ("tests/data_relaxed.toml", 0.9, True, 5)])
def test_shaped_objectives_vanish_exactly_where_the_papers_do_by_name(data_name, tol, force_io, max_exponent):
    ob = Objectives(data=data.load(data_name), mass_tolerance=tol, force_io=force_io, max_exponent=max_exponent)
    sh = Shaper(ob)
    x = fn.random_parameters(4000, np.random.default_rng(0), max_charge=3, log10_lambda_range=(12.0, 15.0))
    res = ob.evaluate(x)
    F, S = ob.matrix(res), sh.objectives(sh.residuals(res))
    keep = res["ordering"] != "none"  # a mixed spectrum is never valid: the shaper adds 1 to dm3l
    for j, name in enumerate(ob.names):
        assert np.array_equal(F[keep, j] == 0, S[keep, j] == 0), name
    assert (S[~keep, ob.names.index("dm3l")] >= 1).all()
    # grouping by name: a permuted objective list permutes the columns
    perm = np.random.default_rng(1).permutation(len(ob.names))
    R = sh.residuals(res)
    assert np.array_equal(Shaper(ob, names=[ob.names[k] for k in perm]).objectives(R), S[:, perm])
    q1 = S[:, ob.names.index("mass_q1")]
    assert np.array_equal(q1, R[:, sh.index["m_u"]] + R[:, sh.index["m_d"]])


def test_shaper_rejects_an_objective_it_cannot_shape():
    ob = Objectives(data=data.load("nufit-6.0+pdg-2024"), mass_tolerance=0.2)
    with pytest.raises(ValueError, match="'mass_q4' has no shaped residual"):
        Shaper(ob, names=[*ob.names, "mass_q4"])


def _rosenbrock(X):
    """Residuals (10 (y - x^2), 1 - x); the third coordinate is a spectator."""
    return np.column_stack([10.0 * (X[:, 1] - X[:, 0] ** 2), 1.0 - X[:, 0]])


def test_levenberg_marquardt_finds_the_known_minimum():
    x0 = np.array([[-1.2, 1.0, 7.0], [0.5, -0.5, -3.0]])
    lo, hi = np.full(3, -5.0), np.full(3, 5.0)
    out = levenberg_marquardt(_rosenbrock, x0, _rosenbrock(x0), free=np.array([0, 1]), step=np.full(2, 1e-7),
                              lower=lo, upper=hi, iters=200)
    assert np.allclose(out.x[:, :2], 1.0, atol=1e-5)
    assert np.array_equal(out.x[:, 2], x0[:, 2])  # not free: untouched
    assert np.allclose(out.r, _rosenbrock(out.x)) and out.improved.all() and out.n_evals > 0
    assert np.array_equal(out.payload, out.r)  # no payload given: the residuals


def test_levenberg_marquardt_respects_the_box_and_carries_the_payload():
    x0 = np.array([[0.0, 0.0]])
    lo, hi = np.array([-1.0, -1.0]), np.array([0.5, 0.5])  # the minimum (1, 1) is outside

    def evaluate(X):
        r = _rosenbrock(X)
        return r, X.sum(axis=1, keepdims=True)  # payload: any per-row array

    out = levenberg_marquardt(evaluate, x0, _rosenbrock(x0), payload=np.zeros((1, 1)), free=np.array([0, 1]),
                              step=np.full(2, 1e-7), lower=lo, upper=hi, iters=50)
    assert (out.x >= lo).all() and (out.x <= hi).all()
    assert (out.r**2).sum() < (_rosenbrock(x0) ** 2).sum()
    assert np.allclose(out.payload, out.x.sum(axis=1, keepdims=True))
    none = levenberg_marquardt(evaluate, x0[:0], _rosenbrock(x0[:0]), free=np.array([0, 1]), step=np.full(2, 1e-7),
                               lower=lo, upper=hi, iters=5)
    assert none.n_evals == 0 and none.x.shape == (0, 2)


def _every_row_lm(evaluate, x, r, *, free, step, lower, upper, iters, damping=(1e-3, 1e-1, 1e1)):
    """The refinement without the active set (as at 70aa53c, with today's damped steps): a difference
    Jacobian for every row in every iteration, until no row improves.  The reference the active set must reproduce exactly; it also
    counts the evaluations of the rows that improved in every iteration so far (``n_alive``)."""
    g, r = np.array(x, float), np.array(r, float)
    K, P = len(g), len(free)
    phi, n, n_alive, alive = (r**2).sum(axis=1), 0, 0, np.ones(len(g), bool)
    for _ in range(iters):
        probe = np.repeat(g, P, axis=0).reshape(K, P, -1)
        probe[:, np.arange(P), free] += step
        J = (evaluate(probe.reshape(K * P, -1)).reshape(K, P, -1) - r[:, None, :]) / step[None, :, None]
        n += K * P
        T = []
        for delta in damped_steps(J, r, np.asarray(damping)):
            gt = g.copy()
            gt[:, free] = np.clip(g[:, free] + delta, lower[free], upper[free])
            T.append(gt)
        T = np.concatenate(T)
        rt = evaluate(T)
        n += len(T)
        phit = (rt**2).sum(axis=1).reshape(len(damping), K)
        best = np.argmin(phit, axis=0)
        better = phit[best, np.arange(K)] < phi
        sel = best * K + np.arange(K)
        g[better], r[better], phi[better] = T[sel[better]], rt[sel[better]], phit[best, np.arange(K)][better]
        n_alive += alive.sum() * (P + len(damping))
        alive &= better
        if not better.any():
            break
    return g, r, n, n_alive


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 8), st.floats(0.5, 30.0))
def test_refinement_skips_only_rows_that_cannot_improve(seed, k, iters, a):
    """Property: dropping a row once its difference Jacobian found no better point changes no
    result (the same point gives the same Jacobian and trials again); only the rows still improving
    are evaluated."""
    rng = np.random.default_rng(seed)

    def evaluate(X):  # a scaled Rosenbrock valley with a third residual on the spectator
        return np.column_stack([a * (X[:, 1] - X[:, 0] ** 2), 1.0 - X[:, 0], 0.1 * X[:, 2]])

    x0 = rng.uniform(-2.0, 2.0, (k, 3))
    kw = dict(free=np.array([0, 1]), step=np.full(2, 1e-7), lower=np.full(3, -1.5), upper=np.full(3, 1.5))
    want, want_r, n_every, n_alive = _every_row_lm(evaluate, x0, evaluate(x0), iters=iters, **kw)
    out = levenberg_marquardt(evaluate, x0, evaluate(x0), iters=iters, **kw)
    assert np.array_equal(out.x, want) and np.array_equal(out.r, want_r)
    assert out.n_evals == n_alive <= n_every  # only rows that improved in every iteration so far



@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(2, 7), st.integers(1, 4))
def test_grouped_probes_give_the_dense_refinement_exactly(seed, k, n_blocks, iters):
    """Property: residuals in blocks that each depend on their own coordinates (and a shared one):
    with the declared sparsity, coordinates of different blocks share a probe evaluation and the
    refinement is bit-identical to the dense one, from fewer evaluations."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(1.0, 20.0, n_blocks)

    def evaluate(X):  # block b: a Rosenbrock valley in (x_2b, x_2b+1), shifted by the shared last x
        cols = []
        for b in range(n_blocks):
            u, v, s = X[:, 2 * b], X[:, 2 * b + 1], X[:, -1]
            cols += [a[b] * (v - u**2) + 0.1 * s, 1.0 - u]
        return np.column_stack(cols)

    D = 2 * n_blocks + 1
    sparsity = np.zeros((D, 2 * n_blocks), dtype=bool)
    for b in range(n_blocks):
        sparsity[2 * b, 2 * b : 2 * b + 2] = True
        sparsity[2 * b + 1, 2 * b] = True
    sparsity[-1, 0::2] = True
    x0 = rng.uniform(-1.5, 1.5, (k, D))
    kw = dict(free=np.arange(D), step=np.full(D, 1e-7), lower=np.full(D, -2.0), upper=np.full(D, 2.0), iters=iters)
    dense = levenberg_marquardt(evaluate, x0, evaluate(x0), **kw)
    grouped = levenberg_marquardt(evaluate, x0, evaluate(x0), sparsity=sparsity, **kw)
    assert np.array_equal(grouped.x, dense.x) and np.array_equal(grouped.r, dense.r)
    assert len(probe_groups(sparsity)) == 3  # u's, v's, the shared coordinate
    assert grouped.n_evals <= dense.n_evals * (3 + 3) / (D + 3)


def test_refinement_rejects_a_sparsity_of_the_wrong_shape():
    x0 = np.array([[-1.2, 1.0, 7.0]])
    with pytest.raises(ValueError, match=r"sparsity must be \(2, 2\)"):
        levenberg_marquardt(_rosenbrock, x0, _rosenbrock(x0), free=np.array([0, 1]), step=np.full(2, 1e-7),
                            lower=np.full(3, -5.0), upper=np.full(3, 5.0), iters=1, sparsity=np.ones((3, 2), bool))


def test_the_islands_grouped_jacobian_is_its_dense_one():
    """On an island's own population: the refinement with the island's sector sparsity (29 probes
    for 47 free genes) ends where the dense refinement ends, bit for bit."""
    from rayflavor.methods.ga.island import make_island

    isl = make_island(ISLAND_PRESETS["fast"], data.load(fn.DEFAULT_DATA), island=0, seed=5)
    for _ in range(20):
        isl.step()
    G = np.asarray(isl.algorithm.pop.get("X"), np.float64)[:12]

    def evaluate(X):  # the island's shaped residuals, without harvesting
        return isl.shaper.residuals(isl.objectives.evaluate(problem.decode(X, isl.space)))

    kw = dict(free=isl.free, step=isl.h, lower=isl.problem.xl, upper=isl.problem.xu, iters=3)
    dense = levenberg_marquardt(evaluate, G, evaluate(G), **kw)
    grouped = levenberg_marquardt(evaluate, G, evaluate(G), sparsity=isl.sparsity, **kw)
    assert len(probe_groups(isl.sparsity)) == 29 and dense.improved.any()
    assert np.array_equal(grouped.x, dense.x) and np.array_equal(grouped.r, dense.r)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9),
       st.floats(-6.0, 2.0))
def test_damped_steps_solve_marquardts_equations(seed, k, n_free, m, log_mu):
    """Property: the push-through form (an m x m eigendecomposition when m <= P) solves
    (J J^T + mu (diag(J J^T) + 1e-6)) d = -J r for every damping, for more or fewer residuals
    than coordinates, and Jacobians with zero rows (coordinates that move nothing)."""
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(k, n_free, m)) * 10.0 ** rng.uniform(-3, 3, (k, n_free, 1))
    J[:, rng.random(n_free) < 0.2] = 0.0
    r = rng.normal(size=(k, m))
    mus = np.array([10.0**log_mu, 1e-1, 1e1])
    d = damped_steps(J, r, mus)
    A = J @ J.transpose(0, 2, 1)
    D = np.diagonal(A, axis1=1, axis2=2) + 1e-6
    b = -(J @ r[:, :, None])[:, :, 0]
    for i, mu in enumerate(mus):
        lhs = (A @ d[i][:, :, None])[:, :, 0] + mu * D * d[i]
        assert np.allclose(lhs, b, rtol=1e-7, atol=1e-9 * (1 + np.abs(b).max()))

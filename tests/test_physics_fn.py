"""Two-flavon FN model: exponent conventions and symmetries, decompositions, NuFit labelling,
losses, and agreement with the independent numpy/LAPACK evaluation."""

import numpy as np
import pytest

from rayflavor.physics import fn, fn_kernel, linalg, mixing

OFF = {k: i for i, k in enumerate(fn.PARAMETERS)}


def _points(n, seed, max_charge=3, regime="up"):
    return fn.random_parameters(n, np.random.default_rng(seed), regime=regime, max_charge=max_charge,
                                log10_lambda_range=(12.0, 16.0))


def test_parameter_schema():
    assert len(fn.PARAMETERS) == len(set(fn.PARAMETERS)) == 64
    assert fn.PARAMETERS[:18] == fn.CHARGES and len(fn.EXPONENTS) == 45
    assert len(fn.objective_names()) == 17
    assert fn.objective_names(True, 4)[-2:] == ["io", "max_exponent"]


def test_exponent_conventions():
    q = np.random.default_rng(1).integers(-9, 10, size=(1000, 18))
    n = fn.exponents(q)
    qq, qu, qd, ql, qe, qn = (q[:, 3 * k:3 * k + 3] for k in range(6))
    qh = qu[:, 2] - qq[:, 2]
    assert (n[:, 8] == 0).all()  # n^u_33 = 0 fixes Q(H)
    i, j = 1, 2  # spot-check every sector at (2, 3)
    e = 3 * i + j
    np.testing.assert_array_equal(n[:, e], qq[:, i] - qu[:, j] + qh)
    np.testing.assert_array_equal(n[:, 9 + e], qq[:, i] - qd[:, j] - qh)
    np.testing.assert_array_equal(n[:, 18 + e], ql[:, i] - qn[:, j] + qh)
    np.testing.assert_array_equal(n[:, 27 + e], ql[:, i] - qe[:, j] - qh)
    np.testing.assert_array_equal(n[:, 36 + e], -(qn[:, i] + qn[:, j]))
    nn = n[:, 36:].reshape(-1, 3, 3)
    np.testing.assert_array_equal(nn, np.swapaxes(nn, 1, 2))


def test_common_shift_of_quark_charges_changes_nothing():
    x = _points(500, 2)
    y = x.copy()
    y[:, :9] += 2  # shift Q, u, d together
    a, b = fn.evaluate(x), fn.evaluate(y)
    np.testing.assert_array_equal(fn.exponents(np.rint(x[:, :18])), fn.exponents(np.rint(y[:, :18])))
    for k in ("m_u", "m_b", "ckm_s13", "pmns_theta12", "m_ee"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)


def test_heavy_neutrino_charges_cancel_from_light_neutrino_matrix():
    x = _points(500, 3)
    y = x.copy()
    y[:, 15:18] = np.random.default_rng(4).integers(-3, 4, size=(500, 3))
    ma, mb = fn.mass_matrices(x)["M_nu"], fn.mass_matrices(y)["M_nu"]
    scale = np.abs(ma).max(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(mb / scale, ma / scale, atol=1e-9)


def test_numba_and_numpy_constructions_agree():
    x = _points(2000, 5)
    a, b = fn.mass_matrices(x), fn.mass_matrices(x, backend="lapack")
    np.testing.assert_array_equal(a["exponents"], b["exponents"])
    for k in ("m_u", "m_d", "m_e", "M_nu"):
        scale = np.abs(b[k]).max(axis=(1, 2))[:, None, None]
        np.testing.assert_allclose(a[k] / scale, b[k] / scale, atol=1e-10)


def test_dirac_decomposition_reconstructs_mass_matrices():
    mats = fn.mass_matrices(_points(1000, 6))
    for k in ("m_u", "m_d", "m_e"):
        u, s = linalg.svd_left(mats[k])
        h = mats[k] @ np.conj(np.swapaxes(mats[k], 1, 2))
        scale = np.abs(h).max(axis=(1, 2))[:, None, None]
        np.testing.assert_allclose((u * s[:, None, :] ** 2) @ np.conj(np.swapaxes(u, 1, 2)) / scale, h / scale, atol=1e-12)


def test_nufit_labelling_and_neutrino_observables():
    r = fn.evaluate(_points(5000, 7))
    ok = np.isfinite(r["nu_m1"])
    m1, m2, m3 = r["nu_m1"][ok], r["nu_m2"][ok], r["nu_m3"][ok]
    assert (m2 >= m1).all() and (r["dm21"][ok] >= 0).all()
    order = r["ordering"][ok]
    assert ((order == "NO") == (m3 > m2)).all() and ((order == "IO") == (m3 < m1)).all()
    # the lightest mass for every spectrum, the mixed one (m1 < m3 < m2, "none") included
    assert (order == "none").sum() > 50
    np.testing.assert_allclose(r["m_lightest"][ok], np.minimum(np.minimum(m1, m2), m3))
    np.testing.assert_allclose(r["m_lightest"][ok], np.where(order == "IO", m3, m1))
    assert (r["m_ee"][ok] <= r["m_sum"][ok] * (1 + 1e-12)).all()
    # nu_3 has the smallest electron content: sin^2 theta13 = |U_e3|^2 is below |U_e1|^2, |U_e2|^2
    s13 = np.sin(np.radians(r["pmns_theta13"][ok])) ** 2
    s12 = np.sin(np.radians(r["pmns_theta12"][ok])) ** 2
    assert (s13 <= (1 - s13) * np.minimum(s12, 1 - s12) + 1e-12).all()
    assert (r["pmns_alpha1"][ok] >= 0).all() and (r["pmns_alpha1"][ok] < 180).all()


def test_ckm_jarlskog_is_consistent_with_extracted_angles():
    r = fn.evaluate(_points(3000, 8))
    t12, t23, t13 = (np.arcsin(r[k]) for k in ("ckm_s12", "ckm_s23", "ckm_s13"))
    np.testing.assert_allclose(r["j_ckm"], mixing.jarlskog_closed_form(t12, t13, t23, r["ckm_delta"]), atol=1e-13)


def test_losses_define_validity():
    r = fn.evaluate(_points(3000, 9), force_io=True, max_exponent=4)
    names = fn.objective_names(True, 4)
    losses = np.stack([r[f"loss_{k}"] for k in names], axis=1)
    assert (losses >= 0).all()
    np.testing.assert_array_equal(r["n_satisfied"], (losses == 0).sum(axis=1))
    np.testing.assert_array_equal(r["valid"], (losses == 0).all(axis=1))
    np.testing.assert_array_equal(r["loss_n_negative"], r["n_negative_exponents"])
    np.testing.assert_array_equal(r["loss_max_exponent"], np.maximum(r["max_exponent"] - 4, 0))
    ratio = r["nu_m1"] / r["nu_m3"]
    np.testing.assert_allclose(r["loss_io"], np.maximum(1 - ratio, 0))
    # relative mass loss of the third generation: C(m_t/m_t0) + C(m_b/m_b0)
    t, b = r["m_t"] / 172.56, r["m_b"] / 4.183
    expect = np.maximum(np.maximum(0.8 - t, t - 1.2), 0) + np.maximum(np.maximum(0.8 - b, b - 1.2), 0)
    np.testing.assert_allclose(r["loss_mass_q3"], expect)


def test_agreement_with_lapack_on_random_and_strongly_hierarchical_models():
    x = np.concatenate([_points(4000, 10, max_charge=2), _points(4000, 11, max_charge=4, regime="down")])
    a, b = fn.evaluate(x), fn.evaluate(x, backend="lapack")
    # LAPACK's SVD is only absolutely accurate: compare where its smallest mass is resolvable
    resolvable = np.ones(len(x), bool)
    for lo, hi in (("m_u", "m_t"), ("m_d", "m_b"), ("m_e", "m_tau")):
        resolvable &= b[lo] / b[hi] > 1e-7
    resolvable &= b["nu_m1"] / b["nu_m3"] > 1e-7
    resolvable &= np.abs(b["nu_m1"] - b["nu_m2"]) > 1e-6 * b["nu_m3"]  # no near-degeneracy
    assert resolvable.sum() > 1000
    hier = resolvable & (b["m_u"] / b["m_t"] < 1e-4)
    assert hier.sum() > 50  # the strongly hierarchical regime is covered
    periods = {"ckm_delta": 2 * np.pi, "pmns_delta": 360.0, "pmns_alpha1": 180.0, "pmns_alpha2": 180.0}
    assert set(fn_kernel.COLUMNS) <= set(a) and set(a) == set(b)
    for k in fn_kernel.COLUMNS:  # every observable of the fused kernel
        if k in periods:
            continue
        # J is a difference of products: compare on the scale of the largest |J|
        atol = 1e-9 * np.abs(b[k][resolvable]).max() if k.startswith("j_") else 0.0
        np.testing.assert_allclose(a[k][resolvable], b[k][resolvable], rtol=1e-6, atol=atol, err_msg=k)
    for k, period in periods.items():
        d = np.mod(a[k][resolvable] - b[k][resolvable], period)
        assert np.minimum(d, period - d).max() < 1e-6 * period, k
    assert (a["ordering"][resolvable] == b["ordering"][resolvable]).all()
    assert (a["n_satisfied"][resolvable] == b["n_satisfied"][resolvable]).all()
    assert (a["valid"] == b["valid"]).all()


def test_singular_heavy_neutrino_mass_gives_nan_and_invalid():
    x = _points(4, 12)
    x[2, OFF["c_N_11"]:OFF["c_N_11"] + 6] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # rank-one c_N
    x[2, 15:18] = 0
    r = fn.evaluate(x)
    assert not r["valid"][2]
    assert np.isnan(r["nu_m3"][2]) or r["nu_m1"][2] / r["nu_m3"][2] < 1e-6


def _same_row(a, b):
    """Every float observable of two result rows equal (NaN == NaN), every other column equal."""
    for k in a:
        if np.asarray(a[k]).dtype.kind == "f":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert (np.asarray(a[k]) == np.asarray(b[k])).all(), k


@pytest.mark.parametrize("backend", ["numba", "jacobi", "lapack"])
def test_huge_charges_give_nan_rows_and_leave_the_batch_alone(backend):
    """q_N1 = 300 or q_L1 = -1000 overflow eps^n (once a ZeroDivisionError that took the whole
    batch down): those rows are NaN and invalid, every other row is what it is on its own."""
    x = _points(6, 31)
    x[1, OFF["q_N1"]] = 300
    x[3, OFF["q_L1"]] = -1000
    x[4, OFF["q_Q2"]] = 5e8  # beyond what integer exponents hold
    r = fn.evaluate(x, backend=backend)
    for k in (1, 3, 4):
        assert not r["valid"][k] and r["ordering"][k] == "none"
        assert all(np.isnan(r[c][k]) for c in fn_kernel.COLUMNS), k
    good = [0, 2, 5]
    alone = fn.evaluate(x[good], backend=backend)
    _same_row({k: v[good] for k, v in r.items()}, alone)
    assert np.isfinite(alone["m_u"]).all()


@pytest.mark.parametrize("backend", ["numba", "lapack"])
def test_exactly_degenerate_charged_spectrum_leaves_ckm_undefined(backend):
    """All charges 0 and c_u = 1.5 x an orthogonal matrix: m_u has three equal masses, so U_u and
    the CKM are undefined -> NaN observables and valid = False (never arbitrary angles)."""
    x = _points(3, 32)
    x[:, :18] = 0
    orth = np.array([[-1.0, 2.0, 2.0], [2.0, -1.0, 2.0], [2.0, 2.0, -1.0]]) / 3.0
    x[1, OFF["c_u_11"]:OFF["c_u_11"] + 9] = 1.5 * orth.ravel()
    r = fn.evaluate(x, backend=backend)
    assert np.isnan(r["ckm_s12"][1]) and np.isnan(r["j_ckm"][1]) and not r["valid"][1]
    assert np.isfinite(r["ckm_s12"][[0, 2]]).all()


def test_the_scans_objective_matrix_survives_overflowing_rows():
    """The scan evaluates through methods.ga.problem.Objectives: an overflowing row becomes the
    1e30 sentinel of its losses, the other rows keep their losses (no exception for the batch)."""
    from rayflavor.methods.ga.problem import Objectives

    obj = Objectives(data=fn.load(fn.DEFAULT_DATA), mass_tolerance=fn.DEFAULT_MASS_TOLERANCE)
    x = _points(4, 33)
    x[2, OFF["q_N1"]] = 300
    F = obj.matrix(obj.evaluate(x))
    physics = [k for k, name in enumerate(obj.names) if name != "n_negative"]  # a count of exponents, still known
    assert (F[2, physics] == 1e30).all() and np.isfinite(F).all()
    np.testing.assert_array_equal(F[[0, 1, 3]], obj.matrix(obj.evaluate(x[[0, 1, 3]])))


EXTREMES = np.array([0.0, 5e-324, 1e-300, 1e300, -1e300, 1e308, -1e308, 1e20, -1e20, 300.0, -1000.0, 1e8, 3e9])


@pytest.mark.parametrize("backend", ["numba", "jacobi", "lapack"])
def test_extreme_values_never_raise_or_warn(backend):
    """Fuzz: 1-5 parameters of each row set to extreme values; no exception, no warning (the
    numpy compositions run under errstate), every non-finite row invalid."""
    import warnings

    rng = np.random.default_rng(34)
    x = _points(120, 35)
    for r in range(x.shape[0]):
        cols = rng.choice(x.shape[1], rng.integers(1, 6), replace=False)
        x[r, cols] = rng.choice(EXTREMES, cols.size)
    x[:, :18] = np.rint(x[:, :18])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fn.evaluate(x, backend=backend)
    assert not r["valid"][~np.isfinite(r["m_sum"])].any()
    assert np.isnan(r["m_sum"]).sum() > 10


@pytest.mark.parametrize("backend", ["numba", "lapack"])
def test_each_observable_depends_only_on_the_parameters_of_its_sector(backend):
    """Moving a quark coefficient leaves every lepton observable bit-identical and vice versa
    (fn.PARAMETER_SECTORS / fn.OBSERVABLE_SECTORS: the refinement probes a quark and a lepton
    coefficient in one evaluation on this); the vevs move both sectors, Lambda only the neutrinos."""
    x = _points(64, seed=11)
    base = fn.evaluate(x, backend=backend)
    finite = np.isfinite(base["m_u"]) & np.isfinite(base["nu_m1"])
    assert finite.sum() > 40
    assert set(fn.PARAMETER_SECTORS) == set(fn.PARAMETERS) - set(fn.CHARGES)
    for name, sector in fn.PARAMETER_SECTORS.items():
        moved = x.copy()
        k = fn.PARAMETERS.index(name)
        moved[:, k] += 1e-3 * np.where(np.abs(moved[:, k]) < 2.9, 1.0, -1.0)  # inside the domain
        out = fn.evaluate(moved, backend=backend)
        ok = finite & np.isfinite(out["m_u"]) & np.isfinite(out["nu_m1"])
        for obs, osec in fn.OBSERVABLE_SECTORS.items():
            same = np.array_equal(out[obs][ok], base[obs][ok])
            if sector in ("both", osec):
                continue
            assert same, f"{obs} ({osec}) moved with {name} ({sector})"
        changed = {osec for obs, osec in fn.OBSERVABLE_SECTORS.items()
                   if not np.array_equal(out[obs][ok], base[obs][ok])}
        assert changed == ({"quark", "lepton"} if sector == "both" else {sector}), (name, changed)

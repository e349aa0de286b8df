"""The exact symmetries of m_nu (row scalings and phases with the heavy masses, charged-lepton
phases) and the prior-exact orbit resampling built on them."""

import numpy as np
import pytest

from rayflavor.analysis.fidelity import ks_statistic
from rayflavor.methods.reference import seesaw_box
from rayflavor.physics import seesaw
from rayflavor.physics import seesaw_symmetry as sym

LIGHT = ("m1", "m2", "m3", "dm21", "dm31", *seesaw.ABS_U, "sin2_theta12", "sin2_theta13", "sin2_theta23",
         "j_cp", "m_bb", "m_beta", "m_sum")
PHASES = ("delta_cp", "alpha21", "alpha31")


def _light_points(n: int, seed: int) -> np.ndarray:
    """Prior points with light masses in the eV range (g near the heaviest-M3 face), so that the
    observables are well conditioned."""
    x = seesaw.sample_prior(n, np.random.default_rng(seed))
    x[:, 20] = np.random.default_rng(seed + 1).uniform(-1.22, -1.0, n)
    x[:, 18:20] = np.sort(np.random.default_rng(seed + 2).uniform(0.05, 1.0, (n, 2)), axis=1)
    return x


def _assert_same_light_observables(a: dict, b: dict) -> None:
    for k in LIGHT:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-8, atol=1e-14, err_msg=k)
    for k in PHASES:
        d = np.mod(b[k] - a[k], 2 * np.pi)
        assert np.minimum(d, 2 * np.pi - d).max() < 1e-7, k


@pytest.mark.parametrize("ordering", ["NO", "IO"])
def test_row_scalings_keep_m_nu_and_every_light_observable(ordering):
    x = _light_points(500, 1)
    s = np.random.default_rng(3).uniform(-0.5, 0.5, (500, 3))
    y = sym.rescale_rows(x, s)
    np.testing.assert_allclose(seesaw.mass_matrix(y), seesaw.mass_matrix(x), rtol=1e-12, atol=0)
    _assert_same_light_observables(seesaw.evaluate(x, ordering=ordering), seesaw.evaluate(y, ordering=ordering))
    # the heavy masses do move: M_i -> e^{2 s_i} M_i, so M3 [via g] and the ratios
    np.testing.assert_allclose(y[:, 20], x[:, 20] - 2 * s[:, 2] / np.log(10), rtol=0, atol=1e-14)
    np.testing.assert_allclose(y[:, 18], x[:, 18] * np.exp(2 * (s[:, 0] - s[:, 2])), rtol=1e-14)


@pytest.mark.parametrize("ordering", ["NO", "IO"])
def test_row_and_charged_lepton_phases_keep_every_light_observable(ordering):
    x = _light_points(500, 4)
    rng = np.random.default_rng(5)
    rows, cols = rng.uniform(-np.pi, np.pi, (500, 2)), rng.uniform(-np.pi, np.pi, (500, 3))
    y = sym.rephase(x, rows, cols)
    m_x, m_y = seesaw.mass_matrix(x), seesaw.mass_matrix(y)
    p = np.exp(1j * cols)
    np.testing.assert_allclose(m_y, p[:, :, None] * m_x * p[:, None, :], rtol=1e-12, atol=1e-15)  # m -> P m P
    _assert_same_light_observables(seesaw.evaluate(x, ordering=ordering), seesaw.evaluate(y, ordering=ordering))
    assert np.all(np.abs(y[:, 21:23]) <= np.pi)
    # only rows 1 and 2 have their own phase: row 3's moduli are untouched by the row phases
    np.testing.assert_allclose(np.hypot(y[:, 6:9], y[:, 15:18]), np.hypot(x[:, 6:9], x[:, 15:18]), rtol=1e-14)


def test_resampling_keeps_solutions_solutions_and_stays_in_the_box():
    x = seesaw.canonical_order(_light_points(3000, 6))
    before = seesaw.evaluate(x)
    y = sym.resample_orbits(x, np.random.default_rng(7), sweeps=3)
    assert seesaw_box().contains(y).all()
    after = seesaw.evaluate(y)
    _assert_same_light_observables(before, after)
    assert (after["solution"] == before["solution"]).all()
    assert np.mean(np.abs(y[:, 20] - x[:, 20]) > 1e-3) > 0.9  # and it does move the heavy masses
    np.testing.assert_array_equal(sym.resample_orbits(x, np.random.default_rng(7), sweeps=0), x)


COLUMNS = {"log10_h2_over_m3_ev": 20, "m1_over_m3": 18, "m2_over_m3": 19, "y_re_1e": 0, "y_im_3tau": 17,
           "arg_m1": 21}


def test_resampling_leaves_the_prior_invariant():
    """A move that samples each orbit's prior conditional maps prior draws to prior draws."""
    n = 20_000
    x = seesaw.sample_prior(n, np.random.default_rng(8))
    y = sym.resample_orbits(x, np.random.default_rng(9), sweeps=3)
    fresh = seesaw.sample_prior(n, np.random.default_rng(10))
    for name, c in COLUMNS.items():
        assert ks_statistic(y[:, c], fresh[:, c]) < 0.02, name  # two independent 2e4 samples: ~0.01


def test_resampling_restores_the_prior_from_a_distribution_distorted_along_the_orbits():
    """Prior draws moved along their orbits (Y halved, M3 divided by 4: the same m_nu) are not prior
    draws; the orbit resampling, which only moves points along orbits, makes them prior draws again."""
    n = 20_000
    x = seesaw.sample_prior(n, np.random.default_rng(11))
    fits = x[:, 20] + 2 * np.log10(2.0) <= seesaw.PRIOR["log10_h2_over_m3_ev"][1]
    d = x.copy()
    d[fits] = sym.rescale_rows(x[fits], np.full((fits.sum(), 3), -np.log(2.0)))
    fresh = seesaw.sample_prior(n, np.random.default_rng(12))
    assert ks_statistic(d[:, 20], fresh[:, 20]) > 0.1 and ks_statistic(np.abs(d[:, 0]), np.abs(fresh[:, 0])) > 0.3
    y = sym.resample_orbits(d, np.random.default_rng(13), sweeps=5)
    for name, c in COLUMNS.items():
        assert ks_statistic(y[:, c], fresh[:, c]) < 0.02, name


def test_negative_sweeps_are_refused():
    with pytest.raises(ValueError, match="sweeps"):
        sym.resample_orbits(np.zeros((1, 23)), np.random.default_rng(0), sweeps=-1)

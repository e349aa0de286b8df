"""Angles and phases from unitary matrices: round trips under unphysical rephasings, invariants."""

import numpy as np
import pytest

from rayflavor.physics import data, mixing


def _random_angles(n, rng):
    t12, t13, t23 = (rng.uniform(0.05, np.pi / 2 - 0.05, n) for _ in range(3))
    delta = rng.uniform(0, 2 * np.pi, n)
    return t12, t13, t23, delta


@pytest.mark.parametrize("convention", ["half", "nufit"])
def test_round_trip_with_random_rephasings_and_column_signs(convention):
    rng = np.random.default_rng(11)
    n = 5000
    t12, t13, t23, delta = _random_angles(n, rng)
    period = 2 * np.pi if convention == "half" else np.pi
    a, b = rng.uniform(0, period, n), rng.uniform(0, period, n)
    u = mixing.standard(t12, t13, t23, delta) * mixing.majorana_matrix(a, b, convention)[:, None, :]
    left = np.exp(1j * rng.uniform(0, 2 * np.pi, (n, 3)))  # unphysical charged-lepton phases
    signs = rng.choice([-1.0, 1.0], size=(n, 3))  # Takagi sign freedom per column
    u = left[:, :, None] * u * signs[:, None, :]
    got = mixing.angles(u)
    np.testing.assert_allclose(got["theta12"], t12, atol=1e-12)
    np.testing.assert_allclose(got["theta13"], t13, atol=1e-12)
    np.testing.assert_allclose(got["theta23"], t23, atol=1e-12)

    def circ(x, y, p):
        d = np.mod(x - y, p)
        return np.minimum(d, p - d)

    assert circ(got["delta"], delta, 2 * np.pi).max() < 1e-9
    ga, gb = mixing.majorana_phases(u, got["delta"], convention)
    assert circ(ga, a, period).max() < 1e-9 and circ(gb, b, period).max() < 1e-9
    assert ga.min() >= 0 and ga.max() < period


def test_jarlskog_from_elements_equals_closed_form():
    rng = np.random.default_rng(12)
    t12, t13, t23, delta = _random_angles(2000, rng)
    u = mixing.standard(t12, t13, t23, delta)
    np.testing.assert_allclose(mixing.angles(u)["j"], mixing.jarlskog_closed_form(t12, t13, t23, delta), atol=1e-15)


def test_majorana_invariants_closed_form():
    """I1 = c12 s12 c13^2 sin(a21/2), I2 = c12 s13 c13 sin(a31/2 - delta) (eq. 2.7)."""
    rng = np.random.default_rng(13)
    t12, t13, t23, delta = _random_angles(2000, rng)
    a21, a31 = rng.uniform(0, 2 * np.pi, (2, 2000))
    u = mixing.standard(t12, t13, t23, delta) * mixing.majorana_matrix(a21, a31, "half")[:, None, :]
    c12, s12, c13, s13 = np.cos(t12), np.sin(t12), np.cos(t13), np.sin(t13)
    # the raw definition on the parametrised matrix
    np.testing.assert_allclose(np.imag(np.conj(u[:, 0, 0]) * u[:, 0, 1]), c12 * s12 * c13**2 * np.sin(a21 / 2), atol=1e-14)
    # extracted from a Takagi-like factor: random column signs and row phases change nothing
    signs = rng.choice([-1.0, 1.0], size=(2000, 1, 3))
    rows = np.exp(1j * rng.uniform(0, 2 * np.pi, (2000, 3, 1)))
    v = rows * u * signs
    ang = mixing.angles(v)
    b21, b31 = mixing.majorana_phases(v, ang["delta"], "half")
    i1, i2 = mixing.invariants(v, ang["delta"], b21, b31)
    np.testing.assert_allclose(i1, c12 * s12 * c13**2 * np.sin(a21 / 2), atol=1e-13)
    np.testing.assert_allclose(i2, c12 * s13 * c13 * np.sin(a31 / 2 - delta), atol=1e-13)


def test_pdg_ckm_jarlskog():
    d = data.load("nufit-6.0+pdg-2024")
    s12, s23, s13 = (d.get(k).central for k in ("ckm_s12", "ckm_s23", "ckm_s13"))
    delta = d.get("ckm_delta").central
    v = mixing.standard(np.arcsin([s12]), np.arcsin([s13]), np.arcsin([s23]), [delta])
    j = mixing.angles(v)["j"][0]
    assert j == pytest.approx(3.1e-5, rel=0.03)
    assert mixing.angles(v)["delta"][0] == pytest.approx(delta, abs=1e-12)


def test_standard_parametrisation_is_unitary_and_has_pdg_form():
    rng = np.random.default_rng(14)
    u = mixing.standard(*_random_angles(100, rng))
    np.testing.assert_allclose(u @ np.conj(np.swapaxes(u, 1, 2)), np.broadcast_to(np.eye(3), u.shape), atol=1e-14)
    assert np.all(np.abs(u[:, 0, :2].imag) < 1e-15) and np.all(u[:, 1:, 2].imag == 0)


def test_compiled_row_extraction_equals_batched():
    """mixing.angles_row / majorana_*_row (used by the fused kernels) = the batched functions."""
    rng = np.random.default_rng(14)
    t12, t13, t23, delta = _random_angles(500, rng)
    a21, a31 = rng.uniform(0, 2 * np.pi, (2, 500))
    rows = np.exp(1j * rng.uniform(0, 2 * np.pi, (500, 3, 1)))
    u = rows * mixing.standard(t12, t13, t23, delta) * mixing.majorana_matrix(a21, a31, "half")[:, None, :]
    ang = mixing.angles(u)
    half = mixing.majorana_phases(u, ang["delta"], "half")
    nufit = mixing.majorana_phases(u, ang["delta"], "nufit")
    for n in range(len(u)):
        s12sq, s13sq, s23sq, d, j = mixing.angles_row(u[n])
        np.testing.assert_allclose([s12sq, s13sq, s23sq, d, j],
                                   [ang[k][n] for k in ("sin2_theta12", "sin2_theta13", "sin2_theta23", "delta", "j")],
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(mixing.majorana_half_row(u[n], d), [half[0][n], half[1][n]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(mixing.majorana_nufit_row(u[n], d), [nufit[0][n], nufit[1][n]], rtol=0, atol=1e-12)

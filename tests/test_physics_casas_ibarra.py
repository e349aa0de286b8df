"""The Casas-Ibarra coordinates: an exact bijection of the seesaw parameters whose light coordinates
are the observables that seesaw.evaluate computes the long way (Takagi of m_nu)."""

import numpy as np
import pytest

from rayflavor.methods.diffusion import training
from rayflavor.physics import casas_ibarra as ci
from rayflavor.physics import seesaw

TWO_PI = 2 * np.pi


def _circular(a, b):
    d = np.mod(np.asarray(a) - np.asarray(b), TWO_PI)
    return np.minimum(d, TWO_PI - d)


def test_parameters_to_coordinates_and_back_is_the_identity_on_prior_points():
    x = seesaw.sample_prior(5000, np.random.default_rng(1))
    c = ci.to_coordinates(x)
    assert np.isfinite(c).all()
    np.testing.assert_allclose(ci.from_coordinates(c), x, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(c[:, 18:], x[:, 18:])  # the heavy masses are their own coordinates
    assert (c[:, 7:9] >= 0).all() and (c[:, 7:9] < np.pi).all()
    assert (np.abs(c[:, 6]) <= 1).all() and (c[:, 9] >= -np.pi).all() and (c[:, 9] < 3 * np.pi).all()
    assert 0.4 < (c[:, 9] >= np.pi).mean() < 0.6  # the upper half: delta > pi


def _random_coordinates(n: int, rng: np.random.Generator) -> np.ndarray:
    """Coordinates in their canonical ranges (distinct masses, moderate R)."""
    c = np.empty((n, 23))
    c[:, 0] = rng.uniform(-4, -0.5, n)
    c[:, 1] = rng.uniform(-5, -3.5, n)
    c[:, 2] = rng.uniform(-3, -2, n)
    c[:, 3:6] = rng.uniform(0.05, 0.95, (n, 3))
    c[:, 6] = rng.uniform(-0.99, 0.99, n)
    c[:, 7:9] = rng.uniform(0, np.pi, (n, 2))
    c[:, 9] = rng.uniform(-np.pi, 3 * np.pi, n)
    c[:, 10:12] = rng.uniform(-np.pi, np.pi, (n, 2))
    c[:, [12, 16]] = rng.uniform(-np.pi, np.pi, (n, 2))
    c[:, 14] = rng.uniform(-1.5, 1.5, n)
    c[:, [13, 15, 17]] = rng.uniform(-1.5, 1.5, (n, 3))
    c[:, 18:20] = np.sort(rng.uniform(1e-3, 1, (n, 2)), axis=1)
    c[:, 20] = rng.uniform(-1.2, 2.7, n)
    c[:, 21:23] = rng.uniform(-np.pi, np.pi, (n, 2))
    return c


def test_coordinates_to_parameters_and_back_is_the_identity_on_the_canonical_ranges():
    c = _random_coordinates(5000, np.random.default_rng(2))
    back = ci.to_coordinates(ci.from_coordinates(c))
    linear = [0, 1, 2, 3, 4, 5, 6, 9, 13, 14, 15, 17, 18, 19, 20]
    np.testing.assert_allclose(back[:, linear], c[:, linear], rtol=0, atol=1e-7)
    periodic = [7, 8, 10, 11, 12, 16, 21, 22]
    assert _circular(back[:, periodic], c[:, periodic]).max() < 1e-7


@pytest.mark.parametrize("ordering", ["NO", "IO"])
def test_light_coordinates_are_the_observables_of_the_decoded_point(ordering):
    """Decode coordinates, evaluate the point the long way (m_nu, Takagi, PDG extraction): the masses,
    splittings, angles, delta and Majorana phases are the coordinates (ascending masses; for IO the
    mass states are relabelled m3 < m1 < m2, so the angles differ but the masses must match)."""
    c = _random_coordinates(3000, np.random.default_rng(3))
    ev = seesaw.evaluate(ci.from_coordinates(c), ordering=ordering)
    asc = np.sort(np.stack([ev["m1"], ev["m2"], ev["m3"]], axis=1), axis=1)
    np.testing.assert_allclose(np.log10(asc[:, 0]), c[:, 0], atol=1e-8)
    np.testing.assert_allclose(np.log10(asc[:, 1] ** 2 - asc[:, 0] ** 2), c[:, 1], atol=1e-7)
    np.testing.assert_allclose(np.log10(asc[:, 2] ** 2 - asc[:, 0] ** 2), c[:, 2], atol=1e-8)
    if ordering == "NO":
        np.testing.assert_allclose(ev["label_log10_dm21"], c[:, 1], atol=1e-7)
        np.testing.assert_allclose(ev["label_log10_dm3l"], c[:, 2], atol=1e-8)
        for k, name in enumerate(("sin2_theta12", "sin2_theta13", "sin2_theta23")):
            np.testing.assert_allclose(ev[name], c[:, 3 + k], atol=1e-9, err_msg=name)
        delta, _ = ci.delta_and_phi_e(c[:, 6], c[:, 9])
        assert _circular(ev["delta_cp"], delta).max() < 1e-7
        np.testing.assert_allclose(np.cos(ev["delta_cp"]), c[:, 6], atol=1e-9)
        assert ((ev["delta_cp"] > np.pi) == (c[:, 9] >= np.pi)).all()
        assert _circular(ev["alpha21"], 2 * c[:, 7]).max() < 1e-7  # convention "half": alpha = 2 beta mod 2 pi
        assert _circular(ev["alpha31"], 2 * c[:, 8]).max() < 1e-7


def test_the_yukawas_are_the_casas_ibarra_formula_for_a_known_point():
    """R = 1, no phases, M1 = M2 = M3: Y = sqrt(M3/<H>^2) diag(sqrt m) U^T with U the real PDG matrix,
    so m_nu = Y^T Y <H>^2/M3 = U diag(m) U^T."""
    c = np.zeros((1, 23))
    c[0, :3] = [-2.0, np.log10(7.5e-5), np.log10(2.5e-3)]
    c[0, 3:6] = [0.3, 0.022, 0.5]
    c[0, 6] = -1.0  # delta = pi: U real
    c[0, 18:21] = [1.0, 1.0, 0.5]
    x = ci.from_coordinates(c)
    m = np.sqrt(10.0 ** np.array([-4.0, -4.0 + 0.0, -4.0]) + np.array([0.0, 7.5e-5, 2.5e-3]))
    t = np.arcsin(np.sqrt(c[0, 3:6]))
    u = np.real(np.array([[np.cos(t[0]) * np.cos(t[1]), np.sin(t[0]) * np.cos(t[1]), -np.sin(t[1])],
                          [0, 0, np.sin(t[2]) * np.cos(t[1])], [0, 0, np.cos(t[2]) * np.cos(t[1])]]))
    y = (x[0, :9] + 1j * x[0, 9:18]).reshape(3, 3)
    np.testing.assert_allclose(y.imag, 0, atol=1e-15)
    np.testing.assert_allclose(y[:, 0], np.sqrt(10 ** -0.5) * np.sqrt(m) * u[0], rtol=1e-12)  # Y[i, e] = sqrt(m_i) U_ei
    m_nu = seesaw.mass_matrix(x)[0]
    np.testing.assert_allclose(np.linalg.eigvalsh(m_nu.real), m, rtol=1e-10)


def test_the_determinant_of_r_is_one_and_degenerate_points_are_nan():
    x = seesaw.sample_prior(2000, np.random.default_rng(4))
    c = ci.to_coordinates(x)
    r = ci._rotations(c[:, 12] + 1j * c[:, 13], c[:, 14] + 1j * c[:, 15], c[:, 16] + 1j * c[:, 17])
    np.testing.assert_allclose(np.einsum("nki,nkj->nij", r, r), np.broadcast_to(np.eye(3), r.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)
    y = x[:1].copy()
    y[0, :18] = 0.0  # m_nu = 0: no Takagi factor, no coordinates
    assert np.isnan(ci.to_coordinates(y)).all()


@pytest.mark.parametrize("system", ["casas-ibarra", "casas-ibarra-m3edge"])
def test_a_casas_ibarra_normaliser_maps_points_to_the_unit_box_and_back(system):
    x = seesaw.sample_prior(3000, np.random.default_rng(5))
    lab = seesaw.labels(seesaw.evaluate(x))
    norm = training.Normalizer.fit(x, lab, system)
    z = norm.g_to_net(x)
    assert z.min() >= -1 - 1e-6 and z.max() <= 1 + 1e-6
    np.testing.assert_allclose(norm.g_from_net(z), x, atol=2e-4)  # float32 network units
    again = training.Normalizer.from_dict(norm.to_dict())
    assert again.coordinates == system
    np.testing.assert_array_equal(again.g_lo, norm.g_lo)
    old = {k: v for k, v in norm.to_dict().items() if k != "coordinates"}  # a checkpoint from before
    assert training.Normalizer.from_dict(old).coordinates == "paper"
    with pytest.raises(ValueError, match="coordinates must be one of"):
        training.Normalizer.fit(x, lab, "polar")


def test_the_network_features_put_the_majorana_phases_on_the_unit_circle_and_decode_exactly():
    from rayflavor.methods.diffusion import coordinates

    x = seesaw.sample_prior(2000, np.random.default_rng(6))
    f = coordinates.encode(x, "casas-ibarra")
    names = coordinates.features("casas-ibarra")
    assert f.shape == (2000, 25) == (len(x), len(names))
    ev = seesaw.evaluate(x)
    k = names.index("cos_alpha21")
    np.testing.assert_allclose(f[:, k], np.cos(ev["alpha21"]), atol=1e-8)
    np.testing.assert_allclose(f[:, names.index("sin_alpha31")], np.sin(ev["alpha31"]), atol=1e-8)
    np.testing.assert_allclose(coordinates.decode(f, "casas-ibarra"), x, atol=1e-9)
    shrunk = f.copy()
    shrunk[:, k:] *= 0.7  # a sampler's circle of radius 0.7: the same phases, the same points
    np.testing.assert_allclose(coordinates.decode(shrunk, "casas-ibarra"), x, atol=1e-9)
    assert coordinates.encode(x, "paper") is not None and coordinates.features("paper") == seesaw.PARAMETERS


def test_the_m3_edge_features_decode_exactly_and_any_features_decode_beyond_the_heaviest_m3_face():
    from rayflavor.methods.diffusion import coordinates
    from rayflavor.physics import seesaw_symmetry as sym

    system, g_lo = "casas-ibarra-m3edge", seesaw.PRIOR["log10_h2_over_m3_ev"][0]
    x = seesaw.sample_prior(2000, np.random.default_rng(7))
    names = coordinates.features(system)
    f = coordinates.encode(x, system)
    k = names.index("ln_m3_edge")
    assert f.shape == (2000, 25) and "log10_h2_over_m3_ev" not in names
    np.testing.assert_allclose(f[:, k], np.log(x[:, 20] - g_lo), rtol=1e-12)
    plain = coordinates.encode(x, "casas-ibarra")  # every other feature is the casas-ibarra one
    np.testing.assert_array_equal(np.delete(f, k, axis=1), np.delete(plain, k, axis=1))
    np.testing.assert_allclose(coordinates.decode(f, system), x, atol=1e-9)
    # a sampler's features, however far off: g beyond the face, and the point is the casas-ibarra
    # reading of the same features moved along the overall scaling (Y ~ 10^(-g/2), same m_nu)
    rng = np.random.default_rng(8)
    noisy = f + rng.normal(0.0, 0.3, f.shape)
    noisy[:, k] = rng.uniform(-15.0, 1.5, len(f))
    y = coordinates.decode(noisy, system)
    ok = np.isfinite(y).all(axis=1)
    assert ok.mean() > 0.5
    assert (y[ok, 20] > g_lo).all()
    np.testing.assert_allclose(y[ok, 20], g_lo + np.exp(noisy[ok, k]), rtol=1e-12)
    z = coordinates.decode(np.where(np.arange(f.shape[1]) == k, 0.0, noisy), "casas-ibarra")  # g = 0
    np.testing.assert_allclose(y[ok, :18], z[ok, :18] * 10.0 ** (-0.5 * y[ok, 20:21]), rtol=1e-9, atol=1e-15)
    my, mz = seesaw.mass_matrix(y[ok]), seesaw.mass_matrix(z[ok])
    assert (np.abs(my - mz) / np.abs(mz).max(axis=(1, 2))[:, None, None]).max() < 1e-9
    # a point on the face reads as the floor: moved by 1e-6 in g along the symmetry, same m_nu
    s = (x[:5, 20] - g_lo) * np.log(10.0) / 2  # the overall scaling that takes g onto g_lo
    face = sym.rescale_rows(x[:5], np.repeat(s[:, None], 3, axis=1))
    np.testing.assert_allclose(face[:, 20], g_lo, atol=1e-13)
    ff = coordinates.encode(face, system)
    np.testing.assert_allclose(ff[:, k], np.log(coordinates.EDGE_FLOOR))
    back = coordinates.decode(ff, system)
    np.testing.assert_allclose(back[:, 20], g_lo + coordinates.EDGE_FLOOR, atol=1e-12)
    np.testing.assert_allclose(seesaw.mass_matrix(back), seesaw.mass_matrix(face), rtol=1e-9)

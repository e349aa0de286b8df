"""Batched 3x3 decompositions: reconstruction, unitarity, relative accuracy, LAPACK agreement."""

import numpy as np
import pytest

from rayflavor.physics import linalg


def _random(n, rng, grade=None):
    m = rng.normal(size=(n, 3, 3)) + 1j * rng.normal(size=(n, 3, 3))
    if grade is not None:
        left, right = grade
        m = np.diag(left) @ m @ np.diag(right)
    return m


def _dag(a):
    return np.conj(np.swapaxes(a, -1, -2))


@pytest.mark.parametrize("grade", [None, ([1e-5, 1e-2, 1.0], [1e-3, 0.1, 1.0]), ([1e-6, 1e-3, 1.0], [1.0, 1.0, 1.0])])
def test_svd_left_reconstructs_m_mdagger(grade):
    rng = np.random.default_rng(1)
    m = _random(2000, rng, grade)
    u, s = linalg.svd_left(m)
    assert np.all(np.diff(s, axis=1) >= 0)
    np.testing.assert_allclose(u @ _dag(u), np.broadcast_to(np.eye(3), u.shape), atol=1e-13)
    h = m @ _dag(m)
    scale = np.abs(h).max(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose((u * s[:, None, :] ** 2) @ _dag(u) / scale, h / scale, atol=1e-13)
    # rows of U^dagger m are orthogonal with norms s: m = U diag(s) V^dagger
    a = _dag(u) @ m
    np.testing.assert_allclose(np.linalg.norm(a, axis=2), s, rtol=1e-12)


def test_svd_left_keeps_relative_accuracy_of_tiny_singular_values():
    """prod(s) = |det m| holds to ~1e-13 even when s_min/s_max ~ 1e-8 (graded matrices)."""
    rng = np.random.default_rng(2)
    m = _random(5000, rng, ([1e-5, 1e-2, 1.0], [1e-3, 0.1, 1.0]))
    _, s = linalg.svd_left(m)
    det = np.abs(np.linalg.det(m))
    np.testing.assert_allclose(s.prod(axis=1), det, rtol=1e-11)
    assert np.median(s[:, 0] / s[:, 2]) < 1e-6


def test_svd_left_agrees_with_lapack_on_random_matrices():
    rng = np.random.default_rng(3)
    m = _random(5000, rng)
    _, s = linalg.svd_left(m)
    _, s_ref = linalg.svd_left(m, backend="lapack")
    np.testing.assert_allclose(s, s_ref, rtol=1e-9)


@pytest.mark.parametrize("grade", [None, ([1e-4, 1e-2, 1.0], [1e-4, 1e-2, 1.0])])
def test_takagi_reconstructs_symmetric_matrix(grade):
    rng = np.random.default_rng(4)
    a = _random(3000, rng)
    if grade is not None:
        d = np.diag(grade[0])
        a = d @ a @ d
    m = a + np.swapaxes(a, 1, 2)
    w, s = linalg.takagi(m)
    assert np.isfinite(s).all() and (s >= 0).all() and np.all(np.diff(s, axis=1) >= 0)
    np.testing.assert_allclose(w @ _dag(w), np.broadcast_to(np.eye(3), w.shape), atol=1e-12)
    scale = np.abs(m).max(axis=(1, 2))[:, None, None]
    recon = (w * s[:, None, :]) @ np.swapaxes(w, 1, 2)
    np.testing.assert_allclose(recon / scale, m / scale, atol=1e-12)
    # eq. 27 form: W^dagger M W^* is real, non-negative and diagonal
    d = _dag(w) @ m @ np.conj(w)
    np.testing.assert_allclose(d / scale, (np.eye(3) * s[:, None, :]) / scale, atol=1e-12)


def test_takagi_degenerate_is_nan_or_exact_and_nonfinite_is_nan():
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(_random(50, rng))
    m = q @ (np.diag([1.0, 1.0, 2.0]) * (1 + 0j)) @ np.swapaxes(q, 1, 2)  # degenerate Takagi values
    w, s = linalg.takagi(m)
    ok = np.isfinite(s).all(axis=1)
    recon = (w * s[:, None, :]) @ np.swapaxes(w, 1, 2)
    np.testing.assert_allclose(recon[ok], m[ok], atol=1e-10)  # never a wrong answer
    bad = m.copy()
    bad[0, 1, 1] = np.nan
    w, s = linalg.takagi(bad)
    assert np.isnan(s[0]).all() and np.isfinite(s[1:][ok[1:]]).all()


def test_inv3_matches_lapack_and_flags_singular():
    rng = np.random.default_rng(6)
    m = _random(1000, rng)
    np.testing.assert_allclose(linalg.inv3(m), np.linalg.inv(m), rtol=1e-9, atol=1e-12)
    m[0] = 0.0
    assert np.isnan(linalg.inv3(m)[0]).all()


def test_products_match_numpy():
    rng = np.random.default_rng(7)
    a, b = _random(100, rng), _random(100, rng)
    np.testing.assert_allclose(linalg.adjoint_product(a, b), _dag(a) @ b, atol=1e-13)
    np.testing.assert_allclose(linalg.congruence(a, b), _dag(a) @ b @ np.conj(a), atol=1e-12)


def test_bad_shape_is_an_error():
    with pytest.raises(ValueError, match="3x3"):
        linalg.svd_left(np.zeros((4, 2, 2)))


def test_entries_spanning_hundreds_of_decades_do_not_crash():
    """Row norms can underflow to zero while their inner product does not (FN exponents < 0)."""
    m = np.array([[[1e-170, 1e-170, 0], [1e150, 1e-200, 1e-170], [1.0, 2.0, 3.0]]], dtype=complex)
    for backend in ("numba", "lapack"):
        u, s = linalg.svd_left(m, backend=backend)
        assert np.isfinite(s).all() or np.isnan(s).all()


def _with_singular_values(n, rng, values):
    q1, _ = np.linalg.qr(_random(n, rng))
    q2, _ = np.linalg.qr(_random(n, rng))
    return q1 @ (np.asarray(values, dtype=complex)[:, None] * _dag(q2))


@pytest.mark.parametrize("values", [
    [1.0, 2.0, 3.0],
    [1e-9, 1e-6, 1.0],  # middle below the closed form's hierarchy limit: Jacobi
    [1.0, 1.0 + 1e-9, 2.0],  # lower pair nearly degenerate
    [0.5, 1.0, 1.0 + 1e-9],  # upper pair nearly degenerate: Jacobi
])
def test_closed_form_agrees_with_jacobi_and_defers_where_ill_conditioned(values):
    """The default back end (closed form + Jacobi fallback) against pure Jacobi."""
    rng = np.random.default_rng(8)
    m = np.concatenate([_random(500, rng, ([1e-4, 1e-2, 1.0], [1e-3, 1.0, 1.0])),
                        _with_singular_values(500, rng, values)])
    u, s = linalg.svd_left(m)
    uj, sj = linalg.svd_left(m, backend="jacobi")
    # both are accurate to ~eps * s_max absolutely (and relatively for graded matrices)
    assert (np.abs(s - sj) <= 1e-8 * sj + 1e-14 * sj[:, 2:]).all()
    np.testing.assert_allclose(u @ _dag(u), np.broadcast_to(np.eye(3), u.shape), atol=1e-13)
    # the invariant subspace of each separated singular value agrees (phases are free)
    gap = np.diff(sj, axis=1) / sj[:, 2:]
    for k in range(3):
        separated = np.ones(len(m), bool)
        if k > 0:
            separated &= gap[:, k - 1] > 1e-6
        if k < 2:
            separated &= gap[:, k] > 1e-6
        proj = np.abs(np.einsum("ni,ni->n", np.conj(uj[:, :, k]), u[:, :, k]))
        np.testing.assert_allclose(proj[separated], 1.0, atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "jacobi", "lapack"])
def test_takagi_of_a_massless_block_is_nan(backend):
    """Two vanishing values (zero matrix; rank one with exact zeros) leave W undefined: NaN, not 1."""
    m = np.zeros((3, 3, 3), complex)
    m[1, 2, 2] = 2.0  # rank one: s = (0, 0, 2)
    m[2] = np.diag([1.0, 2.0, 3.0])  # a regular row stays exact
    w, s = linalg.takagi(m, backend)
    assert np.isnan(s[0]).all() and np.isnan(w[0]).all() and np.isnan(s[1]).all()
    np.testing.assert_allclose(s[2], [1.0, 2.0, 3.0])


def test_degenerate_flags_exact_pairs_only():
    s = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [1.0, 1.0, 2.0], [1e-30, 1e-20, 1.0], [0.0, 1e-300, 1.0]])
    assert linalg.degenerate(s).tolist() == [False, True, True, False, False]


def test_lapack_svd_that_does_not_converge_fails_one_row_only(monkeypatch):
    """numpy raises LinAlgError for the whole batch when one matrix does not converge: that row
    alone becomes NaN."""
    real = np.linalg.svd

    def flaky(a, *args, **kwargs):
        if np.ndim(a) == 3 or np.any(a == 7.0):
            raise np.linalg.LinAlgError("SVD did not converge")
        return real(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", flaky)
    m = _random(3, np.random.default_rng(40))
    m[1, 0, 0] = 7.0
    u, s = linalg.svd_left(m, "lapack")
    assert np.isnan(s[1]).all() and np.isnan(u[1]).all() and np.isfinite(s[[0, 2]]).all()

"""Batched Levenberg-Marquardt refinement over a plain evaluation callable.

:func:`levenberg_marquardt` improves ``K`` independent starting points at once.  Each iteration

1. builds forward-difference Jacobians of every point's residual vector: the ``free`` coordinates
   are moved by ``step`` one group at a time (one batch of ``K * C`` evaluations for ``K`` points
   still improving).  Without ``sparsity`` every coordinate is its own group (``C = len(free)``).
   With ``sparsity`` (``(P, m)`` bool: residual ``i`` depends on free coordinate ``p``),
   :func:`probe_groups` puts coordinates whose residuals do not overlap into one group
   (Curtis, Powell & Reid, IMA J. Appl. Math. 13 (1974) 117), and each residual's difference is
   credited to the one coordinate of the group it depends on: the same Jacobian from fewer
   evaluations, exactly, when the residuals do not depend on what ``sparsity`` says they do not;
2. solves the damped normal equations ``(J J^T + mu (diag(J J^T) + 1e-6)) d = -J r`` for each
   damping ``mu`` in ``damping`` (Marquardt's scaling; :func:`damped_steps`) and clips ``x + d`` into ``[lower, upper]``;
3. evaluates all trial points in one batch (``len(damping) * K`` rows) and keeps, per point, the
   trial with the smallest ``sum(r**2)`` if it is smaller than the current one.

A point that did not improve in an iteration is done (the same point gives the same Jacobian and
the same trials again), so only the improving points are evaluated; the whole stops after
``iters`` iterations or when no point is left.  Coordinates outside
``free`` are never changed.  Everything is plain arrays: the caller's ``evaluate(X)`` takes rows
``(n, D)`` and returns their residuals ``(n, m)``, or a pair ``(residuals, payload)`` where
``payload`` is any per-row array the caller wants back for the accepted rows (the island passes
its objective matrix, so no accepted point is evaluated twice).  The evaluation order is fixed
(Jacobian batch, then trial batch, per iteration), so a deterministic ``evaluate`` gives a
deterministic result.

>>> target = np.array([1.0, -2.0, 0.5])
>>> def evaluate(X):  # residuals of a linear least-squares problem, minimum at x = target
...     return X - target
>>> x0 = np.zeros((2, 3)); x0[1, 2] = 0.5  # the second point starts with its fixed coordinate right
>>> out = levenberg_marquardt(evaluate, x0, evaluate(x0), free=np.array([0, 1]), step=np.full(2, 1e-6),
...                           lower=np.full(3, -5.0), upper=np.full(3, 5.0), iters=10)
>>> np.round(out.x, 6).tolist()
[[1.0, -2.0, 0.0], [1.0, -2.0, 0.5]]
>>> out.improved.tolist(), out.n_evals > 0
([True, True], True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

DAMPING = (1e-3, 1e-1, 1e1)  # the damping factors tried in every iteration


class Refined(NamedTuple):
    """Result of :func:`levenberg_marquardt` (rows in the order of the starting points)."""

    x: np.ndarray  # (K, D) the refined points
    r: np.ndarray  # (K, m) their residuals
    payload: np.ndarray  # (K, ...) the evaluation payload of the refined points
    improved: np.ndarray  # (K,) bool: the point moved
    n_evals: int  # rows evaluated


def _call(evaluate: Callable, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = evaluate(X)
    if isinstance(out, tuple):
        return out
    return out, out


def probe_groups(sparsity: np.ndarray) -> list[np.ndarray]:
    """Greedy grouping of the rows of ``sparsity`` (``(P, m)`` bool) into groups whose rows share
    no ``True`` column, in order of first fit: the coordinates one probe evaluation can move
    together.  Computed once per pattern (cached), so a caller may pass the same pattern on every
    call.

    >>> [g.tolist() for g in probe_groups(np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0], [1, 0, 0, 0]], bool))]
    [[0, 1], [2, 3]]
    """
    sparsity = np.asarray(sparsity, dtype=bool)
    return [np.array(g) for g in _probe_groups(sparsity.shape, np.packbits(sparsity).tobytes())]


@functools.lru_cache(maxsize=64)
def _probe_groups(shape: tuple[int, int], packed: bytes) -> tuple[tuple[int, ...], ...]:
    sparsity = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=shape[0] * shape[1]).reshape(shape) > 0
    groups: list[list[int]] = []
    support: list[np.ndarray] = []
    for p, row in enumerate(sparsity):
        for grp, sup in zip(groups, support):
            if not (sup & row).any():
                grp.append(p)
                sup |= row
                break
        else:
            groups.append([p])
            support.append(row.copy())
    return tuple(tuple(g) for g in groups)


def damped_steps(J: np.ndarray, r: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """Marquardt's steps ``d`` with ``(J J^T + mu (diag(J J^T) + 1e-6)) d = -J r`` for every ``mu``
    in ``damping``: ``(len(damping), K, P)`` from Jacobians ``J`` ``(K, P, m)`` and residuals ``r``
    ``(K, m)``.  With ``D = diag(J J^T) + 1e-6`` and ``S = D^(-1/2) J``, ``d = -D^(-1/2) S (S^T S +
    mu)^(-1) r`` when ``m <= P`` (the push-through identity: ``m x m`` systems instead of ``P x P``,
    all dampings in one batched solve), else ``d = -D^(-1/2) (S S^T + mu)^(-1) S r``.  A non-finite
    step (a singular or overflowing system) is 0."""
    K, P, m = J.shape
    mus = np.asarray(damping, dtype=np.float64)
    s = 1.0 / np.sqrt((J**2).sum(axis=2) + 1e-6)  # (K, P): D^(-1/2)
    S = J * s[:, :, None]
    with np.errstate(all="ignore"):
        if m <= P:
            G, rhs = S.transpose(0, 2, 1) @ S, r[:, :, None]  # (K, m, m), (K, m, 1)
        else:
            G, rhs = S @ S.transpose(0, 2, 1), S @ r[:, :, None]  # (K, P, P), (K, P, 1)
        M = G[None] + mus[:, None, None, None] * np.eye(len(G[0]))  # (len(mus), K, q, q)
        try:
            z = np.linalg.solve(M, np.broadcast_to(rhs[None], (len(mus), *rhs.shape)))[..., 0]
        except np.linalg.LinAlgError:
            return np.zeros((len(mus), K, P))
        y = (S[None] @ z[..., None])[..., 0] if m <= P else z
        out = -s[None] * y
    return np.where(np.isfinite(out), out, 0.0)


def _colours(sparsity: np.ndarray) -> np.ndarray:
    colour = np.empty(len(sparsity), dtype=np.int64)
    for c, grp in enumerate(probe_groups(sparsity)):
        colour[grp] = c
    return colour


def levenberg_marquardt(
    evaluate: Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    r: np.ndarray,
    *,
    free: np.ndarray,
    step: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    iters: int,
    payload: np.ndarray | None = None,
    damping: tuple[float, ...] = DAMPING,
    sparsity: np.ndarray | None = None,
) -> Refined:
    """Refine the rows of ``x`` (``(K, D)``, residuals ``r`` ``(K, m)``) on the coordinates
    ``free`` (``(P,)`` indices, forward-difference steps ``step`` ``(P,)``) inside the box
    ``[lower, upper]`` (``(D,)``); see the module docstring.  ``payload``: the starting rows'
    payload (default ``r``); ``sparsity``: ``(P, m)`` bool, which residuals each free coordinate
    moves (default: all).  Inputs are not modified."""
    free = np.asarray(free)
    step = np.asarray(step, dtype=np.float64)
    g = np.array(x, dtype=np.float64)
    r = np.array(r, dtype=np.float64)
    pay = np.array(r if payload is None else payload)
    K, P = len(g), len(free)
    improved = np.zeros(K, dtype=bool)
    n_evals = 0
    if K == 0 or P == 0:
        return Refined(g, r, pay, improved, 0)
    phi = (r**2).sum(axis=1)
    mus = np.asarray(damping, dtype=np.float64)
    lo, hi = lower[free], upper[free]
    mask = np.ones((P, r.shape[1]), dtype=bool) if sparsity is None else np.asarray(sparsity, dtype=bool)
    if mask.shape != (P, r.shape[1]):
        raise ValueError(f"sparsity must be ({P}, {r.shape[1]}) (free coordinates, residuals), not {mask.shape}")
    colour = _colours(mask)  # the probe row of every free coordinate
    C = int(colour.max()) + 1
    act = np.arange(K)  # rows still improving
    for _ in range(iters):
        if act.size == 0:
            break
        Ka, ga, ra = len(act), g[act], r[act]
        probe = np.repeat(ga, C, axis=0).reshape(Ka, C, -1)
        probe[:, colour, free] += step
        Rp, _ = _call(evaluate, probe.reshape(Ka * C, -1))
        n_evals += Ka * C
        Ja = (Rp.reshape(Ka, C, -1)[:, colour, :] - ra[:, None, :]) / step[None, :, None]  # (Ka, P, m)
        if sparsity is not None:
            Ja = np.where(mask[None], Ja, 0.0)
        trials = []
        for delta in damped_steps(Ja, ra, mus):
            gt = ga.copy()
            gt[:, free] = np.clip(ga[:, free] + delta, lo, hi)
            trials.append(gt)
        T = np.concatenate(trials)  # (len(mus) * Ka, D)
        rt, pt = _call(evaluate, T)
        n_evals += len(T)
        phit = (rt**2).sum(axis=1).reshape(len(mus), Ka)
        best = np.argmin(phit, axis=0)
        better = phit[best, np.arange(Ka)] < phi[act]
        sel = (best * Ka + np.arange(Ka))[better]
        up = act[better]
        g[up], r[up], pay[up] = T[sel], rt[sel], pt[sel]
        phi[up] = phit[best, np.arange(Ka)][better]
        improved[up] = True
        # A row that found no better point is done: the same point would give the same Jacobian
        # and the same trials again.
        act = up
    return Refined(g, r, pay, improved, n_evals)


__all__ = ["DAMPING", "Refined", "damped_steps", "levenberg_marquardt", "probe_groups"]

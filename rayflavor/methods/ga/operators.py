"""Variation operators that treat FN charges as integers (FN paper sec. III.4, future work).

The paper applies SBX and polynomial mutation to every gene and rounds the charges at
evaluation; most small moves of a charge gene then change nothing, and the rest move one charge
by one unit at random.  Here the continuous genes keep SBX and PM, while the 18 charges

* cross over as whole field triplets (``Q``, ``u``, ``d``, ``L``, ``e``, ``N``): a child takes each
  triplet from one parent, so the charge differences inside a sector (which set the hierarchy
  of that sector's masses) are inherited intact;
* mutate by integer steps: with probability ``charge_rate`` an individual gets one ``+-1`` step on
  one charge, and with the same probability again a second one;
* are sampled (and re-sampled) uniformly from the integers ``-9..9``.
"""

from __future__ import annotations

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM

from rayflavor.methods.ga.problem import CHARGES, N_CHARGES, Q_MAX


def integer_charge_steps(charges: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Integer charges ``(N, 18)`` with random ``+-1`` steps (one with probability ``rate``,
    a second with ``rate`` again), clipped to ``|q| <= 9``."""
    q = np.array(charges, dtype=np.float64)
    n = q.shape[0]
    rows = np.arange(n)
    for _ in range(2):
        hit = rng.random(n) < rate
        col = rng.integers(0, N_CHARGES, n)
        step = rng.choice((-1.0, 1.0), n)
        q[rows[hit], col[hit]] += step[hit]
    return np.clip(q, -Q_MAX, Q_MAX)


class IntegerAwareSampling(Sampling):
    """Uniform continuous genes, uniform integer charges."""

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        rng = random_state
        X = rng.uniform(problem.xl, problem.xu, (n_samples, problem.n_var))
        X[:, CHARGES] = rng.integers(-Q_MAX, Q_MAX + 1, (n_samples, N_CHARGES))
        return X


class TripletCrossover(Crossover):
    """SBX on the continuous genes, whole-triplet uniform crossover on the charges."""

    def __init__(self, eta: float = 15.0, prob: float = 0.9) -> None:
        super().__init__(2, 2, prob=prob)
        self.sbx = SBX(eta=eta, prob=1.0)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        rng = random_state
        Q = self.sbx._do(problem, X, random_state=rng)
        _, n_matings, _ = X.shape
        take = rng.random((n_matings, 6)) < 0.5  # per triplet: child 0 takes parent 1's triplet
        mask = np.repeat(take, 3, axis=1)
        c0, c1 = X[0][:, CHARGES], X[1][:, CHARGES]
        Q[0][:, CHARGES] = np.where(mask, c1, c0)
        Q[1][:, CHARGES] = np.where(mask, c0, c1)
        return Q


class IntegerAwareMutation(Mutation):
    """Polynomial mutation of the continuous genes, integer ``+-1`` steps of the charges."""

    def __init__(self, *, charge_rate: float, eta: float = 20.0) -> None:
        super().__init__(prob=1.0)
        self.pm = PM(eta=eta)
        self.charge_rate = charge_rate

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        rng = random_state
        Y = np.array(X, dtype=np.float64)
        Y = self.pm._do(problem, Y, random_state=rng)  # PM: each gene with probability 1/n_var
        Y[:, CHARGES] = integer_charge_steps(np.rint(X[:, CHARGES]), rng, self.charge_rate)
        return Y

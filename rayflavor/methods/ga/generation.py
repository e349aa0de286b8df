"""One NSGA-III generation of the fast engine on arrays: pymoo's own operators and survival, without
its per-individual bookkeeping.

pymoo's ``algorithm.ask()`` / ``tell()`` wrap every step of a generation in ``Individual`` objects:
the tournament compares two individuals' constraint violations in a Python loop, crossover and
mutation read and write genes one individual at a time, and the optimum is recomputed after
every survival.  For the fast island (population 100, 200 offspring, ~4 microseconds of physics
per evaluation) that bookkeeping was ~45 % of its compute (profile of 2026-12-07, in
docs/experiments.md#2026-12-07-lean-generation).

:func:`offspring` and :func:`survive` do the same generation with the same pymoo operator
objects (``algorithm.mating``'s selection, crossover and mutation ``_do`` methods,
``algorithm.survival``) on gene arrays, drawing from ``algorithm.random_state`` exactly as
pymoo does, so a seeded island searches the same points as through ``ask``/``tell``:
tests/test_ga_generation.py checks it bit for bit against the installed pymoo.

Scope (checked, :func:`supports`): an unconstrained problem (every individual feasible, so the
tournament of :func:`pymoo.algorithms.moo.nsga3.comp_by_cv_then_random` is a fair coin between
two members drawn from random permutations), binary tournaments, a crossover with as many
children as parents, no duplicate elimination and no repair.  The initial population of a run
still goes through pymoo's ``ask``/``tell`` (once per run).
"""

from __future__ import annotations

import math

import numpy as np
from pymoo.algorithms.moo.nsga3 import NSGA3, ReferenceDirectionSurvival, associate_to_niches, calc_niche_count, comp_by_cv_then_random, niching
from pymoo.core.duplicate import NoDuplicateElimination
from pymoo.core.population import Population
from pymoo.core.repair import NoRepair
from pymoo.core.variable import get
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.util.misc import random_permutations
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def supports(algorithm: NSGA3) -> bool:
    """Whether :func:`offspring` and :func:`survive` reproduce ``algorithm``'s ask/tell exactly
    (see the module docstring for the conditions)."""
    m = algorithm.mating
    sel = m.selection
    return (
        not algorithm.problem.has_constraints()
        and isinstance(sel, TournamentSelection) and sel.func_comp is comp_by_cv_then_random and sel.pressure == 2
        and m.crossover.n_offsprings == m.crossover.n_parents
        and m.crossover.vtype is None and m.crossover.repair is None
        and m.mutation.vtype is None and m.mutation.repair is None
        and isinstance(m.eliminate_duplicates, NoDuplicateElimination) and isinstance(m.repair, NoRepair)
        and type(algorithm.survival) is ReferenceDirectionSurvival
    )


def offspring(algorithm: NSGA3, X: np.ndarray) -> np.ndarray:
    """The ``algorithm.n_offsprings`` offspring gene rows pymoo's mating would make from the
    population with genes ``X`` (``algorithm.pop``'s, in order): binary tournaments between
    members of random permutations (winner by a fair coin: all are feasible), crossover of each
    mating with its probability (otherwise the parents are copied), mutation of each child with
    its probability, the first ``n_offsprings`` children kept."""
    rng = algorithm.random_state
    m = algorithm.mating
    cx, mut = m.crossover, m.mutation
    n_off, (n_pop, n_var) = algorithm.n_offsprings, X.shape
    n_matings = math.ceil(n_off / cx.n_offsprings)
    # selection (TournamentSelection._do with comp_by_cv_then_random, all feasible)
    n_random = n_matings * cx.n_parents * 2
    P = random_permutations(math.ceil(n_random / n_pop), n_pop, random_state=rng)[:n_random].reshape(-1, 2)
    parents = P[np.arange(len(P)), rng.integers(0, 2, len(P))].reshape(n_matings, cx.n_parents)
    # crossover (Crossover.do)
    Xpar = np.swapaxes(X[parents], 0, 1)  # (n_parents, n_matings, n_var)
    cross = rng.random(n_matings) < get(cx.prob, size=n_matings)
    Xp = Xpar.copy()
    if cross.any():
        Q = cx._do(algorithm.problem, Xpar, random_state=rng)
        Xp[:, cross] = Q[:, cross]
    Xp = Xp.reshape(-1, n_var)
    # mutation (Mutation.do)
    Y = mut._do(algorithm.problem, Xp, random_state=rng)
    hit = rng.random(len(Xp)) <= get(mut.prob, size=len(Xp))
    Xp[hit] = Y[hit]
    return Xp[:n_off]


def survive(algorithm: NSGA3, G: np.ndarray, F: np.ndarray) -> None:
    """pymoo's ``tell`` of evaluated offspring (genes ``G``, objectives ``F``) to an initialised
    ``algorithm``: NSGA-III survival (``ReferenceDirectionSurvival._do``: non-dominated fronts up
    to the one that splits, the hyperplane normalisation updated with the first front, niching
    of the splitting front) of the population and the offspring, on arrays; the iteration counter
    advanced.  What pymoo also keeps but nothing here reads is not computed: the members' rank and
    niche attributes, the survival's and the algorithm's optimum."""
    pop, survival = algorithm.pop, algorithm.survival
    X = np.concatenate([np.asarray(pop.get("X"), np.float64), G])
    F = np.concatenate([np.asarray(pop.get("F"), np.float64), F])
    n_survive = min(algorithm.pop_size, len(X))
    fronts, _ = NonDominatedSorting().do(F, return_rank=True, n_stop_if_ranked=n_survive)
    survival.norm.update(F, nds=fronts[0])
    ideal, nadir = survival.norm.ideal_point, survival.norm.nadir_point
    order = np.concatenate(fronts)
    X, F = X[order], F[order]
    starts = np.cumsum([0] + [len(f) for f in fronts])
    niche, dist, _ = associate_to_niches(F, survival.ref_dirs, ideal, nadir)
    keep = np.arange(len(X))
    if len(X) > n_survive:
        last = np.arange(starts[-2], starts[-1])
        before = np.arange(starts[-2])
        count = calc_niche_count(len(survival.ref_dirs), niche[before])
        chosen = niching(last, n_survive - len(before), count, niche[last], dist[last],
                         random_state=algorithm.random_state)
        keep = np.concatenate([before, last[chosen]])
    algorithm.pop = Population.new("X", X[keep], "F", F[keep])
    algorithm.n_iter += 1


__all__ = ["offspring", "supports", "survive"]

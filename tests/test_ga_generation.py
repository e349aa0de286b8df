"""The fast island's generation on arrays (rayflavor.methods.ga.generation) is pymoo's, bit for bit:
the same offspring from the same population and random state, the same survivors, the same random
state after; and a whole island stepped either way searches the same points."""

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymoo.core.population import Population

from rayflavor.methods.ga import generation
from rayflavor.methods.ga.config import ISLAND_PRESETS
from rayflavor.methods.ga.island import FastIsland, PaperIsland, make_island
from rayflavor.physics import data

ROOT = Path(__file__).resolve().parent.parent
DATA = data.load("nufit-6.0+pdg-2024")


class PymooFastIsland(FastIsland):
    """The fast island stepped through pymoo's ask/tell (what the arrays must reproduce)."""

    _ask = PaperIsland._ask
    _tell = PaperIsland._tell


def _rng_state(algo) -> dict:
    return algo.random_state.bit_generator.state


@given(pop=st.integers(4, 40), ratio=st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 2.5]),
       seed=st.integers(0, 2**32 - 1), ties=st.booleans(), charge_rate=st.sampled_from([0.0, 0.3, 1.0]))
def test_one_generation_matches_pymoo_ask_and_tell(pop, ratio, seed, ties, charge_rate):
    """For any population (odd offspring counts, tied and duplicated objectives included), the
    array generation makes pymoo's offspring and survivors and leaves the random state as pymoo."""
    cfg = replace(ISLAND_PRESETS["fast"], pop_size=pop, offspring_ratio=ratio, charge_rate=charge_rate)
    isl = make_island(cfg, DATA, island=0, seed=seed % 1000)
    isl.step()  # the first population (pymoo's path)
    algo = isl.algorithm
    assert generation.supports(algo)
    rng = np.random.default_rng(seed)
    X = rng.uniform(isl.problem.xl, isl.problem.xu, (pop, isl.problem.n_var))
    n_obj = len(isl.names)
    F = rng.integers(0, 3, (pop, n_obj)).astype(float) if ties else rng.exponential(1.0, (pop, n_obj))
    algo.pop = Population.new("X", X, "F", F)
    ref = copy.deepcopy(algo)

    G = generation.offspring(algo, X)
    off = ref.ask()
    assert np.array_equal(G, off.get("X"))
    assert _rng_state(algo) == _rng_state(ref)

    Fo = rng.integers(0, 3, (len(G), n_obj)).astype(float) if ties else rng.exponential(1.0, (len(G), n_obj))
    generation.survive(algo, G, Fo)
    ref.tell(infills=Population.new("X", G, "F", Fo))
    assert np.array_equal(algo.pop.get("X"), ref.pop.get("X"))
    assert np.array_equal(algo.pop.get("F"), ref.pop.get("F"))
    assert _rng_state(algo) == _rng_state(ref)
    assert algo.n_iter == ref.n_iter
    for k in ("ideal_point", "worst_point", "nadir_point", "extreme_points"):
        assert np.array_equal(getattr(algo.survival.norm, k), getattr(ref.survival.norm, k))


@pytest.mark.parametrize("data_set, change, seen", [
    ("nufit-6.0+pdg-2024", {"patience": 30}, "restarts"),  # no model in 200 generations: restarts
    ("tests/data_relaxed.toml", {"mass_tolerance": 0.9, "target_valid": 10**6}, "models"),  # tabu, neighbours
])
def test_an_island_searches_the_same_points_either_way(data_set, change, seen):
    """200 generations: the population, the found set and the counters are the same as through
    pymoo's ask/tell, over restarts (strict data) or with found models (relaxed data: tabu,
    refinement budgets and the neighbour queue in play)."""
    cfg = replace(ISLAND_PRESETS["fast"], pop_size=40, **change)
    d = data.load(str(ROOT / data_set) if data_set.startswith("tests/") else data_set)
    lean, ref = (cls(cfg, d, island=0, seed=3) for cls in (FastIsland, PymooFastIsland))
    for _ in range(200):
        lean.step()
        ref.step()
        if lean.algorithm.pop is not None:
            assert np.array_equal(lean.algorithm.pop.get("X"), ref.algorithm.pop.get("X"))
            assert np.array_equal(lean.algorithm.pop.get("F"), ref.algorithm.pop.get("F"))
    assert lean.found == ref.found
    assert (lean.c.n_evals, lean.c.n_found, lean.c.restarts) == (ref.c.n_evals, ref.c.n_found, ref.c.restarts)
    assert (lean.c.restarts if seen == "restarts" else lean.c.n_found) > 0


def test_the_paper_engine_keeps_pymoo_ask_and_tell():
    """The paper's island is pymoo's NSGA3 as published: it never takes the array path."""
    isl = make_island(replace(ISLAND_PRESETS["paper"], pop_size=20, n_partitions=1), DATA, island=0, seed=1)
    isl.step()
    assert not generation.supports(isl.algorithm)  # duplicate elimination is on

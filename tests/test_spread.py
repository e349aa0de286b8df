"""Spreading a fine-tuning set's solutions over the solution set (issue 18)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from rayflavor.methods.diffusion.data import evaluated_table, points, with_split
from rayflavor.methods.diffusion.spread import spread_points, spread_solutions
from rayflavor.physics import data, seesaw


@pytest.fixture(scope="module")
def solutions() -> np.ndarray:
    """40 exact NO solutions from a tiny network-free reference task (nested descent + chains)."""
    from rayflavor.methods.reference import ReferenceSettings
    from rayflavor.orchestration.reference import run_task

    s = ReferenceSettings(tasks=1, n_live=60, k=4, steps=10, draws=1, thin=2, burn=20)
    x = np.unique(run_task(s, 0)["samples"][-1], axis=0)  # a chain that never moved may repeat a live point
    assert len(x) >= 40
    return x[:40]


def test_walked_points_stay_solutions_move_and_depend_only_on_the_seed(solutions):
    a, info = spread_points(solutions, 40, np.random.default_rng(1))
    b, _ = spread_points(solutions, 40, np.random.default_rng(1))
    assert np.array_equal(a, b) and info["walked"] == len(solutions)
    res = seesaw.evaluate(a, ordering="NO", data=data.load(seesaw.DEFAULT_DATA))
    assert res["solution"].all()
    moved = np.any(a != solutions, axis=1)
    assert moved.mean() > 0.5 and info["moved_median"] > 0
    assert 0 < info["acceptance"] < 1


def test_spread_replaces_only_the_solutions_of_a_set_and_keeps_its_columns(solutions):
    prior = seesaw.sample_prior(30, np.random.default_rng(2))  # prior points: not solutions
    t = with_split(evaluated_table(np.vstack([solutions, prior])), 3)
    t = t.append_column("ordering", pa.array(["NO"] * t.num_rows, pa.string()))
    out, info = spread_solutions(t, 30, seed=5)
    assert out.schema == t.schema and out.num_rows == t.num_rows and info["walked"] == len(solutions)
    sol = out.column("solution").to_numpy(zero_copy_only=False)
    assert sol.sum() == len(solutions) and sol[: len(solutions)].all()
    # the non-solutions are the same rows, the solutions new points with their split labels kept
    assert np.array_equal(points(out)[len(solutions):], prior)
    assert not np.array_equal(points(out)[: len(solutions)], solutions)
    assert out.column("split").to_pylist()[: len(solutions)] == t.column("split").to_pylist()[: len(solutions)]
    same, _ = spread_solutions(t, 0, seed=5)
    assert same is t


def test_only_fresh_solutions_are_walked_so_a_union_pool_does_not_double_them(solutions):
    t = with_split(evaluated_table(solutions), 3)
    fresh = np.zeros(t.num_rows, dtype=bool)
    fresh[:10] = True
    out, info = spread_solutions(t, 20, seed=1, fresh=fresh)
    assert info["walked"] == 10 and out.num_rows == t.num_rows
    after = {p.tobytes() for p in points(out)}
    assert all(p.tobytes() in after for p in points(t)[10:])  # the 30 earlier solutions are untouched
    assert np.array_equal(points(out)[10:], points(t)[10:]) and not np.array_equal(points(out)[:10], points(t)[:10])


def test_a_round_walks_only_its_own_new_solutions(solutions):
    from rayflavor.methods.diffusion.rounds import _among

    old = with_split(evaluated_table(solutions[:25]), 1)
    samples = evaluated_table(solutions[25:])
    rows = with_split(evaluated_table(solutions), 2)
    assert _among(rows, samples).tolist() == [False] * 25 + [True] * 15
    assert not _among(old, samples).any()

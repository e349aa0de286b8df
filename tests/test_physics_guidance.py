"""Physics guidance: the torch observables equal the numpy physics, and its steps lead into the 3 sigma box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rayflavor.methods.diffusion.physics_guidance import PhysicsGuidance, solution_terms
from rayflavor.methods.diffusion.ddpm import NoiseSchedule, sample
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw
from rayflavor.physics.params import to_matrix

DS = physics_data.load(seesaw.DEFAULT_DATA)


def _example_solution() -> np.ndarray:
    import importlib.resources

    import pyarrow.parquet as pq

    t = pq.read_table(importlib.resources.files("rayflavor.examples") / "seesaw_example.parquet")
    g = to_matrix({c: t.column(c).to_numpy() for c in t.column_names}, seesaw.PARAMETERS)
    sol = np.asarray(seesaw.evaluate(g, data=DS)["solution"], bool)
    assert sol.any()
    return g[sol][0]


@pytest.mark.parametrize("ordering", ["NO", "IO"])
def test_torch_observables_equal_the_numpy_seesaw(ordering):
    g = np.concatenate([seesaw.sample_prior(2000, np.random.default_rng(3)), _example_solution()[None]])
    ref = seesaw.evaluate(g, ordering=ordering, data=DS)
    want = np.stack([ref[c] for c in seesaw.SOLUTION_TERMS], axis=1)
    got = solution_terms(torch.from_numpy(g), ordering).numpy()
    ok = np.isfinite(want).all(axis=1)
    assert ok.mean() > 0.99
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-12)  # extreme prior hierarchies cost eigh digits
    if ordering == "IO":
        assert (got[ok, 1] < 0).all()  # dm3l = dm32 < 0


def test_guidance_steps_bring_perturbed_solutions_back_into_the_3_sigma_box():
    g0 = _example_solution()
    rng = np.random.default_rng(0)
    lo, hi = g0 - 0.05 * (np.abs(g0) + 0.1), g0 + 0.05 * (np.abs(g0) + 0.1)
    x = np.clip(rng.normal(0.0, 0.1, size=(200, 23)), -1, 1)  # network units around g0 (the box centre)
    windows = seesaw.solution_windows(DS, "NO")

    def evaluate(xn):
        g = lo + (np.asarray(xn, dtype=np.float64) + 1.0) * 0.5 * (hi - lo)
        r = seesaw.evaluate(g, data=DS)
        return np.asarray(r["solution"], bool), np.stack([r[c] for c in seesaw.SOLUTION_TERMS], axis=1)

    before, v0 = evaluate(x)
    refine = PhysicsGuidance(windows, "NO", iterations=20).refiner(lo, hi)
    moved = refine(torch.from_numpy(x).float())
    after, v1 = evaluate(moved.numpy())
    centre, half = windows.mean(axis=1), 0.5 * (windows[:, 1] - windows[:, 0])
    loss0, loss1 = (((v0 - centre) / half) ** 2).sum(1), (((v1 - centre) / half) ** 2).sum(1)
    assert before.mean() < 0.05 and after.mean() > 0.8, (before.mean(), after.mean())
    assert np.median(loss1) < 0.2 * np.median(loss0)
    assert float(moved.abs().max()) <= 1.0  # stays inside the network's box
    assert len(np.unique(np.round(moved.numpy(), 4), axis=0)) == len(x)  # no collapse onto one point


def test_projection_moves_only_the_points_outside_the_set_and_brings_them_in_nearby():
    g0 = _example_solution()
    rng = np.random.default_rng(1)
    lo, hi = g0 - 0.05 * (np.abs(g0) + 0.1), g0 + 0.05 * (np.abs(g0) + 0.1)
    x = np.clip(rng.normal(0.0, 0.1, size=(300, 23)), -1, 1)
    x[:5] = 0.0  # g0 itself: already a solution
    windows = seesaw.solution_windows(DS, "NO")

    def solution(xn):
        return np.asarray(seesaw.evaluate(lo + (np.asarray(xn) + 1.0) * 0.5 * (hi - lo), data=DS)["solution"], bool)

    before = solution(x)
    assert before[:5].all() and before.mean() < 0.1
    guide = PhysicsGuidance(windows, "NO", iterations=0, bound="reflect")
    out = guide.projector(lo, hi, 200)(torch.from_numpy(x).float())
    assert out.dtype == torch.float64 and float(out.abs().max()) <= 1.0
    moved = out.numpy()
    # points that were solutions (to float32 input precision) are returned as they came
    np.testing.assert_array_equal(moved[before], x[before].astype(np.float32).astype(np.float64))
    after = solution(moved)
    assert after[~before].mean() > 0.9, after[~before].mean()
    # each lands near where it started, not on one common point of the set
    step = np.linalg.norm(moved - x, axis=1)[~before]
    spread = np.linalg.norm(x[~before] - x[~before][::-1], axis=1)
    assert np.median(step) < 0.5 * np.median(spread)
    assert len(np.unique(np.round(moved, 4), axis=0)) == len(np.unique(np.round(x, 4), axis=0))
    # no steps: nothing moves
    np.testing.assert_array_equal(guide.projector(lo, hi, 0)(torch.from_numpy(x)).numpy(), x)


def test_sampler_with_an_identity_refinement_is_the_plain_sampler():
    sched = NoiseSchedule()
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(0)) * 0.1

    def eps_fn(x, k):
        return torch.tanh(x @ w)

    for sampler in ("ddim", "ddpm"):
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
        a = sample(eps_fn, x.clone(), schedule=sched, sampler=sampler, steps=20, generator=torch.Generator().manual_seed(2))
        b = sample(eps_fn, x.clone(), schedule=sched, sampler=sampler, steps=20, generator=torch.Generator().manual_seed(2),
                   refine=lambda x0: x0)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

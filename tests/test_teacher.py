"""The chain's teacher: its rows, and its random stream kept apart from any reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from rayflavor.methods.diffusion.teacher import teacher_rows
from rayflavor.methods.reference import ReferenceSettings
from rayflavor.physics import seesaw


def _reference_table(draws: int = 3, chains: int = 4, solution: bool = True) -> pa.Table:
    n = draws * chains
    cols = {c: np.arange(n, dtype=np.float64) + j for j, c in enumerate([*seesaw.PARAMETERS, *seesaw.LABELS])}
    cols.update(chi2=np.zeros(n), solution=np.full(n, solution), task=np.zeros(n, dtype=np.int64),
                chain=np.tile(np.arange(chains), draws), draw=np.repeat(np.arange(draws), chains),
                m_sum=np.ones(n))
    return pa.table(cols)


def test_teacher_rows_are_the_last_state_of_every_chain_with_a_split():
    t = _reference_table(draws=3, chains=40)
    rows = teacher_rows(t, seed=0)
    assert rows.num_rows == 40
    first_param = rows.column(seesaw.PARAMETERS[0]).to_numpy()
    assert np.array_equal(first_param, np.arange(80, 120, dtype=np.float64))  # draw 2 = rows 80..119
    assert set(rows.column_names) == {*seesaw.PARAMETERS, *seesaw.LABELS, "chi2", "solution", "split"}
    assert rows.column("split").to_pylist().count("val") == 4
    assert teacher_rows(t, seed=0).equals(rows)  # deterministic


def test_teacher_rows_refuse_what_is_not_a_reference_of_solutions():
    with pytest.raises(ValueError, match="not a rayflavor reference: no column"):
        teacher_rows(_reference_table().drop_columns(["draw"]), seed=0)
    with pytest.raises(ValueError, match="not a solution"):
        teacher_rows(_reference_table(solution=False), seed=0)


def test_teacher_stream_never_repeats_a_reference_with_the_same_seed():
    """Stream 0 is the reference's historical ``default_rng([seed, task])``; the teacher's stream 1
    draws other points, so a run compared with ``diffusion reference --seed S`` is never compared
    with its own teacher."""
    from rayflavor.orchestration.reference import run_task

    base = dict(tasks=1, n_live=20, k=4, steps=10, draws=2, thin=2, burn=0, seed=3, orbits=0)
    a = run_task(ReferenceSettings(**base), 0)["samples"]
    b = run_task(ReferenceSettings(**base, stream=1), 0)["samples"]
    assert a.shape == b.shape and not np.allclose(a, b)
    from rayflavor.methods import reference as ref

    loss, prior, box = ref.seesaw_target()
    rng = np.random.default_rng([3, 0])  # stream 0 = the draws of references built before streams existed
    nested = ref.nested_to_set(loss, prior, box, n_live=20, k=4, steps=10, rng=rng)
    again = ref.constrained_chains(nested.points, loss, box, draws=2, thin=2, burn=0, rng=rng).samples
    assert np.array_equal(a, again)
    # with orbit moves (the reference's default) the same draws, with the move before every kept state
    o = run_task(ReferenceSettings(**{**base, "orbits": 1}), 0)["samples"]
    rng = np.random.default_rng([3, 0])
    nested = ref.nested_to_set(loss, prior, box, n_live=20, k=4, steps=10, rng=rng)
    moved = ref.constrained_chains(nested.points, loss, box, draws=2, thin=2, burn=0, rng=rng,
                                   move=ref.seesaw_orbit_move(1)).samples
    assert np.array_equal(o, moved) and not np.allclose(o, a)
    with pytest.raises(ValueError, match=r"stream must be an integer in \[0, "):
        ReferenceSettings(stream=-1)


def test_seeds_table_gives_each_kind_of_chain_its_own_median_and_flags_unfaithful_rates():
    from rayflavor.analysis.fidelity import PREDICTIONS, Fidelity
    from rayflavor.bench.seeds import FinalSet, SeedRow, table

    kinds = dict(PREDICTIONS)

    def fid(d):
        return Fidelity({k: d for k in kinds}, kinds, 10, 100, 0.6, 0.58)

    def row(seed, teacher, frac_net, frac_gui, dist):
        physics, project = (0, 200) if teacher == "reference" else (3, 0)
        return SeedRow(f"r{seed}", seed, teacher, {
            "network": FinalSet("a", 0, 0, 1000, int(frac_net * 1000), int(frac_net * 1000), 10.0,
                                fid(0.9) if frac_net else None, 0),
            "guided": FinalSet("b", physics, project, 1000, int(frac_gui * 1000), int(frac_gui * 1000), 20.0, fid(dist),
                               0)}, coordinates="paper", labels="central")

    out = table([row(1, "reference", 0, 0.5, 0.05), row(2, "reference", 0, 0.7, 0.08), row(3, "reference", 0, 0.6, 0.2),
                 row(4, "none", 0.002, 0.4, 0.8)]).splitlines()
    assert len(out) == 2 + 3 + 1 + 1  # header, 3 seeds + median, 1 seed (no median of one)
    med = out[5]
    assert med.startswith("| median (range) | reference, projected 200 steps | 0 (0–0) | 0.6 (0.5–0.7) |")
    assert "| 0.08 (0.05–0.2) |" in med  # distances: median and range over the seeds
    assert out[2].endswith("| 25.0 |") and "(not faithful: worst 0.20)" in out[4]  # 500 distinct / 20 core-s
    assert out[6].startswith("| 4 | none, physics guidance 3 steps | 2.00e-03 | 0.400 | 0.90 (2) |")


def test_floor_table_sets_each_network_only_set_beside_its_teachers_distance_and_counts_the_seeds_at_goal():
    from rayflavor.analysis.fidelity import PREDICTIONS, Fidelity
    from rayflavor.bench.seeds import FinalSet, SeedRow, floor_table

    kinds = dict(PREDICTIONS)

    def fid(worst_on, worst, rest=0.01):
        return Fidelity({k: (worst if k == worst_on else rest) for k in kinds}, kinds, 10, 100, 0.6, 0.58)

    def row(seed, net_worst, teacher_worst):
        return SeedRow(f"r{seed}", seed, "importance", {
            "network": FinalSet("a", 0, 0, 1000, 800, 800, 10.0, fid("m_bb", net_worst), 0),
            "guided": FinalSet("b", 0, 200, 1000, 950, 950, 20.0, fid("m_sum", 0.02), 10)},
            coordinates="casas-ibarra-m3edge", labels="solutions", teacher_fidelity=fid("delta_cp", teacher_worst))

    out = floor_table([row(1, 0.025, 0.012), row(2, 0.05, 0.014)], goal=0.03).splitlines()
    assert out[2] == "| 1 | 0.800 | 0.025 (m_ββ) | 0.012 (δCP) | 0.950 | 0.020 (Σm) | yes |"
    assert out[3].endswith("| 0.050 (m_ββ) | 0.014 (δCP) | 0.950 | 0.020 (Σm) | no |")
    assert out[4] == ("| median (range) | 0.8 (0.8–0.8) | 0.0375 (0.025–0.05) | 0.013 (0.012–0.014) | 0.95 (0.95–0.95) "
                      "| 0.02 (0.02–0.02) | 1 of 2 |")
    # a network-only set that redrew draws outside the prior box gives the fraction of every draw too
    redrawn = row(3, 0.025, 0.012)
    redrawn.sets["network"] = FinalSet("a", 0, 0, 1000, 950, 950, 10.0, fid("m_bb", 0.025), 0, drawn=1400)
    assert floor_table([redrawn], goal=0.03).splitlines()[2].startswith("| 3 | 0.950 (0.679 of draws) | 0.025 (m_ββ)")


def test_teacher_spread_compares_every_pair_of_one_kind_of_teacher_only():
    import numpy as np

    from rayflavor.analysis.fidelity import PREDICTIONS
    from rayflavor.bench.seeds import SeedRow, spread_lines, teacher_spread

    rng = np.random.default_rng(0)

    def row(seed, teacher, shift):
        pred = {k: rng.uniform(0, 1, 400) + (shift if k == "m_sum" else 0.0) for k, _ in PREDICTIONS}
        return SeedRow(f"r{seed}", seed, teacher, {}, coordinates="paper", labels="central", teacher_predictions=pred)

    rows = [row(1, "importance", 0.0), row(2, "importance", 0.0), row(3, "importance", 0.5), row(4, "nested", 0.0)]
    spread = teacher_spread(rows)
    assert set(spread) == {"importance"} and len(spread["importance"]) == 3  # one nested teacher: no pair
    # seed 3's shifted m_sum is the largest distance of both of its pairs: KS of U(0,1) against U(0.5,1.5) ~ 0.5
    on_m_sum = [v for v, name in spread["importance"] if name == "m_sum"]
    assert len(on_m_sum) == 2 and all(0.4 < v < 0.6 for v in on_m_sum)
    assert spread_lines(rows)[0].startswith("teacher-to-teacher spread (importance, 3 pairs of seeds)")
    assert spread_lines(rows)[0].endswith("at most on Σm")

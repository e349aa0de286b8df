"""The chain's teacher (issue 18): its rows, and its random stream kept apart from any reference."""

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

    base = dict(tasks=1, n_live=20, k=4, steps=10, draws=2, thin=2, burn=0, seed=3)
    a = run_task(ReferenceSettings(**base), 0)["samples"]
    b = run_task(ReferenceSettings(**base, stream=1), 0)["samples"]
    assert a.shape == b.shape and not np.allclose(a, b)
    from rayflavor.methods import reference as ref

    loss, prior, box = ref.seesaw_target()
    rng = np.random.default_rng([3, 0])  # stream 0 = the draws of references built before streams existed
    nested = ref.nested_to_set(loss, prior, box, n_live=20, k=4, steps=10, rng=rng)
    again = ref.constrained_chains(nested.points, loss, box, draws=2, thin=2, burn=0, rng=rng).samples
    assert np.array_equal(a, again)
    with pytest.raises(ValueError, match="stream must be >= 0"):
        ReferenceSettings(stream=-1)

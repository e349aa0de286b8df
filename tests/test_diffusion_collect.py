"""``collect_solutions`` streams: the same ``RUN/solutions.parquet`` as gathering every solution in memory.

No Ray. The reference is the in-memory collection (every part's solution rows concatenated, then
``unique_points``): :func:`rayflavor.bench.collect.collect_in_memory`, the collection as it was before it streamed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor.bench.collect import collect_in_memory
from rayflavor.methods.diffusion.data import SeenPoints, point_keys, unique_points
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw
from rayflavor.storage import runs


def _part(x: np.ndarray, flags: np.ndarray, **extra) -> dict:
    res = seesaw.evaluate(x, data=physics_data.load("nufit-6.0-sk"))
    cols = {c: x[:, j] for j, c in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    return {**cols, "solution": flags, **extra}


def test_streamed_solutions_file_equals_the_in_memory_collection(tmp_path):
    """Sets with and without a manifest, parts before the ``ordering``/kind columns, a set with a column
    of its own, parts without solutions (the first one too), points repeated within a part and across
    sets, -0.0 against 0.0: the file has the same columns, types and rows in the same order."""
    from rayflavor.orchestration.diffusion_sample import collect_solutions

    rng = np.random.default_rng(3)
    x = seesaw.sample_prior(120, rng)
    x[5, 7] = 0.0
    x[6] = x[5]
    x[6, 7] = -0.0  # the same point as row 5
    sol = rng.random(120) < 0.6  # planted flags: the flag is what collect_solutions filters on
    layout = {  # set -> (manifest or None, [(rows, extra columns)])
        "a-empty-first": ({"network": "pre", "ordering": "NO"}, [(slice(0, 10), {"no_solution": True})]),
        "b-old": ({"network": "pre", "ordering": "NO", "physics": 2}, [(slice(0, 40), {}), (slice(30, 70), {})]),
        "c-new": ({"network": "tuned-1", "ordering": "NO"},
                  [(slice(50, 100), {"ordering": "NO", "physics_guidance": 0, "projection": 5, "orbit_sweeps": 1}),
                   (slice(0, 120), {"ordering": "NO", "physics_guidance": 0, "projection": 5, "orbit_sweeps": 1})]),
        "d-bare": (None, [(slice(90, 120), {"label_source": "x"})]),
    }
    for tag, (manifest, parts) in layout.items():
        d = runs.samples_dir(tmp_path, tag)
        if manifest is not None:
            runs.write_json(manifest, d / "manifest.json")
        for i, (rows, extra) in enumerate(parts):
            idx = np.arange(120)[rows]
            flags = np.zeros(len(idx), bool) if extra.pop("no_solution", False) else sol[idx]
            n = len(idx)
            cols = _part(x[idx], flags, **{k: np.full(n, v, dtype=object if isinstance(v, str) else np.int32)
                                            for k, v in extra.items()})
            runs.write_table(cols, runs.part_path(d, i))
    want = collect_in_memory(tmp_path)
    n = collect_solutions(tmp_path)
    got = runs.read_table(runs.solutions_path(tmp_path))
    assert n == got.num_rows == want.num_rows and 0 < n < sol.sum() * 3
    assert got.schema == want.schema, (got.schema, want.schema)
    assert got.equals(want)
    assert "label_source" in got.column_names and got.column("label_source").null_count > 0
    assert np.sum(got.column("sample_set").to_numpy(zero_copy_only=False) == "c-new") > 0


def test_no_parts_write_no_file_and_parts_without_solutions_an_empty_one(tmp_path):
    from rayflavor.orchestration.diffusion_sample import collect_solutions

    assert collect_solutions(tmp_path) == 0 and not runs.solutions_path(tmp_path).exists()
    x = seesaw.sample_prior(30, np.random.default_rng(4))
    d = runs.samples_dir(tmp_path, "s")
    runs.write_table(_part(x, np.zeros(30, bool)), runs.part_path(d, 0))
    runs.write_table(_part(x, np.zeros(30, bool), extra=np.ones(30)), runs.part_path(d, 1))
    assert collect_solutions(tmp_path) == 0
    got, want = runs.read_table(runs.solutions_path(tmp_path)), collect_in_memory(tmp_path)
    assert got.num_rows == 0 and got.schema == want.schema and "extra" not in got.column_names


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.lists(st.integers(1, 15), min_size=1, max_size=8),
       st.booleans())
def test_seen_points_over_any_split_keep_the_rows_unique_points_keeps(ids, cuts, signed_zero):
    """Rows drawn from a few points (many repeats), split anywhere into tables: the first rows of every
    table, concatenated, are ``unique_points`` of the whole."""
    base = np.random.default_rng(len(ids)).normal(size=(13, len(seesaw.PARAMETERS)))
    base[0, 0] = 0.0
    g = base[np.asarray(ids)]
    if signed_zero:
        g[np.asarray(ids) == 0, 0] = -0.0
    t = pa.table({**{c: g[:, j] for j, c in enumerate(seesaw.PARAMETERS)}, "row": np.arange(len(ids))})
    seen, got, start = SeenPoints(), [], 0
    bounds = np.cumsum(cuts)
    for stop in [*bounds[bounds < len(ids)], len(ids)]:
        part = t.slice(start, stop - start)
        got.append(part.take(pa.array(seen.first_rows(part))))
        start = stop
    assert pa.concat_tables(got).equals(unique_points(t))
    assert len(seen) == len(set(ids))


def test_point_keys_of_distinct_points_differ():
    g = np.random.default_rng(0).normal(size=(200_000, len(seesaw.PARAMETERS)))
    g[1::2] = g[::2]
    g[1::2, 5] = np.nextafter(g[1::2, 5], np.inf)  # neighbours one ulp apart in one coordinate
    keys = point_keys(g)
    assert len(np.unique(keys, axis=0)) == len(g)
    assert (point_keys(g[:10]) == keys[:10]).all()  # a row's key does not depend on the other rows


def test_parquet_writer_publishes_whole_or_not_at_all(tmp_path):
    path = runs.solutions_path(tmp_path)
    schema = pa.schema([("a", pa.int64())])
    with pytest.raises(RuntimeError):
        with runs.parquet_writer(path, schema) as w:
            w.write_table(pa.table({"a": [1, 2]}, schema=schema))
            raise RuntimeError("stopped mid-way")
    assert not path.exists()
    with runs.parquet_writer(path, schema) as w:
        for k in range(3):
            w.write_table(pa.table({"a": [k, k]}, schema=schema))
    assert runs.read_table(path).column("a").to_pylist() == [0, 0, 1, 1, 2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solutions.parquet"]  # no temporary left

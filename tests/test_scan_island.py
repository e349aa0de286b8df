"""The NSGA-III island without Ray: encoding, stepping, checkpoints, storage and dedupe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from rayflavor.methods.ga.island import Island, IslandConfig
from rayflavor.methods.ga.problem import N_GENES, Space, decode, encode
from rayflavor.physics import data, fn
from rayflavor.storage.dedupe import dedupe
from rayflavor.storage.parquet import list_parts, to_table, write_part

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))


def test_decode_respects_the_domains():
    sp = Space("down")
    xl, xu = sp.bounds()
    g = np.random.default_rng(0).uniform(xl, xu, (500, N_GENES))
    x = decode(g, sp)
    fn.from_columns({n: x[:, k] for k, n in enumerate(fn.PARAMETERS)})  # raises on any violation
    assert ((x[:, 60] >= 0.03) & (x[:, 60] <= 0.07)).all() and ((x[:, 61] >= 0.1) & (x[:, 61] <= 0.3)).all()
    assert np.allclose(decode(encode(x), sp), x)


def _run(isl: Island, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        isl.step()
        m = isl.drain()
        if m is not None:
            out.append(m)
    return out


def test_checkpoint_resume_is_exact():
    ds = data.load(RELAXED)
    cfg = IslandConfig(mass_tolerance=0.9, target_valid=10**6)
    a = Island(cfg, ds, seed=1)
    while a.c.n_found == 0 and a.generation < 150:
        _run(a, 1)
    assert a.c.n_found > 0
    b = Island.from_state(a.get_state(), ds)
    ma, mb = _run(a, 4), _run(b, 4)
    assert a.algorithm.pop.get("X").tolist() == b.algorithm.pop.get("X").tolist()
    assert a.status()["n_valid"] == b.status()["n_valid"]
    key = lambda ms: sorted(tuple(r) for m in ms for r in np.column_stack([m[c] for c in fn.CHARGES]).tolist())  # noqa: E731
    assert key(ma) == key(mb)


def test_found_models_reevaluate_valid_and_are_unique():
    method = "fast"
    ds = data.load(RELAXED)
    isl = Island(IslandConfig(method=method, mass_tolerance=0.9, pop_size=60, n_partitions=1, target_valid=15), ds, seed=1)
    ms = _run(isl, 200)  # stops at the target (72 generations with this seed)
    assert isl.done and isl.c.stop_reason == "target-valid"
    m = {k: np.concatenate([x[k] for x in ms]) for k in ms[0]}
    x = np.column_stack([m[p] for p in fn.PARAMETERS])
    res = fn.evaluate(x, data=ds, mass_tolerance=0.9)
    assert res["valid"].all()
    assert len(np.unique(x[:, :18], axis=0)) == len(x) == isl.c.n_found == 15  # exactly the target


def _models(x: np.ndarray, ds) -> dict[str, np.ndarray]:
    res = fn.evaluate(x, data=ds, mass_tolerance=0.9)
    m = {p: x[:, k] for k, p in enumerate(fn.PARAMETERS)}
    m.update(res)
    m["generation"] = np.arange(len(x))
    m["found_at"] = np.full(len(x), 1.7e9)
    return m


def test_dedupe_counts_on_a_hand_made_set(tmp_path):
    ds = data.load(RELAXED)
    isl = Island(IslandConfig(mass_tolerance=0.9, target_valid=3), ds, seed=2)
    while not isl.done:
        isl.step()
    base = isl.drain()
    x0 = np.column_stack([base[p] for p in fn.PARAMETERS])[:2]  # two distinct assignments A, B
    dup = x0[[0]].copy()
    dup[0, 18] *= 1.01  # A again, other Wilson coefficient: a duplicate
    shift = x0[[0]].copy()
    qud = shift[0, :9]
    shift[0, :9] += 1 if (qud < 9).all() else (-1 if (qud > -9).all() else 0)  # common Q u d shift
    n_move = x0[[1]].copy()
    n_move[0, 15:18] += np.where(n_move[0, 15:18] > 0, -1, 1)  # N charges of B moved: other texture, same light texture
    assert (np.abs(n_move[0, :18]) <= 9).all()
    write_part(tmp_path, 0, 0, to_table(_models(np.vstack([x0, dup]), ds), island=0, seed=1))
    write_part(tmp_path, 1, 0, to_table(_models(np.vstack([shift, n_move]), ds), island=1, seed=2))
    assert len(list_parts(tmp_path)) == 2
    c = dedupe(tmp_path, RELAXED)
    shifted = not np.array_equal(shift[0, :18], x0[0, :18])
    assert (c.found, c.duplicates) == (5, 1 if shifted else 2)
    assert c.unique == 4 if shifted else 3
    assert c.textures == 3  # the Q u d shift keeps every exponent
    assert c.light_textures == 2  # the N move changes n_nu, n_N but not the light spectrum
    kept = pl.read_parquet(tmp_path / "models.parquet")
    assert kept.height == c.unique and kept["distance"].is_finite().all()


def test_dedupe_of_a_scan_that_found_nothing_writes_an_empty_table(tmp_path):
    c = dedupe(tmp_path, RELAXED)
    assert (c.found, c.unique, c.duplicates, c.textures, c.light_textures) == (0, 0, 0, 0, 0)
    kept = pl.read_parquet(tmp_path / "models.parquet")
    assert kept.height == 0
    assert set(fn.PARAMETERS) | {"valid", "island", "seed", "generation", "found_at", "distance"} <= set(kept.columns)
    assert kept["q_Q1"].dtype == pl.Int64 and kept["m_t"].dtype == pl.Float64

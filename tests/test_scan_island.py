"""The NSGA-III island without Ray: encoding, stepping, checkpoints, storage and dedupe."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rayflavor.methods.ga.island import (
    ENGINES,
    ISLAND_PRESETS,
    METHODS,
    FastIsland,
    PaperIsland,
    island_from_state,
    make_island,
    restart_seed,
)
from rayflavor.methods.ga.problem import N_GENES, Space, decode, encode
from rayflavor.physics import data, fn
from rayflavor.storage.dedupe import dedupe
from rayflavor.storage.island_store import IslandStore, committed_parts
from rayflavor.storage.location import resolve
from rayflavor.storage.parquet import to_table

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))


def test_decode_respects_the_domains():
    sp = Space("down")
    xl, xu = sp.bounds()
    g = np.random.default_rng(0).uniform(xl, xu, (500, N_GENES))
    x = decode(g, sp)
    fn.from_columns({n: x[:, k] for k, n in enumerate(fn.PARAMETERS)})  # raises on any violation
    assert ((x[:, 60] >= 0.03) & (x[:, 60] <= 0.07)).all() and ((x[:, 61] >= 0.1) & (x[:, 61] <= 0.3)).all()
    assert np.allclose(decode(encode(x), sp), x)


def _run(isl, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        isl.step()
        m = isl.drain()
        if m is not None:
            out.append(m)
    return out


def _through_disk(isl, ds):
    """The island rebuilt from its state after a trip through JSON and ``np.load(allow_pickle=False)``."""
    meta, arrays = isl.get_state()
    meta = json.loads(json.dumps(meta, allow_nan=False))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return island_from_state(meta, arrays, ds)


def _charge_rows(ms: list[dict]) -> list[tuple]:
    return [tuple(r) for m in ms for r in np.column_stack([m[c] for c in fn.CHARGES]).tolist()]


_TIMES = ("step_seconds", "eval_seconds", "refine_seconds", "first_valid_seconds")


def _same_search(a, b) -> None:
    assert a.algorithm.pop.get("X").tolist() == b.algorithm.pop.get("X").tolist()
    assert a.algorithm.pop.get("F").tolist() == b.algorithm.pop.get("F").tolist()
    sa, sb = a.status(), b.status()
    assert {k: v for k, v in sa.items() if k not in _TIMES} == {k: v for k, v in sb.items() if k not in _TIMES}


def test_checkpoint_resume_is_exact():
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, target_valid=10**6)
    a = make_island(cfg, ds, island=3, seed=1)
    while a.status()["n_valid"] == 0 and a.generation < 150:
        _run(a, 1)
    assert a.status()["n_valid"] > 0
    meta, arrays = a.get_state()
    assert all(v.dtype.kind in "iuf" for v in arrays.values()) and arrays["found"].dtype == np.int8
    b = _through_disk(a, ds)
    assert type(b) is FastIsland and (b.island, b.seed, b.config) == (3, 1, cfg)
    ma, mb = _run(a, 4), _run(b, 4)
    _same_search(a, b)
    assert sorted(_charge_rows(ma)) == sorted(_charge_rows(mb))


@pytest.mark.parametrize("k", [0, 3])
def test_paper_checkpoint_resume_is_exact(k):
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["paper"], pop_size=24, n_partitions=1, mass_tolerance=0.9)
    a = make_island(cfg, ds, island=0, seed=5)
    _run(a, k)
    b = _through_disk(a, ds)
    assert type(b) is PaperIsland
    _run(a, 3), _run(b, 3)
    _same_search(a, b)
    norm_a, norm_b = a.algorithm.survival.norm, b.algorithm.survival.norm
    assert norm_a.nadir_point.tolist() == norm_b.nadir_point.tolist()


def test_found_models_reevaluate_valid_and_are_unique():
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=60, target_valid=15)
    isl = make_island(cfg, ds, island=0, seed=1)
    ms = _run(isl, 200)  # stops at the target (72 generations with this seed)
    assert isl.done and isl.status()["stop_reason"] == "target-valid" and isl.n_pending == 0
    m = {k: np.concatenate([x[k] for x in ms]) for k in ms[0]}
    x = np.column_stack([m[p] for p in fn.PARAMETERS])
    res = fn.evaluate(x, data=ds, mass_tolerance=0.9)
    assert res["valid"].all()
    assert len(np.unique(x[:, :18], axis=0)) == len(x) == isl.status()["n_valid"] == 15  # exactly the target


def test_stalled_island_restarts_and_drains_each_model_once():
    """A stall made by construction, not by a seed's luck: the island searches with a patience it
    cannot reach until it has found models, then the test lowers its patience to 1, which the next
    generation meets whatever the trajectory (``generation - last_improvement >= 1`` after every
    step), and restores it once the island has restarted."""
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=40, patience=10**6, restarts=1000,
                  target_valid=10**6, tabu="charges")
    isl = make_island(cfg, ds, island=0, seed=3)
    drained: list[tuple[int, tuple]] = []

    def step_and_drain() -> None:
        isl.step()
        if isl.n_pending:
            m = isl.drain()
            assert isl.n_pending == 0 and isl.drain() is None
            drained.extend(zip(m["generation"].tolist(), _charge_rows([m])))

    while not drained and isl.generation < 300:
        step_and_drain()
    assert drained and isl.status()["restarts"] == 0
    isl.config = replace(cfg, patience=1)  # the stall condition
    step_and_drain()
    isl.config = cfg
    assert isl.status()["restarts"] == 1 and not isl.done
    assert len(isl.restart_rows) == round(cfg.restart_keep * cfg.pop_size)
    before = len(drained)
    other = _through_disk(isl, ds)  # a checkpoint between the stall and the fresh run
    ma, mb = _run(isl, 3), _run(other, 3)
    _same_search(isl, other)
    assert _charge_rows(ma) == _charge_rows(mb)
    drained += [(g, c) for m in ma for g, c in zip(m["generation"].tolist(), _charge_rows([m]))]
    while len(drained) <= before and isl.generation < 600:
        step_and_drain()
    assert len(drained) > before  # the fresh run finds models of its own
    st = isl.status()
    assert st["restarts"] == 1 and not isl.done
    hist = st["stop_history"]
    assert [h["reason"] for h in hist] == ["patience"]
    assert [h["restart_seed"] for h in hist] == [restart_seed(3, 1)]
    assert hist[0]["seed"] == 3 and st["run_seed"] == restart_seed(3, 1) != 3
    charges = [c for _, c in drained]
    assert len(set(charges)) == len(charges) == st["n_valid"]  # each model drained exactly once
    json.dumps(st, allow_nan=False)


def test_one_engine_per_method_and_the_fast_one_extends_the_papers():
    assert sorted(ENGINES) == sorted(METHODS)
    assert issubclass(FastIsland, PaperIsland) and FastIsland.step is PaperIsland.step
    ds = data.load(RELAXED)
    for name, cfg in ISLAND_PRESETS.items():
        assert type(make_island(cfg, ds, island=0, seed=0)) is ENGINES[name]
    with pytest.raises(ValueError, match="use make_island"):
        PaperIsland(ISLAND_PRESETS["fast"], ds)


def test_paper_preset_stops_on_patience_without_restarting():
    ds = data.load(RELAXED)
    cfg = replace(ISLAND_PRESETS["paper"], pop_size=20, n_partitions=1, patience=1)
    isl = make_island(cfg, ds, island=0, seed=1)
    _run(isl, 50)
    st = isl.status()
    assert st["stop_reason"] == "patience" and st["restarts"] == 0
    assert st["stop_history"] == [{"reason": "patience", "generation": st["generation"], "seed": 1, "restart_seed": None}]


def test_request_stop_and_resume():
    ds = data.load(RELAXED)
    isl = make_island(replace(ISLAND_PRESETS["fast"], pop_size=20, patience=5), ds, island=1, seed=4)
    _run(isl, 2)
    isl.request_stop("time-limit")
    assert isl.done and isl.status()["stop_reason"] == "time-limit"
    g = isl.generation
    isl.step()
    assert isl.generation == g  # a stopped island does not step
    isl.request_stop("interrupted")  # already stopped: no-op
    assert isl.status()["stop_history"][-1]["reason"] == "time-limit"
    assert isl.resume() and not isl.done
    assert isl.c.last_improvement == g  # patience counts from the resume
    _run(isl, 1)
    assert isl.generation == g + 1
    isl.request_stop("max-generations")
    assert not isl.resume() and isl.done  # only time-limit and interrupted resume
    with pytest.raises(ValueError, match="unknown stop reason"):
        isl.request_stop("tired")
    json.dumps(isl.status(), allow_nan=False)


def test_state_is_refused_while_models_are_pending_and_for_other_formats():
    ds = data.load(RELAXED)
    isl = make_island(replace(ISLAND_PRESETS["fast"], pop_size=20), ds, island=0, seed=1)
    isl._pending.append({"generation": np.zeros(1)})
    assert isl.n_pending == 1
    with pytest.raises(RuntimeError, match="drain"):
        isl.get_state()
    isl.drain()
    meta, arrays = isl.get_state()
    with pytest.raises(ValueError, match="not an island state"):
        island_from_state({**meta, "format": "rayflavor-island/1"}, arrays, ds)
    with pytest.raises(ValueError, match="not numeric"):
        island_from_state(meta, {**arrays, "queue": np.array(["x"])}, ds)


def _models(x: np.ndarray, ds) -> dict[str, np.ndarray]:
    res = fn.evaluate(x, data=ds, mass_tolerance=0.9)
    m = {p: x[:, k] for k, p in enumerate(fn.PARAMETERS)}
    m.update(res)
    m["generation"] = np.arange(len(x))
    m["found_at"] = np.full(len(x), 1.7e9)
    return m


def test_dedupe_counts_on_a_hand_made_set(tmp_path):
    ds = data.load(RELAXED)
    isl = make_island(replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, target_valid=3), ds, island=0, seed=2)
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
    IslandStore(resolve(tmp_path), 0).commit(to_table(_models(np.vstack([x0, dup]), ds), island=0, seed=1), {}, {}, {})
    IslandStore(resolve(tmp_path), 1).commit(to_table(_models(np.vstack([shift, n_move]), ds), island=1, seed=2),
                                             {}, {}, {})
    assert len(committed_parts(resolve(tmp_path))) == 2
    c = dedupe(tmp_path, RELAXED)
    shifted = not np.array_equal(shift[0, :18], x0[0, :18])
    assert (c.found, c.duplicates) == (5, 1 if shifted else 2)
    assert c.unique == (4 if shifted else 3)
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


def test_texture_tabu_penalises_every_assignment_of_a_found_light_texture():
    ds = data.load(RELAXED)
    isl = make_island(replace(ISLAND_PRESETS["fast"], pop_size=20), ds, island=0, seed=0)
    rng = np.random.default_rng(0)
    x = fn.random_parameters(1, rng=rng, regime="up")
    x[0, :18] = rng.integers(-3, 4, 18)  # room for the moves below inside |q| <= 9
    isl.found.update(k.tobytes() for k in x[:1, :18].astype(np.int8))
    isl._on_new_models(x[:1], np.ones(1, dtype=bool))
    g = encode(np.repeat(x[:1], 4, axis=0))
    g[1, 15:18] += 2          # other heavy-neutrino charges: same light texture
    g[2, 0:9] -= 1            # common shift of Q, u, d: same exponents
    g[3, 3] += 1              # u1 moved: another texture
    F = np.zeros((4, 2))
    assert (isl._tabu(g, F)[:, 0] > 0).tolist() == [True, True, True, False]
    isl_c = make_island(replace(ISLAND_PRESETS["fast"], pop_size=20, tabu="charges"), ds, island=0, seed=0)
    isl_c.found.update(isl.found)
    assert (isl_c._tabu(g, F)[:, 0] > 0).tolist() == [True, False, False, False]


def test_texture_tabu_finds_more_light_textures_per_model_than_the_charge_tabu():
    ds = data.load(RELAXED)
    share = {}
    for tabu in ("texture", "charges"):
        cfg = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=40, target_valid=150, tabu=tabu)
        isl = make_island(cfg, ds, island=0, seed=2)
        q = np.array(_charge_rows(_run(isl, 300)), dtype=np.int64)
        assert isl.status()["stop_reason"] == "target-valid" and len(np.unique(q, axis=0)) == len(q) == 150
        share[tabu] = len(np.unique(fn.light_textures(q), axis=0)) / len(q)
    assert share["texture"] > share["charges"] + 0.1, share


def test_bench_summary_counts_light_textures_and_first_models_per_variant():
    from rayflavor.bench.scan import format_bench, summarise

    q = np.zeros((3, 18), np.int64)
    q[1, 15:] = 2  # other N charges: the same light texture as row 0
    q[2, 3] = 1    # u1 moved: a new texture
    rows = [
        {"variant": "a", "seconds": 1800.0, "budget_seconds": 1800.0, "generation": 900, "restarts": 2,
         "first_valid_seconds": 12.0, "charges": q},
        {"variant": "a", "seconds": 900.0, "budget_seconds": 1800.0, "generation": 450, "restarts": 50,
         "first_valid_seconds": None, "charges": np.empty((0, 18), np.int64)},
        {"variant": "b", "seconds": 1800.0, "budget_seconds": 1800.0, "generation": 10, "restarts": 0,
         "first_valid_seconds": 30.0, "charges": q[:1]},
    ]
    s = summarise(rows)
    assert list(s) == ["a", "b"]
    a = s["a"]
    assert a["runs"] == 2 and a["found"] == 1 and a["unique"] == 3 and a["light"] == 2
    assert a["median_first_valid_s"] == np.inf and a["first_valid_s"] == [12.0]
    assert a["light_per_core_hour"] == pytest.approx(2 / 0.75) and a["busy_fraction"] == pytest.approx(0.75)
    assert summarise(rows, whole_budget=True)["a"]["light_per_core_hour"] == pytest.approx(2 / 1.0)
    text = format_bench(rows)
    assert "> 1800 s" in text and "restarts [2, 50]" in text

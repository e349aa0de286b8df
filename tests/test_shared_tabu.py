"""The scan-wide tabu (``share_found``): an island treats what the others found as its own finds,
the driver's found list hands every island each find once, a reopened island relearns, and a scan
on Ray shares what its islands found, also with an island queued behind the others."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor import configfile
from rayflavor.methods.ga.island import ISLAND_PRESETS, TABU_PENALTY, island_from_state, make_island
from rayflavor.orchestration.islands import IslandRunner, read_scan_json, run_scan
from rayflavor.orchestration.migration import Exchange
from rayflavor.orchestration.scan_settings import SCAN_PRESETS, ScanSettings, as_stored
from rayflavor.physics import data, fn
from rayflavor.storage import scan_data
from rayflavor.storage.location import resolve

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))
SMALL = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=30, target_valid=10**6)


def _finder(seed: int, n: int = 3, config=SMALL):
    """An island stepped until it found ``n`` models (about 100 generations with the relaxed data)."""
    isl = make_island(config, data.load(RELAXED), island=seed, seed=seed)
    while isl.c.n_found < n and isl.generation < 600:
        isl.step()
    assert isl.c.n_found >= n
    return isl


def test_an_island_treats_what_others_found_as_its_own_finds():
    a = _finder(1)
    found = a.take_found()
    assert found.shape == (a.c.n_found, 18) and found.dtype == np.int8
    assert a.take_found().shape == (0, 18)  # each find is handed out once
    b = make_island(SMALL, data.load(RELAXED), island=2, seed=2)
    # the same light textures through other charges: the N charges cancel from the light masses
    other = found.astype(np.int64)
    other[:, 15:] += np.where(other[:, 15:] < 9, 1, -1)
    assert (fn.light_textures(other) == fn.light_textures(found.astype(np.int64))).all()
    assert not b._is_tabu(found).any() and not b._is_tabu(other).any()
    assert b.learn_found(found) == len(found) and b.learn_found(found) == 0 and b.status()["learnt"] == len(found)
    assert b._is_tabu(found).all() and b._is_tabu(other).all()
    # survival sees them as it sees the island's own finds, before the island found anything
    genes = np.zeros((len(found), b.problem.n_var))
    genes[:, :18] = found
    F = np.ones((len(found), len(b.names)))
    assert b.c.n_found == 0 and (b._penalised(genes, F) == 1 + TABU_PENALTY).all()
    # with tabu "charges", only the assignments themselves
    c = make_island(replace(SMALL, tabu="charges"), data.load(RELAXED), island=3, seed=3)
    c.learn_found(found)
    assert c._is_tabu(found).all() and not c._is_tabu(other).any()
    # what was learnt is not state; a reopened island hands its whole found set out again
    b.step()
    b.drain()
    b2 = island_from_state(*b.get_state(), data.load(RELAXED))
    assert not b2._is_tabu(found).any()
    a.drain()
    a2 = island_from_state(*a.get_state(), data.load(RELAXED))
    assert {r.tobytes() for r in a2.take_found()} == {r.tobytes() for r in found}


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("post"), st.integers(0, 3), st.lists(st.integers(0, 11), max_size=5)),
    st.tuples(st.just("take"), st.integers(0, 3), st.just([])),
    st.tuples(st.just("relearn"), st.integers(0, 3), st.just([]))), max_size=40))
def test_the_found_list_hands_every_island_each_find_of_the_others_once(ops):
    """Whatever the order of posts, takes and reopenings: after a take, an island holds (since it
    was last opened) exactly the finds first posted by the other islands, none of them twice."""
    ex = Exchange("none", islands=4)
    first: dict[bytes, int] = {}  # key -> the island that posted it first
    held: dict[int, list[bytes]] = {i: [] for i in range(4)}

    def row(v: int) -> np.ndarray:
        r = np.zeros(18, np.int8)
        r[v % 18] = 1 + v // 18
        return r

    for op, i, values in ops:
        if op == "post":
            rows = np.array([row(v) for v in values], np.int8).reshape(-1, 18)
            ex.post_found(i, rows)
            for r in rows:
                first.setdefault(r.tobytes(), i)
        elif op == "relearn":
            ex.relearn(i)
            held[i] = []
        else:
            got = ex.take_found(i)
            if got is not None:
                assert got.dtype == np.int8 and got.shape[1] == 18
                held[i] += [r.tobytes() for r in got]
            assert len(held[i]) == len(set(held[i]))
            assert set(held[i]) == {k for k, j in first.items() if j != i}
    assert ex.summary()["found_shared"] == len(first)


def test_the_runner_reports_finds_and_says_when_it_opened_an_island_afresh():
    cfg = configfile.to_mapping(replace(SMALL, max_generations=400, target_valid=2))
    foreign = _finder(5, 2).take_found()
    with tempfile.TemporaryDirectory() as d:
        r = IslandRunner(d, cfg, data.load(RELAXED), 10**6, 0.0, share_found=True)
        first = r.run(0, 1, 1e9, found=foreign)
        assert first["fresh"] is True and first["learnt"] == len(foreign) and len(first["found"]) == 2
        assert r.run(0, 1, 1.0)["fresh"] is False
        r2 = IslandRunner(d, cfg, data.load(RELAXED), 10**6, 0.0, share_found=True)
        again = r2.run(0, 1, 1.0)
        assert again["fresh"] is True and not r2.isl.elsewhere  # it must be handed the list again
        assert again["learnt"] == first["learnt"]  # the counter is state, what was learnt is not
        assert {x.tobytes() for x in again["found"]} == {x.tobytes() for x in first["found"]}
        quiet = IslandRunner(d, cfg, data.load(RELAXED), 10**6, 0.0, share_found=False).run(0, 1, 1.0)
        assert "found" not in quiet and "fresh" not in quiet


def test_share_found_is_a_setting_of_the_default_preset_stored_and_read_back(tmp_path):
    with pytest.raises(ValueError, match="share_found shares the islands' tabu"):
        ScanSettings(share_found=True, island=replace(SMALL, tabu="none"))
    with pytest.raises(ValueError, match="share_found"):
        replace(SCAN_PRESETS["paper"], share_found=True)
    assert not SCAN_PRESETS["independent"].share_found and not SCAN_PRESETS["paper"].share_found
    old = configfile.to_mapping(ScanSettings(seed=1))
    old.pop("share_found")
    assert configfile.from_mapping(ScanSettings, as_stored(old)).share_found is False  # as it ran
    for share in (False, True):
        s = ScanSettings(seed=1, migration="none", share_found=share, island=replace(SMALL, restart_archive=0.0))
        (tmp_path / "scan.json").write_text(json.dumps({"settings": configfile.to_mapping(s)}))
        assert scan_data.islands_exchanged(resolve(str(tmp_path))) is share


def test_the_bench_archipelago_shares_finds_only_when_asked():
    from rayflavor.bench.scan import bench_migration, run_archipelago

    kw = dict(every=10, migrants=2, restart_archive=0.0, data_name=RELAXED)
    shared = run_archipelago("none", "up", [1, 2], 3.0, share_found=True, **kw)  # island 1 finds at 1.6 s
    alone = run_archipelago("none", "up", [1, 2], 0.5, share_found=False, **kw)
    assert sum(r["n_valid"] for r in shared) >= 2 and sum(r["learnt"] for r in shared) >= 1
    assert all(r["learnt"] == 0 for r in alone)
    with pytest.raises(ValueError, match="optionally \\+archive and \\+tabu"):
        bench_migration(["ring+tabu+tabu"], islands=2, seeds=1, seconds=1.0, regime="up", seed=0, every=1,
                        migrants=1, restart_archive=0.1)


@pytest.mark.ray
def test_a_scan_shares_its_finds_also_with_an_island_queued_behind_the_others(ray_session, tmp_path):
    """Three islands on two CPUs, no migration: the island Ray places last waits until another is
    done, and its first chunk hands it everything found before it."""
    island = replace(SMALL, max_generations=250, restart_archive=0.0)
    s = ScanSettings(islands=3, seed=21, data=RELAXED, time_limit=240.0, chunk_seconds=0.3, migration="none",
                     share_found=True, island=island)
    res = run_scan(s, str(tmp_path / "scan"), live=False, echo=lambda *_: None)
    doc = read_scan_json(resolve(str(tmp_path / "scan")))
    assert res.failure is None and doc["settings"]["share_found"] is True
    valid = [res.statuses[i]["n_valid"] for i in range(3)]
    last = max(range(3), key=lambda i: res.statuses[i]["first_step_at"])  # Ray places in no fixed order
    assert sum(v for i, v in enumerate(valid) if i != last) >= 1, valid
    assert res.statuses[last]["learnt"] >= 1  # queued, it started knowing what the others had found
    assert doc["migration"]["found_shared"] >= max(valid) and doc["migration"]["found_delivered"] >= 1
    assert scan_data.islands_exchanged(resolve(str(tmp_path / "scan")))
    # the islands avoided each other's finds: Chao2 does not apply, and the dedupe says so
    from rayflavor.storage.dedupe import dedupe

    counts = dedupe(str(tmp_path / "scan"), RELAXED)
    assert counts.richness_light.avoided and not counts.richness_light.has_estimate
    assert all("no estimate (the islands avoided each other's finds)" in line for line in counts.richness_lines())

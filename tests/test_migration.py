"""Migration between islands: topologies, the seeded choice of emigrants and immigrants, the
driver's exchange and archive, a ring scan on Ray, and ``none`` changing nothing."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor import configfile
from rayflavor.methods.ga.island import ISLAND_PRESETS, make_island
from rayflavor.methods.ga.migration import TOPOLOGIES, best_distinct, fair_replace, neighbours, sources
from rayflavor.methods.ga.problem import round_charges
from rayflavor.orchestration.islands import IslandRunner, read_scan_json, read_settings, run_scan
from rayflavor.orchestration.migration import Exchange
from rayflavor.orchestration.scan_settings import ScanSettings, as_stored, differences
from rayflavor.physics import data, fn
from rayflavor.storage.island_store import IslandStore, committed_parts
from rayflavor.storage.location import resolve

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))
SMALL = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=30, target_valid=10**6)


# ---------------------------------------------------------------------------------- topologies
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), posted=st.sets(st.integers(0, 39)))
def test_neighbour_lists_of_every_topology(n, posted):
    posted = {j for j in posted if j < n}
    for i in range(n):
        assert neighbours("none", n, i) == ()
        assert neighbours("full", n, i) == tuple(j for j in range(n) if j != i)
        ring = neighbours("ring", n, i)
        assert set(ring) == ({(i - 1) % n, (i + 1) % n} - {i}) and len(ring) == min(2, n - 1)
        for t in TOPOLOGIES:
            near = neighbours(t, n, i)
            assert i not in near and list(near) == sorted(set(near))
            assert all(i in neighbours(t, n, j) for j in near)  # every edge goes both ways
            assert sources(t, n, i, posted) == sorted(set(near) & posted)
    with pytest.raises(ValueError, match="unknown topology"):
        neighbours("star", n, 0)


# ---------------------------------------------------------------------------------- the policy
@settings(max_examples=60, deadline=None)
@given(pop=st.lists(st.floats(0, 100), min_size=1, max_size=20), new=st.lists(st.floats(0, 100), max_size=20))
def test_fair_replace_puts_better_immigrants_in_the_worst_places(pop, new):
    pop, new = np.array(pop), np.array(new)
    members, imm = fair_replace(pop, new)
    assert len(set(members.tolist())) == len(members) == len(imm) == len(set(imm.tolist()))
    assert (new[imm] < pop[members]).all()  # an immigrant only replaces a worse member
    # the replaced members are the worst ones, and no immigrant left out beats a member kept
    kept = np.setdiff1d(np.arange(len(pop)), members)
    rest = np.setdiff1d(np.arange(len(new)), imm)
    if len(members) and len(kept):
        assert pop[members].min() >= pop[kept].max()
    if len(rest) and len(kept):
        assert new[rest].min() >= pop[kept].max()
    assert [x.tolist() for x in fair_replace(pop, new)] == [members.tolist(), imm.tolist()]  # deterministic


def test_best_distinct_takes_one_row_per_charge_assignment_and_skips_excluded():
    loss = np.array([5.0, 1.0, 0.5, 2.0, np.inf, 0.1])
    keys = [b"a", b"b", b"b", b"c", b"d", b"e"]
    assert best_distinct(loss, keys, 10).tolist() == [5, 2, 3, 0]
    assert best_distinct(loss, keys, 2, exclude=np.array([0, 0, 0, 0, 0, 1], bool)).tolist() == [2, 3]


def _island(seed: int, generations: int = 4):
    isl = make_island(SMALL, data.load(RELAXED), island=seed, seed=seed)
    for _ in range(generations):
        isl.step()
    return isl


def test_emigrants_and_immigrants_are_seeded_reevaluated_and_replace_the_worst():
    sender = _island(1)
    genes, loss = sender.emigrants(6)
    assert genes.shape == (6, sender.problem.n_var) and (np.diff(loss) >= 0).all()
    assert len({r.tobytes() for r in round_charges(genes)}) == 6  # one per charge assignment
    assert not sender._is_tabu(round_charges(genes)).any()  # never a model the sender found
    assert sender.status()["emigrant_batches"] == 1
    a, b = _island(2), _island(2)
    evals = a.c.n_evals
    taken = a.immigrate(genes, 3)
    assert b.immigrate(genes, 3) == taken and a.c.n_evals == evals + 3  # a seeded choice of 3, evaluated here
    assert np.array_equal(a.algorithm.pop.get("X"), b.algorithm.pop.get("X"))
    assert np.array_equal(a.algorithm.pop.get("F"), b.algorithm.pop.get("F"))
    assert a.status()["immigrants"] == taken >= 1
    # what entered the population is scored by the receiver's own problem
    X, F = a.algorithm.pop.get("X"), a.algorithm.pop.get("F")
    came = [k for k in range(len(X)) if any(np.array_equal(X[k], g) for g in genes)]
    assert len(came) == taken
    F_own, _ = _island(2, 0)._evaluate(X[came])
    assert np.allclose(F[came], a._penalised(X[came], F_own))
    # the search goes on, and a checkpoint holds the counters
    a.step()
    meta, _ = a.get_state()
    assert meta["counters"]["immigrants"] == taken


def test_a_restart_draws_seeds_from_the_scan_archive():
    cfg = replace(SMALL, restart_archive=0.2, restart_keep=0.1, patience=10**6, restarts=5)
    isl = make_island(cfg, data.load(RELAXED), island=0, seed=5)
    isl.step()
    archive = _island(6, 2).emigrants(20)[0]
    isl.set_archive(archive)
    isl.config = replace(cfg, patience=1)
    isl.step()  # stalls by construction: restarts
    assert isl.status()["restarts"] == 1 and isl.status()["archive_seeded"] == 6  # 0.2 x 30
    from_archive = isl.restart_rows[3:]
    assert len(isl.restart_rows) == 3 + 6
    assert all(any(np.array_equal(r, a) for a in archive) for r in from_archive)
    with pytest.raises(ValueError, match="at most 1 together"):
        replace(cfg, restart_keep=0.6, restart_archive=0.5)


def _first_model(cfg, seed: int, max_generations: int = 300):
    """An island of ``cfg`` stepped until it has found a valid model (the relaxed data find one in a
    few generations)."""
    isl = make_island(cfg, data.load(RELAXED), island=0, seed=seed)
    while not isl.found and isl.c.generation < max_generations:
        isl.step()
    assert isl.found, "the relaxed data set gave no model"
    return isl


def test_an_until_found_island_takes_foreign_rows_only_before_its_first_model():
    genes = _island(6, 2).emigrants(10)[0]
    cfg = replace(SMALL, foreign="until-found", restart_archive=0.2, restart_keep=0.1, patience=10**6, restarts=5)
    before = _island(2)
    before.config = replace(before.config, foreign="until-found")
    assert not before.found and before.immigrate(genes, 3) >= 1  # nothing found yet: it takes them in
    isl = _first_model(cfg, seed=3)
    evals, pop = isl.c.n_evals, np.array(isl.algorithm.pop.get("X"))
    assert isl.immigrate(genes, 3) == 0 and isl.c.n_evals == evals and isl.c.immigrants == 0
    assert np.array_equal(isl.algorithm.pop.get("X"), pop)  # untouched
    isl.set_archive(genes)
    isl.config = replace(cfg, patience=1)
    isl.step()  # stalls by construction: restarts, with no archive rows
    assert isl.status()["restarts"] == 1 and isl.status()["archive_seeded"] == 0
    always = _first_model(replace(cfg, foreign="always"), seed=3)
    evals = always.c.n_evals
    always.immigrate(genes, 3)  # the default evaluates them whatever it has found (they stay if they beat the worst)
    assert always.c.n_evals == evals + 3 and always.c.immigrant_batches == 1


# ---------------------------------------------------------------------------------- the exchange
def test_exchange_delivers_each_batch_once_to_neighbours_only_and_forgets_stopped_islands():
    ex = Exchange("ring", islands=4, archive_size=3)

    def g(v, n=2):
        return np.full((n, 40), float(v))

    ex.post(0, g(1), np.array([3.0, 4.0]))
    assert ex.take(2) is None  # not a neighbour of 0
    assert ex.take(1).shape == (2, 40) and ex.take(1) is None
    ex.post(2, g(2), np.array([1.0, 2.0]))
    assert ex.take(1).tolist() == g(2).tolist() and ex.take(3).shape == (4, 40)  # 0's and 2's batches
    ex.forget(0)  # island 0 stopped: it sends no more
    assert ex.take(3) is None
    ex.post(0, g(5), np.array([0.5, 0.5]))
    assert ex.take(3).tolist() == g(5).tolist()
    # the archive keeps the best distinct charge assignments, whoever sent them; a new version
    # (the driver puts it into the object store once per version) only when it changed
    assert len(ex.archive()) == 3 and ex.archive_version == 3
    ex.post(2, g(9), np.array([99.0, 99.0]))
    assert ex.archive_version == 3 and 9.0 not in ex.archive()
    none = Exchange("none", islands=4)
    none.post(0, g(1), np.zeros(2))
    assert all(none.take(i) is None for i in range(4)) and len(none.archive()) == 1


def test_the_stored_settings_refuse_another_topology_on_resume(tmp_path):
    stored = ScanSettings(islands=4, seed=3, migration="ring")
    assert differences(stored, replace(stored, migration="full")) == ["migration"]
    assert differences(stored, replace(stored, migrants=9, migration_every=2)) == ["migration_every", "migrants"]
    assert differences(stored, replace(stored, island=replace(stored.island, restart_archive=0.3))) == \
        ["island.restart_archive"]
    # a scan stored before migration existed resumes as it ran: independent islands, no archive
    old = configfile.to_mapping(ScanSettings(seed=1))
    for k in ("migration", "migration_every", "migrants"):
        old.pop(k)
    old["island"].pop("restart_archive")
    old["island"].pop("foreign")
    s = configfile.from_mapping(ScanSettings, as_stored(old))
    assert (s.migration, s.island.restart_archive, s.island.foreign) == ("none", 0.0, "always")
    (tmp_path / "scan.json").write_text(json.dumps({"settings": old}))
    assert read_settings(resolve(str(tmp_path))) == replace(
        ScanSettings(seed=1), migration="none", island=replace(ScanSettings().island, restart_archive=0.0, foreign="always"))
    # a ring scan stored before [island] foreign existed took immigrants always, and resumes so
    ring = configfile.to_mapping(ScanSettings(seed=1))
    ring["island"].pop("foreign")
    assert configfile.from_mapping(ScanSettings, as_stored(ring)).island.foreign == "always"
    # one stored since keeps what it ran, and the defaults are now a ring with the archive
    now = configfile.to_mapping(ScanSettings(seed=1))
    assert configfile.from_mapping(ScanSettings, as_stored(now)) == ScanSettings(seed=1)
    assert (ScanSettings().migration, ScanSettings().island.restart_archive, ScanSettings().island.foreign) == \
        ("ring", 0.1, "until-found")


def test_the_independent_and_paper_presets_exchange_nothing():
    """Independent islands stay one option away (--preset independent, or the paper's --preset paper)."""
    from rayflavor.orchestration.scan_settings import SCAN_PRESETS

    for name in ("independent", "paper"):
        p = SCAN_PRESETS[name]
        assert (p.migration, p.island.restart_archive) == ("none", 0.0), name
    fast, ind = SCAN_PRESETS["fast"], SCAN_PRESETS["independent"]
    assert replace(fast, migration="none", island=replace(fast.island, restart_archive=0.0)) == ind


# ---------------------------------------------------------------------------------- none changes nothing
def _models_and_state(models: pl.DataFrame, isl) -> tuple[str, dict]:
    """The stored models (parameters and generation, sorted by charges) as CSV, and the island's
    final state arrays but the refinement budgets (population, objectives, found set, restart rows,
    queue)."""
    csv = models.sort(list(fn.CHARGES)).select([*fn.PARAMETERS, "generation"]).write_csv()
    _, arrays = isl.get_state()
    return csv, {k: np.asarray(v) for k, v in arrays.items() if not k.startswith("budget")}


def test_without_migration_an_island_stores_exactly_what_it_searches_alone():
    """The scan's runner with no migration (no immigrants, no archive) stores exactly the models
    and ends in exactly the state of the same island stepped alone, restarts included.  (A
    recorded hash of this run is machine-dependent: numpy's CPU-dispatched kernels (BLAS, LAPACK,
    SIMD maths) may differ in the last bits between CPUs, and 120 generations amplify that;
    tests/test_scan_reproduces.py keeps the recorded populations of shorter runs.)"""
    cfg = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, pop_size=40, max_generations=120, patience=5,
                  restarts=6, target_valid=10**6)
    with tempfile.TemporaryDirectory() as d:
        r = IslandRunner(d, configfile.to_mapping(cfg), data.load(RELAXED), 10**6, 0.0)
        st_ = r.run(0, 1, 1e9)
        stored = _models_and_state(pl.read_parquet([p.uri for p in committed_parts(resolve(d))]), r.isl)
    alone = make_island(cfg, data.load(RELAXED), island=0, seed=1)
    drained = []
    while not alone.done:
        alone.step()
        if (m := alone.drain()) is not None:
            drained.append(pl.DataFrame(m))
    mine = _models_and_state(pl.concat(drained), alone)
    assert st_["restarts"] == alone.status()["restarts"] >= 1 and st_["n_valid"] == alone.status()["n_valid"] >= 1
    assert stored[0] == mine[0]
    assert stored[1].keys() == mine[1].keys() and all(np.array_equal(stored[1][k], mine[1][k]) for k in mine[1])
    assert "emigrants" not in st_ and st_["immigrants"] == 0 and st_["emigrant_batches"] == 0


# ---------------------------------------------------------------------------------- on Ray
LOST = 3


def _make_losing_one(config, data_, *, island, seed):
    """The GA island, except that island :data:`LOST` is lost at its start."""
    if island == LOST:
        raise RuntimeError(f"island {island} is lost")
    return make_island(config, data_, island=island, seed=seed)


@pytest.mark.ray
def test_a_ring_scan_exchanges_migrants_records_them_and_survives_a_lost_island(ray_session, tmp_path):
    """Four islands on two CPUs: two run, two wait (and start when the first ones are done); every
    chunk an island sends its best points to its ring neighbours.  Island 3 (a neighbour of 0 and
    2) is lost at its start: the others exchange all the same (under load this test failed on
    ``took[2] >= 1`` when islands 0 and 2 ran first: the assertion now holds for every placement)."""
    import sys

    ray_session.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors get _make_losing_one
    island = replace(SMALL, pop_size=20, max_generations=40, restart_archive=0.1)
    settings_ = ScanSettings(islands=4, seed=11, data=RELAXED, time_limit=240.0, chunk_seconds=0.2,
                             migration="ring", migration_every=1, migrants=3, island=island)
    out = tmp_path / "scan"
    res = run_scan(settings_, str(out), live=False, echo=lambda *_: None, make=_make_losing_one)
    doc = read_scan_json(resolve(str(out)))
    assert doc["settings"]["migration"] == "ring" and doc["migration"]["topology"] == "ring"
    assert res.statuses[LOST]["state"] == "failed" and "island 3 is lost" in res.failure
    assert [res.statuses[i]["stop_reason"] for i in range(3)] == ["max-generations"] * 3
    assert doc["migration"]["batches_posted"] >= 2 and doc["migration"]["points_delivered"] >= 1
    took = {i: res.statuses[i]["immigrants"] for i in range(3)}
    # Ray places the queued islands in no fixed order: 0 and 2 (not neighbours) may run together to
    # their end and 1 alone after them, taking in their last batches, so only "someone took some" holds
    assert sum(took.values()) >= 1, took
    stored = {i: IslandStore(resolve(str(out)), i).load()[2]["status"]["immigrants"] for i in range(3)}
    assert stored == took  # the checkpoints hold the same counters
    assert {i: doc["islands_status"][str(i)]["immigrants"] for i in range(3)} == took
    assert read_settings(resolve(str(out))).migration == "ring"


def test_bench_scan_refuses_an_unknown_migration_variant_in_one_line():
    from click.testing import CliRunner

    from rayflavor.cli.bench import bench_scan_command

    for argv, words in ((["--migration", "ring,star"], "unknown migration variant 'star'"),
                        (["--migration", "ring+neighbours=1.5"], "neighbours: expected an integer"),
                        (["--migration", "ring+colour=3"], "unknown setting(s) colour"),
                        (["--migration", "ring", "--only", "fast"], "--only compares the presets")):
        res = CliRunner().invoke(bench_scan_command, argv)
        assert res.exit_code == 2 and words in res.output, res.output
        assert res.output.strip().startswith("Error:") and len(res.output.strip().splitlines()) == 1


def test_bench_variant_names_parse_and_bad_ones_say_the_grammar():
    from rayflavor.bench.scan import migration_variant

    assert migration_variant("ring+archive+until-found+neighbours=48+charge_rate=0.5", 0.1) == \
        ("ring", 0.1, "until-found", {"neighbours": 48, "charge_rate": 0.5})
    assert migration_variant("none", 0.1) == ("none", 0.0, "always", {})
    for bad, words in (("ring+archive+archive", "FIELD=NUMBER"), ("star", "FIELD=NUMBER"),
                       ("ring+neighbours=x", "not a number"), ("ring+neighbours=2+neighbours=3", "FIELD=NUMBER"),
                       ("ring+foreign=1", "cannot be set here"), ("ring+refine_top=-1", "refine_top"),
                       ("ring+restart_keep=0.95", "exceed the whole restarted population")):
        with pytest.raises(ValueError, match=words):
            migration_variant(bad, 0.1)


def test_the_bench_archipelago_takes_island_overrides():
    from rayflavor.bench.scan import run_archipelago

    common = {"every": 1, "migrants": 2, "restart_archive": 0.0, "foreign": "always", "data_name": RELAXED}
    # warm: the first generation in a process loads the compiled kernel, which can take the whole 0.3 s
    run_archipelago("none", "up", [1], 0.3, **common, overrides={"max_generations": 1})
    plain = run_archipelago("none", "up", [1], 0.3, **common)
    short = run_archipelago("none", "up", [1], 0.3, **common, overrides={"max_generations": 3})
    assert plain[0]["generation"] > 3 and plain[0]["stop_reason"] is None
    assert (short[0]["generation"], short[0]["stop_reason"]) == (3, "max-generations")


def test_the_bench_archipelago_migrates_only_when_asked():
    from rayflavor.bench.scan import run_archipelago

    ring = run_archipelago("ring", "up", [1, 2], 1.0, every=1, migrants=2, restart_archive=0.0, foreign="always",
                           data_name=RELAXED)
    none = run_archipelago("none", "up", [1, 2], 0.3, every=1, migrants=2, restart_archive=0.0, foreign="always",
                           data_name=RELAXED)
    assert [r["seed"] for r in ring] == [1, 2] and all(r["topology"] == "ring" for r in ring)
    assert sum(r["immigrants"] for r in ring) >= 1 and all(r["emigrant_batches"] >= 1 for r in ring)
    assert all(r["immigrants"] == 0 and r["emigrant_batches"] == 0 for r in none)
    assert all(0.9 <= r["seconds"] < 1.0 + 5.0 for r in ring)  # each island its own budget (one step past it)


@pytest.mark.ray
def test_bench_migration_reports_every_archipelago_once_as_it_finishes_and_keeps_the_order(ray_session):
    """A long bench (64 minutes for a held-out comparison) says up front how long it will take and
    then one line per finished archipelago; the rows come back in the order submitted whatever
    order the archipelagos finish in."""
    from rayflavor.bench.scan import bench_migration

    lines: list[str] = []
    rows = bench_migration(["none", "ring+neighbours=2"], islands=2, seeds=2, seconds=0.3, regime="up", seed=31000,
                           every=5, migrants=2, restart_archive=0.1, echo=lines.append)
    assert lines[0].startswith("4 runs of 0.01 core-min each on 2 CPUs: about")
    done = lines[1:]
    assert [d.split("]")[0] for d in done] == ["[1/4", "[2/4", "[3/4", "[4/4"], lines
    labels = sorted(d.split("] ")[1].split(" finished")[0] for d in done)
    assert labels == sorted(f"{v}, seeds {a}..{a + 1}" for v in ("none", "ring+neighbours=2") for a in (31000, 31002))
    assert [r["variant"] for r in rows] == ["none"] * 2 + ["ring+neighbours=2"] * 2 + ["none"] * 2 + \
        ["ring+neighbours=2"] * 2
    assert [r["seed"] for r in rows] == [31000, 31001, 31000, 31001, 31002, 31003, 31002, 31003]


def test_bench_scan_prints_its_progress_on_stderr_and_the_table_alone_on_stdout(monkeypatch):
    from click.testing import CliRunner

    import rayflavor.bench.scan as bench_scan_mod
    from rayflavor.cli.bench import bench_scan_command

    def fake(variants, *, echo, **kw):  # the bench's own progress, without running islands
        echo("2 runs of 0.05 core-min each on 2 CPUs: about 0 min")
        echo("[1/2] none, seeds 0..1 finished (0.0 min)")
        return []

    monkeypatch.setattr(bench_scan_mod, "bench_migration", fake)
    monkeypatch.setattr(bench_scan_mod, "format_bench", lambda rows: "TABLE")
    res = CliRunner().invoke(bench_scan_command, ["--migration", "none", "--islands", "2", "--seeds", "1",
                                                  "--minutes", "0.05"])
    assert res.exit_code == 0, res.output
    assert "[1/2] none" in res.stderr and "[1/2]" not in res.stdout and res.stdout.strip().endswith("TABLE")


def test_the_bench_archipelago_repeats_its_search_exactly():
    """The bench's islands step in order of their evaluations, not of measured CPU time: with the
    budget out of play (a generation cap), two runs of a migrating archipelago exchange the same
    rows and end in the same place."""
    from rayflavor.bench.scan import run_archipelago

    def run():
        rows = run_archipelago("ring", "up", [5, 6, 7], 60.0, every=2, migrants=3, restart_archive=0.1,
                               foreign="always", data_name=RELAXED, overrides={"max_generations": 25})
        return [(r["generation"], r["n_evals"], r["immigrants"], r["emigrant_batches"], r["best_loss"],
                 r["charges"].tobytes()) for r in rows]

    first = run()
    assert all(g == 25 for g, *_ in first) and sum(r[2] for r in first) >= 1  # the budget never bound; they migrated
    assert run() == first

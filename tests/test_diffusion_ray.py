"""Diffusion orchestration on Ray: dataset and sample shards, real Ray Train with 2 CPU workers, resume."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.settings import FinetuneSettings, SamplingSettings, SelectionSettings, TuneSettings
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw
from rayflavor.storage import runs


def _save_untrained(run, g: np.ndarray, lab: np.ndarray, name: str = "pre"):
    """An untrained network normalised on (g, lab), saved as ``name`` in ``run``: enough to exercise sampling."""
    path = runs.network_path(run, name)
    training.save(path, training.new_state(training.Normalizer.fit(g, lab), total_steps=10), with_optimizer=False)
    return path


@pytest.mark.ray
def test_dataset_sample_skip_and_solution_flags(ray_session, tmp_path):
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_sample import collect_solutions, sample_run
    from rayflavor.orchestration.diffusion_train import load_training_data

    run = tmp_path / "run"
    info = make_dataset(run, n=2000, seed=5, shards=2, log=lambda *_: None)
    assert info["generated_shards"] == 2
    assert make_dataset(run, n=2000, seed=5, shards=2, log=lambda *_: None)["generated_shards"] == 0
    t = runs.read_parts(runs.dataset_dir(run))
    assert t.num_rows == 2000 and set(seesaw.PARAMETERS) <= set(t.column_names) and set(seesaw.LABELS) <= set(t.column_names)
    assert t.column("split").to_pylist().count("val") == 200
    g, lab, val = load_training_data(runs.dataset_dir(run))
    _save_untrained(run, g[~val], lab[~val])
    s = sample_run(run, SamplingSettings(n=600, steps=5, shards=2), log=lambda *_: None)
    assert s["n"] == 600 and s["generated_shards"] == 2
    again = sample_run(run, SamplingSettings(n=600, steps=5, shards=2), log=lambda *_: None)
    assert again["generated_shards"] == 0 and again["n"] == 600
    out = runs.samples_dir(run, s["tag"])
    rows = runs.read_parts(out)
    x = np.stack([rows.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    assert np.isfinite(x).all()
    res = seesaw.evaluate(x, ordering="NO", data=physics_data.load("nufit-6.0-sk"))
    np.testing.assert_array_equal(res["solution"], rows.column("solution").to_numpy())
    np.testing.assert_allclose(res["chi2"], rows.column("chi2").to_numpy(), rtol=1e-12)
    collect_solutions(run)
    # physics guidance: its own set (tag, manifest), same row count, rows still re-evaluated exactly
    pg = sample_run(run, SamplingSettings(n=200, steps=5, shards=1, physics=1), log=lambda *_: None)
    assert pg["tag"].endswith("-pg1-n200-s0") and pg["n"] == 200
    assert runs.read_json(runs.samples_dir(run, pg["tag"]) / "manifest.json")["settings"]["physics"] == 1
    rows = runs.read_parts(runs.samples_dir(run, pg["tag"]))
    x = np.stack([rows.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    res = seesaw.evaluate(x, ordering="NO", data=physics_data.load("nufit-6.0-sk"))
    np.testing.assert_array_equal(res["solution"], rows.column("solution").to_numpy())
    assert runs.read_json(out / "manifest.json")["settings"]["physics"] == 0  # stored whole, defaults included
    # projection: its own set, the step count in every row, rows still re-evaluated exactly
    pj = sample_run(run, SamplingSettings(n=200, steps=5, shards=1, project=5), log=lambda *_: None)
    assert pj["tag"].endswith("-reflect-proj5-n200-s0")
    rows = runs.read_parts(runs.samples_dir(run, pj["tag"]))
    assert set(rows.column("projection").to_pylist()) == {5} and set(rows.column("physics_guidance").to_pylist()) == {0}
    # every sampled point in the prior's convention |M1| <= |M2| (canonical_order)
    assert (rows.column("m1_over_m3").to_numpy() <= rows.column("m2_over_m3").to_numpy()).all()
    x = np.stack([rows.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    res = seesaw.evaluate(x, ordering="NO", data=physics_data.load("nufit-6.0-sk"))
    np.testing.assert_array_equal(res["solution"], rows.column("solution").to_numpy())
    # orbit resampling of the same draws: every light observable and solution flag as without it, row
    # for row, the heavy masses moved, the points still in the prior's box
    ob = sample_run(run, SamplingSettings(n=200, steps=5, shards=1, project=5, orbits=2), log=lambda *_: None)
    assert ob["tag"].endswith("-reflect-proj5-orb2-n200-s0") and ob["solutions"] == pj["solutions"]
    orb = runs.read_parts(runs.samples_dir(run, ob["tag"]))
    assert set(orb.column("orbit_sweeps").to_pylist()) == {2} and set(rows.column("orbit_sweeps").to_pylist()) == {0}
    np.testing.assert_array_equal(orb.column("solution").to_numpy(), rows.column("solution").to_numpy())
    for c in ("m_sum", "m_bb", "abs_u_e3", "dm21"):
        np.testing.assert_allclose(orb.column(c).to_numpy(), rows.column(c).to_numpy(), rtol=1e-7)
    g = orb.column("log10_h2_over_m3_ev").to_numpy()
    assert np.mean(np.abs(g - rows.column("log10_h2_over_m3_ev").to_numpy()) > 1e-6) > 0.9
    from rayflavor.methods.reference import seesaw_box

    assert seesaw_box().contains(np.stack([orb.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)).all()


def _near_known_solution(n: int, noise: float, seed: int) -> np.ndarray:
    """``n`` points scattered by relative ``noise`` around the shipped example's first row, a known NO
    solution: some stay solutions, some do not."""
    from rayflavor import examples
    from rayflavor.storage.tables import read_columns

    x0 = seesaw.from_columns(read_columns(examples.path("seesaw")))[:1]
    rng = np.random.default_rng(seed)
    return np.repeat(x0, n, axis=0) * (1 + rng.normal(0, noise, (n, x0.shape[1])))


def test_every_stored_solution_reevaluates_within_3_sigma(tmp_path):
    """Points around a known solution and prior points in a sample part: solutions.parquet must hold
    exactly the rows the exact physics flags as 3 sigma solutions, and each re-evaluates as one."""
    from rayflavor.methods.diffusion.data import evaluated_table
    from rayflavor.orchestration.diffusion_sample import collect_solutions

    ds = physics_data.load("nufit-6.0-sk")
    x = np.concatenate([_near_known_solution(300, 0.01, 0), seesaw.sample_prior(300, np.random.default_rng(0))])
    want = np.asarray(seesaw.evaluate(x, data=ds)["solution"], bool)
    assert 20 < want.sum() < 300  # the check runs on real solutions and real misses
    runs.write_table(evaluated_table(x), runs.part_path(runs.samples_dir(tmp_path, "x"), 0))
    n = collect_solutions(tmp_path)
    assert n == int(want.sum())
    t = runs.read_table(runs.solutions_path(tmp_path))
    y = np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    assert seesaw.evaluate(y, data=ds)["solution"].all()
    np.testing.assert_array_equal(np.sort(y, axis=0), np.sort(x[want], axis=0))


def test_io_shard_is_conditioned_on_and_evaluated_in_the_inverted_ordering(tmp_path, monkeypatch):
    """``--ordering IO``: the IO labels of the data file condition the network, and every row is
    evaluated, flagged and labelled as IO (m3 lightest, dm3l = dm32 < 0)."""
    from rayflavor.methods.diffusion import sampleset as diffusion_sample

    ds = physics_data.load("nufit-6.0-sk")
    x = seesaw.sample_prior(500, np.random.default_rng(2))
    lab = seesaw.labels(seesaw.evaluate(x, data=ds))
    ok = np.isfinite(lab).all(axis=1)
    model = _save_untrained(tmp_path, x[ok], lab[ok])
    seen = []
    real_generate = diffusion_sample.generate

    def spy(net, norm, label, n, **kw):
        seen.append(np.asarray(label))
        return real_generate(net, norm, label, n, **kw)

    monkeypatch.setattr(diffusion_sample, "generate", spy)
    s = diffusion_sample.SampleSet(network="pre", sampling=SamplingSettings(steps=3, ordering="IO", n=300, shards=1))
    t, _ = diffusion_sample.shard_table(s, str(model), 0)
    np.testing.assert_array_equal(seen[0], seesaw.target_labels(ds, "IO"))
    assert not np.allclose(seen[0], seesaw.target_labels(ds, "NO"))
    assert set(t.column("ordering").to_pylist()) == {"IO"}
    g = np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    valid = np.isfinite(t.column("chi2").to_numpy())  # non-degenerate spectra
    assert valid.sum() > 250
    m1, m2, m3 = (t.column(c).to_numpy()[valid] for c in ("m1", "m2", "m3"))
    assert (m3 < m1).all() and (m1 < m2).all() and (t.column("dm3l").to_numpy()[valid] < 0).all()
    io, no = seesaw.evaluate(g, ordering="IO", data=ds), seesaw.evaluate(g, ordering="NO", data=ds)
    np.testing.assert_allclose(io["chi2"][valid], t.column("chi2").to_numpy()[valid], rtol=1e-12)
    assert not np.allclose(no["chi2"][valid], t.column("chi2").to_numpy()[valid])


@pytest.mark.ray
def test_ray_train_two_workers_loss_falls_and_resumes(ray_session, tmp_path):
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_train import train_network

    run = tmp_path / "run"
    make_dataset(run, n=3000, seed=1, shards=1, log=lambda *_: None)
    lines = []
    m = train_network(run, "pre", workers=2, steps=300, every=50, stop_at=150, log=lines.append)
    assert not m["finished"] and not runs.network_path(run, "pre").exists()
    m = train_network(run, "pre", workers=2, steps=300, every=50, log=lines.append)
    assert m["finished"] and runs.network_path(run, "pre").is_file()
    assert any("resuming" in l for l in lines)
    log = [json.loads(l) for l in (runs.network_dir(run, "pre") / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [50, 100, 150, 200, 250, 300]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    assert log[-1]["val_loss"] < log[0]["val_loss"]
    _, _, d = training.load_model(runs.network_path(run, "pre"))
    assert d["step"] == 300
    # stopped after the last checkpoint but before the final save: finished from the checkpoint, no training
    runs.network_path(run, "pre").delete()
    m = train_network(run, "pre", workers=2, steps=300, every=50, log=lines.append)
    assert m == {"step": 300, "finished": True} and "its last checkpoint" in lines[-1]
    assert training.load_model(runs.network_path(run, "pre"))[2]["step"] == 300


@pytest.mark.ray
def test_a_casas_ibarra_network_trains_and_its_samples_stay_in_the_prior_box(ray_session, tmp_path):
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_sample import sample_run
    from rayflavor.orchestration.diffusion_train import train_network

    run = tmp_path / "run"
    make_dataset(run, n=2000, seed=2, shards=1, log=lambda *_: None)
    train_network(run, "pre", steps=60, every=30, coordinates="casas-ibarra", log=lambda *_: None)
    _, norm, _ = training.load_model(runs.network_path(run, "pre"))
    assert norm.coordinates == "casas-ibarra"
    with pytest.raises(ValueError, match="works in casas-ibarra coordinates, not paper; use another run directory"):
        train_network(run, "pre", steps=60, coordinates="paper", log=lambda *_: None)  # an old run, new defaults
    s = sample_run(run, SamplingSettings(n=400, steps=5, project=2, shards=1), seed=1, log=lambda *_: None)
    t = runs.read_parts(runs.loc(run) / "samples" / s["tag"])
    x = np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    lo, hi = seesaw.prior_box()
    assert np.isfinite(x).all() and (x >= lo - 1e-12).all() and (x <= hi + 1e-12).all()
    with pytest.raises(ValueError, match="needs a network in the paper's coordinates"):
        sample_run(run, SamplingSettings(n=10, steps=2, physics=1, shards=1), seed=1, log=lambda *_: None)


def test_zero_solutions_still_write_an_empty_solutions_file_that_analyze_reads(tmp_path):
    """A run with no solution gets an empty solutions.parquet with the parts' columns; analyze says 0."""
    from click.testing import CliRunner

    from rayflavor.cli.main import cli
    from rayflavor.orchestration.diffusion_sample import collect_solutions

    x = seesaw.sample_prior(200, np.random.default_rng(1))
    res = seesaw.evaluate(x, data=physics_data.load("nufit-6.0-sk"))
    assert not res["solution"].any()
    cols = {c: x[:, j] for j, c in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    runs.write_table(cols, runs.part_path(runs.samples_dir(tmp_path, "x"), 0))
    assert collect_solutions(tmp_path) == 0
    t = runs.read_table(runs.solutions_path(tmp_path))
    assert t.num_rows == 0 and set(cols) | {"sample_set"} == set(t.column_names)
    out = CliRunner().invoke(cli, ["analyze", str(tmp_path)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "solutions.parquet: 0 solutions" in out.output


def test_union_pool_and_cuts_selection(tmp_path):
    """The union pool holds this round's samples and every earlier round's fine-tuning set, without
    duplicate points; the cuts selection topped up with the lowest chi2 then trains on exactly the
    rows meeting the cuts plus the lowest-chi2 others."""
    from rayflavor.methods.diffusion import selection
    from rayflavor.methods.diffusion.data import evaluated_table
    from rayflavor.methods.diffusion.rounds import candidate_rows, selected_rows

    x_old = seesaw.sample_prior(300, np.random.default_rng(2))
    x_new = np.concatenate([seesaw.sample_prior(500, np.random.default_rng(3)), x_old[:50]])  # 50 repeats
    old, _ = selected_rows(evaluated_table(x_old), SelectionSettings(select="cuts", min_select=300))
    assert old.num_rows == 300
    runs.write_table(old, runs.finetune_path(tmp_path, "tuned-1"))
    samples = evaluated_table(x_new)
    assert candidate_rows(samples).num_rows == 550
    union = candidate_rows(samples, runs.finetune_sets(tmp_path, before=2))
    assert union.num_rows == 800 and runs.finetune_sets(tmp_path, before=1) == []
    rows, n_cut = selected_rows(union, SelectionSettings(select="cuts", min_select=100))
    c = union.column("chi2").to_numpy()
    cut = selection.select(c, union.column("chi2_mass").to_numpy(), union.column("chi2_mixing").to_numpy())
    assert n_cut == int(cut.sum()) < 100
    np.testing.assert_allclose(np.sort(rows.column("chi2").to_numpy()), np.sort(c[np.isfinite(c)])[:100])
    assert rows.column("split").to_pylist().count("val") == 10


@pytest.mark.ray
def test_finetune_rounds_share_one_trainer_select_nearest_and_resume(ray_session, tmp_path):
    """Two short rounds in one 2-worker trainer: each round's set is the nearest-to-box rows of its
    samples plus the previous set, each tuned network is normalised over its own set, and a round
    whose network was lost is redone from its kept sample shards (not re-sampled)."""
    from rayflavor.methods.diffusion import selection
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.methods.diffusion.data import training_arrays
    from rayflavor.orchestration.diffusion_rounds import finetune
    from rayflavor.orchestration.diffusion_train import load_training_data

    run = tmp_path / "run"
    make_dataset(run, n=2000, seed=5, shards=1, log=lambda *_: None)
    g, lab, val = load_training_data(runs.dataset_dir(run))
    _save_untrained(run, g[~val], lab[~val])
    st = FinetuneSettings(rounds=2, sampling=SamplingSettings(n=400, steps=5, guidance=1.0, clip=1.0),
                          selection=SelectionSettings(select="nearest", n_best=50, pool="union"),
                          tune=TuneSettings(refit="solutions", steps=20), workers=2)
    lines = []
    out = finetune(run, st, log=lines.append)
    assert [l.split(":")[0] for l in lines if l.startswith("round")] == ["round 1", "round 2"]  # progress reaches the driver
    assert [o["network"] for o in out] == ["tuned-1", "tuned-2"] and all(o["step"] == 20 for o in out)
    windows = seesaw.solution_windows(physics_data.load(seesaw.DEFAULT_DATA), "NO")
    sets = {}
    for r in (1, 2):
        t = pq.read_table(run / "finetune" / f"tuned-{r}.parquet")
        sets[r] = t
        samples = runs.samples_dir(run, out[r - 1]["sample"]["tag"])
        assert runs.finished_parts(samples) == [0, 1]  # one shard per trainer worker
        cand = runs.read_parts(samples)
        if r == 2:
            cand = pa.concat_tables([cand.replace_schema_metadata(None),
                                     sets[1].drop_columns(["split"]).replace_schema_metadata(None)])
        values = np.stack([cand.column(c).to_numpy() for c in seesaw.SOLUTION_TERMS], axis=1)
        miss = selection.window_miss(values, windows)
        want = selection.nearest(miss, cand.column("chi2").to_numpy(), max(50, int((miss == 0).sum())))
        np.testing.assert_array_equal(np.sort(cand.column("chi2").to_numpy()[want]), np.sort(t.column("chi2").to_numpy()))
        _, norm, _ = training.load_model(runs.network_path(run, f"tuned-{r}"))
        gt, _, vt = training_arrays(t)
        x = norm.g_to_net(gt[~vt])
        assert t.column("solution").to_numpy().sum() < training.MIN_FOCUS  # so the whole set's range:
        np.testing.assert_allclose([x.min(), x.max()], [-1.0, 1.0], atol=1e-9)  # refit on its own set
    samples2 = runs.samples_dir(run, out[1]["sample"]["tag"])
    stamps = [runs.part_path(samples2, i).mtime() for i in (0, 1)]
    import dataclasses
    runs.network_dir(run, "tuned-2").delete_tree()
    again = finetune(run, dataclasses.replace(st, rounds=1), log=lambda *_: None)
    assert again[0]["network"] == "tuned-2" and runs.network_path(run, "tuned-2").is_file()
    assert [runs.part_path(samples2, i).mtime() for i in (0, 1)] == stamps
    assert pq.read_table(run / "finetune" / "tuned-2.parquet").column("chi2").to_pylist() == sets[2].column("chi2").to_pylist()
    # Ray Train restarting the workers (a lost node) runs the trainer's rounds again: finished ones are skipped
    from rayflavor.orchestration.diffusion_rounds import _one_trainer

    def state():
        return [(runs.network_path(run, f"tuned-{r}").mtime(),
                 (runs.network_dir(run, f"tuned-{r}") / "metrics.jsonl").read_text()) for r in (1, 2)]

    before = state()
    assert [m["network"] for m in _one_trainer(runs.loc(run), 1, 2, st, "off", lambda *_: None)] == ["tuned-1", "tuned-2"]
    assert state() == before


def test_best_network_is_the_one_whose_samples_held_the_most_solutions(tmp_path):
    import pyarrow as pa

    from rayflavor.orchestration.diffusion_sample import best_network

    st = training.new_state(training.Normalizer.fit(np.random.default_rng(0).normal(size=(50, 23)),
                                                    np.random.default_rng(1).normal(size=(50, 11))), total_steps=1)
    for name in ("pre", "tuned-1", "tuned-2"):
        training.save(runs.network_path(tmp_path, name), st, with_optimizer=False)

    def sample_set(tag, network, parts, **settings):
        d = runs.samples_dir(tmp_path, tag)
        runs.write_json({"network": network, **settings}, d / "manifest.json")
        for i, (n, sols) in enumerate(parts):
            meta = {"n": n, "solutions": sols, "selected": 0, "kept": 0, "seconds_sample": 1.0, "seconds_evaluate": 0.1}
            runs.write_part(d, i, pa.table({"x": [0.0]}), meta)

    assert best_network(tmp_path) == (None, 0.0, 0)
    sample_set("a", "pre", [(50, 0)])
    assert best_network(tmp_path) == (None, 0.0, 0)  # no solution anywhere: keep the default
    sample_set("b", "tuned-1", [(60, 2), (40, 1)])   # 3 in 100
    sample_set("c", "tuned-2", [(100, 4)])
    sample_set("d", "tuned-2", [(100, 0)])            # tuned-2 pooled: 4 in 200
    assert best_network(tmp_path) == ("tuned-1", 0.03, 100)
    sample_set("e", "tuned-2", [(100, 2)])            # 6 in 300 = 0.02 < 0.03
    assert best_network(tmp_path)[0] == "tuned-1"
    sample_set("f", "tuned-2", [(100, 60)], physics=3)  # physics-guided: measures the guidance, not the network
    assert best_network(tmp_path)[0] == "tuned-1"


def test_solutions_file_and_summary_tell_guided_from_network_only_sets(tmp_path):
    """Parts that predate the ``ordering``/``physics_guidance`` columns get them from their set's manifest,
    and the seesaw summary counts solutions by ordering and physics guidance."""
    import polars as pl

    from rayflavor.analysis.summary import summarize
    from rayflavor.orchestration.diffusion_sample import collect_solutions

    ds = physics_data.load("nufit-6.0-sk")
    x = seesaw.sample_prior(50, np.random.default_rng(2))
    res = seesaw.evaluate(x, data=ds)
    cols = {c: x[:, j] for j, c in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    flags = np.zeros(50, bool)
    for tag, settings, rows in (("plain", {}, slice(0, 20)), ("guided", {"physics": 3}, slice(20, 50))):
        d = runs.samples_dir(tmp_path, tag)
        runs.write_json({"network": "tuned-1", "ordering": "NO", **settings}, d / "manifest.json")
        flags[:] = False
        flags[rows] = True  # planted: the flag is what collect_solutions filters on
        runs.write_table({**cols, "solution": flags.copy()}, runs.part_path(d, 0))
    assert collect_solutions(tmp_path) == 50
    t = pl.read_parquet(runs.solutions_path(tmp_path).polars_source())
    assert t.group_by("physics_guidance").len().sort("physics_guidance").rows() == [(0, 20), (3, 30)]
    assert set(t["ordering"]) == {"NO"}
    tables = summarize("seesaw", t.lazy(), ds)
    assert tables["solutions"].rows() == [("NO", 0, 0, 0, 20), ("NO", 3, 0, 0, 30)]  # parts without projection: 0
    q = tables["predictions (quartiles) by physics guidance, projection and orbits"]
    for pg, rows in ((0, slice(0, 20)), (3, slice(20, 50))):  # each set's quartiles from its own rows only
        m = q.filter((pl.col("physics_guidance") == pg) & (pl.col("prediction") == "m_sum"))
        np.testing.assert_allclose(m["q50"][0], np.median(res["m_sum"][rows]), rtol=1e-12)


@pytest.mark.ray
def test_a_sample_task_whose_worker_is_killed_is_retried_and_its_shard_is_the_same(ray_session, tmp_path):
    """SIGKILL the worker process running one shard: Ray retries the task (``max_retries``), the set
    completes with every shard, and the retried shard's rows equal those of an undisturbed run."""
    import os
    import shutil
    import signal
    import threading
    import time

    import psutil

    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_sample import sample_run
    from rayflavor.orchestration.diffusion_train import load_training_data

    run = tmp_path / "run"
    make_dataset(run, n=2000, seed=5, shards=1, log=lambda *_: None)
    g, lab, val = load_training_data(runs.dataset_dir(run))
    _save_untrained(run, g[~val], lab[~val])
    calm = tmp_path / "calm"
    shutil.copytree(run, calm)
    args = dict(sampling=SamplingSettings(n=8000, steps=50, guidance=8.0, shards=2), log=lambda *_: None)

    result = {}

    def drive():
        try:
            result.update(sample_run(run, **args))
        except Exception as exc:  # surfaced by the assertion below
            result["error"] = repr(exc)

    driver = threading.Thread(target=drive)
    driver.start()
    killed, deadline = None, time.time() + 120
    while killed is None and driver.is_alive() and time.time() < deadline:
        for p in psutil.process_iter(["pid", "cmdline"]):
            if any("ray::_sample_task" in part for part in (p.info["cmdline"] or [])):
                os.kill(p.info["pid"], signal.SIGKILL)
                killed = p.info["pid"]
                parts_at_kill = list((run / "samples").glob("*/part-*.parquet"))
                break
        time.sleep(0.02)
    driver.join(timeout=300)
    assert killed is not None, "no running sample task was seen to kill"
    assert len(parts_at_kill) < 2, "both shards had finished: the kill hit no running task"
    assert "error" not in result, result.get("error")
    assert result["n"] == 8000 and not driver.is_alive()
    ref = sample_run(calm, **args)
    assert ref["tag"] == result["tag"]
    a = runs.read_parts(runs.samples_dir(run, result["tag"]))
    b = runs.read_parts(runs.samples_dir(calm, ref["tag"]))
    assert a.num_rows == b.num_rows == 8000
    for c in seesaw.PARAMETERS:
        np.testing.assert_array_equal(a.column(c).to_numpy(), b.column(c).to_numpy())


# ---------------------------------------------------------------------------------- requested resources
def test_sample_shards_follow_the_requested_size_not_the_free_cpus(ray_session, tmp_path, monkeypatch):
    import ray

    from rayflavor.methods.diffusion.sampleset import default_shards
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_sample import sample_set
    from rayflavor.orchestration.diffusion_train import load_training_data

    run = tmp_path / "run"
    make_dataset(run, n=400, seed=5, shards=2, log=lambda *_: None)
    g, lab, val = load_training_data(runs.dataset_dir(run))
    training.save(runs.network_path(run, "pre"),
                  training.new_state(training.Normalizer.fit(g[~val], lab[~val]), total_steps=1), with_optimizer=False)

    def no_peeking():
        raise AssertionError("the shard split read the resources present")

    monkeypatch.setattr(ray, "available_resources", no_peeking)
    monkeypatch.setattr(ray, "cluster_resources", no_peeking)
    s, _, _ = sample_set(run, SamplingSettings(n=45_000, steps=2))
    assert s.shards == default_shards(45_000) == 5  # the same split on any cluster


@pytest.mark.parametrize("gpu, now, declared, own, expected", [
    ("off", 1, 4, False, False),
    ("auto", 0, None, False, False),  # nothing present, nothing declared: CPU
    ("auto", 0, 4, False, True),  # an autoscaler declares GPU nodes: ask for them
    ("auto", 2, None, False, True),
    ("on", 0, None, False, True),  # a cluster that may scale: the GPU request is its demand
    ("on", 0, 0, False, ValueError),  # declared node types without a GPU: it never comes
    ("on", 0, None, True, ValueError),  # this process's own local Ray: no autoscaler
])
def test_the_gpu_decision_follows_the_request_and_the_declared_resources(ray_session, monkeypatch, gpu, now, declared,
                                                                         own, expected):
    from rayflavor.orchestration import diffusion_train as dt

    monkeypatch.setattr(dt, "gpu_capacity", lambda: (float(now), None if declared is None else float(declared)))
    monkeypatch.setattr(dt, "_own_local_ray", lambda: own)
    if expected is ValueError:
        with pytest.raises(ValueError, match="--gpu on"):
            dt._use_gpu(gpu)
    else:
        assert dt._use_gpu(gpu) is expected


def test_gpu_capacity_reads_the_cluster_and_its_declared_limits(ray_session):
    from rayflavor.orchestration import diffusion_train as dt

    now, declared = dt.gpu_capacity()
    assert now == 0 and declared in (None, 0)  # the session's CPU-only local Ray, no autoscaler config
    assert dt._own_local_ray()  # ray_session started it in this process

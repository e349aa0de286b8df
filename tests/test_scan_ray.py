"""``rayflavor scan`` on real Ray (2 CPUs, shared fixture): settings, scan, faults, resume, lease,
time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from rayflavor import configfile
from rayflavor.cli import options
from rayflavor.cli.scan import build_settings, scan
from rayflavor.methods.ga.island import ISLAND_PRESETS
from rayflavor.orchestration.islands import read_settings
from rayflavor.orchestration.scan_settings import ScanSettings
from rayflavor.physics import data, fn
from rayflavor.storage.island_store import committed_parts
from rayflavor.storage.location import resolve

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))


def _fast(tmp_path: Path, top: str = "", **island) -> list[str]:
    """Options of a quick scan on the relaxed data: a config file with ``mass_tolerance = 0.9`` and
    ``island`` (the [island] table), ``top`` (top-level TOML lines)."""
    cfg = tmp_path / "fast.toml"
    cfg.write_text(top + "\n[island]\n" + "".join(f"{k} = {v!r}\n" for k, v in {"mass_tolerance": 0.9, **island}.items()))
    return ["--data", RELAXED, "--config", str(cfg), "--no-live"]


def _rows(out: Path) -> pl.DataFrame:
    parts = committed_parts(resolve(out))
    return pl.read_parquet([p.uri for p in parts]) if parts else pl.DataFrame()


def _assert_valid_and_unique(out: Path) -> pl.DataFrame:
    df = _rows(out)
    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert fn.evaluate(x, data=data.load(RELAXED), mass_tolerance=0.9)["valid"].all()
    for _, g in df.group_by("island"):
        assert g.select(list(fn.CHARGES)).unique().height == g.height  # nothing duplicated
    return df


# ---------------------------------------------------------------------------------- settings (no Ray)
def test_the_library_default_is_the_fast_preset():
    library = ScanSettings()
    assert library.island == ISLAND_PRESETS["fast"] and configfile.default(ScanSettings, "island") is ISLAND_PRESETS["fast"]


def test_settings_precedence_default_preset_config_option(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("islands = 3\nflush_seconds = 5.0\n[island]\npatience = 50\ntarget_valid = 7\n")
    ctx = scan.make_context("scan", ["--preset", "paper", "--config", str(cfg), "--regime", "down"])
    s = build_settings("paper", str(cfg), options.given(ctx))
    assert s.island.regime == "down"  # explicit option over config and preset
    s = build_settings("paper", str(cfg), {"island": {"patience": 9}})
    assert s.island.method == "paper" and s.island.pop_size == ISLAND_PRESETS["paper"].pop_size  # preset
    assert (s.islands, s.flush_seconds, s.island.target_valid) == (3, 5.0, 7)  # config over preset
    assert s.island.patience == 9  # explicit option over config
    assert s.chunk_seconds is configfile.default(ScanSettings, "chunk_seconds")  # untouched default
    # a stored scan.json is a config file that gives back the same settings
    stored = tmp_path / "scan.json"
    out = resolve(tmp_path)
    (out / "scan.json").write_json({"format": "x", "settings": configfile.to_mapping(replace(s, seed=4))})
    assert build_settings(None, str(stored), {}) == replace(s, seed=4)


def test_settings_validate_in_one_line():
    with pytest.raises(ValueError, match="time_limit"):
        ScanSettings(time_limit=float("nan"))
    with pytest.raises(ValueError, match="islands"):
        ScanSettings(islands=0)


def test_second_scan_into_a_running_scans_out_is_refused(tmp_path):
    import socket

    out = resolve(tmp_path / "o")
    # the lease of a scan running in another live process on this host (pid 1 is always alive)
    (out / "LOCK.json").write_json({"owner": "rayflavor scan", "host": socket.gethostname(), "pid": 1,
                                    "token": "other", "acquired_at": time.time(), "expires_at": time.time() + 60})
    for extra in ([], ["--resume"]):
        res = CliRunner().invoke(scan, ["--islands", "1", "--seed", "7", "--out", out.uri, *_fast(tmp_path), *extra])
        assert res.exit_code == 2, res.output
        assert ("in use by rayflavor scan" in res.output or "no scan to resume" in res.output), res.output
        assert len(res.output.strip().splitlines()) == 1
    assert out.list() == ["LOCK.json"]  # nothing written, the other scan's lease untouched


def test_live_view_shows_states_nodes_restarts_and_stop_reasons():
    import io

    from rich.console import Console

    from rayflavor.orchestration.progress import Progress, rich_table, table

    statuses = {
        0: {"seed": 1, "state": "running", "node": "abcdef0123", "generation": 10, "wall_seconds": 2.0, "n_valid": 3,
            "restarts": 2, "starts": 2, "stop_history": [{"reason": "patience"}, {"reason": "patience"}]},
        1: {"seed": 2, "state": "pending", "starts": 0},
        2: {"seed": 3, "state": "done", "node": "99", "stop_reason": "target-valid", "n_valid": 100, "starts": 1,
            "stop_history": [{"reason": "target-valid"}]},
        3: {"seed": 4, "state": "queued"},
    }
    text = table(statuses, 12.0)
    assert "patience x2" in text and "abcdef01 " in text and "target-valid" in text
    assert "queued 1  pending 1  running 1  done 1" in text and "valid 103" in text
    lines = []
    p = Progress(4, live=True, echo=lines.append, interval=0.0, tty=False)
    with p:
        p.update(statuses, 1.0)
    p.final(statuses, 2.0)
    assert lines[0].startswith("[    1.0 s] queued 1") and "restarts" in lines[1]
    console = Console(file=io.StringIO(), width=160)
    console.print(rich_table(statuses, 3.0))
    assert "patience x2" in console.file.getvalue()


# ---------------------------------------------------------------------------------- on Ray
@pytest.mark.ray
def test_short_scan_finds_valid_models(ray_session, tmp_path):
    out = tmp_path / "scan"
    res = CliRunner().invoke(scan, ["--islands", "3", "--time-limit", "90s", "--seed", "1",
                                    "--out", str(out), *_fast(tmp_path, target_valid=10)])
    assert res.exit_code == 0, res.output
    assert "target-valid" in res.output and "unique" in res.output
    df = _assert_valid_and_unique(out)
    assert set(df["island"].to_list()) == {0, 1, 2} and df.height >= 30
    assert (out / "models.parquet").is_file() and not (out / "LOCK.json").exists()  # lease released
    doc = resolve(out / "scan.json").read_json()
    s = configfile.from_mapping(ScanSettings, doc["settings"])
    assert (s.islands, s.seed, s.island.target_valid, s.island.mass_tolerance) == (3, 1, 10, 0.9)
    node = ray_session.get_runtime_context().get_node_id()
    assert all(len(v) == 1 and v[0]["node_id"] == node for v in doc["island_starts"].values())
    assert {v["stop_reason"] for v in doc["islands_status"].values()} == {"target-valid"}
    # the default: a ring with the restart archive, recorded; its islands are not independent units
    assert (s.migration, s.island.restart_archive) == ("ring", 0.1) and doc["migration"]["topology"] == "ring"
    assert "loose lower bound" in res.output


@pytest.mark.ray
def test_killed_island_restarts_without_loss_or_duplicates(ray_session, tmp_path):
    from rayflavor.orchestration.islands import IslandActor

    cfg = configfile.to_mapping(replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, target_valid=600))
    actor = IslandActor.options(max_restarts=2, max_task_retries=2).remote(
        str(tmp_path), cfg, data.load(RELAXED), 10**6, 0.2)
    run = partial(actor.run.remote, 0, 1)
    # short slices: stop at the first valid models, well before the target (a fast island once
    # reached 40 within one 3 s slice, and after the cheaper refinement 200 within two 0.5 s
    # slices: then there was nothing left to restart)
    st = ray_session.get(run(0.25))
    while st["n_valid"] == 0 and st["stop_reason"] is None:
        st = ray_session.get(run(0.25))
    st = ray_session.get(run(0.25))  # past one flush interval (0.2 s): models committed
    before = _rows(tmp_path).select(list(fn.CHARGES)).rows()
    assert before and st["starts"] == 1 and st["stop_reason"] is None
    os.kill(st["pid"], signal.SIGKILL)
    while st["stop_reason"] is None:
        st = ray_session.get(run(2.0))  # the restarted actor reopens island 0 from its checkpoint
    assert st["starts"] == 2 and st["stop_reason"] == "target-valid"
    df = _assert_valid_and_unique(tmp_path)
    assert set(before) <= set(df.select(list(fn.CHARGES)).rows()) and df.height == st["n_valid"]
    ray_session.kill(actor)


@pytest.mark.ray
def test_time_limit_kills_an_island_that_does_not_answer(ray_session, tmp_path):
    """A step longer than the limit (like --pop-size 10**6 once did): the island is killed after
    the grace, the scan ends on time, and the island's last checkpoint stands."""
    from rayflavor.bench.scan import TinyIsland
    from rayflavor.orchestration.islands import run_scan

    settings = ScanSettings(islands=1, seed=0, time_limit=12.0, chunk_seconds=0.5)  # time to start the actor
    t0 = time.monotonic()
    res = run_scan(settings, str(tmp_path), live=False, echo=lambda *_: None, stop_grace=1.0,
                   make=partial(TinyIsland, steps=5, step_seconds=60.0), restore=TinyIsland.from_state)
    assert time.monotonic() - t0 < 12.0 + 1.0 + 0.5 + 10  # limit + grace + chunk + slack
    assert res.statuses[0]["state"] == "killed" and res.statuses[0]["stop_reason"] == "time-limit"
    doc = resolve(tmp_path / "scan.json").read_json()
    assert doc["status"] == "finished" and doc["islands_status"]["0"]["state"] == "killed"


@pytest.mark.ray
def test_islands_beyond_the_free_cpus_are_demand_and_reuse_a_placed_actor(ray_session, tmp_path):
    """Every island is submitted at once (the pending ones are what the autoscaler sees); an
    actor whose island is done takes a pending island, so 2 CPUs run 5 islands in <= 2 processes."""
    from rayflavor.bench.scan import TinyIsland
    from rayflavor.orchestration.islands import run_scan

    settings = ScanSettings(islands=5, seed=5, chunk_seconds=0.2, flush_seconds=0.1)
    res = run_scan(settings, str(tmp_path), live=False, echo=lambda *_: None,
                   make=partial(TinyIsland, steps=3, step_seconds=0.01), restore=TinyIsland.from_state)
    assert [res.statuses[i]["state"] for i in range(5)] == ["done"] * 5
    pids = {res.nodes[i][-1]["pid"] for i in range(5)}
    assert len(pids) <= 2, res.nodes  # the session's 2 CPUs: no worker process was started per island
    assert [res.statuses[i]["seed"] for i in range(5)] == [5, 6, 7, 8, 9]


def test_a_stored_scan_with_a_retired_backlog_setting_still_resumes(tmp_path):
    out = resolve(tmp_path / "o")
    stored = {**configfile.to_mapping(ScanSettings(seed=1)), "backlog": None}
    (out / "scan.json").write_json({"settings": stored})
    assert read_settings(out) == ScanSettings(seed=1)


@pytest.mark.ray
@pytest.mark.slow
def test_resume_after_killing_the_driver(ray_session, tmp_path):
    out = tmp_path / "scan"
    code = "import sys; from rayflavor.cli.scan import scan; scan(sys.argv[1:])"
    # independent islands: then a duplicate can only be a model committed twice across the kill
    # (migrating islands may find the same model, docs/methods-fn.md#migration)
    args = ["--preset", "independent", "--islands", "2", "--seed", "1", "--out", str(out),
            *_fast(tmp_path, "flush_seconds = 0.5", target_valid=300)]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and _rows(out).height == 0:
            time.sleep(0.2)
        assert _rows(out).height, "the driver committed no models"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-scan
        proc.wait()
    before = _rows(out).select(list(fn.CHARGES)).rows()
    res = CliRunner().invoke(scan, ["--resume", "--out", str(out), "--no-live", "--time-limit", "180s"])
    assert res.exit_code == 0, res.output  # the dead driver's lease does not block the resume
    df = _assert_valid_and_unique(out)
    assert set(before) <= set(df.select(list(fn.CHARGES)).rows())  # nothing committed before the kill is lost
    assert len(df) > len(before)  # the unfinished islands continued from their checkpoints
    doc = resolve(out / "scan.json").read_json()
    assert all(len(v) == 2 for v in doc["island_starts"].values())  # one start before the kill, one after
    assert "duplicates 0" in res.output


def test_resume_refuses_changed_settings_and_missing_scan(tmp_path):
    res = CliRunner().invoke(scan, ["--resume", "--out", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no scan to resume" in res.output
    out = resolve(tmp_path / "o")
    (out / "scan.json").write_json({"settings": configfile.to_mapping(ScanSettings(seed=1))})
    res = CliRunner().invoke(scan, ["--resume", "--out", out.uri, "--islands", "9"])
    assert res.exit_code == 2 and "islands cannot change" in res.output, res.output


def test_missing_bucket_is_one_line_and_writes_nothing(s3_bucket):
    res = CliRunner().invoke(scan, ["--out", s3_bucket + "-missing/scan", "--no-live", "--seed", "1", "--data", RELAXED])
    assert res.exit_code == 2 and "bucket does not exist" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------- job retries
def _job(command: list[str], argv: list[str]) -> int:
    """Run a job entrypoint (jobs/_entry.py) in this process, on the session's Ray; its exit code."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    try:
        from _entry import run
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit) as exc:
        run(command, argv)
    return exc.value.code


@pytest.mark.ray
@pytest.mark.slow
def test_a_retried_scan_job_continues_its_own_scan(ray_session, tmp_path, capsys):
    out = tmp_path / "scan"
    # no --seed: the first attempt draws one, the retry keeps the stored one
    argv = ["--islands", "2", "--time-limit", "120s", "--out", str(out), *_fast(tmp_path, target_valid=10)]
    assert _job(["scan"], argv) == 0, capsys.readouterr()
    rows = _rows(out)
    first = set(rows.select(list(fn.CHARGES)).rows()) if rows.height else set()
    seed = resolve(out / "scan.json").read_json()["settings"]["seed"]
    capsys.readouterr()
    assert _job(["scan"], argv) == 0  # the retry: same options, same OUT
    text = capsys.readouterr().out
    assert f"resuming {resolve(out).uri}: 2 islands, seed {seed}" in text, text
    df = _assert_valid_and_unique(out)  # no island committed a model twice
    assert df.height and first <= set(df.select(list(fn.CHARGES)).rows())
    doc = resolve(out / "scan.json").read_json()
    assert doc["settings"]["seed"] == seed
    models = pl.read_parquet(out / "models.parquet")
    assert models.select(list(fn.CHARGES)).unique().height == models.height
    # a job asking for another scan in the same OUT is refused in one line, OUT untouched
    assert _job(["scan"], [*argv, "--islands", "3"]) == 2
    err = capsys.readouterr()
    lines = (err.out + err.err).strip().splitlines()
    assert len(lines) == 2 and "other settings (islands)" in lines[-1], lines  # the RAY_ADDRESS note, the error
    assert resolve(out / "scan.json").read_json() == doc


def test_a_diffusion_job_refuses_a_run_with_other_settings(tmp_path, capsys):
    from rayflavor.methods.diffusion.settings import ChainSettings
    from rayflavor.orchestration.diffusion_pipeline import run_differences, write_run_manifest

    run = tmp_path / "run"
    write_run_manifest(run, ChainSettings())
    assert run_differences(run, ChainSettings()) == []  # a rerun of the same chain continues it
    assert _job(["diffusion", "run"], [str(run), "--seed", "5"]) == 2
    err = capsys.readouterr()
    assert "other settings (seed)" in (err.out + err.err).strip().splitlines()[-1]

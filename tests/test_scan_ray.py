"""``rayflavor scan`` on real Ray (2 CPUs, shared fixture): scan, faults, resume, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from rayflavor.cli.scan import dedupe, scan
from rayflavor.physics import data, fn
from rayflavor.storage.parquet import list_parts

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))
FAST = ["--data", RELAXED, "--mass-tolerance", "0.9", "--no-live"]
pytestmark = pytest.mark.ray


def _rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet([str(p) for p in list_parts(out)])


def _assert_valid_and_unique(out: Path) -> pl.DataFrame:
    df = _rows(out)
    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert fn.evaluate(x, data=data.load(RELAXED), mass_tolerance=0.9)["valid"].all()
    for _, g in df.group_by("island"):
        assert g.select(list(fn.CHARGES)).unique().height == g.height  # nothing duplicated
    return df


def test_short_scan_finds_valid_models(ray_session, tmp_path):
    out = tmp_path / "scan"
    res = CliRunner().invoke(scan, ["--islands", "3", "--target-valid", "10", "--time-limit", "60s", "--seed", "1", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    assert "target-valid" in res.output and "unique" in res.output
    df = _assert_valid_and_unique(out)
    assert set(df["island"].to_list()) == {0, 1, 2} and df.height >= 30
    assert (out / "models.parquet").is_file() and (out / "scan.json").is_file()
    res = CliRunner().invoke(dedupe, [str(out)])
    assert res.exit_code == 0 and f"found {df.height}" in res.output


def test_killed_island_restarts_without_loss_or_duplicates(ray_session, tmp_path):
    from rayflavor.orchestration.islands import IslandActor

    cfg = {"mass_tolerance": 0.9, "target_valid": 40}
    actor = IslandActor.options(max_restarts=2, max_task_retries=2).remote(str(tmp_path), 0, 1, cfg, RELAXED, 0.2)
    # short slices: stop at the first valid models, well before the target (an idle machine
    # reached all 40 within one 3 s slice, and then there was nothing left to restart)
    st = ray_session.get(actor.run.remote(0.5))
    while st["n_valid"] == 0 and st["stop_reason"] is None:
        st = ray_session.get(actor.run.remote(0.5))
    before = st["n_valid"]
    assert before > 0 and st["starts"] == 1 and st["stop_reason"] is None
    os.kill(st["pid"], signal.SIGKILL)
    while st["stop_reason"] is None:
        st = ray_session.get(actor.run.remote(2.0))
    assert st["starts"] == 2 and st["stop_reason"] == "target-valid"
    df = _assert_valid_and_unique(tmp_path)
    assert df.height == st["n_valid"] >= before
    ray_session.kill(actor)


@pytest.mark.slow
def test_resume_after_killing_the_driver(ray_session, tmp_path):
    out = tmp_path / "scan"
    code = "import sys; from rayflavor.cli.scan import scan; scan(sys.argv[1:])"
    args = ["--islands", "2", "--target-valid", "300", "--seed", "1", "--out", str(out), *FAST]  # ~13 s: killed mid-scan
    proc = subprocess.Popen([sys.executable, "-c", code, *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list_parts(out):
            time.sleep(0.2)
        assert list_parts(out), "the driver wrote no part file"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-scan
        proc.wait()
    before = _rows(out).select(list(fn.CHARGES)).rows()
    res = CliRunner().invoke(scan, ["--resume", "--out", str(out), "--no-live", "--time-limit", "180s"])
    assert res.exit_code == 0, res.output
    df = _assert_valid_and_unique(out)
    assert set(before) <= set(df.select(list(fn.CHARGES)).rows())  # nothing written before the kill is lost
    assert len(df) > len(before)  # the unfinished island continued from its checkpoint
    table = res.output.split("restarts  state")[1].split(" total")[0]
    assert table.count("target-valid") + table.count("patience") + table.count("time-limit") == 2
    assert "duplicates 0" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--islands", "-1"], "--islands"),
        (["--regime", "sideways"], "--regime"),
        (["--data", "/no/such/file.toml"], "neither a shipped name"),
        (["--time-limit", "soon"], "not a duration"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(tmp_path, args, message):
    res = CliRunner().invoke(scan, [*args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unreadable_data_file_and_missing_resume(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = not [ toml")
    res = CliRunner().invoke(scan, ["--data", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(scan, ["--resume", "--out", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no scan to resume" in res.output

"""The scan's storage on a real S3 API: moto's server on 127.0.0.1 (``moto_server``/``s3_bucket``
fixtures of conftest.py: a session server, a fresh bucket and the standard AWS variables per test,
restored afterwards).

The last test runs the whole chain (``rayflavor scan --out s3://…`` with a killed island,
``dedupe``, ``analyze --html``); it needs the scan helper's driver (IslandStore-based
``orchestration/islands.py``, branch ``scan``) and an ``analyze`` that reads URIs (branch
``harden``), and is skipped until the scan driver is merged.
"""

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

from rayflavor.bench.dedupe import synthetic_parts
from rayflavor.cli.dedupe import dedupe as dedupe_cmd
from rayflavor.storage.dedupe import dedupe
from rayflavor.storage.island_store import IslandStore, committed_parts, island_location
from rayflavor.storage.location import resolve

DATA = "nufit-6.0+pdg-2024"
TESTS = Path(__file__).parent


def _toy(out: str, until: int, kill_at: int | None) -> int:
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from test_store_island import toy_run; "
            "toy_run(sys.argv[1], int(sys.argv[2]), None if sys.argv[4] == '-' else int(sys.argv[4]))")
    return subprocess.run([sys.executable, "-c", code, out, str(until), str(TESTS),
                           "-" if kill_at is None else str(kill_at)], env={**os.environ}).returncode


def _toy_rows(out: str) -> list[tuple[int, int]]:
    rows = []
    for p in committed_parts(resolve(out)):
        t = p.read_parquet()
        rows += list(zip(t["id"].to_pylist(), t["generation"].to_pylist()))
    return rows


def test_island_store_commit_and_replay_after_a_kill_on_s3(s3_bucket):
    ref, killed = f"{s3_bucket}/ref", f"{s3_bucket}/killed"
    assert _toy(ref, 10, None) == 0
    expected = _toy_rows(ref)
    assert len(expected) > 10
    assert _toy(killed, 10, 3) == -signal.SIGKILL  # killed after its 3rd part/state PUT, before the checkpoint
    d = island_location(resolve(killed), 0)
    ck = IslandStore(resolve(killed), 0).read_checkpoint()
    listed = {p["name"] for p in ck["parts"]} | {ck["state"]["arrays"]}
    strays = [n for n in d.list() if n.startswith(("part-", "state-")) and n not in listed]
    assert strays  # the dead attempt's objects are in the bucket ...
    assert _toy_rows(killed) == expected[:len(_toy_rows(killed))]  # ... and no reader sees them
    assert _toy(killed, 10, None) == 0
    assert _toy_rows(killed) == expected  # replay: nothing lost, nothing twice
    assert not set(strays) & set(d.list())  # garbage-collected by the next attempt


def test_state_round_trip_on_s3(s3_bucket):
    out = resolve(f"{s3_bucket}/scan")
    arrays = {"pop": np.arange(12.0).reshape(3, 4), "seen": np.arange(36).reshape(2, 18)}
    IslandStore(out, 5).commit(None, {"generation": 3, "stop_reason": None}, arrays, {"starts": [{"node_ip": "x"}]})
    meta, got, info = IslandStore(out, 5).load()
    assert meta == {"generation": 3, "stop_reason": None} and info == {"starts": [{"node_ip": "x"}]}
    assert all(np.array_equal(got[k], v) and got[k].dtype == v.dtype for k, v in arrays.items())


def test_dedupe_on_s3_compacts_and_polars_reads_the_result_from_the_uri(s3_bucket):
    uri = f"{s3_bucket}/scan"
    w = synthetic_parts(uri, 2000, 2, rows_per_part=300, duplicate_fraction=0.25, seed=3)
    stray = island_location(resolve(uri), 0) / "part-000099-deadbeef.parquet"  # a dead attempt's object
    stray.write_bytes(committed_parts(resolve(uri))[0].read_bytes())
    res = CliRunner().invoke(dedupe_cmd, [uri])
    assert res.exit_code == 0, res.output
    assert f"found 2000  unique {w['unique']}  duplicates {2000 - w['unique']}" in res.stdout
    assert "compacted 8 parts of 2 islands" in res.stdout and res.stderr == ""
    assert [len(IslandStore(resolve(uri), i).committed_parts()) for i in (0, 1)] == [1, 1]
    models = pl.read_parquet(f"{uri}/models.parquet")
    assert models.height == w["unique"] and models["distance"].is_finite().all()
    assert pl.scan_parquet([p.polars_source() for p in committed_parts(resolve(uri))]).select(pl.len()).collect().item() == 2000
    assert not resolve(f"{uri}/LOCK.json").exists()  # the dedupe's lease is released


def test_damaged_object_on_s3_is_named_and_counted(s3_bucket):
    uri = f"{s3_bucket}/scan"
    synthetic_parts(uri, 900, 1, rows_per_part=300, duplicate_fraction=0.0, seed=4)
    bad = committed_parts(resolve(uri))[1]
    bad.write_bytes(bad.read_bytes()[:1000])  # a truncated object
    warned = []
    c = dedupe(uri, DATA, warn=warned.append)
    assert (c.found, c.unique, c.damaged) == (600, 600, 1)
    assert len(warned) == 1 and bad.uri in warned[0] and "damaged" in warned[0]
    assert IslandStore(resolve(uri), 0).quarantined()[0]["name"] == bad.name
    assert pl.read_parquet(f"{uri}/models.parquet").height == 600


def test_bad_bucket_is_one_line_and_exit_2(s3_bucket):
    res = CliRunner().invoke(dedupe_cmd, ["s3://no-such-bucket-rf/scan"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output


# ---------------------------------------------------------------------------- the whole chain
def _scan_driver_merged() -> bool:
    from rayflavor.orchestration import islands

    return hasattr(islands, "HeldLease") and "IslandStore" in vars(islands)


RELAXED = str(TESTS / "data_relaxed.toml")


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not _scan_driver_merged(), reason="needs the scan helper's IslandStore driver (branch scan) "
                    "and an analyze that reads URIs (branch harden)")  # the old CLI would make a local ./s3:/ dir
def test_scan_dedupe_analyze_on_s3_with_a_killed_island(s3_bucket, tmp_path):
    """``rayflavor scan --out s3://…`` in a subprocess (its own embedded Ray, started with the
    AWS variables, so every actor reaches the bucket); one island actor is SIGKILLed after the
    first committed part and resumes from its checkpoint in the bucket; then dedupe and
    ``analyze --html`` read the same URI."""
    import psutil

    uri = f"{s3_bucket}/scan"
    config = tmp_path / "run.toml"
    config.write_text("flush_rows = 5\nflush_seconds = 1.0\nchunk_seconds = 1.0\n"  # commit early and often
                      "[island]\ntarget_valid = 150\nmass_tolerance = 0.9\n")
    args = ["--islands", "2", "--seed", "1", "--out", uri, "--data", RELAXED,
            "--no-live", "--time-limit", "240s", "--config", str(config)]
    import tempfile

    # a private Ray temp dir: the embedded Ray must not join a `ray start` cluster of this machine
    ray_tmp = tempfile.mkdtemp(prefix="rf-s3-")
    proc = subprocess.Popen([sys.executable, "-m", "rayflavor.cli.main", "scan", *args], env={**os.environ, "RAY_TMPDIR": ray_tmp},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            if committed_parts(resolve(uri)):
                # only this scan's actors (descendants of its driver): other Ray sessions on the machine
                # run IslandActors too
                for p in psutil.Process(proc.pid).children(recursive=True):
                    try:
                        cmdline = p.cmdline()
                    except psutil.Error:
                        continue
                    if any("IslandActor" in part or "IslandRunner" in part for part in cmdline):
                        os.kill(p.pid, signal.SIGKILL)
                        killed = p.pid
                        break
            time.sleep(0.3)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert killed is not None, "no island actor was found to kill"
    assert proc.returncode == 0, output
    out = resolve(uri)
    starts = [len(IslandStore(out, i).load()[2]["starts"]) for i in (0, 1)]
    assert max(starts) >= 2  # the killed island resumed from its checkpoint in the bucket
    df = pl.concat([pl.read_parquet(p.polars_source()) for p in committed_parts(out)])
    for _, g in df.group_by("island"):
        assert g.select(pl.col("^q_.*$")).unique().height == g.height  # nothing committed twice
    from rayflavor.physics import data, fn

    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert fn.evaluate(x, data=data.load(RELAXED), mass_tolerance=0.9)["valid"].all()
    res = CliRunner().invoke(dedupe_cmd, [uri])
    assert res.exit_code == 0 and f"found {df.height}" in res.output, res.output
    assert pl.read_parquet(f"{uri}/models.parquet").height == df.select(list(fn.CHARGES)).unique().height
    from rayflavor.cli.analyze import analyze

    res = CliRunner().invoke(analyze, [uri, "--html"])
    assert res.exit_code == 0, res.output

"""Storage faults: transient store errors are retried (a scan on s3:// rides out a store outage
behind a proxy on 127.0.0.1 that the test switches off), permanent ones end the scan with one
line and ``scan.json`` status "failed", an island that raises is visible, a full disk is a
permanent failure."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from helpers import SwitchableProxy, ray_subprocess_env
from hypothesis import given, settings, strategies as st

from rayflavor.cli.scan import scan
from rayflavor.orchestration.scan_settings import ScanSettings
from rayflavor.physics import data, fn
from rayflavor.storage import location
from rayflavor.storage.island_store import IslandStore, committed_parts, list_islands
from rayflavor.storage.location import StorageError, is_transient, resolve, retry_transient

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))
ROOT = Path(__file__).resolve().parents[1]
FAST = ["--data", RELAXED, "--no-live"]
#: the [island] table of a quick scan on the relaxed data (with target_valid appended)
ISLAND = "\n[island]\nmass_tolerance = 0.9\n"


# ---------------------------------------------------------------------------- retry rules (no store)
@pytest.mark.parametrize("text, transient", [
    ("AWS Error NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Could not connect to server", True),
    ("AWS Error NETWORK_CONNECTION during CreateMultipartUpload operation: curlCode: 56, Failure when receiving", True),
    ("AWS Error SLOW_DOWN during ListObjectsV2 operation: Please reduce your request rate.", True),
    ("AWS Error UNKNOWN (HTTP status 503) during HeadObject operation: No response body.", True),
    ("AWS Error NO_SUCH_BUCKET during HeadBucket operation: The specified bucket does not exist", False),
    ("AWS Error ACCESS_DENIED during PutObject operation", False),
    ("AWS Error UNKNOWN (HTTP status 404) during HeadObject operation", False),
])
def test_transient_store_errors_are_told_from_permanent_ones(text, transient):
    assert is_transient(OSError(text)) is transient
    assert not is_transient(OSError(errno.ENOSPC, "No space left on device"))


def test_retry_backs_off_with_jitter_until_the_deadline():
    now = [0.0]
    pauses: list[float] = []

    def sleep(s):
        pauses.append(s)
        now[0] += s

    calls = []

    def flaky():
        calls.append(now[0])
        if len(calls) < 5:
            raise OSError("AWS Error SLOW_DOWN during PutObject operation")
        return "done"

    assert retry_transient(flaky, seconds=60, sleep=sleep, clock=lambda: now[0]) == "done"
    caps = [min(location.BACKOFF_MAX, location.BACKOFF_FIRST * 2 ** k) for k in range(4)]
    assert all(0 < p <= max(c, 0.05) for p, c in zip(pauses, caps))  # exponential caps, jittered below them
    calls.clear(), pauses.clear()
    now[0] = 0.0

    def down():
        calls.append(now[0])
        raise OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7, Could not connect")

    with pytest.raises(OSError, match="NETWORK_CONNECTION"):
        retry_transient(down, seconds=40, sleep=sleep, clock=lambda: now[0])
    assert 40 - 1e-9 <= now[0] <= 40 + 1e-9 and len(calls) > 5  # gave up exactly at the deadline
    calls.clear()

    def permanent():
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        retry_transient(permanent, seconds=40, sleep=sleep, clock=lambda: now[0])
    assert calls == [1]  # never retried


# ---------------------------------------------------------------------------- through a switchable proxy
@pytest.fixture
def proxied_bucket(s3_bucket, monkeypatch):
    """``(s3://bucket, proxy)``: the test's AWS endpoint is a :class:`SwitchableProxy` in front of
    moto (the fixture's direct endpoint stays in ``direct``)."""
    direct = os.environ["AWS_ENDPOINT_URL"]
    with SwitchableProxy(direct.split("://", 1)[1]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield s3_bucket, proxy, direct



@settings(max_examples=200, deadline=None)
@given(seconds=st.floats(0.01, 600), seed=st.integers(0, 2**32 - 1))
def test_a_store_that_stays_down_is_given_up_exactly_at_the_deadline(seconds, seed):
    """Whatever the jitter draws, the retries end on the deadline, never past it (CI of 63e1641 saw
    a last pause floored at 50 ms overshoot it), and every pause is positive."""
    now, pauses = [0.0], []

    def sleep(s):
        pauses.append(s)
        now[0] += s

    def down():
        raise OSError("AWS Error NETWORK_CONNECTION during PutObject operation")

    random.seed(seed)
    with pytest.raises(OSError, match="NETWORK_CONNECTION"):
        retry_transient(down, seconds=seconds, sleep=sleep, clock=lambda: now[0])
    assert abs(now[0] - seconds) <= 1e-9 * max(1.0, seconds) and all(p > 0 for p in pauses)

def _switch_later(proxy: SwitchableProxy, seconds: float, mode: str) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(seconds), proxy.set(mode)), daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("fault", ["off", "slowdown"])
def test_a_location_with_retries_rides_out_an_outage_and_throttling(proxied_bucket, fault):
    bucket, proxy, _ = proxied_bucket
    loc = resolve(f"{bucket}/x").with_retries(60)
    (loc / "a.json").write_json({"v": 1})
    proxy.set(fault)
    t = _switch_later(proxy, 4.0, "on")
    t0 = time.monotonic()
    (loc / "a.json").write_json({"v": 2})  # blocks through the fault, then succeeds
    assert (loc / "a.json").read_json() == {"v": 2}
    assert time.monotonic() - t0 >= 3.0 and proxy.refused > 0
    t.join()
    assert resolve(f"{bucket}/x").with_retries(60).__reduce__()[1] == (f"{bucket}/x", 60.0)  # actors get the patience


def test_a_store_that_stays_down_fails_after_the_retry_deadline_in_one_line(proxied_bucket):
    bucket, proxy, _ = proxied_bucket
    proxy.set("off")
    t0 = time.monotonic()
    with pytest.raises(StorageError, match="cannot reach the object store") as exc:
        resolve(f"{bucket}/x").with_retries(3).write_json({"v": 1})
    assert 3.0 <= time.monotonic() - t0 < 30 and "\n" not in str(exc.value)
    t0 = time.monotonic()
    with pytest.raises(StorageError):
        resolve(f"{bucket}/x").write_json({"v": 1})  # no retries asked: pyarrow's own few, seconds
    assert time.monotonic() - t0 < 3.0 + 30


# ---------------------------------------------------------------------------- seeds (no Ray)
def test_a_seed_beyond_int64_is_refused_at_the_door(tmp_path):
    assert ScanSettings(islands=4, seed=2**63 - 4).seed == 2**63 - 4
    for seed, islands in ((2**64, 1), (2**63, 1)):  # beyond the declared bound of every seed
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 9223372036854775807\]"):
            ScanSettings(islands=islands, seed=seed)
    with pytest.raises(ValueError, match=r"seed must be at most 2\*\*63 - islands"):  # island 3's seed would not fit
        ScanSettings(islands=4, seed=2**63 - 3)
    out = tmp_path / "o"
    res = CliRunner().invoke(scan, ["--seed", "18446744073709551616", "--islands", "2", "--out", str(out), *FAST])
    assert res.exit_code == 2 and res.output.startswith("Error: ") and "seed must be an integer in" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


# ---------------------------------------------------------------------------- an island that raises
@pytest.mark.ray
def test_an_island_that_raises_fails_the_scan_visibly_and_keeps_its_commits(ray_session, tmp_path, monkeypatch):
    from rayflavor.orchestration import islands

    # defined here, so that Ray ships it by value (workers cannot import this test module)
    def _failing_island(cfg, dataset, *, island, seed):
        """The real island, except that island 0 raises at its first step after a model was drained."""
        from rayflavor.methods.ga.island import make_island

        isl = make_island(cfg, dataset, island=island, seed=seed)
        if island != 0:
            return isl

        class Failing:
            drained = 0

            def __getattr__(self, name):
                return getattr(isl, name)

            @property
            def done(self):
                return isl.done

            @property
            def n_pending(self):
                return isl.n_pending

            def drain(self):
                m = isl.drain()
                if m is not None:
                    self.drained += len(next(iter(m.values())))
                return m

            def step(self):
                if self.drained:
                    raise RuntimeError("injected fault after a commit")
                isl.step()

        return Failing()

    monkeypatch.setattr(islands, "run_scan", partial(islands.run_scan, make=_failing_island))
    out = tmp_path / "scan"
    cfg = tmp_path / "c.toml"
    cfg.write_text("flush_rows = 1\n" + ISLAND + "target_valid = 5\n")  # commit as soon as a model waits
    res = CliRunner().invoke(scan, ["--islands", "2", "--time-limit", "150s", "--seed", "1",
                                    "--out", str(out), "--config", str(cfg), *FAST])
    assert res.exit_code == 3, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: island 0 failed: RuntimeError: injected fault after a commit"), res.output
    doc = resolve(out / "scan.json").read_json()
    assert doc["status"] == "failed" and doc["failure"].startswith("island 0 failed: RuntimeError")
    assert doc["islands_status"]["0"]["state"] == "failed" and doc["islands_status"]["1"]["state"] == "done"
    kept = IslandStore(resolve(out), 0).committed_parts()
    assert kept and sum(p.read_parquet().num_rows for p in kept) >= 1  # its commits before the fault stand
    assert pl.read_parquet(out / "models.parquet").filter(pl.col("island") == 0).height >= 1


# ---------------------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB tmpfs (root only; skipped elsewhere, where the ENOSPC path is the same OSError)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.ray
def test_a_full_disk_mid_scan_ends_in_one_line_with_exit_3(ray_session, small_disk, tmp_path):
    out = small_disk / "scan"
    cfg = tmp_path / "c.toml"
    cfg.write_text("flush_rows = 1\nflush_seconds = 0.5\n" + ISLAND + "target_valid = 400\n")

    def fill():  # once models are committed, fill the disk to the last byte
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            try:
                if committed_parts(resolve(out)):
                    break
            except (StorageError, OSError):
                pass
            time.sleep(0.2)
        with open(small_disk / "ballast", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        try:
            with open(small_disk / "ballast2", "wb") as f:  # the last partial block
                while True:
                    f.write(b"\0")
                    f.flush()
        except OSError:
            pass

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    res = CliRunner().invoke(scan, ["--islands", "2", "--time-limit", "200s", "--seed", "3",
                                    "--out", str(out), "--config", str(cfg), *FAST])
    filler.join(timeout=10)
    assert res.exit_code == 3, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "No space left on device" in last, res.output
    assert "scan.json could not be updated" in last  # the disk is full: the line says so
    assert "Traceback" not in res.output
    (small_disk / "ballast").unlink()
    doc = resolve(out / "scan.json").read_json()
    assert doc["status"] == "running"  # as the line said: scan.json could not record the failure
    _committed_models(resolve(out))  # the models committed before are intact and re-validate


# ---------------------------------------------------------------------------- a scan through an outage
@contextlib.contextmanager
def _scan_until_the_store_goes_off(proxied_bucket, tmp_path, settings: str):
    """``rayflavor scan --out s3://…`` with ``settings`` (TOML) in a subprocess with its own embedded
    Ray, whose endpoint is the proxy; once a model is committed the proxy goes off.  Yields
    ``(process, the scan's location read past the proxy, the proxy)``; the process's stdout and
    stderr are pipes.  On exit a process still running is killed and its Ray temp dir removed."""
    bucket, proxy, direct = proxied_bucket
    uri = f"{bucket}/scan"
    cfg = tmp_path / "run.toml"
    cfg.write_text("flush_rows = 5\nflush_seconds = 1.0\nchunk_seconds = 1.0\n" + settings + ISLAND
                   + "target_valid = 150\n")
    args = ["--islands", "2", "--seed", "1", "--out", uri, "--data", RELAXED,
            "--no-live", "--time-limit", "300s", "--config", str(cfg)]
    ray_tmp = tempfile.mkdtemp(prefix="rf-store-")
    proc = subprocess.Popen([sys.executable, "-m", "rayflavor.cli.main", "scan", *args],
                            env=ray_subprocess_env(ROOT, RAY_TMPDIR=ray_tmp),  # its own Ray, on 127.0.0.1
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        os.environ["AWS_ENDPOINT_URL"] = direct  # the test reads the bucket past the proxy
        direct_out = resolve(uri)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not committed_parts(direct_out):
            time.sleep(0.2)
        assert proc.poll() is None and committed_parts(direct_out), "no commit before the store went off"
        proxy.set("off")
        yield proc, direct_out, proxy
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _committed_models(out) -> pl.DataFrame:
    """The committed models of ``out``; asserts there are some and that every one re-validates."""
    df = pl.concat([pl.read_parquet(p.read_bytes()) for p in committed_parts(out)])
    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert len(df) and fn.evaluate(x, data=data.load(RELAXED), mass_tolerance=0.9)["valid"].all()
    return df


@pytest.mark.slow
@pytest.mark.ray
def test_a_scan_on_s3_survives_a_40_s_store_outage(proxied_bucket, tmp_path):
    """Once models are committed the proxy goes off for 40 s, then on again.  The scan finishes,
    every committed model re-validates, none is duplicated, none is lost (each island's committed
    rows equal the models it reports found), and commits happened after the outage."""
    with _scan_until_the_store_goes_off(proxied_bucket, tmp_path, "") as (proc, direct_out, proxy):
        outage_start = time.time()
        time.sleep(40)
        proxy.set("on")
        outage_end = time.time()
        stdout, stderr = proc.communicate(timeout=420)
    output = stdout + stderr
    assert proc.returncode == 0, output
    assert proxy.refused > 0  # the outage was felt
    doc = (direct_out / "scan.json").read_json()
    assert doc["status"] == "finished", doc.get("failure")
    df = _committed_models(direct_out)  # every model re-validates
    after = []
    for i in list_islands(direct_out):
        g = df.filter(pl.col("island") == i)
        assert g.select(list(fn.CHARGES)).unique().height == g.height  # nothing committed twice
        ck = IslandStore(direct_out, i).read_checkpoint()
        assert g.height == ck["info"]["status"]["n_valid"]  # nothing found was lost
        after.append(ck["written_at"])
    from datetime import datetime

    assert max(datetime.fromisoformat(t).timestamp() for t in after) > outage_end  # commits went on after it
    assert outage_end - outage_start >= 40
    assert "duplicates" in output and "Error" not in output


@pytest.mark.slow
@pytest.mark.ray
def test_a_store_that_stays_down_ends_the_scan_in_one_line_with_exit_3(proxied_bucket, tmp_path):
    """The proxy goes off for good after the first commit (``store_retry_seconds = 5``): the scan
    ends with one ``Error:`` line naming the store and saying that scan.json could not be
    updated, exit code 3, no traceback (not even one Ray prints for an island's failed commit);
    the models committed before are intact."""
    with _scan_until_the_store_goes_off(proxied_bucket, tmp_path, "store_retry_seconds = 5.0\n") as (proc, direct_out, _):
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr + stdout, stderr
    assert "Unhandled error" not in stderr and 'File "' not in stderr, stderr  # no stack from Ray either
    assert "cannot reach the object store" in errors[0] and "scan.json could not be updated" in errors[0], errors[0]
    _committed_models(direct_out)


# ---------------------------------------------------------------------------- the runner keeps what a failed commit held
class _OneModelPerStep:
    """An island that finds one model per step (charge ``q_Q1`` = its generation), ``steps`` steps."""

    def __init__(self, cfg, dataset, *, island, seed, steps=6):
        self.island, self.seed, self.steps, self.generation, self.pending = island, seed, steps, 0, []
        self.stop_reason = None

    def step(self):
        self.generation += 1
        row = {name: np.zeros(1) for name in fn.PARAMETERS}
        row["q_Q1"] = np.array([float(self.generation)])
        row.update(valid=np.array([True]), generation=np.array([self.generation]), found_at=np.array([time.time()]))
        self.pending.append(row)
        if self.generation >= self.steps:
            self.stop_reason = "max-generations"

    @property
    def done(self):
        return self.stop_reason is not None

    @property
    def n_pending(self):
        return len(self.pending)

    def drain(self):
        if not self.pending:
            return None
        rows, self.pending = self.pending, []
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def status(self):
        return {"island": self.island, "seed": self.seed, "generation": self.generation, "n_valid": self.generation,
                "stop_reason": self.stop_reason}

    def get_state(self):
        return {"generation": self.generation, "stop_reason": self.stop_reason}, {"x": np.zeros(1)}


def test_a_failed_commit_keeps_the_drained_models_for_the_next_one(tmp_path):
    from rayflavor.orchestration.islands import IslandRunner

    runner = IslandRunner(str(tmp_path), {}, object(), flush_rows=1, flush_seconds=1e9, make=_OneModelPerStep)
    runner.start(0, 1)
    real = runner.store.commit
    calls = []

    def flaky(*args, **kwargs):  # the third commit of the island fails (a store that stayed down)
        calls.append(1)
        if len(calls) == 3:
            raise StorageError("s3://b/x: cannot reach the object store")
        return real(*args, **kwargs)

    runner.store.commit = flaky
    with pytest.raises(StorageError):
        runner.run(0, 1, seconds=60)
    runner.run(0, 1, seconds=60)  # the next call commits what the failed one held, then goes on
    rows = pl.concat([pl.read_parquet(p.uri) for p in IslandStore(resolve(tmp_path), 0).committed_parts()])
    assert sorted(rows["q_Q1"].to_list()) == [1, 2, 3, 4, 5, 6]  # none lost, none twice

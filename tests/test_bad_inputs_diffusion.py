"""Bad inputs and faults of ``rayflavor diffusion ...``, one row per case (issue 16).

Each row: the command line (``RUN`` stands for the run directory), the expected exit code, a
fragment of the one-line message, the state RUN starts in and a check of RUN afterwards. Ray is
never started (every case must be refused before it): the runtime is replaced by a tripwire.
Cases that need Ray (nothing selected in a fine-tuning round, a leftover manifest) are in
tests/test_diffusion_chain.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from rayflavor.cli.main import cli
from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.data import dataset_shard
from rayflavor.physics import seesaw
from rayflavor.storage import runs


# ----------------------------------------------------------------------------- starting states
def empty(run: Path) -> None:
    """RUN does not exist."""


def made(run: Path) -> None:
    run.mkdir()


def with_dataset(run: Path) -> None:
    """A finished 2-shard dataset of 40 points (written without Ray)."""
    d = runs.dataset_dir(run)
    runs.write_json({"n": 40, "seed": 0, "shards": 2, "data": seesaw.DEFAULT_DATA, "ordering": "NO",
                     "val_fraction": 0.1}, d / "manifest.json")
    for s in range(2):
        runs.write_table(dataset_shard(20, 0, s), runs.part_path(d, s))


def with_network(run: Path) -> None:
    """A dataset and an untrained pre-network."""
    with_dataset(run)
    g = seesaw.sample_prior(50, np.random.default_rng(0))
    lab = seesaw.labels(seesaw.evaluate(g))
    ok = np.isfinite(lab).all(1)
    training.save(runs.network_path(run, "pre"),
                  training.new_state(training.Normalizer.fit(g[ok], lab[ok]), total_steps=1), with_optimizer=False)


def truncated_part(run: Path) -> None:
    """A dataset whose part 1 lost its tail (e.g. a full disk)."""
    with_dataset(run)
    p = runs.part_path(runs.dataset_dir(run), 1)
    p.write_bytes(p.read_bytes()[:200])


def short_part(run: Path) -> None:
    """A dataset whose part 0 holds fewer rows than its manifest says."""
    with_dataset(run)
    runs.write_table(dataset_shard(5, 0, 0), runs.part_path(runs.dataset_dir(run), 0))


def locked(setup: Callable[[Path], None]) -> Callable[[Path], None]:
    """``setup``, then a live lease of another process (pid 1 on this host) on RUN."""
    def f(run: Path) -> None:
        setup(run)
        run.mkdir(exist_ok=True)
        (run / "LOCK.json").write_text(json.dumps({
            "owner": "rayflavor diffusion run", "host": socket.gethostname(), "pid": 1, "token": "other",
            "acquired_at": time.time(), "expires_at": time.time() + 600}))
    f.__doc__ = f"{setup.__doc__} Held by another process."
    return f


# ----------------------------------------------------------------------------- checks afterwards
def absent(run: Path) -> bool:
    """Nothing was written: RUN does not exist (so a corrected command is not blocked)."""
    return not run.exists()


def no_manifest(run: Path) -> bool:
    return not (runs.dataset_dir(run) / "manifest.json").exists()


def no_samples(run: Path) -> bool:
    return not (run / "samples").exists() and not (run / "LOCK.json").exists()


def no_network(run: Path) -> bool:
    return runs.networks(run) == [] and not (run / "LOCK.json").exists()


def lock_kept(run: Path) -> bool:
    """The other process's lease is untouched."""
    return json.loads((run / "LOCK.json").read_text())["token"] == "other"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    message: str
    start: Callable[[Path], None]
    after: Callable[[Path], bool]


# --- diffusion cases
CASES = [
    # zero-row shards (a null-typed split column broke training): refused in one line
    Case(("dataset", "--n", "20", "--shards", "30", "--out", "RUN"), 2, "--shards must be between 1 and --n (20)",
         empty, absent),
    Case(("dataset", "--n", "20", "--shards", "0", "--out", "RUN"), 2, "--shards must be between 1", empty, absent),
    # bad input must not leave a manifest that blocks the corrected command
    Case(("dataset", "--seed", "-1", "--out", "RUN"), 2, "--seed must be an integer >= 0", empty, absent),
    Case(("dataset", "--n", "5", "--out", "RUN"), 2, "--n must be an integer >= 10", empty, absent),
    # NaN and nonsense are refused before a sample is drawn or a manifest written
    Case(("sample", "RUN", "--guidance", "nan"), 2, "guidance: must be a finite number", with_network, no_samples),
    Case(("sample", "RUN", "--clip", "inf"), 2, "clip: must be a finite number", with_network, no_samples),
    Case(("sample", "RUN", "--n", "20", "--shards", "30"), 2, "must not exceed n (20)", with_network, no_samples),
    Case(("sample", "RUN", "--steps", "0"), 2, "steps must be >= 1", with_network, no_samples),
    Case(("sample", "RUN", "--seed", "-3"), 2, "seed must be an integer >= 0", with_network, no_samples),
    Case(("sample", "RUN", "--temperature", "0.5"), 2, "No such option '--temperature'", with_network, no_samples),
    Case(("finetune", "RUN", "--per-solution", "nan"), 2, "per_solution: must be a finite number", with_network,
         no_samples),
    Case(("finetune", "RUN", "--select", "best"), 2, "'best' is not one of", with_network, no_samples),
    Case(("finetune", "RUN", "--tighten", "0.5"), 2, "No such option '--tighten'", with_network, no_samples),
    Case(("run", "RUN", "--final-guidance", "nan"), 2, "final_guidance: must be a finite number", empty, absent),
    Case(("run", "RUN", "--n-select", "20", "--shards", "30"), 2, "No such option '--shards'", empty, absent),
    # a damaged dataset part is named in one line (train used to fail in Ray with a traceback)
    Case(("train", "RUN"), 2, "part-00001.parquet: not a readable Parquet file", truncated_part, no_network),
    Case(("train", "RUN"), 2, "part-00000.parquet: 5 rows, expected 20", short_part, no_network),
    # a second writer on one RUN gets one line naming the holder
    Case(("dataset", "--n", "20", "--out", "RUN"), 2, "is in use by rayflavor diffusion run (pid 1 on", locked(empty),
         lock_kept),
    Case(("train", "RUN"), 2, "is in use by rayflavor diffusion run (pid 1 on", locked(with_dataset), lock_kept),
    Case(("sample", "RUN", "--n", "10"), 2, "is in use by", locked(with_network), lock_kept),
    Case(("finetune", "RUN"), 2, "is in use by", locked(with_network), lock_kept),
    Case(("run", "RUN"), 2, "is in use by", locked(made), lock_kept),
    # a URI scheme pyarrow cannot serve: refused in one line, never a local directory "hdfs:"
    Case(("run", "hdfs://host/run", "--rounds", "1"), 2, "unsupported URI scheme 'hdfs'", empty,
         lambda run: not Path("hdfs:").exists()),
    Case(("dataset", "--out", "ftp://host/run"), 2, "unsupported URI scheme 'ftp'", empty,
         lambda run: not Path("ftp:").exists()),
]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.args) + f" [{c.start.__name__}]" for c in CASES])
def test_diffusion_bad_input(case: Case, tmp_path, monkeypatch):
    import rayflavor.orchestration.runtime as runtime

    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a command that cannot proceed")

    monkeypatch.setattr(runtime, "ensure_ray", no_ray)
    run = tmp_path / "run"
    case.start(run)
    args = [str(run) if a == "RUN" else a for a in case.args]
    r = CliRunner().invoke(cli, ["diffusion", *args])
    assert r.exit_code == case.code, r.output
    assert case.message in r.output, r.output
    assert "Traceback" not in r.output
    if "No such option" not in case.message and "is not one of" not in case.message:
        assert len(r.output.strip().splitlines()) == 1, r.output  # one line (click's usage errors aside)
    assert case.after(run), case.after.__doc__ or case.after.__name__


def test_a_dead_holder_does_not_block_a_run_directory(tmp_path, monkeypatch):
    """A lease left by a process that no longer exists is taken over at once."""
    import rayflavor.orchestration.runtime as runtime

    monkeypatch.setattr(runtime, "ensure_ray", lambda *a, **k: None)
    run = tmp_path / "run"
    with_network(run)
    dead = 2 ** 22 + 12345
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
        except PermissionError:
            dead += 1
    (run / "LOCK.json").write_text(json.dumps({"owner": "x", "host": socket.gethostname(), "pid": dead,
                                                "token": "t", "expires_at": time.time() + 600}))
    r = CliRunner().invoke(cli, ["diffusion", "sample", str(run), "--guidance", "nan"])
    assert r.exit_code == 2 and "guidance" in r.output  # got past the lease check to the settings
    calls = []
    import rayflavor.orchestration.diffusion_sample as ds_mod

    monkeypatch.setattr(ds_mod, "sample_run", lambda *a, **k: calls.append((run / "LOCK.json").exists()))
    r = CliRunner().invoke(cli, ["diffusion", "sample", str(run), "--n", "10"])
    assert r.exit_code == 0, r.output
    assert calls == [True]  # held while it worked
    assert not (run / "LOCK.json").exists()  # released afterwards

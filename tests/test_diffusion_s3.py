"""A diffusion run on object storage: ``diffusion run s3://bucket/run`` against an S3 API on 127.0.0.1.

The chain runs in a subprocess (its own local Ray, so the Ray workers see the test's AWS
variables): dataset shards, Ray Train checkpoints, networks, sample shards, manifests and
``solutions.parquet`` all go to the bucket, nothing to the local disk; a second run resumes
from the bucket alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rayflavor.storage import runs
from rayflavor.storage.location import resolve

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-data", "300", "--train-steps", "20", "--teacher", "none", "--rounds", "1", "--ft-steps", "10", "--n-select", "200",
        "--n", "100", "--seed", "2"]
#: the settings of the tiny chain that are not options (a --config file beside the working directory)
#: (a 20-step network decodes almost no draw inside the prior box: its final sample bounds them)
TINY_CONFIG = ("final_physics = 0\nfinal_project = 0\nfinal_outside = 'bound'\n[sampling]\nsteps = 2\n[selection]\n"
               "select = 'cuts'\nmin_select = 40\n")


def _cli(args, cwd):
    """``rayflavor diffusion *args --config <tiny>`` run in ``cwd``; the config file lies outside it,
    so that ``cwd`` shows whatever the run itself writes to the local disk."""
    config = Path(cwd).parent / "tiny.toml"
    config.write_text(TINY_CONFIG)
    env = {**os.environ, "RAY_ADDRESS": "local", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rayflavor.cli.main", "diffusion", *args, "--config", str(config)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def test_diffusion_run_on_s3_writes_everything_to_the_bucket_and_resumes_from_it(s3_bucket, tmp_path):
    uri = f"{s3_bucket}/run"
    work = tmp_path / "cwd"
    work.mkdir()
    r = _cli(["run", uri, *TINY], cwd=work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "solutions:" in r.stdout
    run = resolve(uri)
    assert runs.networks(run) == ["pre", "tuned-1"]
    assert json.loads((run / "run.json").read_text())["settings"]["rounds"] == 1
    assert runs.finished_parts(runs.dataset_dir(run)) and runs.read_parts(runs.dataset_dir(run)).num_rows == 300
    ckpts = runs.ray_storage(run)
    assert any(name.startswith("pre-") for name in ckpts.list())  # Ray Train checkpointed into the bucket
    assert runs.solutions_path(run).is_file() and runs.finetune_path(run, "tuned-1").is_file()
    assert not (run / "LOCK.json").exists()  # the lease was released
    assert sorted(p.name for p in work.iterdir()) == []  # nothing landed on the local disk
    again = _cli(["run", uri, *TINY], cwd=work)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already finished" in again.stdout and "round 1:" not in again.stdout

"""End to end on a real Ray head: ``ray start --head`` on 127.0.0.1 (dashboard on), a small scan
submitted with ``ray job submit`` running jobs/scan.py, SUCCEEDED, Parquet output checked, head
stopped.  Bounded in time and cleaned up even on failure.

Ray 2.60 enables token authentication; head and client both run with RAY_AUTH_MODE=token
(the token is generated into ~/.ray/auth_token by the head and read from there by the client).
The head runs as ``ray start --block`` in its own process group, so stopping it never touches
the Ray instance of the rest of the test session (``ray stop`` would kill every Ray on the host).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from helpers import NO_CLOUD_METADATA_ENV, free_ports, stop_process_group

ROOT = Path(__file__).resolve().parent.parent
RELAXED = ROOT / "tests" / "data_relaxed.toml"


def _ray_cli() -> list[str]:
    return [sys.executable, "-m", "ray.scripts.scripts"]


@pytest.mark.slow
def test_scan_job_on_a_loopback_head(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", **NO_CLOUD_METADATA_ENV}
    env.pop("RAY_ADDRESS", None)
    # every port explicit: the session's own Ray (ray_session fixture) may hold the defaults,
    # e.g. the dashboard agent's 52365, and a second agent on it never comes up
    gcs, dash, agent_http, agent_grpc, rt_env, metrics = free_ports(6)
    temp = Path("/tmp") / f"rf{os.getpid()}"  # short: Ray's socket paths have a length limit
    head = subprocess.Popen(
        _ray_cli() + ["start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                      "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                      f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
                      f"--runtime-env-agent-port={rt_env}", f"--metrics-export-port={metrics}",
                      "--num-cpus=2", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    out = tmp_path / "scan"
    config = tmp_path / "relaxed.toml"
    config.write_text("[island]\nmass_tolerance = 0.9\ntarget_valid = 5\n")
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for the dashboard's job API
            assert head.poll() is None, head.stdout.read()
            probe = subprocess.run(_ray_cli() + ["job", "list", "--address", address], env=env,
                                   capture_output=True, text=True, timeout=60)
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, probe.stderr[-2000:]
            time.sleep(2)
        cmd = (
            _ray_cli() + ["job", "submit", "--address", address, "--working-dir", str(ROOT),
                          "--runtime-env-json", '{"excludes": [".git", "tests/__pycache__"]}', "--",
                          "python", "jobs/scan.py", "--islands", "2", "--time-limit", "90s", "--seed", "3",
                          "--config", str(config), "--data", str(RELAXED), "--out", str(out)]
        )
        while True:  # the job agent on the head node may come up after the dashboard
            submit = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
            log = submit.stdout + submit.stderr
            if "No available agent" not in log or time.monotonic() > deadline + 120:
                break
            time.sleep(3)
        assert submit.returncode == 0, log[-4000:]
        job_id = re.search(r"Job '(raysubmit_\w+)' submitted", log).group(1)
        sdk = ("from ray.job_submission import JobSubmissionClient as C; "
               f"print(C({address!r}).get_job_status({job_id!r}).value)")
        status = subprocess.run([sys.executable, "-c", sdk], env=env, capture_output=True, text=True, timeout=60)
        assert status.stdout.strip().splitlines()[-1] == "SUCCEEDED", status.stdout + status.stderr
        models = pl.read_parquet(out / "models.parquet")
        assert models.height > 0 and models["valid"].all()
        assert {"q_Q1", "island", "seed", "generation", "found_at", "loss_ckm_s12"} <= set(models.columns)
        assert (out / "scan.json").is_file()
    finally:
        stop_process_group(head, temp)

"""Bad input to ``rayflavor scan``: one row per case -- arguments, exit code, message fragment, and
the state of OUT afterwards ("absent": nothing was written, not even the directory).

Every case fails before Ray starts and before the first byte is written (issue 16.7/16.8), so the
table runs without Ray.  Rows go in the format of tests/test_bad_inputs.py (``# --- scan cases``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rayflavor.cli.scan import scan

RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))

# --- scan cases
CASES = [
    (["--islands", "-1"], 2, "--islands", "absent"),
    (["--regime", "sideways"], 2, "--regime", "absent"),
    (["--data", "/no/such/file.toml"], 2, "neither a shipped name", "absent"),
    (["--time-limit", "soon"], 2, "not a duration", "absent"),
    (["--log10-lambda", "nan"], 2, "log10_lambda", "absent"),
    (["--log10-lambda", "1e308"], 2, "log10_lambda", "absent"),
    (["--mass-tolerance", "1.5"], 2, "mass_tolerance", "absent"),
    (["--mass-tolerance", "nan"], 2, "mass_tolerance", "absent"),
    (["--pop-size", "1000000", "--time-limit", "10s"], 2, "pop_size", "absent"),
    (["--address", "not an address"], 2, "not a Ray address", "absent"),
    (["--address", "127.0.0.1:1"], 2, "no Ray head answers", "absent"),
    (["--config", "/no/such/settings.toml"], 2, "no such file", "absent"),
    (["--preset", "paper", "--method", "fast"], 2, "contradicts", "absent"),
    (["--resume"], 2, "no scan to resume", "absent"),
]
URI_CASES = [
    ("ftp://host/scan", "unsupported URI scheme"),
    ("s3://", "no bucket"),
]


@pytest.mark.parametrize("args, code, message, state", CASES)
def test_bad_scan_input(tmp_path, args, code, message, state):
    out = tmp_path / "o"
    res = CliRunner().invoke(scan, [*args, "--out", str(out), "--no-live", "--seed", "1", "--data", RELAXED]
                             if "--data" not in args else [*args, "--out", str(out), "--no-live"])
    assert res.exit_code == code, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("Error: ")
    assert state == "absent" and not out.exists()


@pytest.mark.parametrize("text, message", [
    ("islands = 0\n", "islands"),
    ("unknown_key = 1\n", "unknown setting"),
    ("[island]\nmass_tolerance = nan\n", "mass_tolerance"),
    ("time_limit = -5.0\n", "time_limit"),
    ("this is = not [ toml", "not valid TOML"),
])
def test_bad_config_file(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = tmp_path / "o"
    res = CliRunner().invoke(scan, ["--config", str(cfg), "--out", str(out), "--no-live"])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()


@pytest.mark.parametrize("uri, message", URI_CASES)
def test_bad_out_uri(uri, message):
    res = CliRunner().invoke(scan, ["--out", uri, "--no-live", "--seed", "1", "--data", RELAXED])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_missing_bucket_is_one_line(s3_bucket):
    res = CliRunner().invoke(scan, ["--out", s3_bucket + "-missing/scan", "--no-live", "--seed", "1", "--data", RELAXED])
    assert res.exit_code == 2 and "bucket does not exist" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1

"""``rayflavor evaluate``: round trip on the shipped examples and every user-error path."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rayflavor import examples
from rayflavor.cli.main import cli
from rayflavor.physics import fn, seesaw


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("model", ["seesaw", "fn"])
def test_examples_evaluate_and_match_the_library(tmp_path, model):
    out = tmp_path / "out.parquet"
    res = _run("evaluate", "--model", model, str(examples.path(model)), "-o", str(out))
    assert res.exit_code == 0, res.output
    table = pq.read_table(out).to_pydict()
    params = pq.read_table(examples.path(model)).to_pydict()
    mod = seesaw if model == "seesaw" else fn
    x = np.column_stack([params[k] for k in mod.PARAMETERS]).astype(float)
    direct = mod.evaluate(x)
    assert table["valid"] == direct["valid"].tolist()
    key = "m3" if model == "seesaw" else "m_t"
    np.testing.assert_allclose(table[key], direct[key])
    for k in mod.PARAMETERS:
        assert table[k] == params[k]
    if model == "seesaw":
        assert table["valid"][0]  # the shipped known-answer NO point is a solution


def test_seesaw_io_labelling_changes_verdict(tmp_path):
    out = tmp_path / "io.parquet"
    assert _run("evaluate", "--model", "seesaw", "--ordering", "IO", str(examples.path("seesaw")), "-o", str(out)).exit_code == 0
    assert not any(pq.read_table(out).column("valid").to_pylist())


def _write(tmp_path, cols, name="in.parquet"):
    p = tmp_path / name
    pq.write_table(pa.table(cols), p)
    return p


def _seesaw_cols(n=3):
    x = seesaw.sample_prior(n, np.random.default_rng(0))
    return {k: x[:, i] for i, k in enumerate(seesaw.PARAMETERS)}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.pop("m1_over_m3"), "missing parameter column(s): m1_over_m3"),
        (lambda c: c.__setitem__("arg_m1", np.array(["a", "b", "c"])), "column 'arg_m1' has type"),
        (lambda c: c["y_re_1e"].__setitem__(1, np.nan), "column 'y_re_1e' has 1 NaN"),
        (lambda c: c["m2_over_m3"].__setitem__(2, -0.5), "column 'm2_over_m3' out of range at row 2"),
    ],
)
def test_bad_columns_give_one_line_and_exit_2(tmp_path, mutate, message):
    cols = _seesaw_cols()
    mutate(cols)
    res = _run("evaluate", "--model", "seesaw", str(_write(tmp_path, cols)), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.parquet").exists()


def test_fn_non_integer_charge_and_wilson_range(tmp_path):
    x = fn.random_parameters(2, np.random.default_rng(1))
    cols = {k: x[:, i] for i, k in enumerate(fn.PARAMETERS)}
    cols["q_L2"] = np.array([1.0, 1.5])
    res = _run("evaluate", "--model", "fn", str(_write(tmp_path, cols)), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "'q_L2' must hold integers" in res.output
    cols["q_L2"] = np.array([1.0, 2.0])
    cols["c_e_23"] = np.array([0.1, 1.0])
    res = _run("evaluate", "--model", "fn", str(_write(tmp_path, cols)), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "0.3 <= |c| <= 3" in res.output


def test_not_parquet_empty_missing_and_bad_data(tmp_path):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    res = _run("evaluate", "--model", "seesaw", str(junk), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "not a readable Parquet file" in res.output
    empty = _write(tmp_path, {k: np.array([], float) for k in seesaw.PARAMETERS}, "empty.parquet")
    res = _run("evaluate", "--model", "seesaw", str(empty), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "no rows" in res.output
    res = _run("evaluate", "--model", "seesaw", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "no such file" in res.output
    good = _write(tmp_path, _seesaw_cols())
    res = _run("evaluate", "--model", "seesaw", "--data", "nufit-9", str(good), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "neither a shipped name" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "something-else"\n')
    res = _run("evaluate", "--model", "fn", "--data", str(bad), str(good), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "not a rayflavor-data/1 file" in res.output


def test_user_data_file_of_the_same_format_is_used(tmp_path):
    from importlib import resources

    text = resources.files("rayflavor.physics").joinpath("data", "nufit-6.0-sk.toml").read_text()
    # widen the dm21 window so far that it cannot matter, narrow |U_e3| so nothing passes
    mine = tmp_path / "mine.toml"
    mine.write_text(text.replace("central = 0.149\nrange3 = [0.142, 0.155]", "central = 0.0005\nrange3 = [0.0, 0.001]"))
    out = tmp_path / "o.parquet"
    assert _run("evaluate", "--model", "seesaw", "--data", str(mine), str(examples.path("seesaw")), "-o", str(out)).exit_code == 0
    assert not any(pq.read_table(out).column("valid").to_pylist())


def test_singular_row_is_nan_and_invalid_not_a_crash(tmp_path):
    cols = _seesaw_cols()
    for k in seesaw.PARAMETERS[:18]:
        cols[k][1] = 0.0  # Y = 0
    out = tmp_path / "o.parquet"
    assert _run("evaluate", "--model", "seesaw", str(_write(tmp_path, cols)), "-o", str(out)).exit_code == 0
    assert pq.read_table(out).column("valid").to_pylist()[1] is False


def test_temporaries_of_live_writers_are_kept_stale_ones_removed(tmp_path):
    """The next write to a target removes only temporaries no running process will finish."""
    import os
    import subprocess
    import sys
    import time

    from rayflavor.storage import tables

    target = tmp_path / "o.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = tables._host()
    names = {
        "live": f".o.parquet.{os.getpid()}-999@{host}.tmp",  # a concurrent writer in this process
        "other-host-fresh": ".o.parquet.1-0@elsewhere.tmp",
        "other-host-old": ".o.parquet.2-0@elsewhere.tmp",
        "dead": f".o.parquet.{int(dead.stdout)}-0@{host}.tmp",
        "other-target": f".p.parquet.{int(dead.stdout)}-0@{host}.tmp",
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"x")
    old = time.time() - 2 * tables.STALE_SECONDS
    os.utime(tmp_path / names["other-host-old"], (old, old))
    assert {p.name for p in tables.stale_temporaries(target)} == {names["other-host-old"], names["dead"]}
    tables.write_atomic(pa.table({"a": [1]}), target)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"o.parquet", names["live"], names["other-host-fresh"], names["other-target"]}


def test_cli_and_library_share_the_mass_tolerance_default():
    import inspect

    from rayflavor.cli.evaluate import evaluate

    opt = next(p for p in evaluate.params if p.name == "mass_tolerance")
    assert opt.default is fn.DEFAULT_MASS_TOLERANCE
    assert inspect.signature(fn.evaluate).parameters["mass_tolerance"].default is fn.DEFAULT_MASS_TOLERANCE

"""analyze on hostile inputs: wrong column types and a read-only --out are one ``Error:`` line;
non-finite predictions and unknown orderings are left out with a warning that names them;
Chao2 with very many islands prints numbers, never NaN."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rayflavor.richness import chao2_from_counts
from rayflavor.cli.main import cli
from rayflavor.physics import fn
from rayflavor.storage.tables import to_arrow

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _fn_table(n=12, seed=3) -> pa.Table:
    x = fn.random_parameters(n, np.random.default_rng(seed), max_charge=3, log10_lambda_range=(12.0, 15.0))
    cols = {k: x[:, i] for i, k in enumerate(fn.PARAMETERS)}
    cols.update(fn.evaluate(x))
    cols["valid"][:] = True
    return to_arrow(cols)


def _replace(t: pa.Table, name: str, values) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, values if isinstance(values, pa.Array) else pa.array(values))


def _run(*args):
    res = CliRunner().invoke(cli, ["analyze", *map(str, args)])
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def _one_error(res, fragment):
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], res.output


def test_a_string_valid_column_is_one_error_line(tmp_path):
    t = _fn_table()
    pq.write_table(_replace(t, "valid", ["yes"] * t.num_rows), tmp_path / "x.parquet")
    _one_error(_run(tmp_path / "x.parquet"), "'valid'")


def test_a_list_typed_prediction_is_one_error_line(tmp_path):
    t = _fn_table()
    pq.write_table(_replace(t, "m_ee", pa.array([[0.1, 0.2]] * t.num_rows)), tmp_path / "x.parquet")
    _one_error(_run(tmp_path / "x.parquet"), "'m_ee'")


@pytest.mark.skipif(IS_ROOT, reason="root writes into a read-only directory")
def test_out_on_a_read_only_directory_is_one_error_line(tmp_path):
    pq.write_table(_fn_table(), tmp_path / "x.parquet")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        _one_error(_run(tmp_path / "x.parquet", "--out", ro / "figs"), str(ro))
    finally:
        os.chmod(ro, 0o700)


def test_infinite_predictions_and_unknown_orderings_are_left_out_with_a_warning(tmp_path):
    t = _fn_table()
    m_ee = t.column("m_ee").to_numpy().copy()
    m_ee[:2] = np.inf
    ordering = t.column("ordering").to_pylist()
    ordering[5] = "XX"
    t = _replace(_replace(t, "m_ee", m_ee), "ordering", ordering)
    pq.write_table(t, tmp_path / "x.parquet")
    res = _run(tmp_path / "x.parquet")
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert any("m_ee" in w and "2 row" in w and "inf" in w for w in warnings), res.output
    assert any("ordering" in w and "1 row" in w and "'XX'" in w for w in warnings), res.output
    assert "11 valid models of 12 rows" in res.output  # the XX row is not analysed


@pytest.mark.parametrize("m", [200_000, 10**9])
def test_chao2_with_very_many_islands_has_no_nan(m):
    counts = np.r_[np.ones(5000, np.int64), np.full(300, 2), np.full(50, 7)]
    r = chao2_from_counts(counts, m)
    line = r.line()
    assert "nan" not in line.lower() and "inf" not in line.lower(), line
    assert all(np.isfinite([r.estimate, r.std, r.low, r.high])) and r.low <= r.estimate <= r.high
    assert r.observed <= r.estimate


@pytest.mark.parametrize("counts", [np.zeros(0, np.int64), np.ones(3, np.int64), np.ones(200_000, np.int64),
                                    np.r_[np.ones(10**6, np.int64), 2]])
def test_chao2_line_never_shows_nan(counts):
    """200 000 islands that found nothing printed 'nan% seen' (0 / 0)."""
    r = chao2_from_counts(counts, 200_000)
    assert "nan" not in r.line().lower() and np.isfinite(r.completeness), r.line()
    assert np.isfinite([r.estimate, r.low, r.high]).all() and r.observed <= r.low <= r.estimate <= r.high


def test_out_below_a_regular_file_is_one_error_line(tmp_path):
    pq.write_table(_fn_table(), tmp_path / "x.parquet")
    (tmp_path / "file").write_text("x")
    _one_error(_run(tmp_path / "x.parquet", "--out", tmp_path / "file" / "figs"), "cannot create the directory")


@pytest.mark.parametrize("flag, values, expected", [("valid", [1.0, 0.5, 0.0, 2.0], 1), ("valid", [1, 1, 0, -1], 2)])
def test_a_numeric_flag_counts_only_the_rows_it_marks_with_one(tmp_path, flag, values, expected):
    """A float or integer ``valid`` column marks a row by 1 (as ``true``) and nothing else: 0.5 or 2.0 is
    not a model (a cast to boolean would count every non-zero value; the hypothesis property found it)."""
    t = _fn_table(4)
    t = _replace(t, flag, pa.array(values))
    pq.write_table(t, tmp_path / "in.parquet")
    res = _run(tmp_path / "in.parquet", "--out", tmp_path / "figs")
    assert res.exit_code == 0, res.output
    assert f": {expected} valid models of 4 rows" in res.output, res.output

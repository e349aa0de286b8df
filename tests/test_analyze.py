"""``rayflavor analyze``: summaries agree with the data, figures and the HTML report are written,
bands come from the data file."""

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rayflavor.cli.main import cli
from rayflavor.physics import bands, data, fn
from rayflavor.storage.tables import to_arrow, write_atomic


@pytest.fixture(scope="module")
def fn_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    x = fn.random_parameters(300, np.random.default_rng(0), max_charge=3, log10_lambda_range=(12.0, 15.0))
    x[:150, fn.PARAMETERS.index("eps_u_abs")], x[:150, fn.PARAMETERS.index("eps_d_abs")] = 0.05, 0.2  # down-leading
    cols = {k: x[:, i] for i, k in enumerate(fn.PARAMETERS)}
    cols.update(fn.evaluate(x))
    cols["valid"][:] = True  # a scan's models.parquet holds valid models only
    write_atomic(to_arrow(cols), out / "models.parquet")
    return out


def test_fn_summary_figures_and_report(fn_out):
    res = CliRunner().invoke(cli, ["analyze", str(fn_out), "--html"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "300 valid models of 300 rows" in res.output
    df = pl.read_parquet(fn_out / "models.parquet")
    for ordering, count in df.group_by("ordering").len().iter_rows():
        assert f"│ {ordering}" in res.output and str(count) in res.output
    assert "│ down   ┆ 150" in res.output and "│ up     ┆ 150" in res.output
    figs = sorted(p.name for p in (fn_out / "analysis").glob("*.png"))
    assert figs == sorted(["fn_mee_ordering.png", "fn_mee_regime.png", "fn_mee_max_exponent.png",
                           "fn_mee_mass_error.png", "fn_pmns_corner.png"])
    html = (fn_out / "analysis" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "by maximal exponent" in html


def test_bands_follow_the_data_file():
    d = data.load("nufit-6.0+pdg-2024")
    grid = np.array([1e-4, 1e-2, 0.3])
    lo3, hi3 = bands.mee_band(d, "NO", grid)
    lo1, hi1 = bands.mee_band(d, "NO", grid, n_sigma=1.0)
    assert (lo3 <= lo1 + 1e-12).all() and (hi1 <= hi3 + 1e-12).all()  # 1 sigma band inside 3 sigma band
    # quasi-degenerate limit: m_ee -> m_lightest * |sum U_ei^2 e^{i phases}| <= m_lightest
    assert hi3[-1] == pytest.approx(0.3, rel=0.02)
    lo_io, _ = bands.mee_band(d, "IO", np.array([1e-5]))
    assert lo_io[0] > 0.01  # the IO floor m_ee >~ sqrt(|dm3l|) cos(2 theta12) c13^2


def test_analyze_bad_input_is_one_line_exit_2(tmp_path):
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path)])
    assert res.exit_code == 2 and "no models.parquet" in res.output
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such file" in res.output


def _fn_models(out, n=40, seed=3, **planted):
    """A small models.parquet of evaluated FN rows (all flagged valid) with ``planted`` columns."""
    x = fn.random_parameters(n, np.random.default_rng(seed), max_charge=3, log10_lambda_range=(12.0, 15.0))
    cols = {k: x[:, i] for i, k in enumerate(fn.PARAMETERS)}
    cols.update(fn.evaluate(x))
    cols["valid"][:] = True
    cols.update(planted)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(to_arrow(cols), out / "models.parquet")
    return out


def test_quartiles_keep_significant_digits_of_small_quantities(tmp_path):
    """j_ckm ~ 3e-5 printed as 0.0000 with four decimals; four significant figures keep it."""
    j = np.linspace(3.0e-5, 3.4e-5, 41)[:40]
    out = _fn_models(tmp_path / "scan", j_ckm=j)
    res = CliRunner().invoke(cli, ["analyze", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if "j_ckm" in line)
    q = np.quantile(j, [0.25, 0.5, 0.75])
    assert all(f" {v:.4g} " in row for v in q), row
    assert "0.0000" not in row


@pytest.mark.parametrize("layout", ["settings", "config", "top"])
def test_data_set_comes_from_scan_json_in_every_layout(tmp_path, layout):
    """analyze once read only a top-level "data" key; the scan stores it under "config" (older)
    or "settings" (now), so a --data scan was drawn against the default data set's bands."""
    import json
    from pathlib import Path

    relaxed = str(Path(__file__).parent / "data_relaxed.toml")
    out = _fn_models(tmp_path / "scan")
    doc = {"settings": {"data": relaxed}} if layout == "settings" else (
        {"config": {"data": relaxed}} if layout == "config" else {"data": relaxed})
    (out / "scan.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["analyze", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "data set relaxed-test" in res.output


def test_counts_follow_the_solution_flag_of_an_evaluate_output(tmp_path):
    """An evaluate output of 8 seesaw rows, 1 of them a solution, was reported as 8 solutions."""
    from rayflavor import examples

    out = tmp_path / "ev.parquet"
    assert CliRunner().invoke(cli, ["evaluate", "--model", "seesaw", str(examples.path("seesaw")), "-o", str(out)]).exit_code == 0
    n_sol = sum(pl.read_parquet(out)["solution"].to_list())
    res = CliRunner().invoke(cli, ["analyze", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f": {n_sol} solutions of 8 rows" in res.output and n_sol == 1
    assert "│ NO       ┆ null             ┆ null       ┆ null         ┆ 1 " in res.output


def test_stale_models_parquet_is_reported(tmp_path):
    import os
    import time

    out = _fn_models(tmp_path / "scan")
    part = out / "islands" / "island-0000" / "part-000001.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes((out / "models.parquet").read_bytes())
    t = time.time()
    os.utime(out / "models.parquet", (t - 100, t - 100))
    res = CliRunner().invoke(cli, ["analyze", str(out)])
    assert res.exit_code == 0
    assert "may be stale" in res.stderr and f"rayflavor dedupe {out}" in res.stderr
    os.utime(out / "models.parquet", (t + 100, t + 100))
    res = CliRunner().invoke(cli, ["analyze", str(out)])
    assert res.exit_code == 0 and "may be stale" not in res.output


def test_figures_go_through_the_location_of_a_uri(tmp_path):
    """file:// takes the same path as s3:// (resolve -> Location, render locally, write_bytes)."""
    out = _fn_models(tmp_path / "scan")
    res = CliRunner().invoke(cli, ["analyze", f"file://{out}", "--html"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (out / "analysis" / "report.html").is_file() and len(list((out / "analysis").glob("*.png"))) == 5
    assert not list((out / "analysis").glob(".*"))  # no temporaries left behind


def test_analyze_reads_and_writes_an_object_store(s3_bucket, tmp_path):
    """s3://bucket/run: read through pyarrow's S3 file system, figures and report uploaded to
    s3://bucket/run/analysis/ (moto server; endpoint and keys from the AWS_* variables)."""
    import pyarrow.parquet as pq

    from rayflavor import examples
    from rayflavor.storage.location import resolve

    local = tmp_path / "ev.parquet"
    assert CliRunner().invoke(cli, ["evaluate", "--model", "seesaw", str(examples.path("seesaw")), "-o", str(local)]).exit_code == 0
    run = resolve(f"{s3_bucket}/run")
    (run / "solutions.parquet").write_parquet(pq.read_table(local))
    res = CliRunner().invoke(cli, ["analyze", run.uri, "--html"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"{s3_bucket}/run/solutions.parquet: 1 solutions of 8 rows" in res.output
    names = (run / "analysis").list()
    assert "report.html" in names and sum(n.endswith(".png") for n in names) == 4
    assert f"report: {s3_bucket}/run/analysis/report.html" in res.output
    res = CliRunner().invoke(cli, ["analyze", f"{s3_bucket}-missing/run"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert res.output.startswith(f"Error: {s3_bucket}-missing/run: the bucket '{s3_bucket[5:]}-missing' does not exist")
    res = CliRunner().invoke(cli, ["analyze", f"{s3_bucket}/nothing-here"])
    assert res.exit_code == 2 and "no such file or directory" in res.output


def test_non_finite_predictions_in_valid_rows_do_not_break_the_figures(tmp_path):
    """A hand-made file flagging rows with NaN/inf/negative predictions as valid: histograms of
    NaN raised ValueError ('autodetected range of [nan, nan]'); now the finite values are drawn."""
    n = 30
    delta = np.full(n, np.nan)
    m_ee = np.r_[np.full(5, np.inf), np.full(n - 5, 1e-3)]
    out = _fn_models(tmp_path / "scan", n=n, pmns_delta=delta, m_ee=m_ee, m_lightest=np.r_[-np.ones(5), np.full(n - 5, 1e-3)])
    res = CliRunner().invoke(cli, ["analyze", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(list((out / "analysis").glob("*.png"))) == 5


def test_a_prediction_equal_up_to_rounding_in_every_model_does_not_break_the_corner_plot(tmp_path):
    """Two models whose Majorana phase is 180 degrees up to the last place: numpy's histogram of
    such values raised 'Too many bins for data range' (seen in a two-island S3 scan under load)."""
    n = 2
    out = _fn_models(tmp_path / "scan", n=n, pmns_alpha2=np.array([180.0, np.nextafter(180.0, 200.0)]))
    with pytest.raises(ValueError, match="Too many bins"):
        np.histogram(np.array([180.0, np.nextafter(180.0, 200.0)]), bins=30)
    res = CliRunner().invoke(cli, ["analyze", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (out / "analysis" / "fn_pmns_corner.png").is_file()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40), st.integers(1, 60))
def test_histogram_edges_hold_every_finite_value_in_finite_increasing_bins(values, n):
    from rayflavor.analysis.figures import hist_bins

    v = np.array(values, dtype=np.float64)
    edges = hist_bins(v, n)
    assert len(edges) == n + 1 and np.isfinite(edges).all() and (np.diff(edges) > 0).all()
    finite = v[np.isfinite(v)]
    counts, _ = np.histogram(finite, bins=edges)
    assert counts.sum() == len(finite)  # none falls outside

"""``rayflavor analyze``: summaries agree with the data, figures and the HTML report are written,
bands come from the data file."""

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

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
    write_atomic(to_arrow(cols), out / "models.parquet")
    return out


def test_fn_summary_figures_and_report(fn_out):
    res = CliRunner().invoke(cli, ["analyze", str(fn_out), "--html"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "300 models" in res.output
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

"""``rayflavor analyze``: summary tables and figures of a scan or diffusion run."""

from __future__ import annotations

from pathlib import Path

import click

from rayflavor.cli.common import UserError, load_data


def analyze_output(path: Path, fmt: str = "png", html_report: bool = False, out_dir: Path | None = None) -> dict:
    """Summaries and figures for ``path``; returns ``{"tables", "figures", "report"}``."""
    import polars as pl

    from rayflavor.analysis import figures, report, summary
    from rayflavor.analysis.load import AnalysisInputError, open_output

    try:
        src = open_output(path)
    except AnalysisInputError as exc:
        raise UserError(str(exc)) from None
    data = load_data(src.data_name)
    tables = summary.summarize(src.kind, src.frame, data)
    out_dir = out_dir or ((path if path.is_dir() else path.parent) / "analysis")
    out_dir.mkdir(parents=True, exist_ok=True)
    n = src.frame.select(pl.len()).collect().item()
    figs = []
    if n:
        draw = figures.fn_figures if src.kind == "fn" else figures.seesaw_figures
        figs = draw(src.frame, data, out_dir, "png" if html_report and fmt == "pdf" else fmt)
        if html_report and fmt == "pdf":  # the report embeds PNGs; the requested PDFs are written too
            draw(src.frame, data, out_dir, "pdf")
    rep = None
    if html_report:
        title = "rayflavor FN scan" if src.kind == "fn" else "rayflavor diffusion run"
        rep = report.write_html(out_dir / "report.html", title, src.description, tables, figs)
    return {"kind": src.kind, "rows": n, "tables": tables, "figures": figs, "report": rep, "source": src.description}


@click.command()
@click.argument("path", metavar="OUT_OR_RUN", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["png", "pdf"]), default="png", show_default=True,
              help="Figure file format.")
@click.option("--html", "html_report", is_flag=True, help="Also write one self-contained report.html.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where figures go (default: OUT_OR_RUN/analysis).")
def analyze(path, fmt, html_report, out_dir):
    """Summarise a scan directory (FN models) or a diffusion run (seesaw solutions).

    Prints counts by ordering, regime and maximal exponent (FN) and quartiles of the
    predictions, and writes the papers' figures; Parquet is scanned lazily with polars.
    """
    import polars as pl

    res = analyze_output(path, fmt, html_report, out_dir)
    click.echo(f"{res['source']}: {res['rows']} {'models' if res['kind'] == 'fn' else 'solutions'}")
    if not res["rows"]:
        click.echo("nothing to summarise or plot")
    else:
        with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True, float_precision=4):
            for name, table in res["tables"].items():
                click.echo(f"\n{name}\n{table}")
    for f in res["figures"]:
        click.echo(f"figure: {f}")
    if res["report"]:
        click.echo(f"report: {res['report']}")

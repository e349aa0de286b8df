"""``rayflavor analyze``: summary tables and figures of a scan or diffusion run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from rayflavor.cli import options
from rayflavor.cli.common import UserError, load_data
from rayflavor.messages import one_line


def _reference_meta(loc) -> dict:
    """The reference.json stored beside a reference.parquet, or {} (it is a courtesy: the noise
    floor; a Parquet file alone still compares)."""
    meta = loc.parent / "reference.json"
    try:
        doc = meta.read_json() if meta.is_file() else {}
    except Exception:  # noqa: BLE001 - the comparison stands without it
        return {}
    return doc if isinstance(doc, dict) else {}


def _reference_frame(ref: str):
    """The reference table at ``ref``: a Parquet file or a run directory holding reference.parquet,
    and the noise floor stored beside it (or None)."""
    import polars as pl

    from rayflavor.storage.location import resolve

    loc = resolve(ref)
    if loc.is_dir() or not loc.exists():
        loc = loc / "reference.parquet"
    if not loc.is_file():
        raise UserError(f"--reference {ref}: no reference.parquet (make one with `rayflavor diffusion reference RUN`)")
    meta = _reference_meta(loc)
    settings = meta.get("settings")
    box = settings.get("box", 1.0) if isinstance(settings, dict) else 1.0
    if box != 1.0:
        raise UserError(f"--reference {ref}: drawn with box = {box:g}, past the prior box's faces (a teacher's "
                        "setting): not the prior's solution set; build a reference with box 1")
    try:
        return pl.from_arrow(loc.read_parquet()), meta.get("noise_floor")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
        raise UserError(f"--reference {loc.uri}: not a readable Parquet file ({one_line(exc)})") from None


def _paper_table(run_df, ref_df, data) -> str:
    """The diffusion paper's reported results beside the run's (per physics-guidance setting) and
    the reference's (:mod:`rayflavor.analysis.paper_seesaw`)."""
    from rayflavor.analysis.fidelity import guidance_groups
    from rayflavor.analysis.paper_seesaw import side_by_side, summary

    cols = {label: summary(df, data) for label, df in guidance_groups(run_df).items()}
    cols["reference"] = summary(ref_df, data)
    return side_by_side(cols)


def analyze_output(path: str | Path, fmt: str = "png", html_report: bool = False, out_dir: str | Path | None = None,
                   reference: str | None = None) -> dict:
    """Summaries and figures for ``path`` (a local path or a storage URI).

    Figures and ``report.html`` are rendered into a local temporary directory and then written
    to ``out_dir`` (default: the ``analysis/`` directory beside the output), local or object
    store alike.  Returns ``{"kind", "rows", "rows_total", "flag", "tables", "figures" (URIs),
    "report" (URI or None), "source", "data", "warnings"}``; bad input raises :class:`UserError`.
    """
    import polars as pl

    from rayflavor.analysis import figures, report, summary
    from rayflavor.analysis.load import AnalysisInputError, open_output
    from rayflavor.physics.data import DataError
    from rayflavor.storage.location import StorageError, resolve

    try:
        src = open_output(path)
        dest = resolve(str(out_dir)) if out_dir is not None else src.root / "analysis"
        if dest.exists() and not dest.is_dir():
            raise UserError(f"{dest.uri}: exists and is not a directory (figures go into a directory)")
        if dest.is_local:  # before any figure is drawn: a directory that cannot be made is one line, at once
            import os

            ancestor = Path(dest.path)
            while not ancestor.exists():
                ancestor = ancestor.parent
            if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
                raise UserError(f"{dest.uri}: cannot create the directory ({ancestor} is "
                                f"{'not a directory' if not ancestor.is_dir() else 'not writable'})")
    except (AnalysisInputError, StorageError) as exc:
        raise UserError(str(exc)) from None
    from rayflavor.storage import scan_data

    try:  # a scan's own copy of its data set, when it has one (self-contained OUT)
        copy = scan_data.stored(src.root) if src.kind == "fn" else None
    except (StorageError, ValueError) as exc:
        raise UserError(str(exc)) from None
    data = copy or load_data(src.data_name)
    ref_df, ref_floor, paper = None, None, None
    if reference is not None:
        if src.kind != "seesaw":
            raise UserError("--reference compares seesaw solutions; this is an FN scan")
        from rayflavor.storage.location import resolve

        own = src.root / "teacher"
        if resolve(reference).uri.rstrip("/") in (own.uri, (own / "reference.parquet").uri):
            raise UserError(f"--reference {reference} is this run's own teacher, which its network learned from: not "
                            "an independent reference (build one with `rayflavor diffusion reference REF --seed S`)")
        ref_df, ref_floor = _reference_frame(reference)
    met = ()
    if src.kind == "fn" and (src.root / "scan.json").is_file():  # a scan's targets: how many models meet each
        from rayflavor.cli.dedupe import stored_targets
        from rayflavor.storage.dedupe import target_counts

        try:
            doc = (src.root / "scan.json").read_json()
        except (StorageError, ValueError):
            doc = {}
        met = target_counts(src.frame, stored_targets(doc, (src.root / "scan.json").uri), data)
    try:
        figures.require_data(src.kind, data)
        tables = summary.summarize(src.kind, src.frame, data)
        n = src.frame.select(pl.len()).collect().item()
        written, rep = [], None
        with tempfile.TemporaryDirectory(prefix="rayflavor-analyze-") as tmp:
            local = Path(tmp)
            figs = []
            if n:
                draw = figures.fn_figures if src.kind == "fn" else figures.seesaw_figures
                figs = draw(src.frame, data, local, "png" if html_report and fmt == "pdf" else fmt)
                if html_report and fmt == "pdf":  # the report embeds PNGs; the requested PDFs are written too
                    figs = figs + draw(src.frame, data, local, "pdf")
            disc = None
            if src.kind == "fn" and (src.root / "islands").is_dir():
                from rayflavor.analysis.discovery import discovery_figure, discovery_table, scan_discovery

                disc = scan_discovery(src.root)
                if disc is not None:
                    figs = figs + [discovery_figure(disc, local, "png" if html_report else fmt)]
            fid = {}
            if ref_df is not None and n:
                from rayflavor.analysis import fidelity

                run_df = src.frame.collect()
                try:
                    fid = fidelity.compare_frames(run_df, ref_df, floor=ref_floor)
                except ValueError as exc:
                    raise UserError(f"--reference: {exc}") from None
                figs = figs + [fidelity.overlay_figure(run_df, ref_df, local, "png" if html_report else fmt)]
                paper = _paper_table(run_df, ref_df, data)
            if html_report:
                title = "rayflavor FN scan" if src.kind == "fn" else "rayflavor diffusion run"
                shown = tables if disc is None else {**tables, "discovery (Chao2 over islands)": discovery_table(disc)}
                report.write_html(local / "report.html", title, src.description, shown,
                                  [f for f in figs if f.suffix == ".png" or fmt == "png"])
            if figs or html_report:
                dest.mkdir()
            for f in figs:
                (dest / f.name).write_bytes(f.read_bytes())
                written.append((dest / f.name).uri)
            if html_report:
                (dest / "report.html").write_bytes((local / "report.html").read_bytes())
                rep = (dest / "report.html").uri
    except DataError as exc:  # a data file without what a figure or table needs (e.g. a bound)
        raise UserError(f"data set {src.data_name}: {exc}") from None
    except StorageError as exc:
        raise UserError(str(exc)) from None
    return {"kind": src.kind, "rows": n, "rows_total": src.rows_total, "flag": src.flag, "tables": tables,
            "fidelity": fid if reference is not None else None, "paper": paper,
            "discovery": disc, "targets": met,
            "figures": written, "report": rep, "source": src.description, "data": f"{data.name} ({data.path})",
            "warnings": list(src.warnings)}


@click.command()
@click.argument("path", metavar="OUT_OR_RUN")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf"]), default="png", show_default=True,
              help="Figure file format.")
@click.option("--html", "html_report", is_flag=True, help="Also write one self-contained report.html.")
@options.out_option("Where figures go, a directory or storage URI (default: OUT_OR_RUN/analysis).", name="out_dir")
@click.option("--reference", default=None, metavar="REF",
              help="Seesaw runs: compare the solutions with a network-free reference (a reference.parquet or the "
                   "RUN holding it, from `rayflavor diffusion reference`): KS/Kuiper distance per prediction, "
                   "box-face fractions, and a figure overlaying the two.")
def analyze(path, fmt, html_report, out_dir, reference):
    """Summarise a scan directory (FN models) or a diffusion run (seesaw solutions).

    OUT_OR_RUN is a scan's OUT, a diffusion RUN, one Parquet file (e.g. `rayflavor evaluate`'s
    output), or the same on object storage (s3://bucket/prefix; endpoint and credentials from
    AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). Prints counts by ordering, regime and maximal
    exponent (FN) and quartiles of the predictions (4 significant figures) over the valid models
    or solutions, and writes the papers' figures; Parquet is scanned lazily.
    """
    from rayflavor.analysis.summary import significant

    res = analyze_output(path, fmt, html_report, out_dir, reference)
    for w in res["warnings"]:
        click.echo(f"warning: {w}", err=True)
    noun = "valid models" if res["kind"] == "fn" else "solutions"
    of = f" of {res['rows_total']} rows (flag `{res['flag']}`)" if res["flag"] else ""
    click.echo(f"{res['source']}: {res['rows']} {noun}{of}; data set {res['data']}")
    if not res["rows"]:
        click.echo("nothing to summarise or plot")
    else:
        import polars as pl

        with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
            for name, table in res["tables"].items():
                click.echo(f"\n{name}\n{significant(table)}")
    if res.get("targets"):
        from rayflavor.physics.targets import met_line

        click.echo("\ntargets: " + "; ".join(met_line(t, n) for t, n in res["targets"]))
    if res.get("discovery") is not None:
        d = res["discovery"]
        click.echo(f"\ndiscovery: {d.richness.line('light textures')}; {d.core_hours:.3g} core-hours busy")
    for label, fid in (res.get("fidelity") or {}).items():
        click.echo(f"\n{label}: " + fid.table())
    if res.get("paper"):
        click.echo("\nthe diffusion paper side by side\n" + res["paper"])
    for f in res["figures"]:
        click.echo(f"figure: {f}")
    if res["report"]:
        click.echo(f"report: {res['report']}")

"""``rayflavor bench findings``: run the FN paper's findings as recipes and print their table.

Each recipe is one ``rayflavor scan`` command (:func:`rayflavor.analysis.findings.scan_command`),
run as a child process exactly as printed, into ``OUT/<scan>``; a scan that finished before is
kept and one that was interrupted is resumed, so the command can be rerun after a stop.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from rayflavor.cli.common import OneLineCommand, UserError, load_data


@click.command("findings", cls=OneLineCommand)
@click.option("--out", required=True, metavar="PATH|URI", help="Directory (or storage URI) that gets one scan per recipe.")
@click.option("--islands", type=click.IntRange(min=1), default=2, show_default=True, help="Islands per recipe scan.")
@click.option("--time-limit", default="15m", show_default=True,
              help="Wall-clock limit of each recipe scan (2 islands x 15m = 30 core-minutes).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Base seed of every recipe scan.")
@click.option("--only", default=None, metavar="SCAN[,SCAN...]",
              help="Run only these recipe scans (no-up, io-up, no-down, io-down, max-exponent-3, masses-10, masses-6).")
@click.option("--address", default=None, help="Ray address for the scans (default: RAY_ADDRESS or an embedded local Ray).")
@click.option("--dry-run", is_flag=True, help="Print the scan commands and exit.")
def bench_findings_command(out, islands, time_limit, seed, only, address, dry_run):
    """Reproduce the FN paper's findings (both orderings in both regimes, small and large m_ee,
    maximal exponent 3, masses within 10% and 6%): run one scan per recipe, then print, per
    finding, the models that show it, the island-time to the first one and the counts per
    core-hour.  Writes OUT/findings.md, OUT/findings.json and OUT/findings.png."""
    from rayflavor.bench.findings import (FINDINGS, SCANS, findings_figure, format_table, measure, read_scan,
                                             scan_command)
    from rayflavor.cli.scan import parse_duration
    from rayflavor.physics.fn import DEFAULT_DATA
    from rayflavor.storage.location import StorageError, resolve

    try:
        parse_duration(time_limit)
        loc = resolve(out)
    except (ValueError, StorageError) as exc:
        raise UserError(f"{exc}") from None
    scans = list(SCANS) if only is None else [s.strip() for s in only.split(",") if s.strip()]
    bad = [s for s in scans if s not in SCANS]
    if bad or not scans:
        raise UserError(f"--only: unknown recipe scan {', '.join(bad) or repr(only)} (use {', '.join(SCANS)})")
    data = load_data(DEFAULT_DATA)
    for name in scans:
        sub = loc / name
        cmd = scan_command(name, islands=islands, time_limit=time_limit, seed=seed, out=sub.uri)
        if address:
            cmd += ["--address", address]
        state = (sub / "scan.json").read_json().get("status") if (sub / "scan.json").exists() else None
        if state == "finished" and (sub / "models.parquet").exists():
            click.echo(f"{name}: finished before, kept ({sub.uri})")
            continue
        if state is not None:
            cmd = ["scan", "--resume", "--out", sub.uri, *(["--address", address] if address else [])]
        click.echo("$ rayflavor " + " ".join(cmd))
        if dry_run:
            continue
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", "rayflavor.cli.main", *cmd])
        if rc != 0:
            raise UserError(f"recipe scan {name} failed (exit {rc}); rerun the same command to resume it")
        click.echo(f"{name}: {time.perf_counter() - t:.0f} s wall")
    if dry_run:
        return
    try:
        record = {name: read_scan(loc / name) for name in scans}  # each scan read once
    except ValueError as exc:
        raise UserError(str(exc)) from None
    rows = [measure(record[f.scan], f, data) for f in FINDINGS if f.scan in scans]
    table = format_table(rows)
    click.echo(table)
    (loc / "findings.md").write_bytes((table + "\n").encode())
    (loc / "findings.json").write_json({"rows": rows, "islands": islands, "time_limit": time_limit, "seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        png = findings_figure({name: r.models for name, r in record.items()}, data, Path(tmp) / "findings.png")
        (loc / "findings.png").write_bytes(png.read_bytes())
    click.echo(f"table: {(loc / 'findings.md').uri}\nfigure: {(loc / 'findings.png').uri}")

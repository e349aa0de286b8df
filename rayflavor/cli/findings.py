"""``rayflavor bench findings``: run the FN paper's findings as recipes and print their table
(the work is :func:`rayflavor.bench.findings.run_findings`)."""

from __future__ import annotations

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
    from rayflavor.bench.findings import SCANS, RecipeError, run_findings
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
    try:
        run_findings(loc, scans, load_data(DEFAULT_DATA), islands=islands, time_limit=time_limit, seed=seed,
                     address=address, dry_run=dry_run, echo=click.echo)
    except RecipeError as exc:
        raise UserError(str(exc)) from None

"""``rayflavor scan``, ``rayflavor dedupe`` and ``rayflavor bench scan`` (thin click layer).

Bad input exits with code 2 and one line (click usage errors).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from rayflavor.cli.common import UserError

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"`` -> seconds.

    >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("45")
    (600.0, 5400.0, 45.0)
    """
    m = DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 2h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class OneLineCommand(click.Command):
    """Usage errors (bad option values) print as one ``Error: ...`` line, exit code 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            raise UserError(exc.format_message()) from None


def _check_data(ctx, param, value):
    from rayflavor.physics import data, fn

    try:
        ds = data.load(value)
        ds.require(list(fn.REQUIRED_DATA))
    except data.DataError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value if value in data.SHIPPED else str(Path(value).resolve())


@click.command(cls=OneLineCommand)
@click.option("--islands", type=click.IntRange(min=1), default=64, show_default=True, help="Number of NSGA-III islands.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True, help="Leading flavon (FN paper sec. III.4).")
@click.option("--ordering", type=click.Choice(["any", "NO", "IO"]), default="any", show_default=True, help="IO adds the paper's loss forcing inverted ordering; NO keeps only NO models.")
@click.option("--max-exponent", type=click.IntRange(min=0), default=None, help="Add the objective C(max n_ij, 0, M).")
@click.option("--mass-tolerance", type=click.FloatRange(min=0.0, min_open=True, max=1.0, max_open=True), default=0.2, show_default=True, help="Relative window of the charged masses (0.1: the paper's tight run).")
@click.option("--log10-lambda", type=float, default=None, help="Fix log10(Lambda/GeV) instead of searching [8, 16].")
@click.option("--pop-size", type=click.IntRange(min=4), default=None, help="Population per island (default 100; paper method 156).")
@click.option("--max-generations", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--target-valid", type=click.IntRange(min=1), default=100, show_default=True, help="Stop an island at this many unique valid models.")
@click.option("--patience", type=click.IntRange(min=1), default=500, show_default=True, help="Stop an island after this many generations without improvement.")
@click.option("--time-limit", type=Duration(), default=None, help="Global wall-clock limit, e.g. 90s, 10m, 2h.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Base seed; island i uses seed + i (default: random, recorded).")
@click.option("--data", "data_name", default="nufit-6.0+pdg-2024", show_default=True, callback=_check_data, help="Shipped data set name or path to a data file.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("scan-out"), show_default=True)
@click.option("--address", default=None, help="Ray cluster address ('auto' joins a running cluster); default: an embedded local Ray.")
@click.option("--resume", is_flag=True, help="Continue the scan stored in --out (its scan.json sets the configuration).")
@click.option("--method", type=click.Choice(["fast", "paper"]), default="fast", show_default=True, help="Island engine: 'paper' is the FN paper's plain configuration.")
@click.option("--live/--no-live", default=True, help="Live progress view.")
def scan(islands, regime, ordering, max_exponent, mass_tolerance, log10_lambda, pop_size, max_generations,
         target_valid, patience, time_limit, seed, data_name, out, address, resume, method, live):
    """Scan two-flavon FN models with NSGA-III islands on Ray; valid models go to OUT."""
    from rayflavor.orchestration.islands import ScanConfig, read_scan_json, run_scan
    from rayflavor.storage.dedupe import dedupe as run_dedupe

    scan_json = out / "scan.json"
    if resume:
        if not scan_json.is_file():
            raise UserError(f"--resume: {out} holds no scan to resume (no scan.json)")
        doc = read_scan_json(out)
        c = doc["config"]
        cfg = ScanConfig(**{**c, "out": str(out), "time_limit": time_limit if time_limit is not None else c["time_limit"]})
        click.echo(f"resuming {out}: {cfg.islands} islands, seed {cfg.seed}")
    else:
        if scan_json.is_file():
            raise UserError(f"--out: {out} already holds a scan; use --resume or another --out")
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**31)
        island = dict(method=method, regime=regime, ordering=ordering, max_exponent=max_exponent,
                      mass_tolerance=mass_tolerance, log10_lambda=log10_lambda, pop_size=pop_size,
                      max_generations=max_generations, target_valid=target_valid, patience=patience)
        cfg = ScanConfig(out=str(out), islands=islands, island=island, seed=seed, data=data_name, time_limit=time_limit)
    result = run_scan(cfg, address=address, live=live, echo=click.echo)
    counts = run_dedupe(out, cfg.data)
    click.echo(counts.line())
    click.echo(f"models: {out / 'models.parquet'}")
    if result.interrupted:
        click.echo("interrupted: OUT is consistent; continue with --resume", err=True)
        sys.exit(130)


@click.command(cls=OneLineCommand)
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", "data_name", default=None, help="Data set for the distance to central values (default: the scan's).")
def dedupe(out, data_name):
    """Deduplicate a scan's part files into OUT/models.parquet and print the counts."""
    from rayflavor.storage.dedupe import dedupe as run_dedupe
    from rayflavor.storage.parquet import list_parts

    if not (out / "islands").is_dir():
        raise UserError(f"{out} is not a scan directory (no islands/)")
    if data_name is None:
        data_name = "nufit-6.0+pdg-2024"
        if (out / "scan.json").is_file():
            import json

            data_name = json.loads((out / "scan.json").read_text())["config"].get("data", data_name)
    counts = run_dedupe(out, data_name)
    click.echo(f"{len(list_parts(out))} part files: {counts.line()}")


@click.command("scan", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds per configuration.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=10.0, show_default=True, help="Core-minutes per island run.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option("--address", default=None, help="Ray address (default: embedded local Ray).")
@click.option("--only", type=click.Choice(["fast", "paper"]), default=None,
              help="Run one configuration only (default: both, and their ratio).")
def bench_scan_command(seeds, minutes, regime, seed, address, only):
    """Time to first valid model and unique valid models per core-hour: fast islands vs the paper's."""
    from rayflavor.orchestration.bench import bench_scan, format_bench

    rows = bench_scan(seeds=seeds, seconds=minutes * 60.0, regime=regime, seed=seed, address=address,
                      methods=(only,) if only else ("fast", "paper"))
    click.echo(format_bench(rows))

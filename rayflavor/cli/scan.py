"""``rayflavor scan`` and ``rayflavor bench scan`` (thin click layer; the settings are
:class:`~rayflavor.orchestration.scan_settings.ScanSettings`; ``rayflavor dedupe`` is in
:mod:`rayflavor.cli.dedupe`).

Bad input exits with code 2 and one line (click usage errors, :class:`UserError`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from rayflavor.cli.common import OneLineCommand, ScanFailed, UserError
from rayflavor.physics.fn import REQUIRED_DATA as REQUIRED

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


def _check_data(ctx, param, value):
    from rayflavor.physics import data, fn

    if value is None:
        return None
    try:
        ds = data.load(value)
        ds.require(list(fn.REQUIRED_DATA))
    except data.DataError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value if value in data.SHIPPED else str(Path(value).resolve())


def _island_default(name: str):
    """The default of island setting ``name``: that of the default scan's islands (one object
    shared with the library, see :func:`rayflavor.configfile.default`)."""
    from rayflavor import configfile
    from rayflavor.orchestration.scan_settings import ScanSettings

    return getattr(configfile.default(ScanSettings, "island"), name)


def _scan_default(name: str):
    from rayflavor import configfile
    from rayflavor.orchestration.scan_settings import ScanSettings

    return configfile.default(ScanSettings, name)


#: click parameter -> setting ("island.x": a field of ScanSettings.island)
SETTING_OF = {
    "islands": "islands", "seed": "seed", "data_name": "data", "time_limit": "time_limit",
    "regime": "island.regime", "ordering": "island.ordering", "max_exponent": "island.max_exponent",
    "mass_tolerance": "island.mass_tolerance", "log10_lambda": "island.log10_lambda",
    "pop_size": "island.pop_size",
    "target_valid": "island.target_valid", "patience": "island.patience", "restarts": "island.restarts",
    "tabu": "island.tabu",
}


def build_settings(ctx: click.Context, preset_name: str, config: str | None):
    """ScanSettings from: defaults < preset < ``--config`` file < options given on the command
    line.  ValueError (ConfigError) naming the setting when the result is not valid."""
    from rayflavor import configfile
    from rayflavor.orchestration.scan_settings import ScanSettings, preset

    merged = configfile.to_mapping(preset(preset_name))
    if config is not None:
        from_file = configfile.load_config(config)
        island = from_file.get("island")
        merged.update({k: v for k, v in from_file.items() if k != "island"})
        if island is not None:
            merged["island"] = {**merged["island"], **island} if isinstance(island, dict) else island
    for key, value in configfile.cli_overrides(ctx, SETTING_OF).items():
        if key.startswith("island."):
            merged["island"][key.split(".", 1)[1]] = value
        else:
            merged[key] = value
    return configfile.from_mapping(ScanSettings, merged, where="settings")


PRESETS_HELP = (
    "Presets (--preset): 'fast' (default) keeps NSGA-III and adds integer-aware operators, a "
    "Levenberg-Marquardt refinement, log-shaped objectives, a tabu on found light textures, charge "
    "neighbourhoods of valid models; 'paper' is the FN paper's plain configuration (pymoo "
    "defaults, 17 objectives, population 156, SBX + PM on all genes).  Settings come from the "
    "dataclass defaults < the preset < --config FILE (TOML/JSON; a stored OUT/scan.json repeats a "
    "scan) < options given on the command line.  Settings without an option (set them in "
    "--config; [island] table for the island's): island.max_generations, island.restart_keep, "
    "island.refine_top, island.neighbours, island.charge_rate, chunk_seconds, flush_rows, flush_seconds (an island commits a part when that many "
    "models wait or that long passed), max_restarts (restarts of a lost island actor from its "
    "checkpoint)."
)


@click.command(cls=OneLineCommand, epilog=PRESETS_HELP)
@click.option("--preset", "preset_name", type=click.Choice(["fast", "paper"]), default="fast", show_default=True,
              help="Named island settings (see below).")
@click.option("--method", "method", type=click.Choice(["fast", "paper"]), default=None, hidden=True,
              help="Alias of --preset (earlier releases).")
@click.option("--config", "config", type=str, default=None, metavar="FILE",
              help="Settings file (.toml or .json; OUT/scan.json of an earlier scan repeats it).")
@click.option("--islands", type=click.IntRange(min=1), default=_scan_default("islands"), show_default=True,
              help="Number of NSGA-III islands (one 1-CPU Ray actor each; Ray queues the rest).")
@click.option("--regime", type=click.Choice(["up", "down"]), default=_island_default("regime"), show_default=True,
              help="Leading flavon (FN paper sec. III.4).")
@click.option("--ordering", type=click.Choice(["any", "NO", "IO"]), default=_island_default("ordering"), show_default=True,
              help="IO adds the paper's loss forcing inverted ordering; NO keeps only NO models.")
@click.option("--max-exponent", type=click.IntRange(min=0), default=_island_default("max_exponent"),
              help="Add the objective C(max n_ij, 0, M).")
@click.option("--mass-tolerance", type=float, default=_island_default("mass_tolerance"), show_default=True,
              help="Relative window of the charged masses, in (0, 1) (0.1: the paper's tight run).")
@click.option("--log10-lambda", type=float, default=_island_default("log10_lambda"),
              help="Fix log10(Lambda/GeV) instead of searching its range.")
@click.option("--pop-size", type=click.IntRange(min=4), default=_island_default("pop_size"),
              help="Population per island (default: the preset's).")
@click.option("--target-valid", type=click.IntRange(min=1), default=_island_default("target_valid"), show_default=True,
              help="Stop an island at this many unique valid models.")
@click.option("--patience", type=click.IntRange(min=1), default=_island_default("patience"), show_default=True,
              help="Generations without improvement before an island restarts with a fresh population "
                   "(--restarts times), then stops.")
@click.option("--restarts", type=click.IntRange(min=0), default=_island_default("restarts"), show_default=True,
              help="Fresh populations an island starts after a stall before it stops (0: the paper's plain stop; "
                   "a large number keeps islands searching until --time-limit).")
@click.option("--tabu", type=click.Choice(["texture", "charges", "none"]), default=_island_default("tabu"),
              show_default=True,
              help="What a found model makes tabu for the search: its light texture (every charge assignment "
                   "with the same light physics), its charge assignment only, or nothing (the paper).")
@click.option("--time-limit", type=Duration(), default=_scan_default("time_limit"),
              help="Wall-clock limit of this run, e.g. 90s, 10m, 2h (islands are stopped and commit; "
                   "one that does not answer within the limit plus a grace is killed, its last checkpoint stands).")
@click.option("--seed", type=click.IntRange(min=0), default=_scan_default("seed"),
              help="Base seed; island i uses seed + i (default: random, recorded in scan.json).")
@click.option("--data", "data_name", default=_scan_default("data"), show_default=True, callback=_check_data,
              help="Shipped data set name or path to a data file.")
@click.option("--out", "out", default="scan-out", show_default=True, metavar="PATH|URI",
              help="Where the scan writes: a directory, file://..., s3://bucket/prefix or gs://bucket/prefix "
                   "(credentials from the standard AWS_*/GOOGLE_* variables).")
@click.option("--address", default=None,
              help="Ray cluster address (host:port, ray://host:port, 'auto'); default: RAY_ADDRESS or an embedded local Ray.")
@click.option("--resume", is_flag=True, help="Continue the scan stored in --out with its stored settings "
                                             "(only --time-limit may change).")
@click.option("--data-changed-ok", is_flag=True,
              help="With --resume: go on with the scan's own copy of its data set (OUT/data.toml) even though the "
                   "original data file was edited since the scan started (refused otherwise).")
@click.option("--live/--no-live", default=True, help="Live progress view (a table on a terminal, lines otherwise).")
@click.pass_context
def scan(ctx, preset_name, method, config, islands, regime, ordering, max_exponent, mass_tolerance, log10_lambda,
         pop_size, target_valid, patience, restarts, tabu, time_limit, seed, data_name, out, address, resume,
         data_changed_ok, live):
    """Scan two-flavon FN models with NSGA-III islands on Ray; valid models go to OUT.

    OUT gets scan.json (the settings whole, seeds, versions, status, the node of every island
    start), islands/ (parts and checkpoints) and models.parquet (the dedupe).  One scan at a time
    per OUT (a lease, LOCK.json, that a dead driver does not hold for long).
    """
    from rayflavor import configfile
    from rayflavor.orchestration.islands import LEASE_TTL, HeldLease, read_settings, run_scan
    from rayflavor.orchestration.runtime import RayAddressError, ensure_ray
    from rayflavor.orchestration.scan_settings import RUN_CONTROL, differences, with_run_control
    from rayflavor.storage.dedupe import dedupe as run_dedupe
    from rayflavor.storage.lease import LeaseHeld
    from rayflavor.storage.location import StorageError, resolve

    try:
        loc = resolve(out)
    except StorageError as exc:
        raise UserError(f"--out: {exc}") from None
    job = bool((ctx.find_root().obj or {}).get("job"))  # run by jobs/scan.py: retry-safe (jobs/_entry.py)
    if method is not None:
        if ctx.get_parameter_source("preset_name") == click.core.ParameterSource.COMMANDLINE and method != preset_name:
            raise UserError(f"--method {method} contradicts --preset {preset_name} (--method is an alias)")
        preset_name = method
    try:
        scan_json = (loc / "scan.json").exists()
        if resume:
            if not scan_json:
                raise UserError(f"--resume: {loc.uri} holds no scan to resume (no scan.json)")
            given = configfile.cli_overrides(ctx, {**SETTING_OF, "config": "config", "preset_name": "preset",
                                                   "method": "preset"})
            changes = {k: v for k, v in given.items() if k == "time_limit"}
            bad = sorted(set(given) - {"time_limit"})
            if bad:
                raise UserError(f"--resume continues the stored settings; {', '.join(bad)} cannot change")
            settings = with_run_control(read_settings(loc), **changes)
        else:
            settings = build_settings(ctx, preset_name, config)
            if scan_json and not job:
                raise UserError(f"--out: {loc.uri} already holds a scan; use --resume or another --out")
            if scan_json:  # a retried job finds its own scan: continue it
                stored = read_settings(loc)
                diff = differences(stored, settings)
                if diff:
                    raise UserError(f"--out: {loc.uri} holds a scan with other settings ({', '.join(diff)}); "
                                    "a job continues only its own scan: use another --out")
                settings = with_run_control(stored, **{k: getattr(settings, k) for k in RUN_CONTROL})
                resume = True
            elif settings.seed is None:
                import secrets
                from dataclasses import replace

                settings = replace(settings, seed=secrets.randbelow(2**31))
    except (ValueError, OSError) as exc:  # ConfigError, StorageError, an IslandConfig check
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    from rayflavor.storage import scan_data

    if data_changed_ok and not resume:
        raise UserError("--data-changed-ok goes with --resume (a new scan copies its data set into --out)")
    try:  # the data set the scan runs with: its copy in OUT once it has one (resume from any machine)
        scan_data.plan(loc, settings.data, changed_ok=data_changed_ok)[0].require(tuple(REQUIRED))
    except (ValueError, OSError) as exc:  # DataError, StorageError, an edited data file
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    existed = loc.exists()
    lease = None
    try:
        loc.check_writable()
        # a second scan into a running one's OUT stops here; a retried job waits out its dead predecessor's lease
        lease = HeldLease(loc, wait=2 * LEASE_TTL if job else 0.0)
        ensure_ray(address)
    except (StorageError, RayAddressError) as exc:  # LeaseHeld is a StorageError
        if lease is not None:
            lease.release()
        if loc.is_local and not existed and loc.exists() and not loc.list():
            loc.delete_tree()  # leave no empty OUT behind a refused start
        raise UserError(str(exc)) from None
    with lease:
        if not resume and (loc / "scan.json").exists():  # another scan took OUT just before us
            raise UserError(f"--out: {loc.uri} already holds a scan; use --resume or another --out")
        click.echo(f"{'resuming' if resume else 'scan'} {loc.uri}: {settings.islands} islands, seed {settings.seed}")
        try:
            result = run_scan(settings, loc, live=live, echo=click.echo, lease=lease, data_changed_ok=data_changed_ok)
        except (StorageError, OSError) as exc:  # the store failed before the islands started
            raise ScanFailed(f"the scan could not start on {loc.uri}: {str(exc).splitlines()[0]}") from None
        try:
            counts = run_dedupe(loc, scan_data.stored(loc) or settings.data, lease=lease.lease,
                                warn=lambda m: click.echo(f"warning: {m}", err=True))
        except (ValueError, OSError) as exc:  # DedupeError, StorageError: the scan's commits stand
            if result.failure:
                raise ScanFailed(f"{result.failure}; the committed models are in {loc.uri}/islands "
                                 "(continue with --resume)") from None
            raise UserError(f"dedupe after the scan failed ({str(exc).splitlines()[0]}); the committed "
                            f"models are in {loc.uri}/islands, retry with 'rayflavor dedupe {loc.uri}'") from None
    click.echo(counts.line())
    for line in counts.richness_lines():
        click.echo(line)
    click.echo(f"models: {(loc / 'models.parquet').uri}")
    if result.failure:
        raise ScanFailed(f"{result.failure}; the models committed before are kept (continue with --resume)")
    if result.interrupted:
        click.echo("interrupted: OUT is consistent; continue with --resume", err=True)
        sys.exit(130)


@click.command("restarts", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=8, show_default=True, help="Seeds per variant.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=3.0, show_default=True,
              help="Core-minutes per island run.")
@click.option("--patience", type=click.IntRange(min=1), default=100, show_default=True,
              help="Generations without improvement before a stall (low, so stalls happen within the budget).")
@click.option("--restarts", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option("--address", default=None, help="Ray address (default: embedded local Ray).")
def bench_restarts_command(seeds, minutes, patience, restarts, seed, address):
    """Restart-on-stall against the plain stop, same seeds and budget: valid models per core-hour
    of the whole budget (a stopped island idles its core until the end)."""
    from rayflavor.bench.scan import bench_restarts, format_bench

    rows = bench_restarts(seeds=seeds, seconds=minutes * 60.0, patience=patience, restarts=restarts, seed=seed,
                          address=address)
    click.echo(f"{seeds} seeds x {minutes:g} core-min, patience {patience}; per core-hour of the whole budget")
    click.echo(format_bench(rows, whole_budget=True))


@click.command("tabu", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=8, show_default=True, help="Seeds per variant.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Core-minutes per island run.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option("--address", default=None, help="Ray address (default: embedded local Ray).")
def bench_tabu_command(seeds, minutes, regime, seed, address):
    """The tabu on found light textures (default) against the tabu on found charge assignments,
    same seeds and budget: distinct light textures and unique models per core-hour."""
    from rayflavor.bench.scan import bench_tabu, format_bench

    rows = bench_tabu(seeds=seeds, seconds=minutes * 60.0, regime=regime, seed=seed, address=address)
    click.echo(f"{seeds} seeds x {minutes:g} core-min, regime {regime}, default fast island otherwise")
    click.echo(format_bench(rows))


@click.command("scan", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds per configuration.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=10.0, show_default=True, help="Core-minutes per island run.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option("--address", default=None, help="Ray address (default: embedded local Ray).")
@click.option("--only", type=click.Choice(["fast", "paper"]), default=None,
              help="Run one configuration only (default: both, and their ratio).")
def bench_scan_command(seeds, minutes, regime, seed, address, only):
    """Time to first valid model, unique valid models and distinct light textures per core-hour:
    the fast islands against the paper's, each with its preset's stops but no target."""
    from rayflavor.bench.scan import bench_scan, format_bench

    rows = bench_scan(seeds=seeds, seconds=minutes * 60.0, regime=regime, seed=seed, address=address,
                      methods=(only,) if only else ("fast", "paper"))
    click.echo(format_bench(rows))

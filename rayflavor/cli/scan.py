"""``rayflavor scan`` (thin click layer; the settings are
:class:`~rayflavor.orchestration.scan_settings.ScanSettings`; ``rayflavor dedupe`` is in
:mod:`rayflavor.cli.dedupe`).

Bad input exits with code 2 and one line (click usage errors, :class:`UserError`).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, ScanFailed, UserError
from rayflavor.messages import one_line
from rayflavor.orchestration.scan_settings import SCAN_PRESETS, ScanSettings
from rayflavor.physics.fn import REQUIRED_DATA as REQUIRED

#: ``--resume`` alone continues with the stored settings; ``--resume=data-changed-ok`` also accepts
#: an original data file edited since the scan started (the scan goes on with its own copy)
RESUME_MODES = ("stored", "data-changed-ok")
#: what ``rayflavor scan`` runs: :class:`ScanSettings`, presets ``fast`` (the default), ``independent`` and ``paper``
SCAN = options.Settable(ScanSettings, SCAN_PRESETS, "fast")


def build_settings(preset: str | None, config: str | None, typed: dict) -> ScanSettings:
    """ScanSettings from: defaults < preset < ``--config`` file < ``typed`` (options given on the
    command line, :func:`rayflavor.cli.options.given`).  ValueError (ConfigError) naming the
    setting when the result is not valid."""
    return options.resolve(SCAN, preset, config, typed)[0]


def _absolute_data(settings: ScanSettings) -> ScanSettings:
    """``settings`` with a data file path made absolute (shipped names stay names), as scan.json stores it."""
    from rayflavor.physics import data

    return settings if settings.data in data.SHIPPED else replace(settings, data=str(Path(settings.data).resolve()))


def _config_only() -> str:
    """The scan's settings that have no option (from their declarations), as the epilog names them."""
    from rayflavor.methods.ga.config import IslandConfig
    from rayflavor.settings_model import fields_of

    top = [n for n, (s, _) in fields_of(ScanSettings).items() if not s.option]
    island = [n for n, (s, _) in fields_of(IslandConfig).items() if not s.option]
    return f"{', '.join(top)}; in the [island] table: {', '.join(island)}"


PRESETS_HELP = (
    "Presets (--preset): 'fast' (default) keeps NSGA-III and adds integer-aware operators, a "
    "Levenberg-Marquardt refinement, log-shaped objectives, a tabu on found light textures, charge "
    "neighbourhoods of valid models, and islands that pass near-misses on to their neighbours on a ring "
    "(migration) and restart from the scan-wide archive of them; 'independent' is the same without any "
    "exchange (the sampling units the Chao2 estimate assumes); 'paper' is the FN paper's plain, "
    "independent configuration (pymoo defaults, 17 objectives, population 156, SBX + PM on all genes).  Settings come from the "
    "defaults < the preset < --config FILE (TOML/JSON; a stored OUT/scan.json repeats a scan) < "
    f"options given on the command line.  Set in --config: {_config_only()}.  `rayflavor config show "
    "scan` prints every setting with its value and source."
)


@click.command(cls=OneLineCommand, epilog=PRESETS_HELP)
@options.settings_of(SCAN, preset_help="Named island settings (see below).")
@options.out_option("Where the scan writes: a directory, file://..., s3://bucket/prefix or gs://bucket/prefix "
                    "(credentials from the standard AWS_*/GOOGLE_* variables).", default="scan-out")
@options.address_option()
@click.option("--resume", "resume_mode", is_flag=False, flag_value="stored", default=None,
              type=click.Choice(RESUME_MODES), metavar="[data-changed-ok]",
              help="Continue the scan stored in --out with its stored settings (only --time-limit may change). "
                   "--resume=data-changed-ok goes on with the scan's own copy of its data set (OUT/data.toml) even "
                   "though the original data file was edited since the scan started (refused otherwise).")
@click.option("--live/--no-live", default=True, help="Live progress view (a table on a terminal, lines otherwise).")
@click.pass_context
def scan(ctx, preset, config, out, address, resume_mode, live):
    """Scan two-flavon FN models with NSGA-III islands on Ray; valid models go to OUT.

    OUT gets scan.json (the settings whole, seeds, versions, status, the node of every island
    start), islands/ (parts and checkpoints) and models.parquet (the dedupe).  One scan at a time
    per OUT (a lease, LOCK.json, that a dead driver does not hold for long).
    """
    from rayflavor.orchestration.islands import LEASE_TTL, HeldLease, read_settings, run_scan
    from rayflavor.orchestration.runtime import RayAddressError, ensure_ray
    from rayflavor.orchestration.scan_settings import RUN_CONTROL, differences, with_run_control
    from rayflavor.storage.dedupe import dedupe as run_dedupe
    from rayflavor.storage.location import StorageError, resolve

    typed = options.given(ctx)
    resume, data_changed_ok = resume_mode is not None, resume_mode == "data-changed-ok"
    try:
        loc = resolve(out)
    except StorageError as exc:
        raise UserError(f"--out: {exc}") from None
    job = bool((ctx.find_root().obj or {}).get("job"))  # run by jobs/scan.py: retry-safe (jobs/_entry.py)
    try:
        scan_json = (loc / "scan.json").exists()
        if resume:
            if not scan_json:
                raise UserError(f"--resume: {loc.uri} holds no scan to resume (no scan.json)")
            typed_names = [n for k, v in typed.items() for n in ([f"{k}.{f}" for f in v] if isinstance(v, dict) else [k])]
            bad = sorted({*typed_names, *(["preset"] if preset else []), *(["config"] if config else [])} - {"time_limit"})
            if bad:
                raise UserError(f"--resume continues the stored settings; {', '.join(bad)} cannot change")
            settings = with_run_control(read_settings(loc), **typed)
        else:
            settings = _absolute_data(build_settings(preset, config, typed))
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

                settings = replace(settings, seed=secrets.randbelow(2**31))
    except (ValueError, OSError) as exc:  # ConfigError, StorageError, an IslandConfig check
        raise UserError(one_line(exc)) from None
    from rayflavor.storage import scan_data

    try:  # the data set the scan runs with: its copy in OUT once it has one (resume from any machine)
        scan_data.plan(loc, settings.data, changed_ok=data_changed_ok)[0].require(tuple(REQUIRED))
    except (ValueError, OSError) as exc:  # DataError, StorageError, an edited data file
        raise UserError(one_line(exc)) from None
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
            raise ScanFailed(f"the scan could not start on {loc.uri}: {one_line(exc)}") from None
        try:
            counts = run_dedupe(loc, scan_data.stored(loc) or settings.data, lease=lease.lease,
                                warn=lambda m: click.echo(f"warning: {m}", err=True), targets=settings.island.targets)
        except (ValueError, OSError) as exc:  # DedupeError, StorageError: the scan's commits stand
            if result.failure:
                raise ScanFailed(f"{result.failure}; the committed models are in {loc.uri}/islands "
                                 "(continue with --resume)") from None
            raise UserError(f"dedupe after the scan failed ({one_line(exc)}); the committed "
                            f"models are in {loc.uri}/islands, retry with 'rayflavor dedupe {loc.uri}'") from None
    click.echo(counts.line())
    for line in [*counts.target_lines(), *counts.richness_lines()]:
        click.echo(line)
    click.echo(f"models: {(loc / 'models.parquet').uri}")
    if result.failure:
        raise ScanFailed(f"{result.failure}; the models committed before are kept (continue with --resume)")
    if result.interrupted:
        click.echo("interrupted: OUT is consistent; continue with --resume", err=True)
        sys.exit(130)

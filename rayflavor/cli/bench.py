"""``rayflavor bench``: every measurement command (speed, scale, the findings recipes), kept out of the
unit tests; the work is in :mod:`rayflavor.bench`."""

from __future__ import annotations

import json

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError, load_data


@click.group()
def bench():
    """Measure throughput: physics, scan, diffusion."""


@bench.command("physics")
@click.option("--sizes", default="1,1000,100000", show_default=True, help="Comma-separated batch sizes.")
@click.option("--min-seconds", type=click.FloatRange(0.01), default=5.0, show_default=True,
              help="Minimum time spent per measurement (best of the repeats is reported; on a shared "
                   "machine short measurements spread by +-20%).")
def bench_physics(sizes, min_seconds):
    """Models/s per core for both models: fused kernels, Jacobi composition, LAPACK reference."""
    from rayflavor.bench import physics as bp

    try:
        batch = [int(s) for s in sizes.split(",") if s.strip()]
        assert batch and all(b > 0 for b in batch)
    except (ValueError, AssertionError):
        raise click.BadParameter(f"expected positive integers separated by commas, got {sizes!r}", param_hint="--sizes")
    click.echo(bp.format_rows(bp.run(batch, min_seconds)))


def _sizes(text: str, option: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(n <= 0 for n in sizes):
        raise click.BadParameter(f"expected positive integers separated by commas, got {text!r}", param_hint=option)
    return sizes


@bench.command("cluster")
@click.option("--islands", "islands", default="64,256,1024,4096", show_default=True,
              help="Comma-separated scan sizes (tiny synthetic islands: the driver and Ray are real, the island sleeps).")
@click.option("--nodes", type=click.IntRange(1, 64), default=4, show_default=True, help="Worker nodes of the fake cluster.")
@click.option("--cpus-per-node", type=click.IntRange(1, 256), default=8, show_default=True,
              help="CPUs each fake node declares (may exceed the machine's cores: the islands sleep).")
@click.option("--steps", type=click.IntRange(1), default=20, show_default=True, help="Steps per tiny island.")
@click.option("--step-seconds", type=click.FloatRange(0.0, 10.0), default=0.02, show_default=True, help="Sleep per step.")
@click.option("--chunk-seconds", type=click.FloatRange(0.01, 60.0), default=0.1, show_default=True,
              help="Length of one actor call between driver updates.")
@click.option("--dedupe-rows", default="10000000", show_default=True,
              help="Comma-separated sizes of the synthetic dedupe (0: skip).")
def bench_cluster_command(islands, nodes, cpus_per_node, steps, step_seconds, chunk_seconds, dedupe_rows):
    """The scan driver at scale on a fake multi-node Ray cluster (driver CPU per island-second,
    peak memory, scheduling latency), and the dedupe on synthetic model rows (time, peak memory)."""
    import os

    # the fake cluster lives on this machine: keep every node on 127.0.0.1 (read when Ray is imported)
    os.environ.setdefault(*options.LOOPBACK_ENV)
    from rayflavor.bench.scan import bench_cluster

    sizes = _sizes(islands, "--islands")
    rows = () if dedupe_rows.strip() == "0" else _sizes(dedupe_rows, "--dedupe-rows")
    bench_cluster(sizes, nodes=nodes, cpus_per_node=cpus_per_node, steps=steps, step_seconds=step_seconds,
                  chunk_seconds=chunk_seconds, echo=click.echo)
    if rows:
        from rayflavor.bench.dedupe import bench_dedupe_table

        bench_dedupe_table(rows, echo=click.echo)


@bench.command("diffusion-seeds")
@click.argument("runs_", metavar="RUN...", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--reference", "reference", required=True, type=click.Path(file_okay=False),
              help="A directory written by `rayflavor diffusion reference` (built with a seed none of the runs used).")
@click.option("--goal", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Largest KS/Kuiper distance a faithful sample may have on any prediction.")
def bench_diffusion_seeds(runs_, reference, goal):
    """Finished `diffusion run`s (one per seed) against a reference: final fractions, fidelity,
    throughput, per seed and as median (range): how the chain does on seeds it was not tuned on."""
    from rayflavor.bench import seeds
    from rayflavor.cli.analyze import _reference_frame
    from rayflavor.storage import runs

    ref_df, floor = _reference_frame(reference)  # the reference table and its stored noise floor, as analyze reads them
    ref = runs.loc(reference)
    summary = runs.read_json(ref / "reference.json") if (ref / "reference.json").is_file() else None
    rows = []
    for r in runs_:
        if not runs.run_manifest_path(r).is_file():
            raise click.BadParameter(f"{r} is not a diffusion run (no run.json)", param_hint="RUN")
        try:
            rows.append(seeds.seed_row(r, ref_df, floor))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(seeds.table(rows, goal))
    click.echo("\nThe network-only set against its floor:\n")
    click.echo(seeds.floor_table(rows, goal))
    for line in seeds.spread_lines(rows):
        click.echo(line)
    if summary:
        ess, rate = seeds.reference_rate(summary)
        floor = floor or {}
        click.echo(f"reference: {summary['rows']} states, smallest ESS over the predictions {ess:.0f}, "
                   f"{rate:.2f} effective samples per core-second"
                   + (f"; noise floor {min(floor.values()):.3f}–{max(floor.values()):.3f}" if floor else ""))


def _progress(line: str) -> None:
    """A bench's progress, on stderr (stdout keeps the table alone)."""
    click.echo(line, err=True)


@click.command("restarts", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=8, show_default=True, help="Seeds per variant.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=3.0, show_default=True,
              help="Core-minutes per island run.")
@click.option("--patience", type=click.IntRange(min=1), default=100, show_default=True,
              help="Generations without improvement before a stall (low, so stalls happen within the budget).")
@click.option("--restarts", type=click.IntRange(min=1), default=5, show_default=True)
@options.seed_option(0, help="First seed.")
@options.address_option()
def bench_restarts_command(seeds, minutes, patience, restarts, seed, address):
    """Restart-on-stall against the plain stop, same seeds and budget: valid models per core-hour
    of the whole budget (a stopped island idles its core until the end)."""
    from rayflavor.bench.scan import bench_restarts, format_bench

    rows = bench_restarts(seeds=seeds, seconds=minutes * 60.0, patience=patience, restarts=restarts, regime="up", seed=seed,
                          address=address, echo=_progress)
    click.echo(f"{seeds} seeds x {minutes:g} core-min, patience {patience}; per core-hour of the whole budget")
    click.echo(format_bench(rows, whole_budget=True))


@click.command("tabu", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=8, show_default=True, help="Seeds per variant.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Core-minutes per island run.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True)
@options.seed_option(0, help="First seed.")
@options.address_option()
def bench_tabu_command(seeds, minutes, regime, seed, address):
    """The tabu on found light textures (default) against the tabu on found charge assignments,
    same seeds and budget: distinct light textures and unique models per core-hour."""
    from rayflavor.bench.scan import bench_tabu, format_bench

    rows = bench_tabu(seeds=seeds, seconds=minutes * 60.0, regime=regime, seed=seed, address=address,
                      echo=_progress)
    click.echo(f"{seeds} seeds x {minutes:g} core-min, regime {regime}, default fast island otherwise")
    click.echo(format_bench(rows))


@click.command("scan", cls=OneLineCommand)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds per configuration.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=10.0, show_default=True, help="Core-minutes per island run.")
@click.option("--regime", type=click.Choice(["up", "down"]), default="up", show_default=True)
@options.seed_option(0, help="First seed.")
@options.address_option()
@click.option("--only", type=click.Choice(["fast", "paper"]), default=None,
              help="Run one configuration only (default: both, and their ratio).")
@click.option("--migration", default=None, metavar="LIST",
              help="Compare migration topologies instead: comma-separated none, ring, full, each optionally "
                   "+archive (restarts seeded from the scan-wide archive) and +until-found (islands take "
                   "immigrants and archive rows only until their first model) and +FIELD=NUMBER (a numeric "
                   "island setting), e.g. none,ring+archive+until-found,ring+archive+until-found+neighbours=48.")
@click.option("--islands", type=click.IntRange(2, 64), default=4, show_default=True,
              help="With --migration: islands per archipelago (one core runs each archipelago).")
@click.option("--migration-every", "every", type=click.IntRange(min=1), default=None,
              help="With --migration: generations between an island's emigrant batches (default: the scan's).")
@click.option("--restart-archive", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="With --migration: share of a restarted population from the archive in +archive variants.")
def bench_scan_command(seeds, minutes, regime, seed, address, only, migration, islands, every, restart_archive):
    """Time to first valid model, unique valid models and distinct light textures per core-hour:
    the fast islands against the paper's, each with its preset's stops but no target.  With
    --migration: fast-island archipelagos with each migration topology, interleaved on the same
    seed groups (use seeds no default was tuned on, e.g. --seed 1000), each island with
    --minutes of its own compute; the rows are per variant, over all its islands."""
    from rayflavor.bench.scan import bench_migration, bench_scan, format_bench

    if migration is None:
        rows = bench_scan(seeds=seeds, seconds=minutes * 60.0, regime=regime, seed=seed, address=address,
                          methods=(only,) if only else ("fast", "paper"), echo=_progress)
        click.echo(format_bench(rows))
        return
    from rayflavor import configfile
    from rayflavor.orchestration.scan_settings import ScanSettings

    if only:
        raise UserError("--only compares the presets; --migration compares topologies of the fast preset")
    variants = [v.strip() for v in migration.split(",") if v.strip()]
    every = configfile.default(ScanSettings, "migration_every") if every is None else every
    migrants = configfile.default(ScanSettings, "migrants")
    try:
        rows = bench_migration(variants, islands=islands, seeds=seeds, seconds=minutes * 60.0, regime=regime,
                               seed=seed, every=every, migrants=migrants, restart_archive=restart_archive,
                               address=address, echo=_progress)
    except ValueError as exc:
        raise UserError(f"--migration: {exc}") from None
    click.echo(f"{seeds} archipelagos x {islands} islands x {minutes:g} core-min per variant, regime {regime}, "
               f"migration every {every} generations, {migrants} migrants; seeds {seed}..{seed + seeds * islands - 1}")
    click.echo(format_bench(rows))


@click.command("diffusion")
@click.option("--batch", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Torch threads (rates are per core).")
@click.option("--steps", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--guidance", type=click.FloatRange(min=0), default=8.0, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--physics-guidance", "physics", type=click.IntRange(min=0), default=3, show_default=True,
              help="Also time DDIM with this many physics-guidance steps per reverse step (0 = skip).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw numbers as JSON.")
def bench_diffusion_command(batch, threads, steps, guidance, seconds, physics, as_json) -> None:
    """Samples/s per core of the table-2 network and of DDPM/DDIM, against the matmul bound."""
    from rayflavor.bench.diffusion import bench

    r = bench(batch=batch, threads=threads, steps=steps, guidance=guidance, min_seconds=seconds, physics=physics)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"batch {batch}, {threads} thread(s), {steps} steps, CFG {guidance:g}; samples/s per core")
    click.echo(f"  matmul bound (1 forward)  {r['matmul_bound']:10.0f}  ({r['matmul_gflops']:.0f} GFLOP/s; a 1024^2 fp32 "
               f"matmul runs at {r['gemm_gflops']:.0f} GFLOP/s per core)")
    click.echo(f"  forward, folded bias      {r['forward_folded']:10.0f}  ({100 * r['forward_ratio']:.0f}% of bound)")
    click.echo(f"  forward, eager table-2    {r['forward_eager']:10.0f}")
    for s in ("ddpm", "ddim"):
        click.echo(f"  {s} sampler              {r[s]:10.1f}  ({100 * r[s + '_ratio']:.0f}% of bound "
                   f"{r['matmul_bound'] / ((2 if guidance not in (0, 1) else 1) * steps):.1f})")
    if r.get("physics"):
        click.echo(f"  ddim + physics guidance   {r['ddim_physics']:10.1f}  ({r['physics']} steps per reverse step; "
                   f"{r['ddim'] / r['ddim_physics']:.1f}x the time of plain DDIM)")


@click.command("findings", cls=OneLineCommand)
@options.out_option("Directory (or storage URI) that gets one scan per recipe.", required=True)
@click.option("--islands", type=click.IntRange(min=1), default=2, show_default=True, help="Islands per recipe scan.")
@click.option("--time-limit", default="15m", show_default=True,
              help="Wall-clock limit of each recipe scan (2 islands x 15m = 30 core-minutes).")
@options.seed_option(0, help="Base seed of every recipe scan.")
@click.option("--only", default=None, metavar="SCAN[,SCAN...]",
              help="Run only these recipe scans (no-up, io-up, no-down, io-down, no-up-small-mee, no-down-small-mee, "
                   "max-exponent-3, masses-10, masses-6).")
@click.option("--contrast", type=click.Choice(["io-mee"]), default=None,
              help="Also test a contrast over seeds: io-mee runs the io-up and io-down recipes once per seed "
                   "(into OUT/contrast-io-mee) and compares the per-seed median m_ee of IO models (exact "
                   "Mann-Whitney U).")
@click.option("--seeds", type=click.IntRange(min=2), default=None,
              help="With --contrast: seeds per regime (default 8).")
@click.option("--docs", "docs", default=None, metavar="FILE",
              help="Rewrite the table between the lines <!-- findings-table:start --> and <!-- findings-table:end "
                   "--> of this Markdown file (e.g. docs/findings.md), with the command, date and commit.")
@options.address_option()
@click.option("--dry-run", is_flag=True, help="Print the scan commands and exit.")
def bench_findings_command(out, islands, time_limit, seed, only, contrast, seeds, docs, address, dry_run):
    """Reproduce the FN paper's findings (both orderings in both regimes, small and large m_ee,
    maximal exponent 3, masses within 10% and 6%): run one scan per recipe, then print, per
    finding, the models that show it, the island-time to the first one and the counts per
    core-hour.  Writes OUT/findings.md, OUT/findings.json and OUT/findings.png; with --contrast,
    also OUT/contrast-io-mee.json."""
    import shlex
    from datetime import datetime, timezone

    from rayflavor.bench.contrast import run_contrast
    from rayflavor.bench.findings import SCANS, RecipeError, check_docs, docs_block, git_commit, rewrite_docs, run_findings
    from rayflavor.physics.fn import DEFAULT_DATA
    from rayflavor.settings_model import parse_duration
    from rayflavor.storage.location import StorageError, resolve

    try:
        parse_duration(time_limit)
        loc = resolve(out)
        if docs is not None:
            check_docs(docs)  # before hours of scans, not after
    except (ValueError, StorageError) as exc:
        raise UserError(f"{exc}") from None
    if seeds is not None and contrast is None:
        raise UserError("--seeds is the number of seeds of a --contrast; give --contrast too")
    scans = list(SCANS) if only is None else [s.strip() for s in only.split(",") if s.strip()]
    bad = [s for s in scans if s not in SCANS]
    if bad or not scans:
        raise UserError(f"--only: unknown recipe scan {', '.join(bad) or repr(only)} (use {', '.join(SCANS)})")
    seeds = 8 if seeds is None else seeds
    try:
        table = run_findings(loc, scans, load_data(DEFAULT_DATA), islands=islands, time_limit=time_limit, seed=seed,
                             address=address, dry_run=dry_run, echo=click.echo)
        result = None
        if contrast is not None:
            result = run_contrast(loc, contrast, seeds=seeds, islands=islands, time_limit=time_limit, seed=seed,
                                  address=address, dry_run=dry_run, echo=click.echo, ran=tuple(scans))
    except RecipeError as exc:
        raise UserError(str(exc)) from None
    if docs is None or dry_run:
        return
    command = shlex.join(["rayflavor", "bench", "findings", "--out", out, "--islands", str(islands), "--time-limit",
                          time_limit, "--seed", str(seed), *(["--only", ",".join(scans)] if only is not None else []),
                          *(["--contrast", contrast, "--seeds", str(seeds)] if contrast else []), "--docs", docs])
    date = datetime.now(timezone.utc).date().isoformat()
    try:
        rewrite_docs(docs, docs_block(table, command, date=date, commit=git_commit(),
                                      verdict=result["verdict"] if result else None))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"docs: the table in {docs} rewritten")

bench.add_command(bench_restarts_command, "restarts")
bench.add_command(bench_tabu_command, "tabu")
bench.add_command(bench_scan_command, "scan")
bench.add_command(bench_diffusion_command, "diffusion")
bench.add_command(bench_findings_command, "findings")

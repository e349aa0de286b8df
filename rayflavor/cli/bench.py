"""``rayflavor bench``: speed measurements (kept out of the unit tests)."""

from __future__ import annotations

import click


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
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
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
    if summary:
        ess, rate = seeds.reference_rate(summary)
        floor = floor or {}
        click.echo(f"reference: {summary['rows']} states, smallest ESS over the predictions {ess:.0f}, "
                   f"{rate:.2f} effective samples per core-second"
                   + (f"; noise floor {min(floor.values()):.3f}–{max(floor.values()):.3f}" if floor else ""))

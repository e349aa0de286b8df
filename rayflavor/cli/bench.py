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
    from rayflavor import bench_physics as bp

    try:
        batch = [int(s) for s in sizes.split(",") if s.strip()]
        assert batch and all(b > 0 for b in batch)
    except (ValueError, AssertionError):
        raise click.BadParameter(f"expected positive integers separated by commas, got {sizes!r}", param_hint="--sizes")
    click.echo(bp.format_rows(bp.run(batch, min_seconds)))

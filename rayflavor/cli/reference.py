"""``rayflavor diffusion reference RUN``: the network-free reference of the seesaw solution set."""

from __future__ import annotations

import click

from rayflavor import configfile
from rayflavor.cli.common import OneLineCommand, UserError
from rayflavor.methods.reference import ReferenceSettings

_d = lambda name: configfile.default(ReferenceSettings, name)  # noqa: E731 - one definition of each default


@click.command("reference", cls=OneLineCommand, short_help="Network-free reference of the solution set (nested sampling + walks).")
@click.argument("run")
@click.option("--tasks", type=click.IntRange(min=1), default=_d("tasks"), show_default=True,
              help="Independent nested-sampling runs (Ray tasks, one core each).")
@click.option("--n-live", type=click.IntRange(min=10), default=_d("n_live"), show_default=True,
              help="Live points per run; also the number of chains per run.")
@click.option("--steps", type=click.IntRange(min=1), default=_d("steps"), show_default=True,
              help="Random-walk steps per replaced live point.")
@click.option("--draws", type=click.IntRange(min=2), default=_d("draws"), show_default=True,
              help="States kept per chain after the descent.")
@click.option("--thin", type=click.IntRange(min=1), default=_d("thin"), show_default=True,
              help="Walk steps between kept states.")
@click.option("--orbits", type=click.IntRange(min=0), default=_d("orbits"), show_default=True,
              help="Sweeps of orbit resampling before every kept state: the heavy masses redrawn along the exact "
                   "symmetries of m_nu from the prior (no observable changes); 0 = the walk alone.")
@click.option("--method", type=click.Choice(["nested", "importance"]), default=_d("method"), show_default=True,
              help="nested: nested sampling + constrained walks; importance: the exact importance sampler in "
                   "Casas-Ibarra coordinates (NO; weighted draws resampled to the Kish ESS, weights kept).")
@click.option("--ordering", type=click.Choice(["NO", "IO"]), default=_d("ordering"), show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=_d("seed"), show_default=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML/JSON settings (a stored reference.json works); options given here override it.")
@click.pass_context
def reference_cmd(ctx, run, tasks, n_live, steps, draws, thin, orbits, method, ordering, seed, config_file) -> None:
    """Sample the seesaw solution set under the paper's prior without the network.

    Nested sampling descends from the prior (eqs. 2.16-2.18) to the 3-sigma set, keeping
    separated modes in proportion to their prior volume; constrained random walks then sample it
    uniformly, and before every kept state the heavy masses are redrawn along the exact
    symmetries of m_nu (--orbits). Writes RUN/reference.parquet (the columns of
    solutions.parquet plus task, chain, draw) and RUN/reference.json (settings, the prior
    fraction of the solution set, split-R-hat and ESS per prediction). With --method importance the
    set is drawn exactly instead (docs/reference-sampler.md): RUN/reference_weighted.parquet keeps the
    weighted draws, reference.parquet their resampled set. RUN may be a local path or
    an s3:// / gs:// URI. Compare a run with `rayflavor analyze RUN --reference RUN/reference.parquet`.
    """
    from rayflavor.storage.location import StorageError, resolve

    try:
        base = configfile.load_config(config_file) if config_file else {}
        settings = configfile.from_mapping(ReferenceSettings, {**base, **configfile.cli_overrides(ctx, {
            "tasks": "tasks", "n_live": "n_live", "steps": "steps", "draws": "draws", "thin": "thin",
            "orbits": "orbits", "method": "method", "ordering": "ordering", "seed": "seed"})})
        loc = resolve(run)
        loc.check_writable()
    except (configfile.ConfigError, StorageError) as exc:
        raise UserError(str(exc)) from None
    from rayflavor.orchestration.reference import build_reference
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray((ctx.obj or {}).get("address") if isinstance(ctx.obj, dict) else None)
    build_reference(loc, settings, log=click.echo)

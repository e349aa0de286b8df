"""``rayflavor diffusion reference RUN``: the network-free reference of the seesaw solution set."""

from __future__ import annotations

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError
from rayflavor.methods.reference import ReferenceSettings

#: what ``rayflavor diffusion reference`` builds: :class:`ReferenceSettings` (one preset: its defaults)
REFERENCE = options.Settable(ReferenceSettings, {"default": ReferenceSettings()}, "default")


@click.command("reference", cls=OneLineCommand, short_help="Network-free reference of the solution set (nested sampling + walks).")
@click.argument("run")
@options.config_option()
@options.with_options(*options.setting_options(ReferenceSettings))
@click.pass_context
def reference_cmd(ctx, run, config) -> None:
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
        settings = options.resolve(REFERENCE, None, config, options.given(ctx))[0]
        loc = resolve(run)
        loc.check_writable()
    except (ValueError, StorageError) as exc:  # ConfigError, a settings check
        raise UserError(str(exc)) from None
    from rayflavor.orchestration.reference import build_reference
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray((ctx.obj or {}).get("address") if isinstance(ctx.obj, dict) else None)
    build_reference(loc, settings, log=click.echo)

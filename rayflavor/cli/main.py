"""The ``rayflavor`` command: a click group assembled from one module per command."""

from __future__ import annotations

import click

from rayflavor import __version__
from rayflavor.cli.analyze import analyze
from rayflavor.cli.bench import bench
from rayflavor.cli.config import config
from rayflavor.cli.diffusion import diffusion
from rayflavor.cli.evaluate import evaluate
from rayflavor.cli.reference import reference_cmd
from rayflavor.cli.dedupe import dedupe
from rayflavor.cli.scan import scan


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rayflavor")
def cli():
    """rayflavor: AI scans of flavour model space on Ray.

    Exact physics of the type-I seesaw and two-flavon Froggatt-Nielsen models, NSGA-III island
    scans and a conditional diffusion model, locally or on a Ray cluster.
    """


cli.add_command(evaluate)
cli.add_command(scan)
cli.add_command(dedupe)
cli.add_command(diffusion)
diffusion.add_command(reference_cmd)
cli.add_command(analyze)
cli.add_command(config)
cli.add_command(bench)

if __name__ == "__main__":  # pragma: no cover
    cli()

"""``rayflavor diffusion ...`` and ``rayflavor bench diffusion``: thin click wrappers.

Every setting is declared once, in :mod:`rayflavor.methods.diffusion.settings`; the options of
``sample``, ``finetune`` and ``run`` are generated from those declarations
(:mod:`rayflavor.cli.options`). Settings are built as: the defaults < ``--preset`` < ``--config
FILE`` < options given on the command line. Every option is checked before anything is written,
and every command that writes into RUN holds RUN's lease (``RUN/LOCK.json``) while it runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError
from rayflavor.messages import one_line
from rayflavor.methods.diffusion import settings as ds
from rayflavor.methods.diffusion.settings import ChainSettings, FinetuneSettings, SamplingSettings, TuneSettings
from rayflavor.storage import runs


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        raise UserError(one_line(exc)) from None


class _RunDir(click.Path):
    """A run directory: a local path, a ``file://`` URI, or an object-store prefix (``s3://bucket/run``,
    ``gs://...``; endpoint and credentials from the standard environment variables). A URI is checked
    by :func:`rayflavor.storage.location.resolve` (one line for an unsupported scheme) and passed on
    as a string; a local path as a :class:`~pathlib.Path`."""

    def convert(self, value, param, ctx):
        from rayflavor.storage.location import resolve, split_uri

        text = str(value)
        if "://" not in text:
            return super().convert(text, param, ctx)
        scheme, path = _guard(split_uri, text)  # the one URI parser of every command
        if not scheme:  # file:///PATH, file://localhost/PATH
            return super().convert(path, param, ctx)
        where = _guard(resolve, text)
        if self.exists and not _guard(where.is_dir):
            raise UserError(f"{where.uri}: no such run (nothing under this prefix)")
        return where.uri


def _run_dir(must_exist: bool = True):
    return _RunDir(file_okay=False, exists=must_exist, path_type=Path)


#: the settings of each command that has them: class, presets (``default`` = the class defaults)
SAMPLE = options.Settable(SamplingSettings, {"default": SamplingSettings(), **ds.PRESETS[SamplingSettings]}, "default")
FINETUNE = options.Settable(FinetuneSettings, {"default": FinetuneSettings(), **ds.PRESETS[FinetuneSettings]},
                            "default")
RUN = options.Settable(ChainSettings, {"default": ChainSettings(), **ds.PRESETS[ChainSettings]}, "default")


def build_settings(ctx: click.Context, settable: options.Settable, preset: str | None, config: str | None):
    """The command's settings: defaults < preset < ``--config`` file < options typed on the command line."""
    return _guard(options.resolve, settable, preset, config, options.given(ctx))[0]


class _Group(click.Group):
    """The diffusion commands print bad options as one ``Error:`` line (exit code 2)."""

    command_class = OneLineCommand


@contextmanager
def _lease(run: Path, command: str):
    """Hold RUN's lease while a command writes into it (renewed in the background)."""
    from rayflavor.orchestration.diffusion_progress import polling
    from rayflavor.storage import lease as lease_mod
    from rayflavor.storage.location import resolve

    held = _guard(lease_mod.acquire, _guard(resolve, run), owner=f"rayflavor diffusion {command}")

    def renew() -> None:
        try:
            held.renew()
        except ValueError:  # taken over after a stall: the next write may collide, nothing to do here
            pass

    try:
        with polling(renew, held.ttl / 3):
            yield held
    finally:
        held.release()


@click.group("diffusion", cls=_Group)
@options.address_option()
@click.pass_context
def diffusion(ctx: click.Context, address: str | None) -> None:
    """Conditional diffusion model for the type-I seesaw (the diffusion paper)."""
    ctx.obj = {"address": address}


def _ray(ctx) -> None:
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray((ctx.obj or {}).get("address"))


@diffusion.command("dataset", short_help="Prior points, their labels and a 90/10 split, as Parquet.")
@options.field_option(ChainSettings, "n_data", "--n", param="n")
@options.field_option(ChainSettings, "seed")
@click.option("--shards", type=int, default=None, help="Ray tasks (default n/10000, at most --n).")
@options.out_option("Run directory.", required=True, name="run")
@click.pass_context
def dataset_cmd(ctx, n, seed, shards, run) -> None:
    """Prior points (eqs. 2.17-2.18), their labels (eq. 2.16) and a 90/10 split, as Parquet."""
    from rayflavor.orchestration.diffusion_dataset import check_dataset_settings, make_dataset

    _guard(check_dataset_settings, n, seed, shards)  # before anything is written
    with _lease(run, "dataset"):
        _ray(ctx)
        _guard(make_dataset, run, n=n, seed=seed, shards=shards)


@diffusion.command("train")
@click.argument("run", type=_run_dir())
@options.field_option(ChainSettings, "workers")
@options.field_option(TuneSettings, "steps")
@options.field_option(TuneSettings, "batch_size")
@click.option("--gpu", type=click.Choice(["auto", "off", "on"]), default="auto", show_default=True)
@options.field_option(TuneSettings, "every")
@options.field_option(ChainSettings, "seed")
@options.field_option(ChainSettings, "coordinates")
@click.pass_context
def train_cmd(ctx, run, workers, steps, batch_size, gpu, every, seed, coordinates) -> None:
    """Train the pre-network (resumes an interrupted training)."""
    _guard(runs.require_dataset, run)  # names a missing or damaged part before Ray starts
    with _lease(run, "train"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_train import train_network

        _guard(train_network, run, "pre", workers=workers, steps=steps, batch_size=batch_size, gpu=gpu, every=every,
               seed=seed, coordinates=coordinates, refit="none", recovery=ds.RecoverySettings())


@diffusion.command("sample", short_help="Generate points for the NO/IO labels; collect solutions.")
@click.argument("run", type=_run_dir())
@options.settings_of(SAMPLE, preset_help="Start from these settings (paper: the paper's).")
@click.option("--network", default=None, help="Network name (default: the newest: pre, tuned-1, ...).")
@click.option("--keep", type=click.Choice(ds.KEEP), default=ds.KEEP[0],
              show_default=True, help="Rows written to the parts (counts are always kept).")
@options.field_option(ChainSettings, "seed")
@click.pass_context
def sample_cmd(ctx, run, preset, config, network, keep, seed) -> None:
    """Generate points conditioned on the NO (or IO) labels; solutions go to RUN/solutions.parquet.

    Every sampling setting (sampler, clip, bound, orbits, shards, ...) is in --config; `rayflavor
    config show diffusion sample` lists them.
    """
    sampling = build_settings(ctx, SAMPLE, preset, config)
    name = _guard(runs.require_network, run, network)  # before Ray starts: a user mistake fails in a second
    from rayflavor.methods.diffusion.sampleset import SampleSet

    _guard(SampleSet, network=name, sampling=sampling, seed=seed, keep=keep)
    _guard(_check_network, run, name, sampling)
    with _lease(run, "sample"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_sample import sample_run

        _guard(sample_run, run, sampling, network=network, keep=keep, seed=seed)


def _check_network(run: Path, name: str, sampling: SamplingSettings) -> None:
    """Refuse settings the network cannot serve, before Ray starts (ValueError in one line)."""
    from rayflavor.methods.diffusion import training
    from rayflavor.methods.diffusion.sampleset import check_network

    _, norm, d = training.load_model(runs.network_path(run, name))
    check_network(name, norm, d, sampling)


@diffusion.command("finetune", short_help="Fine-tune the newest network on its selected samples.")
@click.argument("run", type=_run_dir())
@options.settings_of(FINETUNE, preset_help="Start from these settings (paper: the paper's).")
@click.pass_context
def finetune_cmd(ctx, run, preset, config) -> None:
    """Transfer learning (Sec. 2.2.3): fine-tune the newest network on its selected samples.

    The paper: --preset paper. Every other setting is in --config; `rayflavor config show
    diffusion finetune` lists them.
    """
    settings = build_settings(ctx, FINETUNE, preset, config)
    _guard(runs.require_network, run)
    with _lease(run, "finetune"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_rounds import finetune

        _guard(finetune, run, settings)


@diffusion.command("run", short_help="Whole chain; prints the solution count.")
@click.argument("run", type=_run_dir(False))
@options.settings_of(RUN, preset_help="Start from these settings (self: the self-training chain, 30 rounds, measured "
                                      "before the reference teacher; paper: the paper's).")
@click.pass_context
def run_cmd(ctx, run, preset, config) -> None:
    """The whole chain: dataset, pre-network, teacher (or self-training rounds), final samples.

    Default: the pre-network is fine-tuned on a network-free sample of the solution set (the
    teacher, RUN/teacher), then two final samples are drawn: the network's own, and one whose
    points are projected onto the 3-sigma set and then spread along the exact symmetries as the
    prior spreads them; the projected solutions' predictions follow the whole solution set. The
    self-training chain: --preset self. The paper's chain: --preset paper. The settings are
    stored whole in RUN/run.json; every setting without an option is in --config (`rayflavor
    config show diffusion run` lists them).
    """
    settings = build_settings(ctx, RUN, preset, config)
    if (ctx.find_root().obj or {}).get("job"):  # jobs/diffusion.py: a retry continues only its own chain
        from rayflavor.orchestration.diffusion_pipeline import run_differences

        diff = _guard(run_differences, run, settings)
        if diff:
            raise UserError(f"{run} holds a chain with other settings ({', '.join(diff)}); "
                            "a job continues only its own chain: use another RUN")
    with _lease(run, "run"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_pipeline import run_chain

        s = _guard(run_chain, run, settings)
    from rayflavor.methods.diffusion.sampleset import drawn_note

    if "unguided" in s:
        u = s["unguided"]
        click.echo(f"solutions, network only: {u['solutions']} of {u['n']} samples "
                   f"(fraction {u['fraction']:.3g}{drawn_note(u)}), {u['distinct_solutions']} distinct")
        from rayflavor.analysis.fidelity import sample_kind

        kind = sample_kind(settings.final_physics, settings.final_project, settings.final_orbits)
        click.echo(f"solutions, {kind}: {s['solutions']} of {s['n']} "
                   f"samples (fraction {s['fraction']:.3g}{drawn_note(s)}), {s['distinct_solutions']} distinct; "
                   f"total {s['total_seconds'] / 60:.1f} min")
    else:
        click.echo(f"solutions: {s['solutions']} of {s['n']} samples (fraction {s['fraction']:.3g}{drawn_note(s)}), "
                   f"{s['distinct_solutions']} distinct; total {s['total_seconds'] / 60:.1f} min")

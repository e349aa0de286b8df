"""``rayflavor diffusion ...`` and ``rayflavor bench diffusion``: thin click wrappers.

Every setting is defined once, in :mod:`rayflavor.methods.diffusion.settings`; the options below
take their defaults from there (``OPTION_FIELDS`` says which option sets which field). Settings
are built as: the defaults < ``--preset paper`` < ``--config FILE`` (``run``) < options given on
the command line. Every option is checked before anything is written, and every command that
writes into RUN holds RUN's lease (``RUN/LOCK.json``) while it runs.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click

from rayflavor import configfile
from rayflavor.cli.common import UserError
from rayflavor.methods.diffusion import settings as ds
from rayflavor.methods.diffusion.settings import (ChainSettings, FinetuneSettings, SamplingSettings)
from rayflavor.storage import runs


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


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


_pos = click.IntRange(min=1)
_LABELS_HELP = ("What the samples are conditioned on: central (the measured central values, the paper) or "
                "solutions (each point on the labels of a random one of the solutions the network was fine-tuned "
                "on: the measurement's 3-sigma windows as the prior fills them; beyond the paper; needs a "
                "fine-tuned network and NO).")
_COORDINATES_HELP = ("The network's data space: paper (the 23 Yukawa and mass parameters, as the paper); "
                     "casas-ibarra (the same points in the exact Casas-Ibarra parametrisation, where dm21, dm31 and "
                     "the mixing angles are coordinates; beyond the paper); casas-ibarra-m3edge (as casas-ibarra, "
                     "with M3 as the log of its distance from the prior's heaviest-M3 face, where half the "
                     "solutions lie). Fine-tuned networks keep their pre-network's.")

#: For each command: its settings class and, per click option, the field (path) it sets.
_SAMPLING = {"sampler": ("sampler",), "steps": ("steps",), "guidance": ("guidance",), "clip": ("clip",),
             "bound": ("bound",)}
_SELECTION = {"select": ("selection", "select"), "n_best": ("selection", "n_best"),
              "per_solution": ("selection", "per_solution"), "pool": ("selection", "pool"),
              "min_select": ("selection", "min_select"), "spread": ("selection", "spread")}
OPTION_FIELDS: dict[str, tuple[type, dict[str, tuple[str, ...]]]] = {
    "sample": (SamplingSettings, {**_SAMPLING, "physics": ("physics",), "project": ("project",), "orbits": ("orbits",),
                                  "ordering": ("ordering",), "labels": ("labels",), "n": ("n",),
                                  "shards": ("shards",)}),
    "finetune": (FinetuneSettings, {"rounds": ("rounds",), "n_select": ("sampling", "n"),
                                    **{k: ("sampling", *v) for k, v in _SAMPLING.items()}, **_SELECTION,
                                    "refit": ("tune", "refit"), "train_steps": ("tune", "steps"),
                                    "workers": ("workers",), "seed": ("seed",)}),
    "run": (ChainSettings, {"n_data": ("n_data",), "train_steps": ("train_steps",), "coordinates": ("coordinates",),
                            "teacher": ("teacher",),
                            "teacher_tasks": ("teacher_tasks",), "teacher_live": ("teacher_live",),
                            "teacher_steps": ("teacher_steps",), "teacher_orbits": ("teacher_orbits",),
                            "rounds": ("rounds",), "final_labels": ("final_labels",),
                            "ft_steps": ("tune", "steps"), "n_select": ("sampling", "n"), "n_final": ("n_final",),
                            "final_guidance": ("final_guidance",), "final_network": ("final_network",),
                            "final_physics": ("final_physics",), "final_project": ("final_project",),
                            "final_orbits": ("final_orbits",),
                            **{k: ("sampling", *v) for k, v in _SAMPLING.items()}, **_SELECTION,
                            "refit": ("tune", "refit"), "workers": ("workers",), "seed": ("seed",)}),
}


def field_default(cls: type, path: tuple[str, ...]):
    """The default of the (nested) field ``path`` of settings class ``cls``: what the option shows."""
    value = configfile.default(cls, path[0])
    for name in path[1:]:
        value = getattr(value, name)
    return value


def _d(command: str, option: str):
    cls, fields = OPTION_FIELDS[command]
    return field_default(cls, fields[option])


def build_settings(ctx: click.Context, command: str, preset: str | None, config: Path | None = None):
    """The command's settings: defaults < preset < ``--config`` file < options typed on the command line."""
    cls, fields = OPTION_FIELDS[command]
    obj = _guard(ds.preset, cls, preset)
    if config is not None:
        obj = _guard(configfile.replace_from, obj, _guard(configfile.load_config, config))
    nested: dict = {}
    for option, value in configfile.cli_overrides(ctx, {k: k for k in fields}).items():
        *head, last = fields[option]
        target = nested
        for h in head:
            target = target.setdefault(h, {})
        target[last] = value
    return _guard(configfile.replace_from, obj, nested) if nested else obj


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


@click.group("diffusion")
@click.option("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local instance).")
@click.pass_context
def diffusion(ctx: click.Context, address: str | None) -> None:
    """Conditional diffusion model for the type-I seesaw (the diffusion paper)."""
    ctx.obj = {"address": address}


def _ray(ctx) -> None:
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray((ctx.obj or {}).get("address"))


_preset_option = click.option("--preset", type=click.Choice(["default", "paper"]), default="default",
                              show_default=True, help="Start from these settings (paper: the paper's); "
                                                      "options given explicitly override them.")


@diffusion.command("dataset", short_help="Prior points, their labels and a 90/10 split, as Parquet.")
@click.option("--n", "n", type=int, default=configfile.default(ChainSettings, "n_data"), show_default=True,
              help="Number of prior points (at least 10).")
@click.option("--seed", type=int, default=configfile.default(ChainSettings, "seed"), show_default=True)
@click.option("--shards", type=int, default=None, help="Ray tasks (default n/10000, at most --n).")
@click.option("--out", "run", type=_run_dir(False), required=True, help="Run directory.")
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
@click.option("--workers", type=_pos, default=1, show_default=True, help="Ray Train workers (1 CPU each).")
@click.option("--steps", type=_pos, default=configfile.default(ds.TuneSettings, "steps"), show_default=True)
@click.option("--batch-size", type=_pos, default=configfile.default(ds.TuneSettings, "batch_size"), show_default=True,
              help="Global batch (split over workers).")
@click.option("--gpu", type=click.Choice(["auto", "off", "on"]), default="auto", show_default=True)
@click.option("--every", type=_pos, default=1000, show_default=True, help="Steps between checkpoints / loss logs.")
@click.option("--seed", type=click.IntRange(min=0), default=configfile.default(ChainSettings, "seed"),
              show_default=True)
@click.option("--coordinates", type=click.Choice(ds.COORDINATES), default=configfile.default(ChainSettings, "coordinates"),
              show_default=True, help=_COORDINATES_HELP)
@click.pass_context
def train_cmd(ctx, run, workers, steps, batch_size, gpu, every, seed, coordinates) -> None:
    """Train the pre-network (resumes an interrupted training)."""
    _guard(runs.require_dataset, run)  # names a missing or damaged part before Ray starts
    with _lease(run, "train"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_train import train_network

        _guard(train_network, run, "pre", workers=workers, steps=steps, batch_size=batch_size, gpu=gpu, every=every,
               seed=seed, coordinates=coordinates)


def _options(*options):
    """Apply click options so that --help lists them in the order given."""
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


def _sampling_options(command: str):
    return _options(
        click.option("--sampler", type=click.Choice(ds.SAMPLERS), default=_d(command, "sampler"),
                     show_default=True),
        click.option("--steps", type=int, default=_d(command, "steps"), show_default=True,
                     help="Reverse steps, 1-1000 (1000 = every step, the paper's DDPM)."),
        click.option("--guidance", type=float, default=_d(command, "guidance"), show_default=True,
                     help="CFG scale gamma (eq. B.5), >= 0."),
        click.option("--clip", type=float, default=_d(command, "clip"), show_default=True,
                     help="Clamp the predicted x0 to [-clip, clip] (the training range in network units) at "
                          "every reverse step (beyond the paper); 0 = no clamp (the paper)."),
        click.option("--bound", type=click.Choice(ds.BOUNDS), default=_d(command, "bound"), show_default=True,
                     help="How --clip, physics guidance and the final [-1, 1] are enforced: clamp onto the face "
                          "(piles samples on it) or reflect at it."),
    )


def _selection_options(command: str):
    return _options(
        click.option("--select", "select", type=click.Choice(ds.SELECT), default=_d(command, "select"),
                     show_default=True,
                     help="nearest: every solution found so far, filled up to --n-best with the samples closest "
                          "to the 3-sigma box (beyond the paper); cuts: the paper's sec. 2.2.3 conditions "
                          "(with --min-select)."),
        click.option("--n-best", type=int, default=_d(command, "n_best"), show_default=True,
                     help="With --select nearest: the minimum number of training rows per round."),
        click.option("--per-solution", type=float, default=_d(command, "per_solution"), show_default=True,
                     help="With --select nearest: grow the set to this many rows per solution it holds, once "
                          "that exceeds --n-best (0 = a fixed --n-best)."),
        click.option("--pool", type=click.Choice(ds.POOLS), default=_d(command, "pool"), show_default=True,
                     help="Select from this round's samples and every earlier round's fine-tuning set (union: "
                          "beyond the paper) or from this round's samples only (round: the paper)."),
        click.option("--refit", type=click.Choice(ds.REFIT), default=_d(command, "refit"), show_default=True,
                     help="Normalise each fine-tuning set over itself, G by the range of its solutions once it "
                          "holds 20 (solutions: beyond the paper), or inherit the pre-network's normalisation "
                          "(none: the paper)."),
        click.option("--min-select", type=int, default=_d(command, "min_select"), show_default=True,
                     help="With --select cuts: top the training set up to this many rows with the lowest-chi2 "
                          "samples when fewer meet the cuts (beyond the paper; 0 = the paper's cuts only)."),
        click.option("--spread", type=int, default=_d(command, "spread"), show_default=True,
                     help="Before each round trains, move every solution of its set by this many constrained "
                          "random-walk steps over the solution set (uniform under the paper's prior), so the "
                          "network does not learn only the corner it found first (beyond the paper; 0 = off)."),
    )


@diffusion.command("sample", short_help="Generate points for the NO/IO labels; collect solutions.")
@click.argument("run", type=_run_dir())
@_preset_option
@click.option("--n", "n", type=int, default=_d("sample", "n"), show_default=True)
@_sampling_options("sample")
@click.option("--physics-guidance", "physics", type=int, default=_d("sample", "physics"), show_default=True,
              help="Physics guidance (beyond the paper): at every reverse step, this many damped steps move the "
                   "predicted x0 down the exact 3-sigma window loss of the seesaw observables; 0 = off (the paper). "
                   "Needs a fine-tuned network: the pre-network's samples are too far from the solutions for it.")
@click.option("--project", "project", type=int, default=_d("sample", "project"), show_default=True,
              help="Projection (beyond the paper): every finished sample outside the 3-sigma box takes up to this "
                   "many damped steps down the exact window loss, onto the solution set nearest to where the "
                   "network put it; 0 = off (the paper). Needs a fine-tuned network, like --physics-guidance.")
@click.option("--orbits", "orbits", type=int, default=_d("sample", "orbits"), show_default=True,
              help="Orbit resampling (beyond the paper): this many sweeps that redraw every finished point along the "
                   "exact symmetries of the light-neutrino mass matrix (row scalings and phases of Y with the "
                   "heavy masses, charged-lepton phases) from the paper's prior. No observable changes, so neither "
                   "does the solution count; the heavy masses then follow the prior. 0 = off (the paper).")
@click.option("--ordering", type=click.Choice(ds.ORDERINGS), default=_d("sample", "ordering"), show_default=True)
@click.option("--labels", type=click.Choice(ds.LABELS), default=_d("sample", "labels"), show_default=True,
              help=_LABELS_HELP)
@click.option("--shards", type=int, default=_d("sample", "shards"),
              help="Ray tasks (default: n/50000, at least one per free CPU when n allows 5000 per task).")
@click.option("--network", default=None, help="Network name (default: the newest: pre, tuned-1, ...).")
@click.option("--keep", type=click.Choice(["all", "selected", "solutions"]), default="all", show_default=True,
              help="Rows written to the parts (counts are always kept).")
@click.option("--seed", type=int, default=configfile.default(ChainSettings, "seed"), show_default=True)
@click.pass_context
def sample_cmd(ctx, run, preset, n, sampler, steps, guidance, clip, bound, physics, project, orbits, ordering, labels,
               shards, network, keep, seed) -> None:
    """Generate points conditioned on the NO (or IO) labels; solutions go to RUN/solutions.parquet."""
    from rayflavor.methods.diffusion.sampleset import SampleSet

    sampling = build_settings(ctx, "sample", preset)
    name = _guard(runs.require_network, run, network)  # before Ray starts: a user mistake fails in a second
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
@_preset_option
@click.option("--rounds", type=int, default=_d("finetune", "rounds"), show_default=True,
              help="sample -> select -> fine-tune rounds.")
@click.option("--n-select", type=int, default=_d("finetune", "n_select"), show_default=True,
              help="Samples drawn per round.")
@_sampling_options("finetune")
@_selection_options("finetune")
@click.option("--train-steps", type=int, default=_d("finetune", "train_steps"), show_default=True)
@click.option("--workers", type=int, default=_d("finetune", "workers"), show_default=True)
@click.option("--seed", type=int, default=_d("finetune", "seed"), show_default=True)
@click.pass_context
def finetune_cmd(ctx, run, preset, rounds, n_select, sampler, steps, guidance, clip, bound, select, n_best, per_solution,
                 pool, refit, min_select, spread, train_steps, workers, seed) -> None:
    """Transfer learning (Sec. 2.2.3): fine-tune the newest network on its selected samples.

    The paper: --preset paper (--rounds 1 --select cuts --pool round --min-select 0 --refit none --clip 0).
    """
    settings = build_settings(ctx, "finetune", preset)
    _guard(runs.require_network, run)
    with _lease(run, "finetune"):
        _ray(ctx)
        from rayflavor.orchestration.diffusion_rounds import finetune

        _guard(finetune, run, settings)


@diffusion.command("run", short_help="Whole chain; prints the solution count.")
@click.argument("run", type=_run_dir(False))
@click.option("--preset", type=click.Choice(["default", "self", "paper"]), default="default", show_default=True,
              help="Start from these settings (self: the self-training chain, 30 rounds, measured before the "
                   "reference teacher; paper: the paper's); options given explicitly override them.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Settings from a TOML or JSON file (a run's RUN/run.json repeats that run); options given "
                   "explicitly override it.")
@click.option("--n-data", type=int, default=_d("run", "n_data"), show_default=True)
@click.option("--train-steps", type=int, default=_d("run", "train_steps"), show_default=True,
              help="Pre-network. Paper: 100000.")
@click.option("--coordinates", type=click.Choice(ds.COORDINATES), default=_d("run", "coordinates"), show_default=True,
              help=_COORDINATES_HELP)
@click.option("--teacher", type=click.Choice(ds.TEACHERS), default=_d("run", "teacher"), show_default=True,
              help="reference: fine-tune the pre-network once on a network-free sample of the solution set "
                   "(nested sampling; its predictions follow the whole set, issue 18); none: self-training "
                   "rounds on the network's own best samples (the paper's transfer learning; fast to a first "
                   "solution, but narrows onto one corner of the set).")
@click.option("--teacher-tasks", type=int, default=_d("run", "teacher_tasks"), show_default=True,
              help="Nested-sampling runs (Ray tasks) of the teacher.")
@click.option("--teacher-live", type=int, default=_d("run", "teacher_live"), show_default=True,
              help="Live points per teacher run = teacher solutions per run.")
@click.option("--teacher-steps", type=int, default=_d("run", "teacher_steps"), show_default=True,
              help="Training steps of the taught network.")
@click.option("--teacher-orbits", type=int, default=_d("run", "teacher_orbits"), show_default=True,
              help="Orbit-resampling sweeps before every kept teacher state (see `diffusion reference --orbits`): "
                   "the taught network then learns the heavy masses as the prior spreads them.")
@click.option("--rounds", type=int, default=_d("run", "rounds"), show_default=True,
              help="Self-training rounds (only with --teacher none; --preset self: 30). Paper: 1.")
@click.option("--ft-steps", type=int, default=_d("run", "ft_steps"), show_default=True,
              help="Training steps per fine-tuning round. Paper: 100000.")
@click.option("--n-select", type=int, default=_d("run", "n_select"), show_default=True, help="Samples drawn per round.")
@click.option("--n", "n_final", type=int, default=_d("run", "n_final"), show_default=True,
              help="Final samples. Paper: 3e7.")
@click.option("--final-guidance", type=float, default=_d("run", "final_guidance"), show_default=True,
              help="CFG scale of the final sample (the rounds use --guidance).")
@click.option("--final-labels", type=click.Choice(ds.LABELS), default=_d("run", "final_labels"), show_default=True,
              help=_LABELS_HELP)
@click.option("--final-network", type=click.Choice(ds.FINAL_NETWORK), default=_d("run", "final_network"),
              show_default=True,
              help="Network of the final sample: the one whose round samples had the highest solution fraction "
                   "(best: beyond the paper) or the newest (last: the paper).")
@click.option("--final-physics-guidance", "final_physics", type=int, default=_d("run", "final_physics"),
              show_default=True,
              help="After the final sample, draw a second one of the same network and size with this many "
                   "physics-guidance steps per reverse step (needs --coordinates paper); 0 = none (the paper).")
@click.option("--final-project", "final_project", type=int, default=_d("run", "final_project"), show_default=True,
              help="... and with this many projection steps onto the 3-sigma set at its end (see `diffusion "
                   "sample --project`); with both at 0 there is no second final sample (the paper).")
@click.option("--final-orbits", "final_orbits", type=int, default=_d("run", "final_orbits"), show_default=True,
              help="... and then this many sweeps of orbit resampling (see `diffusion sample --orbits`).")
@_sampling_options("run")
@_selection_options("run")
@click.option("--workers", type=int, default=_d("run", "workers"), show_default=True)
@click.option("--seed", type=int, default=_d("run", "seed"), show_default=True)
@click.pass_context
def run_cmd(ctx, run, preset, config, n_data, train_steps, coordinates, teacher, teacher_tasks, teacher_live, teacher_steps,
            teacher_orbits, rounds, ft_steps, n_select, n_final, final_guidance, final_labels,
            final_network, final_physics, final_project, final_orbits, sampler, steps, guidance, clip, bound, select,
            n_best, per_solution, pool, refit, min_select, spread, workers, seed) -> None:
    """The whole chain: dataset, pre-network, teacher (or self-training rounds), final samples.

    Default: the pre-network is fine-tuned on a network-free sample of the solution set (the
    teacher, RUN/teacher), then two final samples are drawn: the network's own, and one whose
    points are projected onto the 3-sigma set and then spread along the exact symmetries as the
    prior spreads them; the projected solutions' predictions follow the whole solution set. The
    self-training chain: --preset self. The paper's chain: --preset paper. The settings are
    stored whole in RUN/run.json.
    """
    settings = build_settings(ctx, "run", preset, config)
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
    if "unguided" in s:
        u = s["unguided"]
        click.echo(f"solutions, network only: {u['solutions']} of {u['n']} samples "
                   f"(fraction {u['fraction']:.3g}), {u['distinct_solutions']} distinct")
        from rayflavor.analysis.fidelity import sample_kind

        kind = sample_kind(settings.final_physics, settings.final_project, settings.final_orbits)
        click.echo(f"solutions, {kind}: {s['solutions']} of {s['n']} "
                   f"samples (fraction {s['fraction']:.3g}), {s['distinct_solutions']} distinct; "
                   f"total {s['total_seconds'] / 60:.1f} min")
    else:
        click.echo(f"solutions: {s['solutions']} of {s['n']} samples (fraction {s['fraction']:.3g}), "
                   f"{s['distinct_solutions']} distinct; total {s['total_seconds'] / 60:.1f} min")


@click.command("diffusion")
@click.option("--batch", type=_pos, default=4096, show_default=True)
@click.option("--threads", type=_pos, default=1, show_default=True, help="Torch threads (rates are per core).")
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

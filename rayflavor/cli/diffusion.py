"""``rayflavor diffusion ...`` and ``rayflavor bench diffusion``: thin click wrappers.

Paper-scale settings (documented here, not the defaults of ``run``):
``dataset --n 100000``; ``train --steps 100000 --batch-size 64``; ``finetune --rounds 1
--n-select <enough for ~1e5 selected> --train-steps 100000 --select cuts --pool round --min-select 0
--refit none --clip 0``; ``sample --n 30000000 --sampler ddpm --steps 1000 --guidance 8 --clip 0``.
The options beyond the paper (x0 clip, elite selection, union pool, refitted normalisation,
temperature, physics guidance) are described in the README's diffusion section with the measured fractions.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rayflavor.cli.common import UserError
from rayflavor.methods.diffusion.sampling import SAMPLERS
from rayflavor.storage import runs


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _run_dir(must_exist: bool = True):
    return click.Path(file_okay=False, exists=must_exist, path_type=Path)


_pos = click.IntRange(min=1)


@click.group("diffusion")
@click.option("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local instance).")
@click.pass_context
def diffusion(ctx: click.Context, address: str | None) -> None:
    """Conditional diffusion model for the type-I seesaw (the diffusion paper)."""
    ctx.obj = {"address": address}


def _ray(ctx) -> None:
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray((ctx.obj or {}).get("address"))


@diffusion.command("dataset", short_help="Prior points, their labels and a 90/10 split, as Parquet.")
@click.option("--n", "n", type=click.IntRange(min=10), default=100_000, show_default=True, help="Number of prior points.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--shards", type=_pos, default=None, help="Ray tasks (default n/10000).")
@click.option("--out", "run", type=_run_dir(False), required=True, help="Run directory.")
@click.pass_context
def dataset_cmd(ctx, n, seed, shards, run) -> None:
    """Prior points (eqs. 2.17-2.18), their labels (eq. 2.16) and a 90/10 split, as Parquet."""
    _ray(ctx)
    from rayflavor.orchestration.diffusion_dataset import make_dataset

    _guard(make_dataset, run, n=n, seed=seed, shards=shards)


@diffusion.command("train")
@click.argument("run", type=_run_dir())
@click.option("--workers", type=_pos, default=1, show_default=True, help="Ray Train workers (1 CPU each).")
@click.option("--steps", type=_pos, default=100_000, show_default=True)
@click.option("--batch-size", type=_pos, default=64, show_default=True, help="Global batch (split over workers).")
@click.option("--gpu", type=click.Choice(["auto", "off", "on"]), default="auto", show_default=True)
@click.option("--every", type=_pos, default=1000, show_default=True, help="Steps between checkpoints / loss logs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def train_cmd(ctx, run, workers, steps, batch_size, gpu, every, seed) -> None:
    """Train the pre-network (resumes an interrupted training)."""
    _guard(runs.require_dataset, run)
    _ray(ctx)
    from rayflavor.orchestration.diffusion_train import train_network

    _guard(train_network, run, "pre", workers=workers, steps=steps, batch_size=batch_size, gpu=gpu, every=every,
           seed=seed)


def _sampling_options(f, sampler: str = "ddim", steps: int = 50, guidance: float = 8.0):
    f = click.option("--sampler", type=click.Choice(SAMPLERS), default=sampler, show_default=True)(f)
    f = click.option("--steps", type=click.IntRange(1, 1000), default=steps, show_default=True,
                     help="Reverse steps (1000 = every step, the paper's DDPM).")(f)
    f = click.option("--guidance", type=click.FloatRange(min=0), default=guidance, show_default=True,
                     help="CFG scale gamma (eq. B.5).")(f)
    f = click.option("--clip", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="Clamp the predicted x0 to [-clip, clip] (the training range in network units) at "
                          "every reverse step (beyond the paper); 0 = no clamp (the paper).")(f)
    f = click.option("--physics-guidance", "physics", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Physics guidance (beyond the paper): at every reverse step, this many damped steps "
                          "move the predicted x0 down the exact 3-sigma window loss of the seesaw observables; "
                          "0 = off (the paper). Needs a fine-tuned network: the pre-network's samples are too "
                          "far from the solutions for it.")(f)
    return f


def _clip(value: float) -> float | None:
    return None if value == 0 else float(value)


def _finetune_options(f):
    f = click.option("--select", "select", type=click.Choice(["cuts", "best", "nearest"]), default="nearest",
                     show_default=True,
                     help="cuts: the paper's sec. 2.2.3 conditions (with --tighten, --min-select); best: the "
                          "--n-best lowest-chi2 samples; nearest: every solution found so far, filled up to --n-best "
                          "with the samples closest to the 3-sigma box (both beyond the paper).")(f)
    f = click.option("--n-best", type=_pos, default=300, show_default=True,
                     help="Training rows per round with --select best; the minimum with nearest.")(f)
    f = click.option("--per-solution", type=click.FloatRange(min=0), default=30.0, show_default=True,
                     help="With --select nearest: grow the set to this many rows per solution it holds, once "
                          "that exceeds --n-best (0 = a fixed --n-best).")(f)
    f = click.option("--pool", type=click.Choice(["round", "union"]), default="union", show_default=True,
                     help="Select from this round's samples (round: the paper) or from them and every earlier "
                          "round's fine-tuning set (union: beyond the paper).")(f)
    f = click.option("--refit", type=click.Choice(["all", "solutions", "labels", "none"]), default="solutions",
                     show_default=True,
                     help="Normalise each fine-tuning set over itself: G range and labels (all), the same with the "
                          "G range of the set's solutions once it holds 20 (solutions), labels only (all three "
                          "beyond the paper), or inherit the pre-network's normalisation (none: the paper).")(f)
    f = click.option("--tighten", type=click.FloatRange(min=0, min_open=True, max=1), default=1.0, show_default=True,
                     help="With --select cuts: multiply the cuts by this factor each further round (1 = the paper's).")(f)
    f = click.option("--min-select", type=click.IntRange(min=0), default=2000, show_default=True,
                     help="With --select cuts: top the training set up to this many rows with the lowest-chi2 "
                          "samples when fewer meet the cuts (beyond the paper; 0 = the paper's cuts only).")(f)
    return f


@diffusion.command("sample", short_help="Generate points for the NO/IO labels; collect solutions.")
@click.argument("run", type=_run_dir())
@click.option("--n", "n", type=_pos, default=100_000, show_default=True)
@_sampling_options
@click.option("--ordering", type=click.Choice(["NO", "IO"]), default="NO", show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Standard deviation of the initial noise x_T (beyond the paper; 1 = the paper).")
@click.option("--shards", type=_pos, default=None,
              help="Ray tasks (default: n/50000, at least one per free CPU when n allows 5000 per task).")
@click.option("--network", default=None, help="Network name (default: the newest: pre, tuned-1, ...).")
@click.option("--keep", type=click.Choice(["all", "selected", "solutions"]), default="all", show_default=True,
              help="Rows written to the parts (counts are always kept).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def sample_cmd(ctx, run, n, sampler, steps, guidance, clip, physics, ordering, temperature, shards, network, keep,
               seed) -> None:
    """Generate points conditioned on the NO (or IO) labels; solutions go to RUN/solutions.parquet."""
    _guard(runs.require_network, run, network)  # before Ray starts: a user mistake fails in a second
    _ray(ctx)
    from rayflavor.orchestration.diffusion_sample import sample_run

    _guard(sample_run, run, n=n, sampler=sampler, steps=steps, guidance=guidance, clip=_clip(clip), physics=physics,
           ordering=ordering, temperature=temperature, shards=shards, network=network, keep=keep, seed=seed)


@diffusion.command("finetune", short_help="Fine-tune the newest network on its selected samples.")
@click.argument("run", type=_run_dir())
@click.option("--rounds", type=_pos, default=1, show_default=True, help="sample -> select -> fine-tune rounds.")
@click.option("--n-select", type=_pos, default=200_000, show_default=True, help="Samples drawn per round.")
@_sampling_options
@_finetune_options
@click.option("--train-steps", type=_pos, default=100_000, show_default=True)
@click.option("--workers", type=_pos, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def finetune_cmd(ctx, run, rounds, n_select, sampler, steps, guidance, clip, physics, select, n_best, per_solution,
                 pool, refit, tighten, min_select, train_steps, workers, seed) -> None:
    """Transfer learning (Sec. 2.2.3): fine-tune the newest network on its selected samples.

    The paper: --rounds 1 --select cuts --pool round --min-select 0 --refit none --clip 0.
    """
    _guard(runs.require_network, run)
    _ray(ctx)
    from rayflavor.orchestration.diffusion_pipeline import finetune

    _guard(finetune, run, rounds=rounds, n_select=n_select, sampler=sampler, steps=steps, guidance=guidance,
           clip=_clip(clip), physics=physics, select=select, n_best=n_best, per_solution=per_solution, pool=pool,
           refit=refit, train_steps=train_steps, workers=workers,
           tighten=tighten, min_select=min_select, seed=seed)


RUN_SAMPLER, RUN_STEPS, RUN_GUIDANCE = "ddim", 50, 1.0


@diffusion.command("run", short_help="Whole chain; prints the solution count.")
@click.argument("run", type=_run_dir(False))
@click.option("--n-data", type=click.IntRange(min=10), default=100_000, show_default=True)
@click.option("--train-steps", type=_pos, default=20_000, show_default=True, help="Pre-network. Paper: 100000.")
@click.option("--rounds", type=click.IntRange(min=0), default=30, show_default=True, help="Paper: 1.")
@click.option("--ft-steps", type=_pos, default=2000, show_default=True,
              help="Training steps per fine-tuning round. Paper: 100000.")
@click.option("--n-select", type=_pos, default=20_000, show_default=True, help="Samples drawn per round.")
@click.option("--n", "n_final", type=_pos, default=100_000, show_default=True, help="Final samples. Paper: 3e7.")
@click.option("--final-guidance", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="CFG scale of the final sample (the rounds use --guidance).")
@click.option("--final-temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Initial-noise scale of the final sample (beyond the paper; 1 = the paper).")
@click.option("--final-network", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Network of the final sample: the newest (last: the paper) or the one whose round samples "
                   "had the highest solution fraction (best: beyond the paper).")
@click.option("--final-physics-guidance", "final_physics", type=click.IntRange(min=0), default=3, show_default=True,
              help="After the final sample, draw a second one of the same network and size with this many "
                   "physics-guidance steps per reverse step (see --physics-guidance, which sets the rounds'); "
                   "0 = none (the paper).")
@lambda f: _sampling_options(f, RUN_SAMPLER, RUN_STEPS, RUN_GUIDANCE)
@_finetune_options
@click.option("--workers", type=_pos, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def run_cmd(ctx, run, n_data, train_steps, rounds, ft_steps, n_select, n_final, final_guidance, final_temperature,
            final_network, final_physics, sampler, steps, guidance, clip, physics,
            select, n_best, per_solution, pool, refit, tighten, min_select, workers, seed) -> None:
    """The whole chain: dataset, pre-network, fine-tuning rounds, final sample; prints the solution count.

    The paper's chain: --rounds 1 --ft-steps 100000 --train-steps 100000 --select cuts --pool round
    --min-select 0 --refit none --clip 0 --sampler ddpm --steps 1000 --guidance 8
    --final-guidance 8 --final-temperature 1 --final-network last --final-physics-guidance 0 --n 30000000.
    """
    _ray(ctx)
    from rayflavor.orchestration.diffusion_pipeline import run_chain

    s = _guard(run_chain, run, n_data=n_data, train_steps=train_steps, rounds=rounds, ft_steps=ft_steps,
               n_select=n_select, n_final=n_final, final_guidance=final_guidance,
               final_temperature=final_temperature, final_network=final_network, final_physics=final_physics,
               sampler=sampler, steps=steps, guidance=guidance, clip=_clip(clip), physics=physics, select=select, n_best=n_best, per_solution=per_solution,
               pool=pool, refit=refit, tighten=tighten, min_select=min_select, workers=workers, seed=seed)
    if "unguided" in s:
        u = s["unguided"]
        click.echo(f"solutions without physics guidance: {u['solutions']} of {u['n']} samples "
                   f"(fraction {u['fraction']:.3g}), {u['distinct_solutions']} distinct")
        click.echo(f"solutions with physics guidance ({final_physics} steps): {s['solutions']} of {s['n']} samples "
                   f"(fraction {s['fraction']:.3g}), {s['distinct_solutions']} distinct; "
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
    from rayflavor.methods.diffusion.bench import bench

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

"""Fine-tuning rounds (Sec. 2.2.3) and the whole diffusion chain.

One round: sample from the newest network -> keep the rows meeting the selection conditions
(:mod:`rayflavor.methods.diffusion.selection`) -> fine-tune *all* weights of that network on
them with the same hyper-parameters -> network ``tuned-<r>``. The paper does one round from the
pre-network; ``rounds > 1`` iterates (beyond the paper).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.methods.diffusion import selection
from rayflavor.orchestration.diffusion_dataset import VAL_FRACTION, make_dataset
from rayflavor.orchestration.diffusion_rounds import SESSION_MAX_STEPS, run_rounds
from rayflavor.orchestration.diffusion_sample import part_stats, sample_run, summarize, unique_points
from rayflavor.orchestration.diffusion_train import train_network
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw
from rayflavor.storage import runs


SELECT = ("cuts", "best", "nearest")
POOLS = ("round", "union")


def candidate_rows(run: str | Path, sample_dir: Path, pool: str = "round") -> pa.Table:
    """The rows a fine-tuning round selects from.

    ``round``: the samples just drawn (the paper). ``union`` (beyond the paper): those plus the
    fine-tuning sets of every earlier round of ``run`` (``RUN/finetune/tuned-*.parquet``), so the
    best points found so far stay in the pool; duplicate parameter rows are dropped.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}")
    t = runs.read_parts(sample_dir).replace_schema_metadata(None)
    if pool == "union":
        old = sorted((Path(run) / "finetune").glob("tuned-*.parquet"))
        tables = [t] + [pq.read_table(p).drop_columns(["split"]).replace_schema_metadata(None) for p in old]
        t = unique_points(pa.concat_tables(tables, promote_options="default"))
    return t


def selected_rows(rows: pa.Table | Path, thresholds: selection.Thresholds, seed: int = 0,
                  min_rows: int = 0, mode: str = "cuts", n_best: int = 2000,
                  windows: np.ndarray | None = None, per_solution: float = 0.0) -> tuple[pa.Table, int]:
    """Rows meeting the selection, with a fresh 90/10 ``split`` column; also how many met the cuts.

    ``mode="cuts"`` (the paper): the conditions of sec. 2.2.3, topped up to ``min_rows`` with the
    lowest total chi2. ``mode="best"`` (beyond the paper): exactly the ``n_best`` lowest total chi2.
    ``mode="nearest"`` (beyond the paper): every solution, and the rows closest to the solution box
    up to ``n_best`` in all, or ``per_solution`` rows per solution when that is more
    (:func:`selection.nearest`, :func:`selection.nearest_size`; ``windows``: the 3 sigma windows of
    ``seesaw.SOLUTION_TERMS``, default the NO windows of the default data set).
    ``rows``: a table or a directory of sample parts.
    """
    if mode not in SELECT:
        raise ValueError(f"select must be one of {SELECT}")
    t = rows if isinstance(rows, pa.Table) else runs.read_parts(rows)
    chi2 = t.column("chi2").to_numpy()
    mask = selection.select(chi2, t.column("chi2_mass").to_numpy(), t.column("chi2_mixing").to_numpy(), thresholds)
    n_cut = int(mask.sum())
    if mode == "cuts":
        mask = selection.top_up(mask, chi2, min_rows)
    elif mode == "best":
        mask = selection.best(chi2, n_best)
    else:
        if windows is None:
            windows = seesaw.solution_windows(physics_data.load(seesaw.DEFAULT_DATA), "NO")
        values = np.stack([t.column(c).to_numpy() for c in seesaw.SOLUTION_TERMS], axis=1)
        miss = selection.window_miss(values, windows)
        # every solution found so far stays in the set (diversity), nearest misses fill it up
        mask = selection.nearest(miss, chi2, selection.nearest_size(miss, n_best, per_solution))
    t = t.filter(pa.array(mask)).replace_schema_metadata(None)
    n = t.num_rows
    split = np.full(n, "train", dtype=object)
    split[np.random.default_rng(seed).permutation(n)[: int(round(VAL_FRACTION * n))]] = "val"
    return t.append_column("split", pa.array(split.tolist(), pa.string())), n_cut


def select_round(run: str | Path, r: int, sample_dir: Path, *, pool: str = "round", select: str = "cuts",
                 n_best: int = 1000, min_select: int = 2000, tighten: float = 1.0, per_solution: float = 0.0,
                 seed: int = 0) -> tuple[pa.Table, int, int]:
    """The fine-tuning set of round ``r``: (rows with a ``split`` column, rows meeting the cuts, candidates).

    Deterministic for given files, so every worker of a trainer computes the same set.
    Raises RuntimeError when fewer than 10 rows are selected.
    """
    cand = candidate_rows(run, sample_dir, pool)
    cuts = selection.Thresholds().scaled(tighten ** (r - 1))
    rows, n_cut = selected_rows(cand, cuts, seed=seed + r, min_rows=min_select, mode=select, n_best=n_best,
                                per_solution=per_solution)
    if rows.num_rows < 10:
        raise RuntimeError(f"round {r}: only {rows.num_rows} of {cand.num_rows} samples meet the selection; "
                           "sample more (--n-select), train longer or set a minimum selection")
    return rows, n_cut, cand.num_rows


def finetune(run: str | Path, *, rounds: int = 1, n_select: int = 200_000, sampler: str = "ddim",
             steps: int | None = 50, guidance: float = 8.0, train_steps: int = 100_000, workers: int = 1,
             batch_size: int = 64, gpu: str = "auto", tighten: float = 1.0, shards: int | None = None,
             min_select: int = 2000, select: str = "cuts", n_best: int = 1000, per_solution: float = 0.0,
             pool: str = "round", clip: float | None = None, refit: str = "none", physics: int = 0, seed: int = 0,
             log=print) -> list[dict]:
    """Run ``rounds`` rounds of sample -> select -> fine-tune after the newest network of ``run``.

    ``select="cuts"`` (the paper): the sec. 2.2.3 cuts, of round r the paper's times
    ``tighten**(r-1)`` (1.0 = the paper's cuts every round); ``min_select``: when fewer samples
    meet the cuts, the lowest-chi2 samples top the training set up to this size (beyond the
    paper; 0 = off). ``select="best"`` (beyond the paper): the ``n_best`` lowest-chi2 samples;
    ``select="nearest"``: every solution so far, filled up to ``n_best`` with the samples closest to the box.
    ``pool``: select from this round's samples (``round``, the paper) or from them and every
    earlier round's fine-tuning set (``union``, beyond the paper). ``clip``, ``physics``: see ``sample``.
    ``refit`` (beyond the paper unless "none"): each tuned network normalises its labels
    ("labels") or labels and G ("all") over its own training set (:meth:`Normalizer.refit`).

    Rounds of at most :data:`SESSION_MAX_STEPS` training steps run together in one Ray Train
    trainer (:mod:`.diffusion_rounds`); longer rounds get a trainer each, with checkpoints.
    """
    if select not in SELECT:
        raise ValueError(f"select must be one of {SELECT}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}")
    src = runs.require_network(run)
    first = 1 if src == "pre" else int(src.split("-")[1]) + 1
    keep = "all" if (min_select or select != "cuts") else "selected"
    sample = {"n": n_select, "sampler": sampler, "steps": steps, "guidance": guidance, "clip": clip, "keep": keep,
              "shards": shards, "physics": physics}
    choose = {"pool": pool, "select": select, "n_best": n_best, "per_solution": per_solution,
              "min_select": min_select, "tighten": tighten}
    if train_steps <= SESSION_MAX_STEPS:
        return run_rounds(run, first=first, last=first + rounds - 1, sample=sample, select=choose, refit=refit,
                          steps=train_steps, workers=workers, batch_size=batch_size, gpu=gpu, seed=seed, log=log)
    out = []
    for r in range(first, first + rounds):
        src, name = runs.round_networks(r)
        t0 = time.perf_counter()
        s = sample_run(run, network=src, seed=seed + r, log=log, **sample)  # fresh noise per round
        rows, n_cut, n_cand = select_round(run, r, runs.samples_dir(run, s["tag"]), seed=seed, **choose)
        if select == "cuts" and n_cut < rows.num_rows:
            log(f"finetune {name}: {n_cut} samples meet the paper's cuts; topped up with the "
                f"{rows.num_rows - n_cut} lowest-chi2 samples")
        data = Path(run) / "finetune" / f"{name}.parquet"
        runs.write_table(rows, data)
        chi2 = rows.column("chi2").to_numpy()
        log(f"finetune {name}: {rows.num_rows} of {n_cand} candidate samples selected ({select}, pool "
            f"{pool}) from {src!r}: chi2 median {np.median(chi2):.3g}, max {chi2.max():.3g}")
        m = train_network(run, name, data=data, init=runs.network_path(run, src), workers=workers,
                          steps=train_steps, batch_size=batch_size, gpu=gpu, seed=seed + r,
                          refit=refit, log=log)
        out.append({"round": r, "network": name, "source": src, "selected": rows.num_rows, "met_cuts": n_cut,
                    "candidates": n_cand, "sample": s, "train": m, "seconds": time.perf_counter() - t0})
    return out


def best_network(run: str | Path) -> tuple[str | None, float, int]:
    """(network, solution fraction, samples) of the network of ``run`` whose sample sets together
    have the highest fraction of solutions; (None, 0, 0) when no set has a solution. Ties go to
    the later network. Sets drawn with physics guidance do not count: they measure the guidance."""
    totals: dict[str, list[int]] = {}
    root = Path(run) / "samples"
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        manifest = runs.read_json(d / "manifest.json") if (d / "manifest.json").is_file() else None
        if manifest and not manifest.get("physics") and runs.finished_parts(d):
            st = summarize(part_stats(d))
            t = totals.setdefault(manifest["network"], [0, 0])
            t[0] += st["solutions"]
            t[1] += st["n"]
    order = {n: i for i, n in enumerate(runs.networks(run))}
    ranked = sorted(((s / n, order.get(name, -1), name, n) for name, (s, n) in totals.items()
                     if n and name in order), reverse=True)
    if not ranked or ranked[0][0] == 0:
        return None, 0.0, 0
    frac, _, name, n = ranked[0]
    return name, frac, n


def run_chain(run: str | Path, *, n_data: int = 100_000, train_steps: int = 20_000, rounds: int = 2,
              ft_steps: int | None = None, n_select: int = 100_000, n_final: int = 100_000,
              sampler: str = "ddim", steps: int | None = 50, guidance: float = 8.0, clip: float | None = None,
              select: str = "cuts", n_best: int = 1000, per_solution: float = 0.0, pool: str = "round",
              min_select: int = 2000, tighten: float = 1.0, refit: str = "none", final_guidance: float | None = None,
              final_temperature: float = 1.0, final_network: str = "last", physics: int = 0,
              final_physics: int = 0, workers: int = 1, seed: int = 0, log=print) -> dict:
    """dataset -> pre-network -> ``rounds`` fine-tuning rounds -> final sample; returns the final summary.

    ``ft_steps``: training steps of each fine-tuning round (default ``train_steps``).
    ``final_guidance`` (default ``guidance``) and ``final_temperature``: CFG scale and initial-noise
    scale of the final sample only (the rounds use ``guidance`` and temperature 1).
    ``final_network``: ``"last"`` (the paper: the newest tuned network) or ``"best"`` (beyond the
    paper): the network whose earlier samples -- each round samples the previous network -- had
    the highest solution fraction (:func:`best_network`); the final sample is fresh, with its own
    seed, so its fraction is an unbiased measure of the chosen network.
    ``physics``: physics-guidance steps of the rounds' samples; ``final_physics`` (beyond the
    paper): when > 0, a second final sample of the same network, size and settings with that many
    physics-guidance steps (its own seed); the returned summary is then that one's, with the
    unguided final sample's under ``"unguided"``.
    """
    t0 = time.perf_counter()
    make_dataset(run, n=n_data, seed=seed, log=log)
    train_network(run, "pre", workers=workers, steps=train_steps, seed=seed, log=log)
    done = sum(1 for n in runs.networks(run) if n.startswith("tuned-"))
    if rounds > done:
        finetune(run, rounds=rounds - done, n_select=n_select, sampler=sampler, steps=steps, guidance=guidance,
                 train_steps=ft_steps or train_steps, workers=workers, tighten=tighten, min_select=min_select,
                 select=select, n_best=n_best, per_solution=per_solution, pool=pool, clip=clip, refit=refit,
                 physics=physics, seed=seed, log=log)
    network = None
    if final_network == "best":
        network, frac, n = best_network(run)
        if network is not None:
            log(f"final sample from {network!r}: the highest solution fraction of the networks' samples so far "
                f"({frac:.3g} in {n})")
    elif final_network != "last":
        raise ValueError(f"final_network must be 'best' or 'last', not {final_network!r}")
    final = {"n": n_final, "sampler": sampler, "steps": steps, "network": network, "clip": clip,
             "guidance": guidance if final_guidance is None else final_guidance, "temperature": final_temperature}
    s = sample_run(run, **final, seed=seed + 1, log=log)
    if final_physics:
        s = {**sample_run(run, **final, physics=final_physics, seed=seed + 2, log=log), "unguided": s}
    s["total_seconds"] = time.perf_counter() - t0
    return s

"""Short fine-tuning rounds inside one Ray Train ``TorchTrainer``.

A ``TorchTrainer`` takes ~20 s to start and stop on a laptop (worker actors, process group,
checkpoint storage), longer than a 2000-step fine-tuning round trains. So rounds of at most
:data:`SESSION_MAX_STEPS` steps run one after another inside the workers of a single trainer:

1. **sample**: each worker generates its shards of the round's sample set from the previous
   network -- the same parts, seeds and manifest that ``rayflavor diffusion sample`` writes
   (:func:`rayflavor.orchestration.diffusion_sample.sample_set`);
2. **select**: every worker reads all parts and makes the same (deterministic) selection;
3. **fine-tune**: all workers train together (DDP when there are several), global batch
   ``batch_size``, fresh Adam and OneCycleLR, exactly as a per-round ``train_network`` would.

Rank 0 writes ``RUN/finetune/tuned-<r>.parquet`` and ``RUN/networks/tuned-<r>/model.pt``.
A stopped chain resumes at its first unfinished round: finished sample shards are reused, the
interrupted round's training restarts (it is short). Long rounds (the paper's 100 000 steps)
go through :func:`rayflavor.orchestration.diffusion_train.train_network`, one trainer each,
with checkpoints inside the round.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import torch

import ray
import ray.train  # RAY
from ray.train.torch import TorchTrainer, get_device, prepare_model  # RAY

from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.schedule import NoiseSchedule
from rayflavor.orchestration.diffusion_sample import (collect_solutions, part_stats, sample_set, shard_sizes,
                                                      shard_table, summarize)
from rayflavor.orchestration.diffusion_train import _use_gpu, finetune_state, net_tensors, training_arrays
from rayflavor.storage import runs

#: Rounds with at most this many training steps share one trainer.
SESSION_MAX_STEPS = 10_000


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()


def rounds_fn(config: dict) -> None:
    """Ray Train worker: rounds ``first..last`` of sample -> select -> fine-tune."""
    from rayflavor.orchestration.diffusion_pipeline import select_round

    ctx = ray.train.get_context()  # RAY
    rank, world = ctx.get_world_rank(), ctx.get_world_size()  # RAY
    torch.set_num_threads(1)
    run = Path(config["run"])
    device = get_device()  # RAY
    schedule = NoiseSchedule().to(device)
    for r in range(config["first"], config["last"] + 1):
        t0 = time.perf_counter()
        (src, name), seed = runs.round_networks(r), int(config["seed"]) + r
        kw = dict(config["sample"], network=src, seed=seed, fallback_shards=world)
        if rank == 0:
            got = sample_set(run, **kw)  # fixes the split and writes the manifest before the others read it
        _barrier()
        if rank != 0:
            got = sample_set(run, **kw)
        s, out, model_path = got
        sizes, done = shard_sizes(s), set(runs.finished_parts(out))
        for i in range(rank, s["shards"], world):
            if i not in done:
                runs.write_table(shard_table(s, str(model_path), i, sizes[i]), runs.part_path(out, i))
        _barrier()
        t_sample = time.perf_counter() - t0
        stats = summarize(part_stats(out))
        try:
            rows, n_cut, n_cand = select_round(run, r, out, seed=int(config["seed"]), **config["select"])
        except RuntimeError as exc:  # too few rows: every worker stops here, the driver reports it
            ray.train.report({"round": r, "error": str(exc)})  # RAY
            return
        if rank == 0:
            runs.write_table(rows, run / "finetune" / f"{name}.parquet")
        g, lab, val = training_arrays(rows)
        torch.manual_seed(seed * 1000 + rank)
        state = finetune_state(model_path, g[~val], lab[~val], refit=config["refit"], steps=config["steps"],
                               lr_max=config["lr_max"])
        x_tr, l_tr, x_va, l_va = net_tensors(state.norm, g, lab, val, device)
        model = prepare_model(state.model)  # RAY (DDP when world > 1)
        t1 = time.perf_counter()
        losses = []
        training.train_loop(state, schedule, x_tr, l_tr, model=model, batch_size=max(1, config["batch_size"] // world),
                            seed=seed * 100 + rank, every=config["steps"], on_report=lambda st, loss: losses.append(loss))
        t_train = time.perf_counter() - t1
        metrics = {"round": r, "network": name, "source": src, "selected": rows.num_rows, "met_cuts": n_cut,
                   "candidates": n_cand, "sample": {**stats, "tag": out.name}, "step": state.step,
                   "selected_solutions": int(np.sum(rows.column("solution").to_numpy(zero_copy_only=False))),
                   "chi2_median_selected": float(np.median(rows.column("chi2").to_numpy())),
                   "loss": losses[-1] if losses else math.nan, "steps_per_s": state.step / t_train,
                   "seconds_sample": t_sample, "seconds_train": t_train, "seconds": time.perf_counter() - t0}
        if rank == 0:
            metrics["val_loss"] = training.validation_loss(state.model, schedule, x_va, l_va) if len(x_va) else math.nan
            path = runs.network_path(run, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            training.save(path, state, with_optimizer=False)
            with open(path.parent / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
        _barrier()
        ray.train.report({k: v for k, v in metrics.items() if k != "sample"})  # RAY


def round_line(m: dict) -> str:
    """One line of progress for a finished round (its metrics.jsonl record)."""
    st = m["sample"]
    return (f"round {m['round']}: {st['solutions']} solutions in {st['n']} samples of {m['source']!r} "
            f"({m['seconds_sample']:.0f} s); {m['selected']} of {m['candidates']} candidates selected, "
            f"{m['selected_solutions']} of them solutions; {m['network']!r} trained {m['step']} steps "
            f"({m['seconds_train']:.0f} s, {m['steps_per_s']:.0f} steps/s), val_loss {m['val_loss']:.4f}")


def round_record(run: Path, r: int) -> dict | None:
    """The metrics record of finished round ``r`` (last line of ``tuned-<r>/metrics.jsonl``), else None."""
    name = runs.round_networks(r)[1]
    path = runs.network_dir(run, name) / "metrics.jsonl"
    if not (runs.network_path(run, name).is_file() and path.is_file()):
        return None
    lines = path.read_text().splitlines()
    m = json.loads(lines[-1]) if lines else {}
    return m if m.get("round") == r and "sample" in m else None


def _report_rounds(run: Path, first: int, last: int, stop: threading.Event, log) -> None:
    """Log each round as its network appears (worker output does not reach the driver's terminal)."""
    r = first
    while r <= last:
        m = round_record(run, r)
        if m is not None:
            log(round_line(m))
            r += 1
            continue
        if stop.is_set():
            return
        stop.wait(1.0)


def run_rounds(run: str | Path, *, first: int, last: int, sample: dict, select: dict, refit: str, steps: int,
               workers: int = 1, batch_size: int = training.BATCH_SIZE, gpu: str = "auto",
               lr_max: float = training.LR_MAX, seed: int = 0, log=print) -> list[dict]:
    """Rounds ``first..last`` in one trainer; returns one summary per finished round.

    ``sample``: keywords of :func:`sample_set` (n, sampler, steps, guidance, clip, keep);
    ``select``: keywords of :func:`rayflavor.orchestration.diffusion_pipeline.select_round`.
    """
    run = Path(run).resolve()
    attempts = len(list(runs.ray_storage(run).glob(f"rounds-{first}-*")))
    config = {"run": str(run), "first": int(first), "last": int(last), "sample": sample, "select": select,
              "refit": refit, "steps": int(steps), "batch_size": int(batch_size), "lr_max": float(lr_max),
              "seed": int(seed)}
    trainer = TorchTrainer(  # RAY
        rounds_fn,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=int(workers), use_gpu=_use_gpu(gpu),
                                               resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(name=f"rounds-{first}-{attempts}", storage_path=str(runs.ray_storage(run))),
    )
    t0 = time.perf_counter()
    stop = threading.Event()
    watcher = threading.Thread(target=_report_rounds, args=(run, first, last, stop, log), daemon=True)
    watcher.start()
    try:
        result = trainer.fit()  # RAY
    finally:
        stop.set()
        watcher.join()
    log(f"finetune: rounds {first}-{last} in one trainer, wall {time.perf_counter() - t0:.0f} s")
    error = (result.metrics or {}).get("error")
    collect_solutions(run)
    if error:
        raise RuntimeError(error)
    return [round_record(run, r) for r in range(first, last + 1)]

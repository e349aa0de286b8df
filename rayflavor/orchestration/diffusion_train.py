"""``rayflavor diffusion train`` / fine-tuning: Ray Train ``TorchTrainer`` around the plain-torch loop.

Data parallel: every worker holds the (small) training set, draws its own batches of
``batch_size / workers`` rows and DDP averages the gradients, so the global batch is the
paper's 64. The Ray-specific lines are marked ``# RAY``; everything else is
:mod:`rayflavor.methods.diffusion.training`.

Checkpoints: every ``every`` steps rank 0 saves ``state.pt`` (model, Adam, OneCycleLR, step,
normalisation) and reports it; Ray keeps the last two under ``RUN/ray/<name>-<attempt>/`` on the
run's storage (``RunConfig(storage_path, storage_filesystem)``: a local path or an object store).
Lost workers (a node that died) inside one ``fit()``: Ray Train restarts the worker group up to
``RecoverySettings.max_failures`` times (``FailureConfig``) and the restarted workers continue from
the last checkpoint Ray Train had taken (``ray.train.get_checkpoint()``; its controller takes the
reports from a queue of one every 2 s, so ``report`` may wait); every metrics line records the
step its worker group started from (``start``). A new ``train`` call on a run whose network is
unfinished starts a new attempt from the newest checkpoint of any earlier attempt (so it does not
depend on Ray's own restore rules).
The finished network goes to ``RUN/networks/<name>/model.pt``; the losses to ``metrics.jsonl``.

Works with the Ray Train V2 API (default in Ray 2.60, ``RAY_TRAIN_V2_ENABLED``) and V1.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time

import numpy as np
import torch

import ray
import ray.train  # RAY
from ray.train.torch import TorchTrainer, get_device, prepare_model  # RAY

from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion import coordinates as coords
from rayflavor.methods.diffusion.data import training_arrays
from rayflavor.methods.diffusion.ddpm import NoiseSchedule, validation_loss
from rayflavor.methods.diffusion.rounds import finetune_state
from rayflavor.methods.diffusion.settings import RecoverySettings, TuneSettings
from rayflavor.orchestration.diffusion_progress import bar, polling
from rayflavor.physics import seesaw
from rayflavor.storage import runs


def load_training_data(path: runs.Where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, labels, is_val) from a dataset directory of parts or a single Parquet file (any storage);
    finite rows only."""
    p = runs.loc(path)
    cols = list(seesaw.PARAMETERS) + list(seesaw.LABELS) + ["split"]
    return training_arrays(runs.read_table(p, columns=cols) if p.is_file() else runs.read_parts(p, columns=cols))


def storage_config(run: runs.Where) -> dict:
    """``RunConfig`` keywords that put Ray Train's checkpoints under ``RUN/ray`` on the run's storage."""
    s = runs.ray_storage(run)
    return {"storage_path": s.path} if s.is_local else {"storage_path": s.path, "storage_filesystem": s.fs}


def net_tensors(norm: training.Normalizer, g: np.ndarray, lab: np.ndarray, val: np.ndarray,
                device) -> tuple[torch.Tensor, ...]:
    """(x_train, labels_train, x_val, labels_val) in network units on ``device`` (points without
    coordinates in the network's system, a set of measure zero, left out)."""
    x = norm.g_to_net(g)
    ok = np.isfinite(x).all(axis=1)
    tr, va = ok & ~val, ok & val
    return tuple(torch.from_numpy(a).to(device) for a in (
        x[tr], norm.labels_to_net(lab[tr]), x[va], norm.labels_to_net(lab[va])))


def train_fn(config: dict) -> None:
    """Ray Train worker: build or restore the state, train, report losses and checkpoints."""
    ctx = ray.train.get_context()  # RAY
    rank, world = ctx.get_world_rank(), ctx.get_world_size()  # RAY
    torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(int(config["seed"]) * 1000 + rank)
    g, lab, val = load_training_data(config["data"])
    resume = config.get("resume")
    ckpt = ray.train.get_checkpoint()  # RAY
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = training.load_state(os.path.join(d, "state.pt"), lr_max=config["lr_max"])
    elif resume:
        state = training.load_state(runs.loc(resume), lr_max=config["lr_max"])
    elif config.get("init"):
        tune = TuneSettings(refit=config.get("refit") or "none", steps=int(config["steps"]),
                            batch_size=int(config["batch_size"]), lr_max=float(config["lr_max"]))
        state = finetune_state(runs.loc(config["init"]), g[~val], lab[~val], tune)
    else:
        norm = training.Normalizer.fit(g[~val], lab[~val], config.get("coordinates") or "paper")
        state = training.new_state(norm, total_steps=config["steps"], lr_max=config["lr_max"])
    device = get_device()  # RAY
    schedule = NoiseSchedule().to(device)
    x_tr, l_tr, x_va, l_va = net_tensors(state.norm, g, lab, val, device)
    model = prepare_model(state.model)  # RAY (moves to the device; DDP when world > 1)
    t_start, s_start = time.perf_counter(), state.step

    def on_report(st: training.TrainState, loss: float) -> None:
        metrics = {"step": st.step, "start": s_start, "loss": loss, "lr": st.scheduler.get_last_lr()[0],
                   "steps_per_s": (st.step - s_start) / (time.perf_counter() - t_start)}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                metrics["val_loss"] = validation_loss(st.model, schedule, x_va, l_va) if len(x_va) else math.nan
                st.model.train()
                training.save(os.path.join(tmp, "state.pt"), st)
                runs.append_line(config["log"], json.dumps(metrics))
                checkpoint = ray.train.Checkpoint.from_directory(tmp)  # RAY
            ray.train.report(metrics, checkpoint=checkpoint)  # RAY

    per_worker = max(1, int(config["batch_size"]) // world)
    training.train_loop(state, schedule, x_tr, l_tr, model=model, batch_size=per_worker,
                        seed=int(config["seed"]) * 100 + rank, every=int(config["every"]), on_report=on_report,
                        stop_at=config.get("stop_at"))


def latest_checkpoint(run: runs.Where, name: str) -> tuple[runs.Location | None, int]:
    """Newest ``state.pt`` (by step) over all attempts of network ``name``, and the attempt count."""
    root = runs.ray_storage(run)
    attempts = [a for a in root.list() if re.fullmatch(rf"{re.escape(name)}-\d+", a)]
    best, best_step = None, -1
    for a in attempts:
        for c in (root / a).list():
            p = root / a / c / "state.pt"
            if c.startswith("checkpoint_") and p.is_file():
                step = int(training.load_model(p)[2]["step"])
                if step > best_step:
                    best, best_step = p, step
    return best, len(attempts)


def train_network(run: runs.Where, name: str = "pre", *, data: runs.Where | None = None, init: runs.Where | None = None,
                  workers: int = 1, steps: int = training.STEPS, batch_size: int = training.BATCH_SIZE,
                  gpu: str = "auto", every: int = 1000, seed: int = 0, lr_max: float = training.LR_MAX,
                  stop_at: int | None = None, refit: str = "none", coordinates: str = "paper",
                  recovery: RecoverySettings = RecoverySettings(), log=print) -> dict:
    """Train (or resume, or fine-tune from ``init``) network ``name`` of a run; returns the last metrics.

    ``coordinates`` (a new network only; a fine-tuned one keeps its ``init``'s): the network's
    coordinate system (:mod:`rayflavor.methods.diffusion.coordinates`).

    ``refit`` (with ``init``; beyond the paper unless "none"): normalise G and the labels over this
    training set (``solutions``: :meth:`Normalizer.refit`) instead of inheriting the pre-network's
    normalisation; it is stored with the network and used when it samples.

    ``stop_at``: stop after this step (for tests of resumption); the network is then unfinished.

    ``recovery``: how often Ray Train restarts the workers after a failure (a lost node) inside this
    call; they continue from the last checkpoint (module docstring).
    """
    run = runs.loc(run)
    data = runs.require_dataset(run, data)
    final = runs.network_path(run, name)
    if final.is_file():
        _, norm, d = training.load_model(final)
        if init is None and norm.coordinates != coords.check(coordinates):
            raise ValueError(f"network {name!r} of {run.uri} works in {norm.coordinates} coordinates, not {coordinates}; "
                             f"use another run directory, or --coordinates {norm.coordinates} to continue this one")
        log(f"train: network {name!r} already finished ({d['step']} steps) -> {final}")
        return {"step": d["step"], "finished": True}
    resume, attempts = latest_checkpoint(run, name)
    if resume is not None:  # stopped between the last checkpoint and the final save: nothing left to train
        state = training.load_state(resume)
        if state.step >= state.total_steps:
            training.save(final, state, with_optimizer=False)
            log(f"train: {name!r} finished at step {state.step} (its last checkpoint) -> {final}")
            return {"step": state.step, "finished": True}
    use_gpu = _use_gpu(gpu)
    log_path = runs.network_dir(run, name) / "metrics.jsonl"
    config = {"data": data.uri, "init": runs.loc(init).uri if init else None,
              "resume": resume.uri if resume else None, "steps": int(steps), "batch_size": int(batch_size),
              "every": int(every), "seed": int(seed), "lr_max": float(lr_max), "threads": 1,
              "log": log_path.uri, "stop_at": stop_at, "refit": refit,
              "coordinates": coords.check(coordinates)}
    if resume:
        log(f"train: resuming {name!r} from {resume}")
    trainer = TorchTrainer(  # RAY
        train_fn,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=int(workers), use_gpu=use_gpu,
                                               resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(name=f"{name}-{attempts}", **storage_config(run),
                                       checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                                       failure_config=ray.train.FailureConfig(max_failures=recovery.max_failures)),
    )
    t0 = time.perf_counter()
    with bar(f"train {name}", int(steps), "steps", log) as update:
        with polling(lambda: update(_last_step(log_path))):
            result = trainer.fit()  # RAY
    wall = time.perf_counter() - t0
    metrics = dict(result.metrics or {})
    with result.checkpoint.as_directory() as d:  # RAY
        state = training.load_state(os.path.join(d, "state.pt"))
    if state.step >= state.total_steps:
        training.save(final, state, with_optimizer=False)
        log(f"train: {name!r} finished at step {state.step} -> {final}")
    else:
        log(f"train: {name!r} stopped at step {state.step}/{state.total_steps}; rerun to resume")
    metrics.update(wall_seconds=wall, finished=state.step >= state.total_steps, workers=workers)
    log(f"train: loss {metrics.get('loss', float('nan')):.4f}, val_loss {metrics.get('val_loss', float('nan')):.4f}, "
        f"{metrics.get('steps_per_s', float('nan')):.1f} steps/s with {workers} worker(s), wall {wall:.1f} s")
    return metrics


def _last_step(log_path: runs.Location) -> int:
    """The step of the last line of a training log (0 when there is none yet)."""
    try:
        lines = log_path.read_text().splitlines()
        return int(json.loads(lines[-1]).get("step", 0)) if lines else 0
    except (OSError, ValueError):
        return 0


def gpu_capacity() -> tuple[float, float | None]:
    """(GPUs in the connected Ray cluster now, the most its autoscaler declares it can have, or
    ``None`` when no autoscaler published its node types through the GCS: Ray's
    ``state.get_max_resources_from_cluster_config``, the numbers Ray Train itself checks)."""
    now = float(ray.cluster_resources().get("GPU", 0))
    try:
        declared = ray._private.state.state.get_max_resources_from_cluster_config()  # RAY
    except Exception:  # noqa: BLE001 - an older or unreachable GCS: nothing declared
        declared = None
    return now, None if declared is None else float(declared.get("GPU", 0))


def _own_local_ray() -> bool:
    """Whether this process started the Ray it uses (an embedded local instance: no autoscaler)."""
    node = ray._private.worker._global_node  # RAY
    return node is not None and node.head


def _use_gpu(gpu: str) -> bool:
    """Whether training asks Ray for GPU workers, from what is requested, not only what is present:

    ``off``: never.  ``on``: always; the pending GPU workers are the demand an autoscaler adds a
    GPU node for.  It fails in one line only when no GPU can come: none in the cluster and either
    the autoscaler's declared node types have none or there is no autoscaler (an embedded local
    Ray).  ``auto``: when the cluster has a GPU now or its autoscaler declares GPU nodes it can
    add; otherwise CPU.  Without Ray: whether torch sees a CUDA device."""
    if gpu == "off":
        return False
    if not ray.is_initialized():
        have = torch.cuda.is_available()
        if gpu == "on" and not have:
            raise ValueError("--gpu on but no GPU on this machine")
        return have
    now, declared = gpu_capacity()
    possible = now > 0 or bool(declared)
    if gpu == "on":
        if not possible and (declared is not None or _own_local_ray()):
            raise ValueError("--gpu on but the Ray cluster has no GPU and cannot add one"
                             + (" (its autoscaler declares no GPU node type)" if declared is not None else ""))
        return True
    return possible

"""Fine-tuning rounds on Ray: N rounds of :func:`rayflavor.methods.diffusion.rounds.finetune_round`.

A Ray Train ``TorchTrainer`` takes ~20 s to start and stop on a laptop (worker actors, process
group, checkpoint storage), longer than a 2000-step fine-tuning round trains. So:

* **short rounds** (at most ``session_max_steps`` = :data:`SESSION_MAX_STEPS` training steps) run
  one after another inside the workers of a single trainer (:func:`rounds_fn`): every worker
  draws its shards of the round's sample set (the same parts, seeds and manifest that
  ``rayflavor diffusion sample`` writes), all workers make the same deterministic selection, then
  they fine-tune together (DDP with several workers), global batch ``tune.batch_size``;
* **long rounds** (the paper's 100 000 steps) run in the driver: the sample set in Ray tasks
  (:func:`.diffusion_sample.sample_run`), the fine-tuning in a trainer of its own with
  checkpoints (:func:`.diffusion_train.train_network`).

Both use the one round of the methods layer. Rank 0 (or the driver) writes
``RUN/finetune/tuned-<r>.parquet``, ``RUN/networks/tuned-<r>/model.pt`` and the round's record
as the last line of its ``metrics.jsonl``. A stopped chain resumes at its first unfinished
round: finished sample shards are reused, a short round's training restarts (it is short), a
long round's training resumes from its checkpoint. Ray Train restarts workers lost inside a
trainer (``FinetuneSettings.recovery``) the same way: finished rounds are skipped. A round whose
selection holds too few rows stops the rounds with one line naming it (:class:`SelectionTooSmall`).
"""

from __future__ import annotations

import json
import math
import time

import torch

import ray
import ray.train  # RAY
from ray.train.torch import TorchTrainer, get_device, prepare_model  # RAY

from rayflavor import configfile
from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.data import training_arrays
from rayflavor.methods.diffusion.ddpm import NoiseSchedule, validation_loss
from rayflavor.methods.diffusion.rounds import (SelectionTooSmall, finetune_round, finetune_state, round_line,
                                                round_networks)
from rayflavor.methods.diffusion.sampleset import shard_table, summarize
from rayflavor.methods.diffusion.settings import FinetuneSettings
from rayflavor.orchestration.diffusion_progress import bar, polling
from rayflavor.orchestration.diffusion_sample import collect_solutions, done_shards, sample_run, sample_set
from rayflavor.orchestration.diffusion_train import _use_gpu, net_tensors, storage_config, train_network
from rayflavor.storage import runs

#: Rounds with at most this many training steps share one trainer.
SESSION_MAX_STEPS = 10_000


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()


def _error_path(run: runs.Location) -> runs.Location:
    return run / "finetune" / "error.json"


def _append_record(run: runs.Location, rec: dict) -> None:
    runs.append_line(runs.network_dir(run, rec["network"]) / "metrics.jsonl", json.dumps(rec))


def rounds_fn(config: dict) -> None:
    """Ray Train worker: rounds ``first..last`` of sample -> select -> fine-tune."""
    ctx = ray.train.get_context()  # RAY
    rank, world = ctx.get_world_rank(), ctx.get_world_size()  # RAY
    torch.set_num_threads(1)
    run = runs.loc(config["run"])
    st = configfile.from_mapping(FinetuneSettings, config["settings"])
    device = get_device()  # RAY
    schedule = NoiseSchedule().to(device)

    def draw(src: str, seed: int):
        kw = dict(network=src, seed=seed, keep=st.selection.keep, fallback_shards=world)
        if rank == 0:
            got = sample_set(run, st.sampling, **kw)  # fixes the split and writes the manifest before the others read it
        _barrier()
        if rank != 0:
            got = sample_set(run, st.sampling, **kw)
        s, out, model_path = got
        done = done_shards(s, out)
        for i in range(rank, s.shards, world):
            if i not in done:
                table, meta = shard_table(s, model_path, i)
                runs.write_part(out, i, table, meta)
        _barrier()
        return {**summarize(runs.part_stats(out)), "tag": out.name}, runs.read_parts(out)

    def save_set(name: str, rows) -> None:
        if rank == 0:
            runs.write_table(rows, runs.finetune_path(run, name))

    for r in range(config["first"], config["last"] + 1):
        if round_record(run, r) is not None:  # finished before Ray Train restarted the workers (a lost node)
            continue
        seed = st.seed + r

        def tune(src: str, name: str, rows) -> dict:
            g, lab, val = training_arrays(rows)
            torch.manual_seed(seed * 1000 + rank)
            state = finetune_state(runs.network_path(run, src), g[~val], lab[~val], st.tune)
            x_tr, l_tr, x_va, l_va = net_tensors(state.norm, g, lab, val, device)
            model = prepare_model(state.model)  # RAY (DDP when world > 1)
            losses: list[float] = []
            t1 = time.perf_counter()
            training.train_loop(state, schedule, x_tr, l_tr, model=model, batch_size=max(1, st.tune.batch_size // world),
                                seed=seed * 100 + rank, every=st.tune.steps, on_report=lambda s_, loss: losses.append(loss))
            out = {"step": state.step, "loss": losses[-1] if losses else math.nan,
                   "steps_per_s": state.step / (time.perf_counter() - t1)}
            if rank == 0:
                out["val_loss"] = validation_loss(state.model, schedule, x_va, l_va) if len(x_va) else math.nan
                training.save(runs.network_path(run, name), state, with_optimizer=False)
            return out

        try:
            rec = finetune_round(r, selection_settings=st.selection, seed=st.seed, draw=draw,
                                 earlier=lambda r_: runs.finetune_sets(run, before=r_), save_set=save_set, tune=tune)
        except SelectionTooSmall as exc:  # every worker stops here; the driver reports it
            if rank == 0:
                runs.write_json({"round": r, "error": str(exc)}, _error_path(run))
            ray.train.report({"round": r, "error": str(exc)})  # RAY
            return
        if rank == 0:
            _append_record(run, rec)
        _barrier()
        ray.train.report({k: v for k, v in rec.items() if k != "sample"})  # RAY


def round_record(run: runs.Where, r: int) -> dict | None:
    """The record of finished round ``r`` (last line of ``tuned-<r>/metrics.jsonl``), else None."""
    name = round_networks(r)[1]
    path = runs.network_dir(run, name) / "metrics.jsonl"
    if not (runs.network_path(run, name).is_file() and path.is_file()):
        return None
    lines = path.read_text().splitlines()
    m = json.loads(lines[-1]) if lines else {}
    return m if m.get("round") == r and "sample" in m else None


def _one_trainer(run: runs.Location, first: int, last: int, settings: FinetuneSettings, gpu: str, log) -> list[dict]:
    """Rounds ``first..last`` in one trainer (short rounds)."""
    attempts = sum(1 for a in runs.ray_storage(run).list() if a.startswith(f"rounds-{first}-"))
    _error_path(run).delete()
    config = {"run": run.uri, "first": int(first), "last": int(last), "settings": configfile.to_mapping(settings)}
    trainer = TorchTrainer(  # RAY
        rounds_fn,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=settings.workers, use_gpu=_use_gpu(gpu),
                                               resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(name=f"rounds-{first}-{attempts}", **storage_config(run),
                                       failure_config=ray.train.FailureConfig(max_failures=settings.recovery.max_failures)),
    )
    t0 = time.perf_counter()
    reported = [first]

    def follow() -> None:  # worker output does not reach the driver's terminal: log each round as it appears
        while reported[0] <= last and (m := round_record(run, reported[0])) is not None:
            log(round_line(m))
            reported[0] += 1
            update(reported[0] - first)

    with bar(f"rounds {first}-{last}", last - first + 1, "rounds", log) as update, polling(follow):
        trainer.fit()  # RAY
    collect_solutions(run)
    if _error_path(run).is_file():
        raise SelectionTooSmall(runs.read_json(_error_path(run))["error"])
    records = [round_record(run, r) for r in range(first, last + 1)]
    if any(m is None for m in records):
        missing = [r for r, m in zip(range(first, last + 1), records) if m is None]
        raise RuntimeError(f"fine-tuning rounds {missing} did not finish (see the Ray Train log under "
                           f"{runs.ray_storage(run).uri})")
    log(f"finetune: rounds {first}-{last} in one trainer, wall {time.perf_counter() - t0:.0f} s")
    return records


def _driver_round(run: runs.Location, r: int, settings: FinetuneSettings, gpu: str, log) -> dict:
    """Round ``r`` from the driver: sample set in Ray tasks, fine-tuning in a trainer of its own."""
    st = settings
    seed = st.seed + r

    def draw(src: str, seed_: int):
        s = sample_run(run, st.sampling, network=src, seed=seed_, keep=st.selection.keep, log=log)
        return s, runs.read_parts(runs.samples_dir(run, s["tag"]))

    def tune(src: str, name: str, rows) -> dict:
        m = train_network(run, name, data=runs.finetune_path(run, name), init=runs.network_path(run, src),
                          workers=st.workers, steps=st.tune.steps, batch_size=st.tune.batch_size, gpu=gpu,
                          seed=seed, lr_max=st.tune.lr_max, refit=st.tune.refit, recovery=st.recovery,
                          log=log)
        return {k: m[k] for k in ("step", "loss", "val_loss", "steps_per_s") if k in m}

    rec = finetune_round(r, selection_settings=st.selection, seed=st.seed, draw=draw,
                         earlier=lambda r_: runs.finetune_sets(run, before=r_),
                         save_set=lambda name, rows: runs.write_table(rows, runs.finetune_path(run, name)), tune=tune)
    _append_record(run, rec)
    return rec


def finetune(run: runs.Where, settings: FinetuneSettings = FinetuneSettings(), *, gpu: str = "auto",
             session_max_steps: int = SESSION_MAX_STEPS, log=print) -> list[dict]:
    """``settings.rounds`` rounds of sample -> select -> fine-tune after the newest network of ``run``;
    returns the record of every round. Rounds of at most ``session_max_steps`` training steps run
    together in one trainer, longer ones one trainer each (module docstring)."""
    run = runs.loc(run)
    src = runs.require_network(run)
    if not (src == "pre" or src.startswith("tuned-")):
        raise ValueError(f"{run.uri}: its newest network is {src!r} (taught by the reference teacher); self-training "
                         "rounds after it would narrow it onto one mode again. Fine-tune a run made with "
                         "--teacher none (or --preset self)")
    first = 1 if src == "pre" else int(src.split("-")[1]) + 1
    last = first + settings.rounds - 1
    if settings.tune.steps <= session_max_steps:
        return _one_trainer(run, first, last, settings, gpu, log)
    out = []
    with bar(f"rounds {first}-{last}", settings.rounds, "rounds", log) as update:
        for r in range(first, last + 1):
            out.append(_driver_round(run, r, settings, gpu, log))
            log(round_line(out[-1]))
            update(r - first + 1)
    collect_solutions(run)
    return out

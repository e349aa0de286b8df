"""The chain's teacher on Ray: a network-free reference of the solution set, and the network taught on it.

``RUN/teacher/reference.parquet`` and ``reference.json`` are a reference run
(:func:`rayflavor.orchestration.reference.build_reference`, Ray tasks, random stream 1; ``teacher``
importance: the exact importance sampler's resampled set, nested: nested sampling and random walks);
``RUN/finetune/taught.parquet`` its rows (:func:`rayflavor.methods.diffusion.teacher.teacher_rows`: every
resampled row of an importance reference, the last state per chain of a nested one);
``RUN/networks/taught`` the pre-network fine-tuned on those rows (a trainer of its own, with
checkpoints). Each step resumes: a finished teacher or network is kept.
"""

from __future__ import annotations

from rayflavor.methods.diffusion.settings import ChainSettings
from rayflavor.methods.diffusion.teacher import teacher_rows
from rayflavor.orchestration.diffusion_train import train_network
from rayflavor.orchestration.reference import build_reference
from rayflavor.storage import runs

#: Name of the network fine-tuned on the teacher's solutions.
TAUGHT = "taught"


def teacher_dir(run: runs.Where) -> runs.Location:
    """Where the teacher (a reference run) of ``run`` lives."""
    return runs.loc(run) / "teacher"


def teach(run: runs.Where, settings: ChainSettings, *, gpu: str = "auto", log=print) -> str:
    """Build the teacher (unless finished), write its rows, fine-tune the pre-network on them; returns
    the taught network's name."""
    run = runs.loc(run)
    where = teacher_dir(run)
    if not (where / "reference.json").is_file():
        if settings.teacher == "importance":
            log(f"teacher: {settings.teacher_tasks} tasks of {settings.teacher_proposals} exact importance draws of "
                "the solution set (no network)")
        else:
            log(f"teacher: {settings.teacher_tasks} nested-sampling runs of {settings.teacher_live} live points "
                "down to the solution set (no network)")
        build_reference(where, settings.teacher_reference(), log=lambda m: log(f"teacher: {m}"))
    rows_path = runs.finetune_path(run, TAUGHT)
    if not rows_path.is_file():
        rows = teacher_rows(runs.read_table(where / "reference.parquet"), settings.seed)
        runs.write_table(rows, rows_path)
        what = "resampled draws" if settings.teacher == "importance" else "the last state of every chain"
        log(f"teacher: {rows.num_rows} solutions ({what}) -> {rows_path}")
    train_network(run, TAUGHT, data=rows_path, init=runs.network_path(run, "pre"), workers=settings.workers,
                  steps=settings.teacher_steps, batch_size=settings.tune.batch_size, gpu=gpu, every=settings.tune.every,
                  seed=settings.seed, lr_max=settings.tune.lr_max, refit=settings.tune.refit, coordinates=None,
                  recovery=settings.recovery, log=log)
    return TAUGHT


__all__ = ["TAUGHT", "teach", "teacher_dir"]

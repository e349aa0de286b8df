"""``rayflavor diffusion reference``: the network-free reference of the seesaw solution set, as Ray tasks.

Each task runs one independent nested-sampling descent from the paper's prior to the 3 sigma
solution set and then constrained random walks started from its live points
(:mod:`rayflavor.methods.reference`); tasks differ only in their seed (``[seed, task]``, or ``[seed, task, stream]``), so
they run on any node and a retried task gives the same rows. The driver writes, through the
run's storage location (local or object store):

* ``RUN/reference.parquet``: every kept chain state, re-evaluated exactly by ``seesaw.evaluate``,
  with the columns of ``solutions.parquet`` (23 parameters, observables, ``solution``, ``ordering``)
  plus ``task``, ``chain`` and ``draw``;
* ``RUN/reference.json``: the settings (whole, under ``"settings"``), each task's nested-sampling
  summary (iterations, evaluations, ln prior fraction of the set) and the mixing diagnostics per
  prediction (split-R-hat and ESS over all chains; circular quantities through cos and sin).

With ``method="importance"`` each task instead draws ``proposals`` weighted points of the exact
sampler (:mod:`rayflavor.methods.reference_importance`). The driver writes every draw of non-zero
weight to ``RUN/reference_weighted.parquet`` (the 23 parameters, ``weight``, ``task``), resamples
them systematically into round(Kish ESS) unweighted rows for ``RUN/reference.parquet`` (same
columns as above; ``chain`` is the row's index in the weighted file, ``draw`` 0), and records in
``reference.json`` the method, proposals and counts per stage, the ESS, the prior fraction of the
set (mean weight, with its standard error), the multiplicity and the weight at the cuts.
"""

from __future__ import annotations

import math
import time

import numpy as np
import ray

from rayflavor import configfile
from rayflavor.analysis.fidelity import PREDICTIONS, prediction_columns, prediction_distances
from rayflavor.methods import reference as ref
from rayflavor.methods.reference import ReferenceSettings
from rayflavor.storage.location import Location, resolve
from rayflavor.storage.tables import to_arrow

FORMAT = "rayflavor-reference/1"


def run_task(s: ReferenceSettings, task: int) -> dict:
    """One nested descent plus its chains (pure function of the settings and the task index)."""
    rng = np.random.default_rng([s.seed, task] if s.stream == 0 else [s.seed, task, s.stream])
    loss, prior, box = ref.seesaw_target(s.data, s.ordering)
    t0, cpu0 = time.perf_counter(), time.process_time()
    nested = ref.nested_to_set(loss, prior, box, n_live=s.n_live, k=s.k, steps=s.steps, rng=rng)
    t1 = time.perf_counter()
    if not nested.reached:
        raise RuntimeError(f"task {task}: {nested.summary()}")
    move = ref.seesaw_orbit_move(s.orbits) if s.orbits else None
    chains = ref.constrained_chains(nested.points, loss, box, draws=s.draws, thin=s.thin, burn=s.burn, rng=rng,
                                    move=move)
    t2 = time.perf_counter()
    return {"task": task, "samples": chains.samples, "nested": {
        "iterations": nested.iterations, "evaluations": nested.evaluations, "log_prior_fraction": nested.log_volume,
        "acceptance": nested.acceptance, "seconds": t1 - t0}, "chains": {
        "acceptance": chains.acceptance, "scale": chains.scale, "seconds": t2 - t1,
        "cpu_seconds": time.process_time() - cpu0,  # nested + walks, CPU time of the task
        "evaluations": (s.burn // 20 * 20 + s.draws * (s.thin + (1 if s.orbits else 0))) * s.n_live}}


@ray.remote(num_cpus=1, max_retries=3)
def _task(s: ReferenceSettings, task: int) -> dict:
    return run_task(s, task)


def diagnostics(pred: dict[str, np.ndarray], draws: int, chains: int) -> dict[str, dict[str, float]]:
    """Split-R-hat and ESS per prediction; ``pred[name]`` holds the states draw-major
    (``draws * chains`` values, as ``samples[t, c]`` flattened)."""
    out = {}
    for name, kind in PREDICTIONS:
        v = pred[name].reshape(draws, chains)
        parts = ref.circular_components(v) if kind == "circular" else (v,)
        out[name] = {"rhat": max(ref.split_rhat(p) for p in parts), "ess": min(ref.ess(p) for p in parts)}
    return out


def noise_floor(pred: dict[str, np.ndarray], task: np.ndarray) -> dict[str, float] | None:
    """Distance per prediction (KS; Kuiper for circular ones, as ``analyze --reference``) between
    the states of the even and the odd tasks: how far two independent references of half this
    size lie apart.  A run's distance to the reference is only meaningful above this floor (the
    full reference's own error is smaller, by about 1/sqrt(2)).  None with fewer than 2 tasks."""
    ids = np.unique(task)
    if len(ids) < 2:
        return None
    even = np.isin(task, ids[::2])
    halves = [{name: pred[name][side] for name, _ in PREDICTIONS} for side in (even, ~even)]
    return {k: float(v) for k, v in prediction_distances(*halves).items()}


def run_importance_task(s: ReferenceSettings, task: int) -> dict:
    """``s.proposals`` draws of the exact importance sampler (pure function of the settings and the task)."""
    from rayflavor.methods import reference_importance as imp
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    rng = np.random.default_rng([s.seed, task] if s.stream == 0 else [s.seed, task, s.stream])
    windows = seesaw.solution_windows(physics_data.load(s.data), s.ordering)
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = imp.draw(s.proposals, imp.solution_box(windows, s.im_z_max), rng, windows, bound=s.box)
    return {"task": task, "params": out["params"], "x": out["x"], "weight": out["weight"], "counts": out["counts"],
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0}


@ray.remote(num_cpus=1, max_retries=3)
def _importance_task(s: ReferenceSettings, task: int) -> dict:
    return run_importance_task(s, task)


def _table(x: np.ndarray, settings: ReferenceSettings) -> dict[str, np.ndarray]:
    """Parameters plus every observable of ``seesaw.evaluate`` (the columns of solutions.parquet)."""
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    res = seesaw.evaluate(x, ordering=settings.ordering, data=physics_data.load(settings.data))
    cols: dict[str, np.ndarray] = {name: x[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    cols["ordering"] = np.full(len(x), settings.ordering)
    return cols


def build_importance_reference(loc: Location, settings: ReferenceSettings, *, log=print) -> dict:
    """The ``method="importance"`` reference (module docstring): weighted draws, resampled set, summary."""
    from rayflavor.methods import reference_importance as imp
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    t0 = time.perf_counter()
    results = ray.get([_importance_task.remote(settings, i) for i in range(settings.tasks)])
    results.sort(key=lambda r: r["task"])
    params = np.concatenate([r["params"] for r in results])
    weight = np.concatenate([r["weight"] for r in results])
    task = np.concatenate([np.full(len(r["weight"]), r["task"]) for r in results])
    proposals = sum(r["counts"]["proposals"] for r in results)
    if len(weight) == 0:
        raise RuntimeError(f"no proposal of {proposals} reached the solution set: raise proposals")
    ess = imp.kish_ess(weight)
    rng = np.random.default_rng([settings.seed, settings.tasks, 1_000_003])
    rows = imp.systematic_resample(weight, max(1, int(round(ess))), rng)
    weighted = {name: params[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    weighted.update({"weight": weight, "task": task})
    (loc / "reference_weighted.parquet").write_parquet(to_arrow(weighted))
    cols = _table(params[rows], settings)
    cols["task"], cols["chain"], cols["draw"] = task[rows], rows, np.zeros(len(rows), dtype=np.int64)
    bad = int(np.sum(~np.asarray(cols["solution"], dtype=bool)))
    if bad:  # the cheap indicators and seesaw.evaluate disagree only at a window's edge, by rounding
        log(f"importance: {bad} of {len(rows)} resampled rows fail seesaw.evaluate's windows by rounding; dropped")
        keep = np.asarray(cols["solution"], dtype=bool)
        cols = {k: v[keep] for k, v in cols.items()}
    (loc / "reference.parquet").write_parquet(to_arrow(cols))
    pred = prediction_columns(cols)
    floor = noise_floor(pred, cols["task"])
    mean_w = float(weight.sum() / proposals)
    se_w = float(np.sqrt(max(np.sum(weight ** 2) / proposals - mean_w ** 2, 0.0) / proposals))
    windows = seesaw.solution_windows(physics_data.load(settings.data), settings.ordering)
    box = imp.solution_box(windows, settings.im_z_max)
    cut = imp.shell_weights(np.concatenate([r["x"] for r in results]), weight, box)
    core_seconds = float(sum(r["cpu_seconds"] for r in results))  # CPU time: comparable on a busy machine
    counts = {k: int(sum(r["counts"][k] for r in results)) for k in results[0]["counts"]}
    summary = {"format": FORMAT, "method": "importance", "settings": configfile.to_mapping(settings),
               "rows": int(len(cols["task"])), "proposals": int(proposals), "counts": counts,
               "ess": ess, "weighted_draws": int(len(weight)),
               "prior_fraction": {"mean": mean_w, "standard_error": se_w,
                                  "ln": math.log(mean_w) if mean_w > 0 else float("-inf")},
               "multiplicity": imp.MULTIPLICITY, "jacobian_constant": imp.JACOBIAN_CONSTANT,
               "cut_off": cut, "core_seconds": core_seconds,
               "ess_per_core_second": ess / core_seconds if core_seconds > 0 else None,
               "tasks": [{"task": r["task"], "counts": r["counts"], "seconds": r["seconds"],
                          "cpu_seconds": r["cpu_seconds"],
                          "ess": imp.kish_ess(r["weight"])} for r in results],
               "noise_floor": floor, "seconds": time.perf_counter() - t0}
    (loc / "reference.json").write_json(summary)
    log(f"reference (importance): {proposals} proposals in {settings.tasks} tasks, {len(weight)} weighted draws, "
        f"Kish ESS {ess:.0f} ({ess / core_seconds:.1f} per core-second), {summary['rows']} resampled rows, "
        f"{summary['seconds']:.0f} s -> {(loc / 'reference.parquet').uri}")
    log(f"prior fraction of the solution set: {mean_w:.3g} +- {se_w:.2g} (ln {summary['prior_fraction']['ln']:.2f}); "
        f"multiplicity {imp.MULTIPLICITY}")
    log("weight beyond the cuts (extrapolated from the outermost shells): " + ", ".join(
        f"{k} {'not falling: widen the range' if v['beyond_cut'] is None else format(v['beyond_cut'], '.2g')} "
        f"(last shell {v['last_shell']:.2g})" for k, v in cut.items()))
    if floor is not None:
        log("noise floor (even against odd tasks): " + ", ".join(f"{k} {v:.3f}" for k, v in floor.items()))
    return summary


def build_reference(run: str | Location, settings: ReferenceSettings = ReferenceSettings(), *, log=print) -> dict:
    """Run the tasks, write ``RUN/reference.parquet`` and ``RUN/reference.json``; return the summary
    (``settings.method`` "importance": also ``RUN/reference_weighted.parquet``)."""
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    loc = run if isinstance(run, Location) else resolve(run)
    if settings.method == "importance":
        return build_importance_reference(loc, settings, log=log)
    t0 = time.perf_counter()
    results = ray.get([_task.remote(settings, i) for i in range(settings.tasks)])
    results.sort(key=lambda r: r["task"])
    samples = np.concatenate([r["samples"] for r in results], axis=1)  # (draws, chains, D)
    t, c, d = samples.shape
    x = samples.reshape(-1, d)
    res = seesaw.evaluate(x, ordering=settings.ordering, data=physics_data.load(settings.data))
    cols: dict[str, np.ndarray] = {name: x[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    cols["ordering"] = np.full(len(x), settings.ordering)
    cols["task"] = np.tile(np.concatenate([np.full(r["samples"].shape[1], r["task"]) for r in results]), t)
    cols["chain"] = np.tile(np.arange(c), t)
    cols["draw"] = np.repeat(np.arange(t), c)
    if not np.all(cols["solution"]):
        raise RuntimeError("a reference state is not a solution: the constrained walk is broken")
    (loc / "reference.parquet").write_parquet(to_arrow(cols))
    pred = prediction_columns(cols)  # the states evaluated once, above
    diag = diagnostics(pred, t, c)
    floor = noise_floor(pred, cols["task"])
    lpf = [r["nested"]["log_prior_fraction"] for r in results]
    summary = {"format": FORMAT, "settings": configfile.to_mapping(settings), "rows": int(len(x)),
               "tasks": [{k: r[k] for k in ("task", "nested", "chains")} for r in results],
               "log_prior_fraction": {"mean": float(np.mean(lpf)), "per_task": [float(v) for v in lpf]},
               "diagnostics": diag, "noise_floor": floor, "seconds": time.perf_counter() - t0}
    (loc / "reference.json").write_json(summary)
    log(f"reference: {len(x)} states of {c} chains in {settings.tasks} tasks, {summary['seconds']:.0f} s -> "
        f"{(loc / 'reference.parquet').uri}")
    log(f"prior fraction of the solution set: {np.exp(np.mean(lpf)):.3g} (ln {np.mean(lpf):.2f}; "
        f"per task {', '.join(f'{v:.2f}' for v in lpf)})")
    log("mixing: " + ", ".join(f"{k} R-hat {v['rhat']:.2f} ESS {v['ess']:.0f}" for k, v in diag.items()))
    if floor is not None:
        log("noise floor (even against odd tasks; a run closer to the reference than this is not "
            "distinguishable from it): " + ", ".join(f"{k} {v:.3f}" for k, v in floor.items()))
    return summary


__all__ = ["FORMAT", "ReferenceSettings", "build_importance_reference", "build_reference", "diagnostics", "noise_floor",
           "run_importance_task", "run_task"]

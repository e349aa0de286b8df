"""One fine-tuning round (Sec. 2.2.3 and beyond), written once over plain callables.

A round r: draw a sample set from the previous network (``pre`` for r = 1, else ``tuned-(r-1)``)
-> choose the candidate rows (this round's samples, and with ``pool = union`` every earlier
round's fine-tuning set) -> select the rows to train on (:func:`selected_rows`) -> save them ->
fine-tune all weights of the previous network on them -> network ``tuned-r``.

:func:`finetune_round` does exactly that; how a sample set is drawn, where sets are stored and
how a network is trained are the callables the caller passes. The orchestration runs N rounds
inside one Ray Train ``TorchTrainer`` (short rounds: every worker draws its shards, trains under
DDP) or one trainer per round with checkpoints (long rounds) with the same function.
No Ray and no file access here (the callables do that).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from rayflavor.methods.diffusion import selection, training
from rayflavor.methods.diffusion.data import unique_points, with_split
from rayflavor.methods.diffusion.settings import SelectionSettings, TuneSettings
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw

#: A round needs at least this many selected rows to fine-tune on.
MIN_ROWS = 10


class SelectionTooSmall(ValueError):
    """Fewer than :data:`MIN_ROWS` rows met the selection of a round: nothing to fine-tune on."""


def round_networks(r: int) -> tuple[str, str]:
    """(network fine-tuned from, network made) of fine-tuning round ``r`` (1, 2, ...).

    >>> round_networks(1), round_networks(3)
    (('pre', 'tuned-1'), ('tuned-2', 'tuned-3'))
    """
    return ("pre" if r == 1 else f"tuned-{r - 1}"), f"tuned-{r}"


def candidate_rows(samples: pa.Table, earlier: Sequence[pa.Table] = ()) -> pa.Table:
    """The rows a round selects from: this round's ``samples`` and the ``earlier`` rounds'
    fine-tuning sets (their ``split`` column dropped), duplicate parameter points removed.
    With no earlier set (``pool = round``, the paper) the samples as they are."""
    t = samples.replace_schema_metadata(None)
    if not earlier:
        return t
    old = [e.drop_columns([c for c in ("split",) if c in e.column_names]).replace_schema_metadata(None)
           for e in earlier]
    return unique_points(pa.concat_tables([t, *old], promote_options="default"))


def no_windows() -> np.ndarray:
    """The 3 sigma windows of ``seesaw.SOLUTION_TERMS`` in NO for the default data set: the rounds
    condition on, select and judge solutions in NO."""
    return seesaw.solution_windows(physics_data.load(seesaw.DEFAULT_DATA), "NO")


def selected_rows(t: pa.Table, settings: SelectionSettings = SelectionSettings(), *, seed: int = 0,
                  windows: np.ndarray | None = None) -> tuple[pa.Table, int]:
    """Rows meeting the selection, with a fresh 90/10 ``split`` column; also how many met the paper's cuts.

    ``select = cuts`` (the paper): the conditions of sec. 2.2.3, topped up to ``min_select`` rows
    with the lowest total chi2. ``select = nearest`` (beyond the paper): every solution, and the
    rows closest to the solution box up to ``n_best`` in all, or ``per_solution`` rows per solution
    when that is more (:func:`selection.nearest`, :func:`selection.nearest_size`; ``windows``: the
    3 sigma windows of ``seesaw.SOLUTION_TERMS``, default :func:`no_windows`).
    Deterministic for a given table and seed, so every worker of a trainer makes the same set.
    """
    chi2 = t.column("chi2").to_numpy()
    mask = selection.select(chi2, t.column("chi2_mass").to_numpy(), t.column("chi2_mixing").to_numpy())
    n_cut = int(mask.sum())
    if settings.select == "cuts":
        mask = selection.top_up(mask, chi2, settings.min_select)
    else:
        windows = no_windows() if windows is None else windows
        values = np.stack([t.column(c).to_numpy() for c in seesaw.SOLUTION_TERMS], axis=1)
        miss = selection.window_miss(values, windows)
        # every solution found so far stays in the set (diversity), nearest misses fill it up
        mask = selection.nearest(miss, chi2, selection.nearest_size(miss, settings.n_best, settings.per_solution))
    return with_split(t.filter(pa.array(mask)).replace_schema_metadata(None), seed), n_cut


def finetune_state(init: str | Path, g: np.ndarray, lab: np.ndarray, tune: TuneSettings) -> training.TrainState:
    """Fresh training state (Adam, OneCycleLR over ``tune.steps``) on the weights of network file
    ``init``, its normalisation refitted on the training rows (``g``, ``lab``) as ``tune.refit`` says.

    The labels of the rows that are solutions (NO windows) are kept with the network
    (``meta["solution_labels"]``, at most :data:`training.MAX_SOLUTION_LABELS` of them): the labels a
    sample with ``labels = "solutions"`` is conditioned on."""
    net, norm, _ = training.load_model(init)
    net.train()
    sol = selection.label_solutions(lab, no_windows())
    focus = sol if tune.refit == "solutions" else None
    return training.new_state(norm.refit(g, lab, tune.refit, focus), total_steps=tune.steps, lr_max=tune.lr_max,
                              model=net, meta={"init": str(init),
                                               "solution_labels": training.kept_labels(lab[sol])})


def finetune_round(r: int, *, selection_settings: SelectionSettings, seed: int,
                   draw: Callable[[str, int], tuple[dict, pa.Table]],
                   earlier: Callable[[int], Sequence[pa.Table]],
                   save_set: Callable[[str, pa.Table], None],
                   tune: Callable[[str, str, pa.Table], dict]) -> dict:
    """Round ``r``: sample -> select -> fine-tune. Returns the round's record (JSON-able).

    ``draw(network, seed)`` -> (summary of the sample set, its rows): the round's samples of
    ``network`` with the seed ``seed + r`` (fresh noise per round). ``earlier(r)``: the fine-tuning
    sets of rounds before r (asked only with ``pool = union``). ``save_set(name, rows)``: store the
    selected rows of network ``name``. ``tune(source, name, rows)`` -> training metrics (``step``,
    ``loss``, ``val_loss``, ``steps_per_s``): fine-tune ``source`` into ``name``.
    Raises :class:`SelectionTooSmall` before anything is saved when fewer than :data:`MIN_ROWS`
    rows are selected.
    """
    src, name = round_networks(r)
    t0 = time.perf_counter()
    stats, samples = draw(src, seed + r)
    t_sample = time.perf_counter() - t0
    cand = candidate_rows(samples, earlier(r) if selection_settings.pool == "union" else ())
    rows, n_cut = selected_rows(cand, selection_settings, seed=seed + r)
    if rows.num_rows < MIN_ROWS:
        raise SelectionTooSmall(
            f"round {r}: only {rows.num_rows} of {stats.get('n', cand.num_rows)} samples of {src!r} meet the selection "
            f"({selection_settings.select}); sample more (--n-select), train longer or set --min-select")
    save_set(name, rows)
    t1 = time.perf_counter()
    trained = tune(src, name, rows)
    t_train = time.perf_counter() - t1
    chi2 = rows.column("chi2").to_numpy()
    return {"round": r, "network": name, "source": src, "selected": rows.num_rows, "met_cuts": n_cut,
            "candidates": cand.num_rows, "sample": stats,
            "selected_solutions": int(np.sum(rows.column("solution").to_numpy(zero_copy_only=False))),
            "chi2_median_selected": float(np.median(chi2)), "step": int(trained.get("step", 0)),
            "loss": float(trained.get("loss", math.nan)), "val_loss": float(trained.get("val_loss", math.nan)),
            "steps_per_s": float(trained.get("steps_per_s", math.nan)),
            "seconds_sample": t_sample, "seconds_train": t_train, "seconds": time.perf_counter() - t0}


def round_line(m: dict) -> str:
    """One line of progress for a finished round (its record)."""
    st = m["sample"]
    return (f"round {m['round']}: {st['solutions']} solutions in {st['n']} samples of {m['source']!r} "
            f"({m['seconds_sample']:.0f} s); {m['selected']} of {m['candidates']} candidates selected, "
            f"{m['selected_solutions']} of them solutions; {m['network']!r} trained {m['step']} steps "
            f"({m['seconds_train']:.0f} s, {m['steps_per_s']:.0f} steps/s), val_loss {m['val_loss']:.4f}")


def best_network(records: Sequence[tuple[str, int, int]], order: Sequence[str]) -> tuple[str | None, float, int]:
    """(network, solution fraction, samples) of the network whose sample sets together have the
    highest fraction of solutions; (None, 0, 0) when no set has a solution. ``records``:
    (network, solutions, samples) of every network-only sample set (sets drawn with physics
    guidance measure the guidance and must not be passed); ``order``: the finished networks in
    training order (ties go to the later one; networks not in it are ignored).

    >>> best_network([("pre", 0, 50), ("tuned-1", 3, 100), ("tuned-2", 4, 200)], ["pre", "tuned-1", "tuned-2"])
    ('tuned-1', 0.03, 100)
    """
    totals: dict[str, list[int]] = {}
    for name, sols, n in records:
        t = totals.setdefault(name, [0, 0])
        t[0] += sols
        t[1] += n
    rank = {n: i for i, n in enumerate(order)}
    ranked = sorted(((s / n, rank[name], name, n) for name, (s, n) in totals.items() if n and name in rank),
                    reverse=True)
    if not ranked or ranked[0][0] == 0:
        return None, 0.0, 0
    frac, _, name, n = ranked[0]
    return name, frac, n

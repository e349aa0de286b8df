"""Spread a fine-tuning set's solutions over the solution set before the network learns them.

Why (issue 18): the chain trains each network on its own best samples, so whatever part of the
solution set the network reached first is what the next network learns, more sharply each round;
the refit of the normalisation to the solutions' bounding box and the clip of x0 to it make
that a ratchet (the box can only shrink). The cure here keeps the chain's speed: before a round
fine-tunes, every solution of its set is replaced by the end of a **constrained random walk**
started at it -- Metropolis steps whose target is the paper's prior (uniform on the box of eqs.
2.17-2.18, ``|M1| <= |M2|``, phases periodic) restricted to the 3 sigma solution set, i.e.
what an ideal conditional model at guidance 1 samples (:mod:`rayflavor.methods.reference`). A
uniform target is invariant under such a walk, so walking longer never biases the set; a short
walk already moves the points off the network's preferred corner (the walk acceptance is ~4 %
near the set's thin directions, the step scale adapts to it during ``burn``).

Every walked point is still a solution (the walk only accepts steps that stay one), so the set's
size, its number of solutions and the selection logic are unchanged. Points outside the prior box
(possible with ``--clip 0``) are left where they are.

No Ray, no torch, no file access.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rayflavor.methods.diffusion.data import evaluated_table, points
from rayflavor.methods.reference import constrained_chains, seesaw_target
from rayflavor.physics import seesaw

#: walk steps with an adapting step scale before the ``steps`` that count
BURN = 100


def spread_points(x: np.ndarray, steps: int, rng: np.random.Generator, *, data: str = seesaw.DEFAULT_DATA,
                  ordering: str = "NO") -> tuple[np.ndarray, dict]:
    """Each row of ``x`` (N, 23 seesaw parameters, solutions) moved by :data:`BURN` + ``steps``
    constrained walk steps; rows that are not solutions inside the prior box stay.  Returns the
    points and ``{"walked", "acceptance", "scale", "moved_median"}`` (median distance moved in
    units of the prior box's width, RMS over the 23 coordinates)."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    info = {"walked": 0, "acceptance": float("nan"), "scale": float("nan"), "moved_median": 0.0}
    if steps <= 0 or len(x) < 2:
        return out, info
    loss, _, box = seesaw_target(data, ordering)
    ok = box.contains(x)
    ok[ok] = loss(x[ok]) == 0.0
    if ok.sum() < 2:  # the proposal's shape needs at least two points
        return out, info
    ch = constrained_chains(x[ok], loss, box, draws=1, thin=int(steps), burn=BURN, rng=rng)
    out[ok] = ch.samples[-1]
    d = (out[ok] - x[ok]) / box.width
    info.update(walked=int(ok.sum()), acceptance=float(ch.acceptance), scale=float(ch.scale),
                moved_median=float(np.median(np.sqrt(np.mean(d**2, axis=1)))))
    return out, info


def spread_solutions(rows: pa.Table, steps: int, seed: int, *, fresh: np.ndarray | None = None,
                     data: str = seesaw.DEFAULT_DATA, ordering: str = "NO") -> tuple[pa.Table, dict]:
    """``rows`` (a fine-tuning set: parameters, observables, ``solution`` and any other columns)
    with every solution replaced by its walked point (:func:`spread_points`), re-evaluated; other
    columns (``split``, ``ordering``, ...) are kept.  Row order: the walked solutions first.

    ``fresh`` (bool per row): walk only these solutions -- the network's new ones of this round.
    Solutions kept from earlier rounds' sets were walked when they entered; walking them again
    would add a new point per old one each round while the old one stays in its own set, so
    with ``pool = union`` the solutions would double every round."""
    sol = np.asarray(rows.column("solution").to_numpy(zero_copy_only=False), dtype=bool)
    if fresh is not None:
        sol &= np.asarray(fresh, dtype=bool)
    if steps <= 0 or sol.sum() < 2:
        return rows, {"walked": 0}
    walked, info = spread_points(points(rows)[sol], steps, np.random.default_rng([int(seed), 0x5eed]), data=data,
                                 ordering=ordering)
    new = evaluated_table(walked, ordering=ordering, data=data)
    old = rows.filter(pa.array(sol))
    cols = {name: (new.column(name) if name in new.column_names else old.column(name)).cast(rows.schema.field(name).type)
            for name in rows.column_names}
    table = pa.table(cols, schema=rows.schema)
    still = np.asarray(table.column("solution").to_numpy(zero_copy_only=False), dtype=bool)
    if not still.all():  # the walk accepts solutions only; a failure here is a bug, never silent
        raise RuntimeError(f"spread: {int((~still).sum())} walked points are no longer solutions")
    return pa.concat_tables([table, rows.filter(pa.array(~sol))]), info


__all__ = ["BURN", "spread_points", "spread_solutions"]

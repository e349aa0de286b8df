"""The taught network's training set: a network-free sample of the solution set.

A self-training chain (``--teacher none``) fine-tunes each network on its own best samples, so
whatever corner of the solution set the network reached first is what the next network learns,
more sharply each round (seed 11: every solution within 0.6 % of the heaviest-M3 face, KS 0.2-0.9
to the reference on every prediction). With ``--teacher reference`` the pre-network is instead
fine-tuned once on solutions drawn without any network: the last state of every chain of a
reference run (:mod:`rayflavor.methods.reference`; uniform under the paper's prior restricted to
the 3 sigma set, modes in proportion to their prior volume). The taught network then covers the
whole set; its samples seldom land inside every 3 sigma window by themselves, and physics guidance
(:mod:`.physics_guidance`) moves them in.

No Ray, no torch, no file access.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rayflavor.methods.diffusion.data import with_split
from rayflavor.physics import seesaw


def teacher_rows(reference: pa.Table, seed: int) -> pa.Table:
    """One row per chain of a reference table (its last kept state: the farthest from where the
    chain started; an importance reference has one state per row, ``draw`` 0, so every row), with the parameter, label, ``chi2`` and ``solution`` columns and a fresh
    90/10 ``split``.  Raises ValueError when the table is not a reference of solutions."""
    need = [*seesaw.PARAMETERS, *seesaw.LABELS, "chi2", "solution", "task", "chain", "draw"]
    missing = [c for c in need if c not in reference.column_names]
    if missing:
        raise ValueError(f"not a rayflavor reference: no column(s) {', '.join(missing[:4])}")
    draw = reference.column("draw").to_numpy()
    last = draw == draw.max()
    t = reference.filter(pa.array(last)).select(need[:-3])
    if not np.all(t.column("solution").to_numpy(zero_copy_only=False)):
        raise ValueError("a teacher row is not a solution: the reference is broken")
    return with_split(t.replace_schema_metadata(None), seed)


__all__ = ["teacher_rows"]

"""Generate parameter points G from a trained network for one conditioning label.

Glue between :mod:`.ddpm` (network and samplers) and :mod:`.training` (normalisation), no I/O
beyond loading the checkpoint and no Ray. Points come back in physical units (float64),
in the column order of ``seesaw.PARAMETERS``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from rayflavor.methods.diffusion.ddpm import FoldedNet, NoiseSchedule, bounded, guided_eps_fn, sample
from rayflavor.methods.diffusion.physics_guidance import PhysicsGuidance
from rayflavor.methods.diffusion.settings import OUTSIDE
from rayflavor.methods.diffusion.training import Normalizer, load_model
from rayflavor.physics import seesaw

BATCH = 4096
FACE_TOLERANCE = 1e-4
"""With ``outside = "redraw"`` in the paper's coordinates: how far past a face of [-1, 1] (network
units, float32) a finished draw still counts as inside; the last reverse step of a draw whose
predicted x0 was clipped onto a face lands there up to rounding, and is then bounded onto it."""
MIN_INSIDE = 0.01
"""With ``outside = "redraw"``: the smallest share of a network's draws inside the prior box that
is redrawn to the end; below it (after the first 10 000 draws at least) ``generate`` stops with a
ValueError instead of drawing ~100x the request."""


class Generated(NamedTuple):
    """What :func:`generate` returns."""

    points: np.ndarray  # (n, dim) parameter points in physical units, seesaw.PARAMETERS order
    drawn: int  # reverse processes run: n, plus the draws outside the prior box that were redrawn


def generate(
    net: FoldedNet,
    norm: Normalizer,
    label: np.ndarray,
    n: int,
    *,
    sampler: str,
    steps: int | None = None,
    guidance: float,
    seed: int = 0,
    batch: int = BATCH,
    clip: float | None = None,
    schedule: NoiseSchedule | None = None,
    physics: PhysicsGuidance | None = None,
    bound: str,
    project: int,
    outside: str,
) -> Generated:
    """``n`` points (n, dim) conditioned on the physical ``label`` (11,), or point i on row i of
    ``label`` (n, 11), CFG scale ``guidance``.

    The final sample is clamped to [-1, 1] in network units, i.e. to the range of the
    training inputs (the prior box): the priors have no support outside it. A network in other
    coordinates than the paper's (``norm.coordinates``) has its points decoded and then bounded
    to the prior box (``seesaw.prior_box``) the same way; its projection works in the prior box.
    ``physics`` (beyond the paper): steer every step's predicted x0 into the 3 sigma box
    (:mod:`.physics_guidance`). ``bound``: how the clip and the final [-1, 1] are enforced
    (:func:`.ddpm.bounded`: ``clamp`` or ``reflect``). ``outside``: what becomes of a finished
    point outside the prior box: ``bound`` (brought inside by ``bound``, the paper's clamp) or
    ``redraw`` (beyond the paper: dropped and replaced by a new draw, so the points follow the
    network's density restricted to the prior's support; ``drawn`` counts every draw, and a
    network with fewer than :data:`MIN_INSIDE` of its draws inside raises ValueError).
    ``project`` (beyond the paper): that
    many projection steps onto the 3 sigma set for every finished point outside it
    (:meth:`.PhysicsGuidance.projector`; needs ``physics`` for the windows, whose ``iterations``
    may be 0: no guidance inside the reverse process).
    """
    if project and physics is None:
        raise ValueError("project needs the physics guidance settings (the 3 sigma windows)")
    guided = physics is not None and physics.iterations > 0
    if guided and not norm.paper:
        raise ValueError(f"physics guidance inside the reverse process needs a network in the paper's coordinates; "
                         f"this one works in {norm.coordinates} coordinates (use projection instead)")
    schedule = schedule or NoiseSchedule()
    lab = torch.from_numpy(norm.labels_to_net(np.asarray(label, dtype=np.float64)))
    if lab.dim() == 2 and lab.shape[0] != n:
        raise ValueError(f"one label per point needs {n} labels, not {lab.shape[0]}")
    eps_fn = guided_eps_fn(net, lab, schedule=schedule, steps=steps, guidance=guidance) if lab.dim() == 1 else None
    refine = physics.refiner(norm.g_lo, norm.g_hi) if guided else None
    # a network in other coordinates: its points are decoded, then bounded and projected in the prior box
    box_lo, box_hi = (norm.g_lo, norm.g_hi) if norm.paper else seesaw.prior_box()
    projector = physics.projector(box_lo, box_hi, project) if project else None
    dim = net.w_h[0].shape[0]  # the network's features (23, or 25 in Casas-Ibarra coordinates)
    if outside not in OUTSIDE:
        raise ValueError(f"outside must be one of {', '.join(OUTSIDE)}, not {outside!r}")
    out = np.empty((n, len(seesaw.PARAMETERS)), dtype=np.float64)
    g = torch.Generator().manual_seed(int(seed))
    pending = np.arange(n)  # rows still to fill; a redrawn row keeps its label (one label per point)
    drawn = 0
    while len(pending):
        rows, pending = pending[:batch], pending[batch:]
        x = torch.randn(len(rows), dim, generator=g)
        fn = eps_fn or guided_eps_fn(net, lab[torch.from_numpy(rows)], schedule=schedule, steps=steps,
                                     guidance=guidance)
        x = sample(fn, x, schedule=schedule, sampler=sampler, steps=steps, generator=g, clip=clip, refine=refine,
                   bound=bound)
        drawn += len(rows)
        ok = np.ones(len(rows), dtype=bool)
        if outside == "redraw" and norm.paper:  # network units are the prior box; a clipped x0 may end a
            ok = (x.abs() <= 1.0 + FACE_TOLERANCE).all(dim=1).numpy()  # rounding error past its face: inside
        x = bounded(x, -1.0, 1.0, bound)
        if not norm.paper:  # decoded points may leave the prior box (the Yukawas' |Re|, |Im| <= 1)
            g_box = norm.g_from_net(x.numpy())
            if outside == "redraw":
                ok = ((g_box >= box_lo) & (g_box <= box_hi)).all(axis=1)
            x = bounded(torch.from_numpy(2.0 * (g_box - box_lo) / (box_hi - box_lo) - 1.0), -1.0, 1.0, bound)
        if not ok.all():
            x, pending = x[torch.from_numpy(ok)], np.concatenate([rows[~ok], pending])
            if drawn >= 10_000 and n - len(pending) < MIN_INSIDE * drawn:
                raise ValueError(f"only {n - len(pending)} of {drawn} draws of this network fall inside the prior "
                                 f"box (less than {MIN_INSIDE:.0%}: it has not learned the prior's support); draw with "
                                 "outside = 'bound' ([sampling] of diffusion sample; final_outside of diffusion run)")
        if projector is not None and len(x):
            x = projector(x)
        x = x.numpy().astype(np.float64)
        out[rows[ok]] = (norm.g_from_net(x) if norm.paper else box_lo + (x + 1.0) * 0.5 * (box_hi - box_lo))
    return Generated(out, drawn)


def load_folded(path) -> tuple[FoldedNet, Normalizer, dict]:
    """Checkpoint -> (inference network, normaliser, raw checkpoint dict)."""
    net, norm, d = load_model(path)
    return FoldedNet(net), norm, d

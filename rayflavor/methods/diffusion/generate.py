"""Generate parameter points G from a trained network for one conditioning label.

Glue between :mod:`.network`, :mod:`.sampling` and :mod:`.training` (normalisation), no I/O
beyond loading the checkpoint and no Ray. Points come back in physical units (float64),
in the column order of ``seesaw.PARAMETERS``.
"""

from __future__ import annotations

import numpy as np
import torch

from rayflavor.methods.diffusion.network import FoldedNet
from rayflavor.methods.diffusion.physics_guidance import PhysicsGuidance
from rayflavor.methods.diffusion.sampling import bounded, guided_eps_fn, sample
from rayflavor.methods.diffusion.schedule import NoiseSchedule
from rayflavor.methods.diffusion.training import Normalizer, load_model

BATCH = 4096


def generate(
    net: FoldedNet,
    norm: Normalizer,
    label: np.ndarray,
    n: int,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    guidance: float = 8.0,
    seed: int = 0,
    batch: int = BATCH,
    clip: float | None = None,
    schedule: NoiseSchedule | None = None,
    physics: PhysicsGuidance | None = None,
    bound: str = "clamp",
    project: int = 0,
) -> np.ndarray:
    """``n`` points (n, dim) conditioned on the physical ``label`` (11,), CFG scale ``guidance``.

    The final sample is clamped to [-1, 1] in network units, i.e. to the range of the
    training inputs (the prior box): the priors have no support outside it.
    ``physics`` (beyond the paper): steer every step's predicted x0 into the 3 sigma box
    (:mod:`.physics_guidance`). ``bound``: how the clip and the final [-1, 1] are enforced
    (:func:`.sampling.bounded`: ``clamp`` or ``reflect``). ``project`` (beyond the paper): that
    many projection steps onto the 3 sigma set for every finished point outside it
    (:meth:`.PhysicsGuidance.projector`; needs ``physics`` for the windows, whose ``iterations``
    may be 0: no guidance inside the reverse process).
    """
    if project and physics is None:
        raise ValueError("project needs the physics guidance settings (the 3 sigma windows)")
    schedule = schedule or NoiseSchedule()
    lab = torch.from_numpy(norm.labels_to_net(np.asarray(label, dtype=np.float64)))
    eps_fn = guided_eps_fn(net, lab, schedule=schedule, steps=steps, guidance=guidance)
    refine = physics.refiner(norm.g_lo, norm.g_hi) if physics is not None and physics.iterations > 0 else None
    projector = physics.projector(norm.g_lo, norm.g_hi, project) if project else None
    dim = net.w_h[0].shape[0]
    out = np.empty((n, dim), dtype=np.float64)
    g = torch.Generator().manual_seed(int(seed))
    for i in range(0, n, batch):
        b = min(batch, n - i)
        x = torch.randn(b, dim, generator=g)
        x = sample(eps_fn, x, schedule=schedule, sampler=sampler, steps=steps, generator=g, clip=clip, refine=refine,
                   bound=bound)
        x = bounded(x, -1.0, 1.0, bound)
        out[i:i + b] = norm.g_from_net((projector(x) if projector is not None else x).numpy())
    return out


def load_folded(path) -> tuple[FoldedNet, Normalizer, dict]:
    """Checkpoint -> (inference network, normaliser, raw checkpoint dict)."""
    net, norm, d = load_model(path)
    return FoldedNet(net), norm, d

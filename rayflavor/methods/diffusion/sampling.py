"""Reverse process: ancestral DDPM (eq. A.23), deterministic DDIM, classifier-free guidance (eq. B.5).

Both samplers walk a descending list of times ``t_K > ... > t_1`` (all ``T`` times for the
paper's DDPM; a strided subset for ``--steps K``) and share one rule for the coefficients,
computed in float64 from the schedule's ``alpha_bar``:

* DDPM, respaced: ``beta'_k = 1 - alpha_bar(t_k)/alpha_bar(t_{k-1})``, ``alpha'_k = 1 - beta'_k``,
  ``x_{k-1} = (x_k - beta'_k / sqrt(1 - alpha_bar(t_k)) eps) / sqrt(alpha'_k) + sigma_k u``
  with ``sigma_k^2 = beta'_k`` (A.8: the "sigma^2 = beta_t" choice) and no noise on the last step.
  With all T steps ``beta'_k = beta_t`` and this is exactly eq. A.23.
* DDIM (eta = 0): ``x0_hat = (x_k - sqrt(1 - ab_k) eps) / sqrt(ab_k)``,
  ``x_{k-1} = sqrt(ab_{k-1}) x0_hat + sqrt(1 - ab_{k-1}) eps``.

The noise predictor is any callable ``eps_fn(x, k) -> eps`` for step index ``k`` (0 = first
step, at the largest time); :func:`guided_eps_fn` builds it from a :class:`FoldedNet` with
CFG. Samplers are written for a batch; callers loop over batches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rayflavor.methods.diffusion.network import FoldedNet
from rayflavor.methods.diffusion.schedule import NoiseSchedule
from rayflavor.methods.diffusion.settings import BOUNDS  # clamp onto a face (mass piles up there) or reflect at it

SAMPLERS = ("ddpm", "ddim")


def bounded(x: torch.Tensor, lo, hi, mode: str = "clamp") -> torch.Tensor:
    """``x`` brought into ``[lo, hi]`` (scalars or tensors broadcasting with ``x``), in place.

    ``clamp``: values beyond a face move onto it. ``reflect``: they are mirrored at the upper face
    (``hi - (x - hi)``), then at the lower one, then clamped (a value more than a box width beyond a
    face); a density that reaches a face smoothly stays smooth instead of gaining a point mass on it.

    >>> x = torch.tensor([-1.5, 0.25, 1.25, 3.5])
    >>> bounded(x.clone(), -1.0, 1.0, "reflect").tolist(), bounded(x.clone(), -1.0, 1.0).tolist()
    ([-0.5, 0.25, 0.75, -0.5], [-1.0, 0.25, 1.0, 1.0])
    """
    if mode == "reflect":
        torch.where(x > hi, 2 * hi - x, x, out=x)
        torch.where(x < lo, 2 * lo - x, x, out=x)
    elif mode != "clamp":
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, not {mode!r}")
    return x.clamp_(lo, hi)


def timesteps(T: int, steps: int) -> np.ndarray:
    """Descending integer times ``t_K > ... > t_1`` in ``[1, T]``; all of them when ``steps >= T``.

    >>> timesteps(1000, 4).tolist()
    [1000, 667, 334, 1]
    """
    steps = int(min(max(steps, 1), T))
    ts = np.unique(np.round(np.linspace(1, T, steps)).astype(np.int64))
    return ts[::-1].copy()


def cfg(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, gamma: float) -> torch.Tensor:
    """Classifier-free guidance ``(1 - gamma) eps(x, t) + gamma eps(x, t, c)`` (eq. B.5)."""
    return (1.0 - gamma) * eps_uncond + gamma * eps_cond


def coefficients(schedule: NoiseSchedule, ts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step float64 coefficients for the times ``ts`` (descending); ``prev`` of the last step is t = 0."""
    ab = schedule.alpha_bars64.numpy()
    ab_t = ab[ts]
    ab_prev = np.append(ab[ts[1:]], 1.0)
    beta = 1.0 - ab_t / ab_prev
    return {
        "ab_t": ab_t,
        "ab_prev": ab_prev,
        "beta": beta,
        "inv_sqrt_alpha": 1.0 / np.sqrt(1.0 - beta),
        "eps_coef": beta / np.sqrt(1.0 - ab_t),
        "sigma": np.sqrt(beta),
    }


def sample(
    eps_fn: Callable[[torch.Tensor, int], torch.Tensor],
    x_T: torch.Tensor,
    *,
    schedule: NoiseSchedule,
    sampler: str,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    clip: float | None = None,
    refine: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bound: str,
) -> torch.Tensor:
    """Run the reverse process from ``x_T`` (B, D), in place; returns ``x_0``.

    ``steps``: number of reverse steps (default: all T). ``clip``: if set, clamp the predicted
    ``x0_hat`` to ``[-clip, clip]`` at every step (the data are normalised into [-1, 1]);
    the paper does not clip (default None); ``bound``: how (:func:`bounded`). DDPM noise: ``sigma_k^2 = beta'_k`` (the paper's choice).
    ``refine`` (beyond the paper): a map applied to ``x0_hat`` at every step, after the clamp
    (:mod:`.physics_guidance`); the step then continues with the noise implied by the moved ``x0_hat``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (use {' or '.join(SAMPLERS)})")
    ts = timesteps(schedule.T, steps or schedule.T)
    co = coefficients(schedule, ts)
    sigma = co["sigma"]
    x = x_T
    noise = torch.empty_like(x) if sampler == "ddpm" else None
    for k in range(len(ts)):
        eps = eps_fn(x, k)
        ab_t, ab_prev = co["ab_t"][k], co["ab_prev"][k]
        if clip is not None or refine is not None:
            x0 = (x - np.sqrt(1.0 - ab_t) * eps) / np.sqrt(ab_t)
            if clip is not None:
                bounded(x0, -clip, clip, bound)
            if refine is not None:
                x0 = refine(x0)
            eps = (x - np.sqrt(ab_t) * x0) / np.sqrt(1.0 - ab_t)
        if sampler == "ddpm":
            x.sub_(eps, alpha=float(co["eps_coef"][k])).mul_(float(co["inv_sqrt_alpha"][k]))
            if k < len(ts) - 1:
                noise.normal_(generator=generator)
                x.add_(noise, alpha=float(sigma[k]))
        else:
            a = np.sqrt(ab_prev / ab_t)
            b = np.sqrt(1.0 - ab_prev) - np.sqrt(ab_prev * (1.0 - ab_t) / ab_t)
            x.mul_(float(a)).add_(eps, alpha=float(b))
    return x


def guided_eps_fn(
    net: FoldedNet,
    label: torch.Tensor,
    *,
    schedule: NoiseSchedule,
    steps: int | None = None,
    guidance: float,
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """CFG noise predictor for one normalised label (label_dim,), or one per row (B, label_dim), and
    the sampler's step list.

    One label: the label/time contribution of each layer is precomputed for every step (conditional
    and empty label). A label per row: the predictor serves batches of exactly B rows, row i
    conditioned on label i (its label part precomputed once, the time part added per step). With
    ``guidance == 1`` only the conditional pass runs, with 0 only the empty one.
    """
    ts = timesteps(schedule.T, steps or schedule.T)
    t_frac = torch.as_tensor(ts / schedule.T, dtype=torch.float32).unsqueeze(-1)
    empty = torch.zeros(len(ts), label.shape[-1])
    uncond = net.biases(torch.cat([empty, t_frac], dim=1))
    if label.dim() == 1:
        cond = net.biases(torch.cat([label.float().reshape(1, -1).expand(len(ts), -1), t_frac], dim=1))
        cond_at = lambda k: (cond, k)  # noqa: E731
    else:
        rows, times = net.row_biases(label), net.time_biases(t_frac)
        per_row = [torch.empty_like(r) for r in rows]

        def cond_at(k: int):
            for out, r, t in zip(per_row, rows, times):
                torch.add(r, t[k], out=out)
            return [p.unsqueeze(0) for p in per_row], 0

    g = float(guidance)

    def eps_fn(x: torch.Tensor, k: int) -> torch.Tensor:
        if g == 0.0:
            return net(x, uncond, k)
        if g == 1.0:
            return net(x, *cond_at(k))
        e_u = net(x, uncond, k).clone()
        e_c = net(x, *cond_at(k))
        # (1 - g) e_u + g e_c, in place on the copy
        return e_u.mul_(1.0 - g).add_(e_c, alpha=g)

    return eps_fn

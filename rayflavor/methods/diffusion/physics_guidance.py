"""Physics guidance (beyond the paper): steer the predicted x0 of each reverse step into the 3 sigma box.

Diffusion posterior sampling with the exact forward model, in its cheap "x0-only" form (no
gradient through the network; Chung et al. 2023, He et al. 2023): at every reverse step the
sampler predicts ``x0_hat`` from ``x_t`` (:func:`.ddpm.sample`); this module moves ``x0_hat``
a few damped Polyak steps down the window loss

    L(x0) = sum_j max(|z_j| - inner, 0)^2,   z_j = (v_j(G(x0)) - c_j) / h_j,

where ``v_j`` are the seesaw observables that define a solution (``seesaw.SOLUTION_TERMS``:
dm21, dm3l [eV^2], the nine |U| of the chosen ordering), ``c_j`` and ``h_j`` the centre and half
width of their 3 sigma windows, ``G(x0)`` the network's affine map back to physical parameters
and ``inner`` = 0.5 by default. A point is a solution exactly when every ``|z_j| <= 1``. The
sampler then continues from the moved ``x0_hat``, so the learned density keeps shaping every step: on a broad network
(the pre-network) the guidance finds nothing, on a fine-tuned one it turns near-misses into
solutions. :meth:`PhysicsGuidance.projector` takes the same loss (``inner`` 0.9) to the finished
sample instead: the points still outside the set take up to P steps, the others stay where they
are. Every generated point is still re-evaluated exactly by :func:`seesaw.evaluate`.

:func:`solution_terms` is a differentiable torch mirror of ``seesaw.mass_matrix`` and of the
label part of ``seesaw.evaluate`` (tests pin the two together: 1e-14 relative at a solution,
1e-6 on prior points with extreme mass hierarchies):

* ``m_nu = (<H>^2/M3) Y^T diag(M3/M1, M3/M2, 1) Y`` with ``M_k = |M_k| e^{i arg M_k}`` [eV];
* ``m_nu m_nu^dagger = U^* diag(m^2) U^T``, so the eigenvectors of ``m_nu m_nu^dagger`` (columns,
  ascending eigenvalue) are the columns of ``U^*`` and ``|U_{a k}| = |V_{a k}|`` for flavour row
  ``a`` (e, mu, tau) and mass column ``k``;
* ``ordering="NO"``: ``(m1, m2, m3)`` = eigenvalues 0, 1, 2, ``dm3l = dm31``;
  ``ordering="IO"``: ``(m3, m1, m2)`` = eigenvalues 0, 1, 2, ``dm3l = dm32 < 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rayflavor.methods.diffusion.ddpm import bounded

#: Where the projection steers a point: the central 90 % of every window (with 0.5, seed 11's projected
#: solutions were further from the reference in delta_CP: 0.118 against 0.094; docs/experiments.md).
PROJECT_INNER = 0.9
#: Projection steps between two checks for rows that are done.
PROJECT_CHUNK = 25

#: Mass-state column of each eigenvalue index (ascending m^2): m1, m2, m3 -> eigh index.
_MASS_INDEX = {"NO": (0, 1, 2), "IO": (1, 2, 0)}


def solution_terms(g: torch.Tensor, ordering: str = "NO") -> torch.Tensor:
    """(N, 23) float64 seesaw parameters (``seesaw.PARAMETERS`` order) -> (N, 11) observables
    ``dm21, dm3l`` [eV^2] and ``abs_u_{e,mu,tau}{1,2,3}`` (row-major), differentiable in ``g``."""
    if ordering not in _MASS_INDEX:
        raise ValueError(f"ordering must be NO or IO, not {ordering!r}")
    y = torch.complex(g[:, 0:9], g[:, 9:18]).reshape(-1, 3, 3)  # Y[i, a]
    one = torch.ones_like(g[:, 0])
    d = torch.stack([torch.polar(1.0 / g[:, 18], -g[:, 21]), torch.polar(1.0 / g[:, 19], -g[:, 22]),
                     torch.complex(one, torch.zeros_like(one))], dim=1)  # M3/M_k, k = 1, 2, 3
    d = d * (10.0 ** g[:, 20])[:, None]
    m = torch.einsum("nia,ni,nib->nab", y, d, y)
    h = m @ m.conj().transpose(1, 2)
    # eigh on h / max|h_ij| (same eigenvectors; keeps extreme hierarchies in range); rows whose
    # matrix is not finite or underflows (a mass ratio of 0, an overflow, an x0 far outside the
    # box when unclipped) get the identity and NaN results, since eigh would fail on the whole batch
    scale = h.abs().amax(dim=(1, 2))
    good = torch.isfinite(scale) & (scale > 1e-200)
    h = h / torch.where(good, scale, 1.0)[:, None, None]
    good = good & torch.isfinite(torch.view_as_real(h)).flatten(1).all(dim=1)
    h = torch.where(good[:, None, None], h, torch.eye(3, dtype=h.dtype, device=h.device).expand_as(h))
    lam, v = torch.linalg.eigh(h)
    lam = lam * torch.where(good, scale, torch.nan)[:, None]
    i1, i2, i3 = _MASS_INDEX[ordering]
    dm21 = lam[:, i2] - lam[:, i1]
    dm3l = lam[:, i3] - lam[:, i1] if ordering == "NO" else lam[:, i3] - lam[:, i2]
    u = v.abs()[:, :, [i1, i2, i3]]
    return torch.cat([dm21[:, None], dm3l[:, None], u.reshape(-1, 9)], dim=1)


@dataclass(frozen=True)
class PhysicsGuidance:
    """Settings of the guidance: ``windows`` (11, 2) 3 sigma ranges of ``seesaw.SOLUTION_TERMS``
    (``seesaw.solution_windows``), their ``ordering``, ``iterations`` Polyak steps per reverse step,
    their damping ``eta``, the largest move per step ``cap`` (network units, where the training
    set spans [-1, 1]) and ``inner``: the loss is zero once every ``|z_j| <= inner``, so points are
    steered into the central ``inner`` fraction of each window, not just over its edge.
    Defaults measured on fine-tuned networks (docs/experiments.md): eta 1 gave 1.2-2x the solutions of 0.5."""

    windows: np.ndarray
    ordering: str = "NO"
    iterations: int = 3
    eta: float = 1.0
    cap: float = 0.05
    inner: float = 0.5
    bound: str = "clamp"  # how a step beyond the network's [-1, 1] comes back (ddpm.bounded)

    def _loss_and_grad(self, g_lo: np.ndarray, g_hi: np.ndarray, inner: float):
        """``x -> (L(x), dL/dx)`` in network units (float64), and ``x -> z`` (the window scores)."""
        w = torch.as_tensor(np.asarray(self.windows, dtype=np.float64))
        centre, half = w.mean(dim=1), 0.5 * (w[:, 1] - w[:, 0])
        lo = torch.as_tensor(np.asarray(g_lo, dtype=np.float64))
        span = torch.as_tensor(np.asarray(g_hi, dtype=np.float64) - np.asarray(g_lo, dtype=np.float64))

        def scores(x: torch.Tensor) -> torch.Tensor:
            dev = x.device
            g = lo.to(dev) + (x + 1.0) * 0.5 * span.to(dev)
            return (solution_terms(g, self.ordering) - centre.to(dev)) / half.to(dev)

        def loss_and_grad(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = x0.detach().double().requires_grad_(True)
            d = (scores(x).abs() - inner).clamp_min(0.0)
            loss = (d * d).sum(dim=1)
            (grad,) = torch.autograd.grad(loss.sum(), x)
            return loss.detach(), grad

        return loss_and_grad, scores

    def _polyak(self, x: torch.Tensor, loss_and_grad, iterations: int) -> torch.Tensor:
        for _ in range(iterations):
            with torch.enable_grad():
                loss, grad = loss_and_grad(x)
            # Polyak step -eta * L / |grad L|^2 * grad L (drives the linearised L to 0 for eta = 1),
            # at most `cap` long; rows with a non-finite loss (outside the model's domain) stay put
            step = grad * (self.eta * loss / (grad * grad).sum(dim=1).clamp_min(1e-300))[:, None]
            step = step * (self.cap / step.norm(dim=1, keepdim=True).clamp_min(self.cap))
            ok = torch.isfinite(step).all(dim=1, keepdim=True)
            x = bounded(torch.where(ok, x - step.to(x.dtype), x), -1.0, 1.0, self.bound)
        return x

    def refiner(self, g_lo: np.ndarray, g_hi: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x0 -> x0'`` in network units for a network whose inputs map to ``G = g_lo + (x + 1)(g_hi - g_lo)/2``:
        ``iterations`` Polyak steps towards the central ``inner`` of every window."""
        loss_and_grad, _ = self._loss_and_grad(g_lo, g_hi, self.inner)
        return lambda x0: self._polyak(x0, loss_and_grad, self.iterations)

    def projector(self, g_lo: np.ndarray, g_hi: np.ndarray, steps: int,
                  inner: float = PROJECT_INNER) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> x'`` (float64, network units): the projection of a finished sample onto the solution set.

        Rows already inside every window (``|z_j| <= 1``) are returned unchanged; every other row
        takes ``steps`` Polyak steps of the window loss towards the central ``inner`` of each window
        (``cap``, ``eta`` and ``bound`` as for the guidance; rows that reach zero loss stop), so a
        point lands on the part of the set nearest to where the sampler left it. Guidance inside the
        reverse process alone fails most where the set is thinnest; projection alone corrects the
        light-mass scale mostly through M3, which the orbit resampling that follows it in the chain
        redraws from the prior (docs/experiments.md#2026-12-02-projection, #2026-12-02-orbits).
        """
        loss_and_grad, scores = self._loss_and_grad(g_lo, g_hi, inner)

        def project(x: torch.Tensor) -> torch.Tensor:
            x = x.detach().double().clone()
            with torch.no_grad():
                z = scores(x)
            todo = torch.nonzero(~(z.abs() <= 1.0).all(dim=1)).flatten()
            left = int(steps)
            while left > 0 and len(todo):
                n = min(PROJECT_CHUNK, left)
                left -= n
                y = self._polyak(x[todo], loss_and_grad, n)
                x[todo] = y
                with torch.no_grad():
                    done = (scores(y).abs() <= inner).all(dim=1)
                todo = todo[~done]
            return x

        return project

"""The DDPM of the paper, top to bottom: helpers, network, noise schedule, training loss, samplers.

Plain torch, no Ray and no I/O. Read in order:

1. **Helpers**: :func:`bounded` (clamp or reflect into a box), :func:`timesteps` (the sampler's
   times), :func:`cfg` (classifier-free guidance, eq. B.5).
2. **Network** (table 2): eight fully connected layers ``D -> 64 -> 128 -> 256 -> 512 -> 256 ->
   128 -> 64 -> D``. The conditioning vector ``c = (L, t/T)`` (11 labels + time = 12 numbers) is
   concatenated to the input of *every* layer (table 2: "R^n + R^12_{L,t}"). Activations: SELU on
   H1-H6, tanh on H7, identity on the output (Sec. 2.2.1). ``D`` is the dimension of G; we use 23
   (eq. 2.15), see :data:`DEFAULT_DIM` (25 in the Casas-Ibarra coordinates, :mod:`.coordinates`).
   Fast inference (:class:`FoldedNet`): every layer is ``W [h; c] + b = W_h h + (W_c c + b)``.
   Within one reverse step ``c`` is the same for every row, so ``W_c c + b`` is a per-step bias
   computed once per step (:meth:`FoldedNet.biases`, for all steps at once) and the per-row work
   is one ``addmm`` plus an in-place activation per layer.
3. **Noise schedule** (eqs. 2.12-2.14, A.2-A.4): computed once in float64 and stored as float32
   buffers of a small ``nn.Module``, so that it moves with the model (``.to(device)``). Index
   convention: arrays have length ``T + 1`` and are indexed by the paper's time ``t = 0 .. T``;
   entry 0 is the clean data (``alpha_bar[0] = 1``, ``beta[0] = 0``).
4. **Training loss**: ``|| eps - eps_theta(x_t, t, L) ||^2`` averaged over rows and components
   (eq. A.21, MSE), ``t`` uniform in 1..T, ``x_t`` from eq. 2.12, the label dropped with
   probability ``p_uncond`` (:func:`loss_on_batch`; the loop, normalisation and checkpoints are
   in :mod:`.training`).
5. **Samplers**: ancestral DDPM (eq. A.23) and deterministic DDIM walk a descending list of times
   ``t_K > ... > t_1`` (all ``T`` times for the paper's DDPM; a strided subset for ``--steps K``)
   and share one rule for the coefficients, computed in float64 from the schedule's ``alpha_bar``:

   * DDPM, respaced: ``beta'_k = 1 - alpha_bar(t_k)/alpha_bar(t_{k-1})``, ``alpha'_k = 1 - beta'_k``,
     ``x_{k-1} = (x_k - beta'_k / sqrt(1 - alpha_bar(t_k)) eps) / sqrt(alpha'_k) + sigma_k u``
     with ``sigma_k^2 = beta'_k`` (A.8: the "sigma^2 = beta_t" choice) and no noise on the last
     step. With all T steps ``beta'_k = beta_t`` and this is exactly eq. A.23.
   * DDIM (eta = 0): ``x0_hat = (x_k - sqrt(1 - ab_k) eps) / sqrt(ab_k)``,
     ``x_{k-1} = sqrt(ab_{k-1}) x0_hat + sqrt(1 - ab_{k-1}) eps``.

   The noise predictor is any callable ``eps_fn(x, k) -> eps`` for step index ``k`` (0 = first
   step, at the largest time); :func:`guided_eps_fn` builds it from a :class:`FoldedNet` with
   CFG. Samplers are written for a batch; callers loop over batches (:mod:`.generate`).

>>> s = NoiseSchedule()
>>> round(float(s.betas[1]), 6), round(float(s.betas[1000]), 6)
(0.00012, 0.02)
>>> float(s.alpha_bars[0])
1.0
>>> net = EpsNet()
>>> x, t, lab = torch.randn(5, 23), torch.rand(5), torch.randn(5, 11)
>>> fast = FoldedNet(net)
>>> c = torch.cat([lab, t[:, None]], 1)
>>> ref = net(x, t, lab)
>>> got = torch.stack([fast(x[i:i+1], fast.biases(c[i:i+1]), 0)[0].clone() for i in range(5)])
>>> bool(torch.allclose(ref, got, atol=1e-5))
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rayflavor.methods.diffusion.settings import BOUNDS  # clamp onto a face (mass piles up there) or reflect at it

SAMPLERS = ("ddpm", "ddim")
#: Probability with which training drops the label (the empty label teaches the unconditional model).
P_UNCOND = 0.1


# ----------------------------------------------------------------------------- helpers
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


# ----------------------------------------------------------------------------- network (table 2)
#: Dimension of G. Eq. 2.15 lists 23 real numbers (18 Yukawa + |M1|/M3 + |M2|/M3 +
#: log10(<H>^2/M3) + arg M1 + arg M2); table 2 says 21. We keep all 23: the generated point
#: must be a complete parameter point to recompute its observables exactly, and the prior
#: (eqs. 2.17-2.18) draws arg M1, arg M2 independently. (Physically the two phases could be
#: absorbed into the rows of Y -- a 21-dimensional G would need a different, rephased prior.)
DEFAULT_DIM = 23
LABEL_DIM = 11
WIDTHS = (64, 128, 256, 512, 256, 128, 64)


class EpsNet(nn.Module):
    """Table-2 network ``eps_theta(x_t, t, L)``.

    Inputs: ``x`` (B, dim) normalised noisy G; ``t_frac`` (B,) time ``t / T`` in (0, 1];
    ``labels`` (B, label_dim) normalised labels, all zeros for the empty label.
    Output: (B, dim) predicted noise.
    """

    def __init__(self, *, dim: int = DEFAULT_DIM, label_dim: int = LABEL_DIM, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.dim, self.label_dim, self.widths = int(dim), int(label_dim), tuple(int(w) for w in widths)
        cond = self.label_dim + 1
        sizes = (self.dim, *self.widths, self.dim)
        self.layers = nn.ModuleList(nn.Linear(a + cond, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def config(self) -> dict:
        """Constructor keywords (saved in checkpoints)."""
        return {"dim": self.dim, "label_dim": self.label_dim, "widths": list(self.widths)}

    def activation(self, i: int):
        """Activation after layer ``i``: SELU for H1..H(n-1), tanh for the last hidden, identity for output."""
        n = len(self.layers)
        if i < n - 2:
            return F.selu
        if i == n - 2:
            return torch.tanh
        return None

    def forward(self, x: torch.Tensor, t_frac: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = torch.cat([labels, t_frac.unsqueeze(-1).to(labels.dtype)], dim=-1)
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(torch.cat([h, c], dim=-1))
            act = self.activation(i)
            if act is not None:
                h = act(h)
        return h


class FoldedNet:
    """Inference-only copy of an :class:`EpsNet` with the conditioning folded into biases.

    ``biases(c)`` -> per-layer tables ``(K, width)`` for K conditioning vectors ``c`` (K, 12);
    ``__call__(x, biases, k)`` evaluates the network on a batch ``x`` with row ``k`` of the
    tables. Buffers for the hidden activations are reused between calls of the same batch size.
    """

    def __init__(self, net: EpsNet):
        d = net.dim
        sizes = (d, *net.widths, d)
        self.w_h: list[torch.Tensor] = []  # (in, out), contiguous: h @ w_h
        self.w_c: list[torch.Tensor] = []  # (cond, out)
        self.b: list[torch.Tensor] = []
        with torch.no_grad():
            for layer, n_in in zip(net.layers, sizes[:-1]):
                w = layer.weight.detach().float()
                self.w_h.append(w[:, :n_in].t().contiguous())
                self.w_c.append(w[:, n_in:].t().contiguous())
                self.b.append(layer.bias.detach().float().clone())
        self.n = len(self.w_h)
        self._bufs: dict[int, list[torch.Tensor]] = {}

    def biases(self, c: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer biases ``W_c c + b`` for each row of ``c`` (K, label_dim + 1)."""
        c = c.float()
        return [torch.addmm(b, c, wc) for b, wc in zip(self.b, self.w_c)]

    def row_biases(self, labels: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer ``W_label l + b`` for each row ``l`` of ``labels`` (B, label_dim): the label part of
        :meth:`biases` for a batch whose rows are conditioned on different labels."""
        labels = labels.float()
        return [torch.addmm(b, labels, wc[:-1]) for b, wc in zip(self.b, self.w_c)]

    def time_biases(self, t_frac: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer ``W_t t`` for each step's ``t_frac`` (K, 1): the time part of :meth:`biases`."""
        t_frac = t_frac.float()
        return [t_frac @ wc[-1:] for wc in self.w_c]

    def _buffers(self, batch: int) -> list[torch.Tensor]:
        if batch not in self._bufs:
            self._bufs = {batch: [torch.empty(batch, w.shape[1]) for w in self.w_h]}
        return self._bufs[batch]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, biases: list[torch.Tensor], k: int) -> torch.Tensor:
        """Predicted noise for the batch ``x`` (B, dim) at conditioning row ``k``.

        The returned tensor is a reused buffer: copy it if it must survive the next call.
        """
        bufs = self._buffers(x.shape[0])
        h = x
        for i in range(self.n):
            out = bufs[i]
            torch.addmm(biases[i][k], h, self.w_h[i], out=out)  # a table row (width,) or per-row (B, width)
            if i < self.n - 2:
                torch.selu_(out)
            elif i == self.n - 2:
                torch.tanh_(out)
            h = out
        return h

    def matmul_only(self, x: torch.Tensor) -> torch.Tensor:
        """The bare matmuls of one forward pass (the throughput bound used by the benchmark)."""
        bufs = self._buffers(x.shape[0])
        h = x
        for i in range(self.n):
            torch.mm(h, self.w_h[i], out=bufs[i])
            h = bufs[i]
        return h


# ----------------------------------------------------------------------------- noise schedule
T_DEFAULT = 1000
BETA_MIN = 1e-4
BETA_MAX = 0.02


def linear_betas(T: int = T_DEFAULT, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """``beta_t = (1 - t/T) beta_min + (t/T) beta_max`` for ``t = 0..T`` (eq. 2.14), float64.

    ``beta_0`` is set to 0 (no noise at t = 0); the paper's steps are ``t = 1..T``.
    """
    t = torch.arange(T + 1, dtype=torch.float64)
    betas = (1.0 - t / T) * beta_min + (t / T) * beta_max
    betas[0] = 0.0
    return betas


class NoiseSchedule(nn.Module):
    """Linear beta schedule with its derived quantities as float32 buffers.

    Buffers (all length ``T + 1``, indexed by t):
    ``betas``, ``alphas = 1 - beta``, ``alpha_bars = prod_{s<=t} alpha_s`` (eq. 2.13),
    ``sqrt_alpha_bars``, ``sqrt_beta_bars = sqrt(1 - alpha_bar)``.
    """

    def __init__(self, *, T: int = T_DEFAULT, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
        super().__init__()
        self.T = int(T)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        betas = linear_betas(self.T, beta_min, beta_max)
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas", alphas.float())
        self.register_buffer("alpha_bars", alpha_bars.float())
        self.register_buffer("sqrt_alpha_bars", alpha_bars.sqrt().float())
        self.register_buffer("sqrt_beta_bars", (1.0 - alpha_bars).sqrt().float())
        # float64 copy kept off the state dict for the samplers' respaced coefficients
        self.alpha_bars64 = alpha_bars

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward noising ``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps`` (eq. 2.12).

        ``x0``, ``noise``: (B, D); ``t``: (B,) integer times in ``1..T``.
        """
        a = self.sqrt_alpha_bars[t].unsqueeze(-1)
        b = self.sqrt_beta_bars[t].unsqueeze(-1)
        return a * x0 + b * noise

    def sample_t(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Uniform integer times in ``[1, T]`` (Sec. 2.2.1)."""
        return torch.randint(1, self.T + 1, (n,), generator=generator, device=device)


# ----------------------------------------------------------------------------- training loss
def loss_on_batch(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor, *,
                  p_uncond: float = P_UNCOND, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simplified loss (eq. A.21) on one normalised batch; labels dropped with probability ``p_uncond``."""
    b, dev = x0.shape[0], x0.device
    t = schedule.sample_t(b, generator=generator).to(dev)
    eps = torch.randn(x0.shape, generator=generator).to(dev)
    x_t = schedule.q_sample(x0, t, eps)
    keep = (torch.rand(b, generator=generator) >= p_uncond).to(dev, labels.dtype).unsqueeze(-1)
    pred = model(x_t, t.float() / schedule.T, labels * keep)
    return F.mse_loss(pred, eps)


@torch.no_grad()
def validation_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor, *,
                    seed: int = 0, batch: int = 8192) -> float:
    """Conditional MSE on a validation set with a fixed (seeded) draw of t and noise, so values are comparable."""
    g = torch.Generator().manual_seed(seed)
    total, n = 0.0, x0.shape[0]
    for i in range(0, n, batch):
        xb, lb = x0[i:i + batch], labels[i:i + batch]
        t = schedule.sample_t(xb.shape[0], generator=g).to(xb.device)
        eps = torch.randn(xb.shape, generator=g).to(xb.device)
        pred = model(schedule.q_sample(xb, t, eps), t.float() / schedule.T, lb)
        total += F.mse_loss(pred, eps, reduction="sum").item()
    return total / (n * x0.shape[1])


# ----------------------------------------------------------------------------- samplers: DDPM and DDIM
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
    sampler: str = "ddpm",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    clip: float | None = None,
    refine: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bound: str = "clamp",
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
    guidance: float = 8.0,
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

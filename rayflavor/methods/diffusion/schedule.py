"""Noise schedule of the diffusion process (paper eqs. 2.12-2.14, A.2-A.4).

Everything is computed once in float64 and stored as float32 buffers of a small
``nn.Module`` so that it moves with the model (``.to(device)``) and is saved with it.

Index convention: arrays have length ``T + 1`` and are indexed by the paper's time
``t = 0 .. T``; entry 0 is the clean data (``alpha_bar[0] = 1``, ``beta[0] = 0``).

>>> s = NoiseSchedule()
>>> round(float(s.betas[1]), 6), round(float(s.betas[1000]), 6)
(0.00012, 0.02)
>>> float(s.alpha_bars[0])
1.0
"""

from __future__ import annotations

import torch
from torch import nn

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

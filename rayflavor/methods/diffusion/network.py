"""Noise-prediction network of the paper's table 2, and its fast inference form.

Eight fully connected layers ``D -> 64 -> 128 -> 256 -> 512 -> 256 -> 128 -> 64 -> D``.
The conditioning vector ``c = (L, t/T)`` (11 labels + time = 12 numbers) is concatenated
to the input of *every* layer (table 2: "R^n + R^12_{L,t}"). Activations: SELU on H1-H6,
tanh on H7, identity on the output (Sec. 2.2.1). ``D`` is the dimension of G; we use 23
(eq. 2.15), see :data:`DEFAULT_DIM`.

Fast inference (:class:`FoldedNet`): every layer is ``W [h; c] + b = W_h h + (W_c c + b)``.
Within one reverse step ``c`` is the same for every row, so ``W_c c + b`` is a per-step
bias that is computed once per step (:meth:`FoldedNet.biases`, for all steps at once) and
the per-row work is one ``addmm`` plus an in-place activation per layer.

>>> import torch
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

import torch
from torch import nn
from torch.nn import functional as F

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

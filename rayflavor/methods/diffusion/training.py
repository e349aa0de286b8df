"""Training of the noise predictor: normalisation, the training loop, checkpoints.

Plain torch, no Ray: :mod:`rayflavor.orchestration.diffusion_train` wraps :func:`train_loop`
in a Ray Train worker.

Normalisation (stored with every checkpoint; inherited by fine-tuned networks as in the paper, or
refitted on the fine-tuning set with :meth:`Normalizer.refit`, beyond the paper):

* G (inputs): each column mapped affinely from its range in the *first* training set onto
  ``[-1, 1]`` -- for the uniform priors of eqs. 2.17-2.18 this is the prior box, the usual
  DDPM data range (the discretisation of eq. A.15 assumes [-1, 1]).
* L (labels): each column standardised to mean 0, standard deviation 1 over the first
  training set. The empty label is the zero vector *after* normalisation (app. B.2: "0 is used
  as the empty label"), i.e. the training-set mean; a real label equal to the mean in all 11
  components has probability zero.

Loss: :func:`rayflavor.methods.diffusion.ddpm.loss_on_batch` (eq. A.21, the label dropped with
probability ``p_uncond``); the validation loss is :func:`~rayflavor.methods.diffusion.ddpm.validation_loss`.
Optimiser: Adam with OneCycleLR (max rate 1e-3) over the run's total steps.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rayflavor.methods.diffusion import coordinates as coords
from rayflavor.methods.diffusion.ddpm import P_UNCOND, EpsNet, NoiseSchedule, loss_on_batch

REFIT = ("none", "solutions")
#: ``refit="solutions"`` maps the solutions' range onto [-1, 1] once the set holds this many.
MIN_FOCUS = 20
LR_MAX = 1e-3
BATCH_SIZE = 64
STEPS = 100_000


@dataclass(frozen=True)
class Normalizer:
    """Maps G -> the network's coordinates -> [-1, 1], and L -> standard scores (float64 numpy arrays).

    ``coordinates``: the network's coordinate system (:mod:`.coordinates`: ``paper``, the identity,
    or ``casas-ibarra``); ``g_lo``, ``g_hi`` are the range of the training points *in those
    coordinates*, mapped affinely onto [-1, 1].
    """

    g_lo: np.ndarray
    g_hi: np.ndarray
    l_mean: np.ndarray
    l_std: np.ndarray
    coordinates: str = "paper"

    @classmethod
    def fit(cls, g: np.ndarray, labels: np.ndarray, coordinates: str = "paper") -> "Normalizer":
        """G in ``coordinates``: each column's range onto [-1, 1] (a column of one value gets a +-1e-9
        relative range; points without coordinates, a set of measure zero, are left out); labels:
        standard scores."""
        c = coords.encode(np.asarray(g, dtype=np.float64), coordinates)
        c = c[np.isfinite(c).all(axis=1)]
        if not len(c):
            raise ValueError(f"no training point has finite {coordinates} coordinates")
        lo, hi = c.min(axis=0).astype(np.float64), c.max(axis=0).astype(np.float64)
        pad = np.where(hi - lo > 0, 0.0, 1e-9 * np.maximum(np.abs(lo), 1.0))
        lo, hi = lo - pad, hi + pad
        std = labels.std(axis=0)
        return cls(lo.astype(np.float64), hi.astype(np.float64), labels.mean(axis=0).astype(np.float64),
                   np.where(std > 0, std, 1.0).astype(np.float64), coordinates)

    def refit(self, g: np.ndarray, labels: np.ndarray, what: str, focus: np.ndarray | None = None) -> "Normalizer":
        """Normaliser for fine-tuning on (``g``, ``labels``).

        ``"none"``: this one, inherited (the paper). ``"solutions"`` (beyond the paper): the G range
        of the rows marked in ``focus`` (the set's solutions) is mapped onto [-1, 1] once there are
        :data:`MIN_FOCUS` of them (before that, or without ``focus``, the whole set's range: a
        selected set a few hundredths of the prior box wide is spread over the network's data
        range again); the near-misses around the solutions then lie outside [-1, 1], still train
        the network, and the sampler's clip keeps samples inside the solutions' bounding box. The
        labels are standardised over every finite row.
        """
        if what == "none":
            return self
        if what != "solutions":
            raise ValueError(f"refit must be one of {', '.join(REFIT)}, not {what!r}")
        g, labels = np.asarray(g, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        ok = np.isfinite(labels).all(axis=1) & np.isfinite(g).all(axis=1)
        full = Normalizer.fit(g[ok], labels[ok], self.coordinates)
        sol = ok & (np.asarray(focus, dtype=bool) if focus is not None else False)
        if sol.sum() < MIN_FOCUS:
            return full
        box = Normalizer.fit(g[sol], labels[sol], self.coordinates)
        return Normalizer(box.g_lo, box.g_hi, full.l_mean, full.l_std, self.coordinates)

    @property
    def paper(self) -> bool:
        """Whether the network works in the paper's coordinates (G itself, affinely)."""
        return self.coordinates == "paper"

    def g_to_net(self, g: np.ndarray) -> np.ndarray:
        """Points G (N, 23) -> network units (float32); NaN rows for points without coordinates."""
        c = coords.encode(np.asarray(g, dtype=np.float64), self.coordinates)
        return (2.0 * (c - self.g_lo) / (self.g_hi - self.g_lo) - 1.0).astype(np.float32)

    def g_from_net(self, x: np.ndarray) -> np.ndarray:
        """Network units -> points G (N, 23) float64 (not bounded to the prior box)."""
        c = self.g_lo + (np.asarray(x, dtype=np.float64) + 1.0) * 0.5 * (self.g_hi - self.g_lo)
        return coords.decode(c, self.coordinates)

    def labels_to_net(self, labels: np.ndarray) -> np.ndarray:
        return ((labels - self.l_mean) / self.l_std).astype(np.float32)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k).tolist() for k in ("g_lo", "g_hi", "l_mean", "l_std")}
        d["coordinates"] = self.coordinates
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        """Also of checkpoints written before the coordinates were stored (the paper's, then the only ones)."""
        d = dict(d)
        system = d.pop("coordinates", "paper")
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in d.items()}, coordinates=system)


#: At most this many solution labels are kept with a fine-tuned network (``meta["solution_labels"]``).
MAX_SOLUTION_LABELS = 50_000


def kept_labels(labels: np.ndarray) -> np.ndarray:
    """The solution labels a network keeps: ``labels`` (float64), evenly thinned to at most
    :data:`MAX_SOLUTION_LABELS` rows."""
    labels = np.asarray(labels, dtype=np.float64)
    if len(labels) > MAX_SOLUTION_LABELS:
        labels = labels[np.linspace(0, len(labels) - 1, MAX_SOLUTION_LABELS).astype(int)]
    return labels


def solution_labels(d: dict) -> np.ndarray | None:
    """The solution labels a checkpoint dict keeps (None for a network not fine-tuned on solutions)."""
    lab = (d.get("meta") or {}).get("solution_labels")
    return None if lab is None or len(lab) == 0 else np.asarray(lab, dtype=np.float64)


@dataclass
class TrainState:
    """Everything a resumed training needs. ``step`` counts finished optimiser steps."""

    model: EpsNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    norm: Normalizer
    total_steps: int
    step: int = 0
    meta: dict = field(default_factory=dict)


def new_state(norm: Normalizer, *, total_steps: int, lr_max: float = LR_MAX, model: EpsNet | None = None,
              dim: int | None = None, meta: dict | None = None) -> TrainState:
    """Fresh Adam + OneCycleLR around ``model`` (a new table-2 network if None)."""
    if model is None:
        model = EpsNet(dim=dim or len(norm.g_lo), label_dim=len(norm.l_mean))
    opt = torch.optim.Adam(model.parameters(), lr=lr_max, fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr_max, total_steps=max(int(total_steps), 2))
    return TrainState(model, opt, sched, norm, int(total_steps), 0, dict(meta or {}))


def train_loop(state: TrainState, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor, *,
               model: nn.Module | None = None, batch_size: int = BATCH_SIZE, p_uncond: float = P_UNCOND,
               seed: int = 0, every: int = 1000, on_report=None, stop_at: int | None = None) -> TrainState:
    """Train from ``state.step`` to ``state.total_steps`` (or ``stop_at``) on normalised tensors.

    ``model``: the module to call (e.g. a DDP wrapper of ``state.model``); default ``state.model``.
    Batches are drawn with replacement by a generator seeded from ``(seed, step)``, so a resumed
    run draws fresh batches. Every ``every`` steps and at the end ``on_report(state, mean_loss)`` is called.
    """
    model = model or state.model
    model.train()
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + state.step)
    n = x0.shape[0]
    end = state.total_steps if stop_at is None else min(stop_at, state.total_steps)
    running, count = 0.0, 0
    while state.step < end:
        idx = torch.randint(0, n, (batch_size,), generator=g)
        loss = loss_on_batch(model, schedule, x0[idx], labels[idx], p_uncond=p_uncond, generator=g)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.scheduler.step()
        state.step += 1
        running += loss.item()
        count += 1
        if on_report is not None and (state.step % every == 0 or state.step == end):
            on_report(state, running / count)
            running, count = 0.0, 0
    return state


def state_dict(state: TrainState, *, with_optimizer: bool = True) -> dict:
    """Serialisable checkpoint content."""
    d = {
        "format": "rayflavor-diffusion/1",
        "model": state.model.state_dict(),
        "net": state.model.config(),
        "norm": state.norm.to_dict(),
        "step": state.step,
        "total_steps": state.total_steps,
        "meta": state.meta,
    }
    if with_optimizer:
        d["optimizer"] = state.optimizer.state_dict()
        d["scheduler"] = state.scheduler.state_dict()
    return d


def save(target, state: TrainState, *, with_optimizer: bool = True) -> None:
    """Write a checkpoint whole or not at all: ``target`` is a local path (tmp file, then
    ``os.replace``) or an object with ``write_bytes`` (a storage Location: one PUT)."""
    if not isinstance(target, (str, os.PathLike)):
        buf = io.BytesIO()
        torch.save(state_dict(state, with_optimizer=with_optimizer), buf)
        target.write_bytes(buf.getvalue())
        return
    path = os.fspath(target)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    os.close(fd)
    torch.save(state_dict(state, with_optimizer=with_optimizer), tmp)
    os.replace(tmp, path)


def _load(source) -> dict:
    """A checkpoint dict from a local path, raw bytes, or an object with ``read_bytes`` (a Location)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif not isinstance(source, (str, os.PathLike)):
        source = io.BytesIO(source.read_bytes())
    else:
        source = os.fspath(source)
    return torch.load(source, map_location="cpu", weights_only=False)


def load_model(source) -> tuple[EpsNet, Normalizer, dict]:
    """Load a checkpoint's network (eval mode), normaliser and raw dict (``source``: see :func:`_load`)."""
    d = _load(source)
    net = EpsNet(**{k: (tuple(v) if k == "widths" else v) for k, v in d["net"].items()})
    net.load_state_dict(d["model"])
    net.eval()
    return net, Normalizer.from_dict(d["norm"]), d


def load_state(source, *, lr_max: float = LR_MAX) -> TrainState:
    """Rebuild a :class:`TrainState` (model, Adam, OneCycleLR, step) from a checkpoint (see :func:`_load`)."""
    net, norm, d = load_model(source)
    net.train()
    st = new_state(norm, total_steps=d["total_steps"], lr_max=lr_max, model=net, meta=d.get("meta"))
    if "optimizer" in d:
        st.optimizer.load_state_dict(d["optimizer"])
        st.scheduler.load_state_dict(d["scheduler"])
    st.step = int(d["step"])
    return st

"""Settings of the diffusion method: one frozen dataclass per concern, one set of defaults each.

These defaults are what ``rayflavor diffusion ...`` uses (the click options take their defaults
from here, and a test asserts the CLI's and the library's defaults are the same objects), so a
library caller gets exactly the chain a CLI user gets. Each class has a ``paper`` preset
(:data:`PRESETS`): the paper's settings, one option away.

* :class:`SamplingSettings`: how one sample set is drawn (sampler, reverse steps, CFG scale,
  x0 clip, physics guidance, ordering of the conditioning labels) and how many points (``n``) in
  how many Ray tasks (``shards``, None = automatic).
* :class:`SelectionSettings`: which generated rows a fine-tuning round trains on.
* :class:`TuneSettings`: the fine-tuning of one round (refit of the normalisation, steps, batch, rate).
* :class:`RecoverySettings`: how often Ray Train restarts a training whose workers died (a lost node).
* :class:`FinetuneSettings`: ``rayflavor diffusion finetune``: rounds after the newest network.
* :class:`ChainSettings`: ``rayflavor diffusion run``: dataset -> pre-network -> teacher or
  rounds -> final sample.

Every class validates itself in ``__post_init__`` and raises :class:`ValueError` with one line
naming the field, so bad input is refused before anything is written. Units: steps are
optimiser or reverse steps, ``n*`` are numbers of points, ``lr_max`` is Adam's peak rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

SAMPLERS = ("ddpm", "ddim")
BOUNDS = ("clamp", "reflect")
ORDERINGS = ("NO", "IO")
#: What a sample is conditioned on: the measured central values (the paper), or per point the labels
#: of one of the solutions the network was fine-tuned on (the labels' spread inside the 3 sigma windows).
LABELS = ("central", "solutions")
SELECT = ("nearest", "cuts")
POOLS = ("union", "round")
REFIT = ("solutions", "none")
FINAL_NETWORK = ("best", "last")
#: Where the chain's network learns the solution set from: a network-free reference (``reference``)
#: or its own selected samples in self-training rounds (``none``).
TEACHERS = ("reference", "none")
#: Reverse steps of the full schedule (T): ``steps = 1000`` is the paper's every-step DDPM.
T_STEPS = 1000
#: The coordinate systems a network can work in: ``coordinates.SYSTEMS``, named here so that the settings
#: import without numpy (a test keeps the two equal).
COORDINATES = ("paper", "casas-ibarra", "casas-ibarra-m3edge")


def _int(obj, name: str, lo: int | None = None, hi: int | None = None, optional: bool = False) -> None:
    v = getattr(obj, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer, not {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, not {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, not {v}")


def _float(obj, name: str, lo: float | None = None, *, positive: bool = False) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, not {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, not {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, not {v:g}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo:g}, not {v:g}")
    object.__setattr__(obj, name, float(v))


def _choice(obj, name: str, allowed: tuple[str, ...]) -> None:
    v = getattr(obj, name)
    if v not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {v!r}")


#: How a sample set's points were finished after the network, per sampled row: the column of the
#: sample parts and ``solutions.parquet`` -> the :class:`SamplingSettings` field (and manifest key) it
#: records. All 0 = the network's own samples.
KIND_FIELDS: dict[str, str] = {"physics_guidance": "physics", "projection": "project", "orbit_sweeps": "orbits"}


@dataclass(frozen=True)
class SamplingSettings:
    """How a sample set is drawn.

    ``sampler``: ancestral ``ddpm`` (eq. A.23) or deterministic ``ddim``; ``steps``: reverse steps
    (1000 = every step, the paper's DDPM); ``guidance``: CFG scale gamma (eq. B.5);
    ``clip``: clamp the predicted x0 to [-clip, clip] in network units at every reverse step
    (beyond the paper; 0 = no clamp, the paper); ``physics``: physics-guidance steps per reverse
    step (beyond the paper; 0 = off); ``project``: projection steps onto the 3 sigma set for every
    finished sample outside it (beyond the paper; 0 = off; :meth:`.PhysicsGuidance.projector`);
    ``orbits``: sweeps of the prior-exact resampling along the exact symmetries of ``m_nu`` for every
    finished sample (beyond the paper; 0 = off; :func:`rayflavor.physics.seesaw_symmetry.resample_orbits`:
    moves the heavy masses and the Yukawas' phases and sizes, never an observable);
    ``bound``: how the clip, physics guidance's steps and the final sample are kept inside
    [-1, 1] (``clamp`` onto the face, or ``reflect`` at it);
    ``ordering``: the labels conditioned on and the ordering the
    samples are evaluated in; ``labels``: condition every point on the measured central values
    (``central``, the paper) or each point on the labels of a random one of the solutions the network
    was fine-tuned on (``solutions``, beyond the paper: the measurement is a 3 sigma window, and these
    labels are spread over it as the prior spreads the solutions; the sample then follows the whole
    solution set instead of its slice at the central values); ``n``: points; ``shards``: Ray tasks
    (None: one per 10 000 points, at most 1000, ``sampleset.default_shards``: from the requested size,
    never from the CPUs present).
    """

    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 8.0
    clip: float = 1.0
    physics: int = 0
    project: int = 0
    orbits: int = 0
    bound: str = "reflect"
    ordering: str = "NO"
    labels: str = "central"
    n: int = 100_000
    shards: int | None = None

    def __post_init__(self) -> None:
        _choice(self, "sampler", SAMPLERS)
        _int(self, "steps", 1, T_STEPS)
        _float(self, "guidance", 0.0)
        _float(self, "clip", 0.0)
        _int(self, "physics", 0)
        _int(self, "project", 0)
        _int(self, "orbits", 0)
        _choice(self, "bound", BOUNDS)
        _choice(self, "ordering", ORDERINGS)
        _choice(self, "labels", LABELS)
        if self.labels == "solutions" and self.ordering != "NO":
            raise ValueError("labels 'solutions' draws the labels of the network's NO solutions; use labels 'central' "
                             "for IO")
        _int(self, "n", 1)
        _int(self, "shards", 1, optional=True)
        if self.shards is not None and self.shards > self.n:
            raise ValueError(f"shards ({self.shards}) must not exceed n ({self.n}): a shard would hold no point")

    @property
    def clip_value(self) -> float | None:
        """The clamp of :func:`rayflavor.methods.diffusion.ddpm.sample` (None for ``clip = 0``)."""
        return None if self.clip == 0 else self.clip


@dataclass(frozen=True)
class SelectionSettings:
    """Which rows a fine-tuning round trains on (sec. 2.2.3 and beyond).

    ``select``: ``nearest`` (beyond the paper): every solution found so far, filled up to ``n_best``
    rows with the samples closest to the 3 sigma box, growing to ``per_solution`` rows per solution
    once that is more (0 = a fixed ``n_best``); ``cuts`` (the paper): the sec. 2.2.3 conditions,
    topped up to ``min_select`` rows with the lowest total chi2 (0 = the paper's cuts only).
    ``pool``: select from this round's samples (``round``, the paper) or from them and every
    earlier round's fine-tuning set (``union``, beyond the paper).
    ``spread``: constrained random-walk steps that move every solution of the set over the
    solution set before the round trains on it (:mod:`rayflavor.methods.diffusion.spread`,
    beyond the paper; 0 = the network's own solutions as they are).
    """

    select: str = "nearest"
    n_best: int = 300
    per_solution: float = 30.0
    pool: str = "union"
    min_select: int = 2000
    spread: int = 0

    def __post_init__(self) -> None:
        _choice(self, "select", SELECT)
        _int(self, "n_best", 1)
        _float(self, "per_solution", 0.0)
        _choice(self, "pool", POOLS)
        _int(self, "min_select", 0)
        _int(self, "spread", 0)

    @property
    def keep(self) -> str:
        """Rows a round's sample parts must keep for this selection (``selected``: the cut rows only)."""
        return "all" if (self.min_select or self.select != "cuts") else "selected"


@dataclass(frozen=True)
class TuneSettings:
    """The fine-tuning of one round: all weights of the previous network, fresh Adam + OneCycleLR.

    ``refit``: ``solutions`` (beyond the paper): the tuned network maps the G range of its set's
    solutions onto [-1, 1] once the set holds 20 of them (before: the whole set's range) and
    standardises the labels over the set; ``none`` (the paper): inherit the pre-network's
    normalisation. ``steps``: optimiser steps; ``batch_size``: global batch (split over workers);
    ``lr_max``: OneCycleLR's peak rate.
    """

    refit: str = "solutions"
    steps: int = 100_000
    batch_size: int = 64
    lr_max: float = 1e-3

    def __post_init__(self) -> None:
        _choice(self, "refit", REFIT)
        _int(self, "steps", 1)
        _int(self, "batch_size", 1)
        _float(self, "lr_max", positive=True)


@dataclass(frozen=True)
class RecoverySettings:
    """How a Ray Train training survives lost workers (a node that died or was taken away).

    ``max_failures``: restarts of the worker group per ``fit()`` after a worker failure (Ray Train's
    ``FailureConfig(max_failures)``; 0 = fail at the first, -1 = without limit). A restarted group
    continues from the last checkpoint Ray Train had taken (reported every ``every`` steps; its
    controller collects reports every 2 s, so the last one or two before the loss may be trained
    again). Preemptions announced by the cluster (node draining) are counted apart by Ray and not
    limited by this.
    """

    max_failures: int = 3

    def __post_init__(self) -> None:
        _int(self, "max_failures", -1)


@dataclass(frozen=True)
class FinetuneSettings:
    """``rayflavor diffusion finetune``: ``rounds`` rounds of sample -> select -> fine-tune after the
    newest network. ``sampling.n``: samples drawn per round; round r samples with seed ``seed + r``.
    ``workers``: Ray Train workers (1 CPU each, DDP when > 1); ``recovery``: restarts after lost workers."""

    rounds: int = 1
    # self-training rounds were measured with the clamp (reflect is measured on the taught network)
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(n=200_000, bound="clamp"))
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)
    workers: int = 1
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    seed: int = 0

    def __post_init__(self) -> None:
        _int(self, "rounds", 1)
        _int(self, "workers", 1)
        _int(self, "seed", 0)
        _rounds_sampling(self.sampling)


def _rounds_sampling(s: SamplingSettings) -> None:
    if s.physics or s.project or s.orbits:
        raise ValueError("physics guidance, projection and orbit resampling in the fine-tuning rounds are not offered "
                         "(physics guidance there did not teach the network); use them for a final or separate sample")


@dataclass(frozen=True)
class ChainSettings:
    """``rayflavor diffusion run``: the whole chain with laptop defaults (~12 min on 2 cores).

    ``n_data`` prior points and a pre-network of ``train_steps`` steps in ``coordinates`` (``paper``:
    the 23 parameters, as the paper; ``casas-ibarra``, beyond the paper: the exact reparametrisation
    in which the labels are coordinates, :mod:`rayflavor.physics.casas_ibarra`; ``casas-ibarra-m3edge``,
    the default: the same with M3 as the log of its distance from the prior's heaviest-M3 face,
    :mod:`rayflavor.methods.diffusion.coordinates`). Then, with
    ``teacher = "reference"`` (the default, beyond the paper; issue 18): a network-free sample of
    the solution set (:mod:`rayflavor.methods.reference`, ``teacher_tasks`` nested-sampling runs of
    ``teacher_live`` live points, random stream 1 so it never shares draws with a reference built
    by ``rayflavor diffusion reference``) and one fine-tuning of the pre-network on its solutions
    for ``teacher_steps`` steps: network ``taught``, which has learned the whole solution set
    rather than the first corner of it that a self-training chain found. With ``teacher =
    "none"``: ``rounds`` self-training rounds of ``sampling.n`` samples each (``--n-select``),
    selected by ``selection`` and tuned by ``tune`` (``tune.steps``: ``--ft-steps``); a reference
    teacher takes no rounds (they would select the taught network's own samples again and
    narrow it onto one mode). Finally ``n_final`` samples of ``final_network`` (``best``, beyond
    the paper: the network whose samples had the highest solution fraction; ``last``: the newest,
    the paper) with CFG scale ``final_guidance`` and the rounds' sampler, and when
    ``final_physics`` or ``final_project`` is > 0 (beyond the paper) a second final sample of the
    same network and size with that many physics-guidance steps per reverse step and projection
    steps at the end, then ``final_orbits`` sweeps of the orbit resampling (the default: no
    guidance, 200 projection steps, 10 sweeps; docs/experiments.md#2026-12-02-orbits). ``workers``: Ray Train workers;
    ``recovery``: restarts of a training after lost workers.
    Presets: ``self`` (the self-training chain measured before issue 18), ``paper``.
    """

    n_data: int = 100_000
    train_steps: int = 20_000
    coordinates: str = "casas-ibarra-m3edge"
    teacher: str = "reference"
    teacher_tasks: int = 16
    teacher_live: int = 1000
    teacher_steps: int = 40_000
    teacher_orbits: int = 1
    rounds: int = 0
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(guidance=1.0, n=20_000))
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    tune: TuneSettings = field(default_factory=lambda: TuneSettings(steps=2000))
    n_final: int = 100_000
    final_guidance: float = 1.0
    final_labels: str = "solutions"
    final_network: str = "best"
    final_physics: int = 0
    final_project: int = 200
    final_orbits: int = 10
    workers: int = 1
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    seed: int = 0

    def __post_init__(self) -> None:
        _int(self, "n_data", 10)
        _int(self, "train_steps", 1)
        _choice(self, "coordinates", COORDINATES)
        _choice(self, "teacher", TEACHERS)
        _int(self, "teacher_tasks", 1)
        _int(self, "teacher_live", 20)
        _int(self, "teacher_steps", 1)
        _int(self, "teacher_orbits", 0)
        _int(self, "rounds", 0)
        _int(self, "n_final", 1)
        _float(self, "final_guidance", 0.0)
        _choice(self, "final_labels", LABELS)
        _choice(self, "final_network", FINAL_NETWORK)
        _int(self, "final_physics", 0)
        _int(self, "final_project", 0)
        _int(self, "final_orbits", 0)
        _int(self, "workers", 1)
        _int(self, "seed", 0)
        _rounds_sampling(self.sampling)
        if self.final_physics and self.coordinates != "paper":
            raise ValueError(f"final_physics ({self.final_physics}) needs coordinates 'paper': physics guidance inside the "
                             f"reverse process works on the paper's parameters, not on {self.coordinates} coordinates "
                             "(use final_project)")
        if self.teacher == "reference" and self.rounds:
            raise ValueError(f"rounds ({self.rounds}) need teacher 'none': self-training rounds after a reference "
                             "teacher would narrow the taught network onto one mode again (use --preset self "
                             "for the self-training chain)")

    def teacher_reference(self):
        """The teacher's :class:`rayflavor.methods.reference.ReferenceSettings` (NO, the default data)."""
        from rayflavor.methods.reference import ReferenceSettings

        return ReferenceSettings(tasks=self.teacher_tasks, n_live=self.teacher_live,
                                 k=max(1, self.teacher_live // 10), seed=self.seed, stream=1,
                                 orbits=self.teacher_orbits)

    def finetune(self, rounds: int | None = None) -> FinetuneSettings:
        """The chain's rounds as the settings of ``rayflavor diffusion finetune``."""
        return FinetuneSettings(rounds=self.rounds if rounds is None else rounds, sampling=self.sampling,
                                selection=self.selection, tune=self.tune, workers=self.workers,
                                recovery=self.recovery, seed=self.seed)

    def final_sampling(self, physics: int = 0, project: int = 0, orbits: int = 0) -> SamplingSettings:
        """Settings of a final sample: the rounds' sampler with ``n_final`` and ``final_guidance``."""
        return replace(self.sampling, n=self.n_final, guidance=self.final_guidance, labels=self.final_labels,
                       physics=physics, project=project, orbits=orbits, shards=None)

    @property
    def second_final(self) -> bool:
        """Whether the chain draws the second, physics-finished final sample."""
        return bool(self.final_physics or self.final_project)


_PAPER_SAMPLING = SamplingSettings(sampler="ddpm", steps=1000, guidance=8.0, clip=0.0, bound="clamp", n=30_000_000)
_PAPER_SELECTION = SelectionSettings(select="cuts", pool="round", min_select=0)
_PAPER_TUNE = TuneSettings(refit="none", steps=100_000)

#: Named presets of every settings class: ``PRESETS[cls]["paper"]`` is the paper's settings
#: (docs/methods-diffusion.md, the paper's preset); the defaults are the measured laptop settings.
PRESETS: dict[type, dict[str, Any]] = {
    SamplingSettings: {"paper": _PAPER_SAMPLING},
    SelectionSettings: {"paper": _PAPER_SELECTION},
    TuneSettings: {"paper": _PAPER_TUNE},
    FinetuneSettings: {"paper": FinetuneSettings(rounds=1, sampling=replace(_PAPER_SAMPLING, n=200_000),
                                                 selection=_PAPER_SELECTION, tune=_PAPER_TUNE)},
    ChainSettings: {"self": ChainSettings(teacher="none", rounds=30, final_physics=3, final_project=0, final_orbits=0,
                                          coordinates="paper", final_labels="central", teacher_orbits=0,
                                          sampling=SamplingSettings(guidance=1.0, n=20_000, bound="clamp")),
                    "paper": ChainSettings(train_steps=100_000, teacher="none", rounds=1,
                                           sampling=replace(_PAPER_SAMPLING, n=20_000), selection=_PAPER_SELECTION,
                                           tune=_PAPER_TUNE, n_final=30_000_000, final_guidance=8.0,
                                           final_network="last", final_physics=0, final_project=0,
                                           final_orbits=0, coordinates="paper", final_labels="central",
                                           teacher_orbits=0)},
}


def preset(cls: type, name: str | None):
    """The settings object of preset ``name`` for ``cls`` (None or "default": the defaults)."""
    if name in (None, "default"):
        return cls()
    try:
        return PRESETS[cls][name]
    except KeyError:
        names = ", ".join(["default", *PRESETS.get(cls, {})])
        raise ValueError(f"unknown preset {name!r} (use {names})") from None

"""Settings of the diffusion method: one frozen dataclass per concern, one set of defaults each.

These defaults are what ``rayflavor diffusion ...`` uses (each field is declared once with
:func:`rayflavor.settings_model.setting`, and the click options are generated from the fields
marked ``option``), so a library caller gets exactly the chain a CLI user gets. Each class has a ``paper`` preset
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

Every class validates itself in ``__post_init__`` (:func:`rayflavor.settings_model.check`, then
the rules between fields) and raises :class:`ValueError` with one line naming the field, so bad
input is refused before anything is written. Units: steps are optimiser or reverse steps, ``n*``
are numbers of points, ``lr_max`` is Adam's peak rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rayflavor.settings_model import check, seed_setting, setting

SAMPLERS = ("ddpm", "ddim")
BOUNDS = ("clamp", "reflect")
#: What becomes of a finished sample outside the prior box: brought inside by ``bound``, or redrawn.
OUTSIDE = ("bound", "redraw")
ORDERINGS = ("NO", "IO")
#: What a sample is conditioned on: the measured central values (the paper), or per point the labels
#: of one of the solutions the network was fine-tuned on (the labels' spread inside the 3 sigma windows).
LABELS = ("central", "solutions")
SELECT = ("nearest", "cuts")
POOLS = ("union", "round")
REFIT = ("solutions", "none")
FINAL_NETWORK = ("best", "last")
#: Where the chain's network learns the solution set from: a network-free reference of it, drawn by
#: the exact importance sampler (``importance``) or by nested sampling and constrained random walks
#: (``nested``), or its own selected samples in self-training rounds (``none``). Named as
#: ``rayflavor diffusion reference --method``.
TEACHERS = ("importance", "nested", "none")
#: Teacher names of earlier releases, read from stored settings (``run.json``, ``--config``) as these.
LEGACY_TEACHERS = {"reference": "nested"}
#: Rows a sample set writes to its parts (``SampleSet.keep``; the first is the default): every
#: point, the selected and solutions, or the solutions only; the counts are always kept.
KEEP = ("all", "selected", "solutions")
#: Reverse steps of the full schedule (T): ``steps = 1000`` is the paper's every-step DDPM.
T_STEPS = 1000
#: The coordinate systems a network can work in: ``coordinates.SYSTEMS``, named here so that the settings
#: import without numpy (a test keeps the two equal).
COORDINATES = ("paper", "casas-ibarra", "casas-ibarra-m3edge")


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
    [-1, 1] (``clamp`` onto the face, or ``reflect`` at it); ``outside``: a finished sample outside
    the prior box is brought inside by ``bound`` (``bound``, the paper's clamp) or redrawn
    (``redraw``, beyond the paper: the set follows the network's density restricted to the prior's
    support, and its counts include the redrawn draws);
    ``ordering``: the labels conditioned on and the ordering the
    samples are evaluated in; ``labels``: condition every point on the measured central values
    (``central``, the paper) or each point on the labels of a random one of the solutions the network
    was fine-tuned on (``solutions``, beyond the paper: the measurement is a 3 sigma window, and these
    labels are spread over it as the prior spreads the solutions; the sample then follows the whole
    solution set instead of its slice at the central values); ``n``: points; ``shards``: Ray tasks
    (None: one per 10 000 points, at most 1000, ``sampleset.default_shards``: from the requested size,
    never from the CPUs present).
    """

    sampler: str = setting("ddim", choices=SAMPLERS, help="Ancestral ddpm (the paper) or deterministic ddim.")
    steps: int = setting(50, lo=1, hi=T_STEPS, option=True,
                         help="Reverse steps, 1-1000 (1000 = every step, the paper's DDPM).")
    guidance: float = setting(8.0, lo=0.0, hi=1000.0, option=True, help="CFG scale gamma (eq. B.5).")
    clip: float = setting(1.0, lo=0.0, help="Clamp the predicted x0 to [-clip, clip] (the training range in network "
                                            "units) at every reverse step (beyond the paper); 0 = no clamp (the paper).")
    physics: int = setting(0, lo=0, hi=1000, option="--physics-guidance",
                           help="Physics guidance (beyond the paper): at every reverse step, this many damped steps "
                                "move the predicted x0 down the exact 3-sigma window loss of the seesaw observables; "
                                "0 = off (the paper). Needs a fine-tuned network in paper coordinates.")
    project: int = setting(0, lo=0, hi=10**5, option=True,
                           help="Projection (beyond the paper): every finished sample outside the 3-sigma box takes up "
                                "to this many damped steps down the exact window loss, onto the solution set nearest "
                                "to where the network put it; 0 = off (the paper). Needs a fine-tuned network.")
    orbits: int = setting(0, lo=0, hi=10**4,
                          help="Orbit resampling (beyond the paper): sweeps that redraw every finished point along the "
                               "exact symmetries of the light-neutrino mass matrix from the paper's prior (no "
                               "observable changes); 0 = off (the paper).")
    bound: str = setting("reflect", choices=BOUNDS,
                         help="How the clip, physics guidance and the final [-1, 1] are enforced: clamp onto the face "
                              "(piles samples on it) or reflect at it.")
    outside: str = setting("bound", choices=OUTSIDE,
                           help="A finished sample outside the prior box: bound (brought inside by bound; the paper "
                                "clamps) or redraw (replaced by a new draw, beyond the paper: the set follows the "
                                "network's density restricted to the prior; the redrawn draws are counted).")
    ordering: str = setting("NO", choices=ORDERINGS, option=True,
                            help="The labels conditioned on and the ordering the samples are evaluated in.")
    labels: str = setting("central", choices=LABELS, option=True,
                          help="What the samples are conditioned on: central (the measured central values, the paper) "
                               "or solutions (each point on the labels of a random one of the solutions the network "
                               "was fine-tuned on; beyond the paper; needs a fine-tuned network and NO).")
    n: int = setting(100_000, lo=1, option=True, help="Points to generate.")
    shards: int | None = setting(None, lo=1, hi=10**6,
                                 help="Ray tasks (none: one per 10000 points, at most 1000).")

    def __post_init__(self) -> None:
        check(self)
        if self.labels == "solutions" and self.ordering != "NO":
            raise ValueError("labels 'solutions' draws the labels of the network's NO solutions; use labels 'central' "
                             "for IO")
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
    """

    select: str = setting("nearest", choices=SELECT, option=True,
                          help="nearest: every solution found so far, filled up to n_best with the samples closest to "
                               "the 3-sigma box (beyond the paper); cuts: the paper's sec. 2.2.3 conditions.")
    n_best: int = setting(300, lo=1, help="With select nearest: the minimum number of training rows per round.")
    per_solution: float = setting(30.0, lo=0.0, help="With select nearest: grow the set to this many rows per "
                                                     "solution it holds, once that exceeds n_best (0 = a fixed n_best).")
    pool: str = setting("union", choices=POOLS,
                        help="Select from this round's samples and every earlier round's fine-tuning set (union: "
                             "beyond the paper) or from this round's samples only (round: the paper).")
    min_select: int = setting(2000, lo=0, help="With select cuts: top the training set up to this many rows with the "
                                               "lowest-chi2 samples (beyond the paper; 0 = the paper's cuts only).")

    def __post_init__(self) -> None:
        check(self)

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
    ``lr_max``: OneCycleLR's peak rate; ``every``: steps between checkpoints and loss logs (of the
    pre-network and the teacher's training too).
    """

    refit: str = setting("solutions", choices=REFIT,
                         help="Normalise each fine-tuning set over itself (solutions: beyond the paper) or inherit "
                              "the pre-network's normalisation (none: the paper).")
    steps: int = setting(100_000, lo=1, help="Optimiser steps.")
    batch_size: int = setting(64, lo=1, hi=10**7, help="Global batch (split over workers).")
    lr_max: float = setting(1e-3, lo=0.0, lo_open=True, hi=10.0, help="OneCycleLR's peak learning rate.")
    every: int = setting(1000, lo=1, help="Steps between checkpoints and loss logs (every training of a run).")

    def __post_init__(self) -> None:
        check(self)


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

    max_failures: int = setting(3, lo=-1, hi=10**6,
                                help="Restarts of a training's worker group after lost workers (-1: without limit).")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class FinetuneSettings:
    """``rayflavor diffusion finetune``: ``rounds`` rounds of sample -> select -> fine-tune after the
    newest network. ``sampling.n``: samples drawn per round; round r samples with seed ``seed + r``.
    ``workers``: Ray Train workers (1 CPU each, DDP when > 1); ``recovery``: restarts after lost workers."""

    rounds: int = setting(1, lo=1, hi=10**4, option=True, help="sample -> select -> fine-tune rounds.")
    # self-training rounds were measured with the clamp (reflect is measured on the taught network)
    sampling: SamplingSettings = setting(factory=lambda: SamplingSettings(n=200_000, bound="clamp"),
                                         option={"n": ("--n-select", "Samples drawn per round."), "steps": True,
                                                 "guidance": True},
                                         help="How each round samples (the [sampling] table).")
    selection: SelectionSettings = setting(factory=SelectionSettings, option={"select": True},
                                           help="Which samples a round trains on (the [selection] table).")
    tune: TuneSettings = setting(factory=TuneSettings,
                                 option={"steps": ("--train-steps", "Training steps per round.")},
                                 help="How a round fine-tunes (the [tune] table).")
    workers: int = setting(1, lo=1, hi=10**4, option=True, help="Ray Train workers (1 CPU each).")
    recovery: RecoverySettings = setting(factory=RecoverySettings,
                                         help="How its trainings survive lost workers (the [recovery] table).")
    seed: int = seed_setting(0, help="Base seed; round r samples with seed + r.")

    def __post_init__(self) -> None:
        check(self)
        _rounds_sampling(self.sampling)


def _rounds_sampling(s: SamplingSettings) -> None:
    if s.physics or s.project or s.orbits:
        raise ValueError("physics guidance, projection and orbit resampling in the fine-tuning rounds are not offered "
                         "(physics guidance there did not teach the network); use them for a final or separate sample")


@dataclass(frozen=True)
class ChainSettings:
    """``rayflavor diffusion run``: the whole chain with laptop defaults (~5 min on 2 cores).

    ``n_data`` prior points and a pre-network of ``train_steps`` steps in ``coordinates`` (``paper``:
    the 23 parameters, as the paper; ``casas-ibarra``, beyond the paper: the exact reparametrisation
    in which the labels are coordinates, :mod:`rayflavor.physics.casas_ibarra`; ``casas-ibarra-m3edge``,
    the default: the same with M3 as the log of its distance from the prior's heaviest-M3 face,
    :mod:`rayflavor.methods.diffusion.coordinates`). Then, with ``teacher = "importance"`` (the default,
    beyond the paper; docs/experiments.md#2026-12-06-exact-teacher): an exact sample of the solution set
    under the paper's prior (:mod:`rayflavor.methods.reference_importance`, ``teacher_tasks`` Ray tasks of
    ``teacher_proposals`` importance draws each, resampled to their Kish ESS), or with ``"nested"``
    (the default before; docs/experiments.md#2026-12-02-teacher) a nested-sampling and random-walk one
    (:mod:`rayflavor.methods.reference`, ``teacher_tasks`` runs of ``teacher_live`` live points, the last
    state of every chain); either from random stream 1, so it never shares draws with a reference built
    by ``rayflavor diffusion reference``; then one fine-tuning of the pre-network on its solutions
    for ``teacher_steps`` steps: network ``taught``, which has learned the whole solution set
    rather than the first corner of it that a self-training chain found. With ``teacher =
    "none"``: ``rounds`` self-training rounds of ``sampling.n`` samples each (``--n-select``),
    selected by ``selection`` and tuned by ``tune`` (``tune.steps``: ``--ft-steps``); a
    teacher takes no rounds (they would select the taught network's own samples again and
    narrow it onto one mode). Finally ``n_final`` samples of ``final_network`` (``best``, beyond
    the paper: the network whose samples had the highest solution fraction; ``last``: the newest,
    the paper) with CFG scale ``final_guidance`` and the rounds' sampler, and when
    ``final_physics`` or ``final_project`` is > 0 (beyond the paper) a second final sample of the
    same network and size with that many physics-guidance steps per reverse step and projection
    steps at the end, then ``final_orbits`` sweeps of the orbit resampling (the default: no
    guidance, 200 projection steps, 10 sweeps; docs/experiments.md#2026-12-02-orbits). The
    network-only final sample redraws the draws that decode outside the prior box (``final_outside``,
    beyond the paper; :class:`SamplingSettings` ``outside``). ``workers``: Ray Train workers;
    ``recovery``: restarts of a training after lost workers.
    Presets: ``self`` (the self-training chain measured before the reference teacher), ``paper``.
    """

    n_data: int = setting(100_000, lo=10, option=True, help="Prior points of the dataset (90/10 split).")
    train_steps: int = setting(20_000, lo=1, option=True, help="Training steps of the pre-network. Paper: 100000.")
    coordinates: str = setting("casas-ibarra-m3edge", choices=COORDINATES, option=True,
                               help="The network's data space: paper (the 23 Yukawa and mass parameters, as the "
                                    "paper); casas-ibarra (the same points in the exact Casas-Ibarra parametrisation; "
                                    "beyond the paper); casas-ibarra-m3edge (as casas-ibarra, with M3 as the log of "
                                    "its distance from the prior's heaviest-M3 face, where half the solutions lie).")
    teacher: str = setting("importance", choices=TEACHERS, option=True,
                           help="Fine-tune the pre-network once on a network-free sample of the solution set, drawn "
                                "by the exact importance sampler (importance) or by nested sampling and random walks "
                                "(nested: the default before; 'reference' in earlier releases); or none: self-training rounds on the "
                                "network's own best samples (the paper's transfer learning; narrows onto one corner).")
    teacher_tasks: int = setting(16, lo=1, hi=10**4, help="Ray tasks of the teacher (nested: one descent each; "
                                                          "importance: teacher_proposals draws each).")
    teacher_proposals: int = setting(1_000_000, lo=1, hi=10**10,
                                     help="importance teacher: proposals per task (Kish ESS ~0.27 % of them).")
    teacher_live: int = setting(1000, lo=20, hi=10**7, help="nested teacher: live points per run = solutions per run.")
    teacher_steps: int = setting(40_000, lo=1, help="Training steps of the taught network.")
    teacher_orbits: int = setting(1, lo=0, hi=10**4,
                                  help="nested teacher: orbit-resampling sweeps before every kept state.")
    # 1.1: on held-out seeds 50-57 the projected final sample's worst distance from an exact reference
    # fell from 0.043 to 0.034 (median), the network-only large-Sigma m tail from 0.050 to 0.039, the
    # network-only worst unchanged, its fraction 0.73 -> 0.68 (docs/experiments.md#2026-12-07-teacher-box)
    teacher_box: float = setting(1.1, lo=1.0, hi=2.0,
                                 help="importance teacher: Yukawa bound of its draws in units of the prior box's (1: the "
                                      "prior; > 1: the prior's density continued past the box's faces, which the network "
                                      "smears its density across; the nested teacher draws inside the box).")
    rounds: int = setting(0, lo=0, hi=10**4, option=True,
                          help="Self-training rounds (only with teacher none; preset self: 30). Paper: 1.")
    sampling: SamplingSettings = setting(factory=lambda: SamplingSettings(guidance=1.0, n=20_000),
                                         option={"n": ("--n-select", "Samples drawn per self-training round.")},
                                         help="How the rounds sample (the [sampling] table; n: samples per round).")
    selection: SelectionSettings = setting(factory=SelectionSettings,
                                           help="Which samples a round trains on (the [selection] table).")
    tune: TuneSettings = setting(factory=lambda: TuneSettings(steps=2000),
                                 option={"steps": ("--ft-steps", "Training steps per fine-tuning round. Paper: 100000.")},
                                 help="How a round fine-tunes (the [tune] table; steps: per round, paper 100000).")
    n_final: int = setting(100_000, lo=1, option="--n", help="Final samples. Paper: 3e7.")
    final_guidance: float = setting(1.0, lo=0.0, hi=1000.0, help="CFG scale of the final sample.")
    final_labels: str = setting("solutions", choices=LABELS,
                                help="What the final samples are conditioned on (see sample's labels).")
    final_network: str = setting("best", choices=FINAL_NETWORK,
                                 help="Network of the final sample: the one whose round samples had the highest "
                                      "solution fraction (best: beyond the paper) or the newest (last: the paper).")
    # redraw: on held-out seeds 60-67 the network-only final sample holds ~0.99 solutions instead of
    # ~0.66 (a third of the draws decode outside the prior box and were reflected into it, almost never
    # a solution), with the same distances to an exact reference (docs/experiments.md#2026-12-07-redraw)
    final_outside: str = setting("redraw", choices=OUTSIDE,
                                 help="The network-only final sample: a draw outside the prior box is redrawn (redraw: "
                                      "the network's density restricted to the prior) or brought inside by "
                                      "sampling.bound (bound: the paper clamps). The second final sample uses "
                                      "sampling.outside.")
    final_physics: int = setting(0, lo=0, hi=1000, help="Physics-guidance steps of the second final sample (needs "
                                                        "coordinates paper); 0 = none (the paper).")
    final_project: int = setting(200, lo=0, hi=10**5, help="Projection steps at the end of the second final sample; "
                                                          "with final_physics also 0, no second sample (the paper).")
    final_orbits: int = setting(10, lo=0, hi=10**4, help="Orbit-resampling sweeps of the second final sample.")
    workers: int = setting(1, lo=1, hi=10**4, option=True, help="Ray Train workers (1 CPU each).")
    recovery: RecoverySettings = setting(factory=RecoverySettings,
                                         help="How its trainings survive lost workers (the [recovery] table).")
    seed: int = seed_setting(0)

    def __post_init__(self) -> None:
        if self.teacher in LEGACY_TEACHERS:  # a run.json or --config file of an earlier release
            object.__setattr__(self, "teacher", LEGACY_TEACHERS[self.teacher])
        check(self)
        _rounds_sampling(self.sampling)
        if self.final_physics and self.coordinates != "paper":
            raise ValueError(f"final_physics ({self.final_physics}) needs coordinates 'paper': physics guidance inside the "
                             f"reverse process works on the paper's parameters, not on {self.coordinates} coordinates "
                             "(use final_project)")
        if self.teacher != "none" and self.rounds:
            raise ValueError(f"rounds ({self.rounds}) need teacher 'none': self-training rounds after a reference "
                             "teacher would narrow the taught network onto one mode again (use --preset self "
                             "for the self-training chain)")

    def teacher_reference(self):
        """The teacher's :class:`rayflavor.methods.reference.ReferenceSettings` (NO, the default data; random
        stream 1, so it never shares draws with a reference built by ``rayflavor diffusion reference``)."""
        from rayflavor.methods.reference import ReferenceSettings

        if self.teacher == "importance":
            return ReferenceSettings(method="importance", tasks=self.teacher_tasks, proposals=self.teacher_proposals,
                                     seed=self.seed, stream=1, box=self.teacher_box)
        return ReferenceSettings(tasks=self.teacher_tasks, n_live=self.teacher_live,
                                 k=max(1, self.teacher_live // 10), seed=self.seed, stream=1,
                                 orbits=self.teacher_orbits)

    def finetune(self, rounds: int | None = None) -> FinetuneSettings:
        """The chain's rounds as the settings of ``rayflavor diffusion finetune``."""
        return FinetuneSettings(rounds=self.rounds if rounds is None else rounds, sampling=self.sampling,
                                selection=self.selection, tune=self.tune, workers=self.workers,
                                recovery=self.recovery, seed=self.seed)

    def final_sampling(self, physics: int, project: int, orbits: int) -> SamplingSettings:
        """Settings of a final sample: the rounds' sampler with ``n_final`` and ``final_guidance``; the
        network-only one (no physics, projection or orbits) with ``final_outside``."""
        own = not (physics or project or orbits)
        return replace(self.sampling, n=self.n_final, guidance=self.final_guidance, labels=self.final_labels,
                       physics=physics, project=project, orbits=orbits, shards=None,
                       outside=self.final_outside if own else self.sampling.outside)

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
                                          final_outside="bound",
                                          sampling=SamplingSettings(guidance=1.0, n=20_000, bound="clamp")),
                    "paper": ChainSettings(train_steps=100_000, teacher="none", rounds=1,
                                           sampling=replace(_PAPER_SAMPLING, n=20_000), selection=_PAPER_SELECTION,
                                           tune=_PAPER_TUNE, n_final=30_000_000, final_guidance=8.0,
                                           final_network="last", final_physics=0, final_project=0,
                                           final_orbits=0, coordinates="paper", final_labels="central",
                                           teacher_orbits=0, final_outside="bound")},
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

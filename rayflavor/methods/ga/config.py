"""The settings of one NSGA-III island: one frozen dataclass, one set of defaults, two presets.

The dataclass defaults ARE the ``"fast"`` preset; ``ISLAND_PRESETS["paper"]`` is the FN paper as
published (sec. III.4): pymoo ``NSGA3`` with population 156, Das-Dennis reference directions with
2 partitions (153 directions for the 17 objectives), as many offspring as the population, no
refinement, tabu, neighbour queue or integer charge steps, and the paper's plain stop (no
restarts).  Every value is explicit: nothing means "depends on the method".

>>> ISLAND_PRESETS["paper"].n_offsprings, ISLAND_PRESETS["fast"].n_offsprings
(156, 200)
>>> IslandConfig(mass_tolerance=1.5)
Traceback (most recent call last):
...
ValueError: mass_tolerance must be a finite number in (0, 1), not 1.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rayflavor.methods.ga.problem import Space
from rayflavor.physics import fn
from rayflavor.physics import targets as fn_targets
from rayflavor.settings_model import check, setting

METHODS = ("fast", "paper")
ORDERINGS = ("any", "NO", "IO")
TABUS = ("none", "charges", "texture")
FOREIGN = ("always", "until-found")

MAX_POP_SIZE = 5_000
"""Largest population of one island.  The cost of a generation grows faster than the population
(non-dominated sorting, niching and, in the paper engine, duplicate elimination compare
individuals pairwise).  Measured one generation on the 2-core development machine under load
(2026-12-02): pop 100: 0.05 s; 3 000: 1.6 s (fast) / 2.4 s (paper); 5 000: 4.6 s / 6-9 s, 0.6 GB;
10 000: 15 s / 37-68 s, 1.9 GB; ``pop_size = 10**6`` once ran 70 s over a 10 s time limit and took
~7 GB.  At 5 000 a generation stays within seconds, so an island honours time limits and Ctrl-C
close to its commit interval; more diversity is better bought with more islands."""
MAX_OFFSPRING_RATIO = 10.0  # offspring per generation at most 10 x pop_size ...
MAX_OFFSPRINGS = 2 * MAX_POP_SIZE  # ... and at most 10 000 (the fast ratio at the largest population; same reason)


def n_reference_directions(n_objectives: int, n_partitions: int) -> int:
    """Number of Das-Dennis directions: ``binom(n_objectives + n_partitions - 1, n_partitions)``."""
    return math.comb(n_objectives + n_partitions - 1, n_partitions)


@dataclass(frozen=True)
class IslandConfig:
    """Everything that defines an island's search (not its seed or index).

    Physics: ``regime`` (``up``/``down``: FN paper sec. III.4), ``ordering`` (``any``; ``IO`` adds
    the paper's loss ``C(m1/m3, 1, inf)``; ``NO`` keeps only NO models), ``max_exponent`` (``None``:
    no such objective; ``M`` adds ``C(max n_ij, 0, M)``), ``mass_tolerance`` (relative window of
    the charged masses), ``log10_lambda`` (``None``: search :data:`fn.LOG10_LAMBDA_RANGE`; a
    number fixes log10(Lambda/GeV)), ``targets`` (texts like ``m_ee<1e-4``,
    :mod:`rayflavor.physics.targets`, stored in their canonical spelling: one extra objective
    each, the target's shaped residual; validity is unchanged, and with targets ``target_valid``
    counts the valid models that meet every target).

    Engine: ``method`` (``paper`` or ``fast``), ``pop_size``, ``n_partitions`` (Das-Dennis),
    ``offspring_ratio`` (offspring per generation = ``round(offspring_ratio * pop_size)``).

    Stopping (paper sec. III.4): ``max_generations``, ``target_valid`` unique valid charge
    assignments (meeting every target, when there are targets), ``patience`` generations without
    a better best loss, a larger number of satisfied objectives or a new valid model.  A stalled
    island restarts (fresh population, seeded with ``restart_keep * pop_size`` of its best
    non-valid points and, in a scan, ``restart_archive * pop_size`` points of the scan-wide archive
    of near-valid points, found set kept) up to ``restarts`` times before it stops on ``patience``.

    Fast engine only (0 for ``paper``): ``refine_top`` offspring refined per generation,
    ``refine_iters`` Levenberg-Marquardt iterations each, ``refine_budget`` iterations per charge
    assignment in total; ``neighbours`` one-unit charge moves queued per new valid model;
    ``charge_rate`` probability of an integer charge step in mutation; ``tabu``: what a found
    valid model makes tabu for survival, refinement, the neighbour queue and restarts --
    ``"charges"`` its charge assignment, ``"texture"`` its light texture
    (:func:`rayflavor.physics.fn.light_textures`: every assignment with the same light physics),
    ``"none"`` nothing (the paper).
    """

    method: str = setting("fast", choices=METHODS, help="Engine: fast (integer-aware operators, refinement, tabu) or "
                                                        "paper (pymoo's NSGA3 as published).")
    regime: str = setting("up", choices=("up", "down"), option=True, help="Leading flavon (FN paper sec. III.4).")
    ordering: str = setting("any", choices=ORDERINGS, option=None,
                            help="IO adds the paper's loss forcing inverted ordering; NO keeps only NO models.")
    max_exponent: int | None = setting(None, lo=0, hi=100, help="Add the objective C(max n_ij, 0, M) (none: no such objective).")
    mass_tolerance: float = setting(fn.DEFAULT_MASS_TOLERANCE, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                                    help="Relative window of the charged masses: |m/m_0 - 1| <= tolerance "
                                         "(0.1: the paper's tight run).")
    log10_lambda: float | None = setting(None, lo=fn.LOG10_LAMBDA_RANGE[0], hi=fn.LOG10_LAMBDA_RANGE[1],
                                         help="Fix log10(Lambda/GeV) instead of searching its range.")
    targets: tuple[str, ...] = setting((), option="--target", parse=fn_targets.canonical, metavar="NAME<VALUE",
                                       help="Look for models with NAME<VALUE (also <=, >, >=; repeat for several): "
                                            "an extra objective each; islands stop at target_valid models meeting "
                                            "them all. NAME: " + ", ".join(fn_targets.OBSERVABLES) + " (m_ee, "
                                            "m_lightest, m_sum in eV; phases in degrees), e.g. 'm_ee<1e-4'.")
    pop_size: int = setting(100, lo=4, hi=MAX_POP_SIZE, help="Population per island.")
    n_partitions: int = setting(1, lo=1, hi=100, help="Das-Dennis partitions of the reference directions.")
    offspring_ratio: float = setting(2.0, lo=0.0, hi=MAX_OFFSPRING_RATIO, lo_open=True,
                                     help="Offspring per generation = round(offspring_ratio * pop_size).")
    max_generations: int = setting(1_000_000, lo=1, help="Generations at most per island.")
    target_valid: int = setting(100, lo=1, help="Stop an island at this many unique valid models (with targets: "
                                                "valid models meeting every target).")
    # patience 100 (~1-2 s of one core) and 100 restarts: a stalled run is replaced by a fresh one
    # quickly, which is what finds a first model on hard seeds (5/6 islands within 2 core-minutes
    # against 3/6 at patience 200 or 500 on tuning seeds, docs/experiments.md#2026-12-02-patience);
    # a scan without --time-limit still ends in bounded time (a stalled island gives up after
    # ~2-3 min).  100, not 50, since the islands step ~1.5x faster: 50 restarts then ran out after
    # 50-80 s, before 2 core-minutes, on 6 of 32 held-out islands that found nothing; 100 restore the
    # time budget 50 gave before (a restored budget, not a measured gain: the next 32 held-out
    # islands all found a model within 46 restarts; docs/experiments.md#2026-12-07-restarts-100).
    # 130 since the cheaper refinement (~1.3x the generations per core-second on stalled islands):
    # 100 restarts then ran out before 2 core-minutes on 4 of 32 held-out islands that found
    # nothing; 130 restore the time budget again (docs/experiments.md#2026-12-08-cheaper-refinement).
    # The paper preset keeps the paper's 500 and no restarts.
    patience: int = setting(100, lo=1, help="Generations without improvement before an island restarts with a fresh "
                                            "population (restarts times), then stops.")
    restarts: int = setting(130, lo=0, hi=10**6,
                            help="Fresh populations an island starts after a stall before it stops (0: the paper's "
                                 "plain stop; a large number keeps islands searching until the time limit).")
    # a tenth of the fresh population carries the stalled run's best near-misses: enough to keep
    # its progress, few enough that the new random 90% set the diversity.
    restart_keep: float = setting(0.1, lo=0.0, hi=1.0, hi_open=True,
                                  help="Share of a restarted population seeded with the stalled run's best points.")
    # a tenth of a restarted population from the scan-wide archive of near-misses (with migration
    # "ring": every one of 32 held-out islands found a first model within 2 core-minutes,
    # docs/experiments.md#2026-12-06-migration); it has no effect in a scan without the exchange
    # (migration "none" and this 0, as presets independent and paper set it)
    restart_archive: float = setting(0.1, lo=0.0, hi=1.0, hi_open=True,
                                     help="Share of a restarted population seeded from the scan-wide archive of "
                                          "near-valid points (kept by the scan driver; 0: none).")
    # An island that has found a model has a region of its own: immigrants and the archive pull it
    # into its neighbours' regions, where its finds repeat theirs.  Taking them only until the first
    # model: 1.43x the distinct light textures per core-hour of ring + archive on the same 32
    # held-out seeds (4 408 against 3 073), every island still with a first model within 2
    # core-minutes (docs/experiments.md#2026-12-07-until-found).
    foreign: str = setting("until-found", choices=FOREIGN,
                           help="When the island takes rows from elsewhere (immigrants, the restart archive): always, "
                                "or until-found (only until its first valid model; then it searches alone).")
    refine_top: int = setting(8, lo=0, hi=MAX_OFFSPRINGS, help="Offspring refined per generation (fast engine).")
    refine_iters: int = setting(3, lo=0, hi=1000, help="Levenberg-Marquardt iterations per refinement.")
    refine_budget: int = setting(60, lo=0, help="Refinement iterations per charge assignment in total.")
    neighbours: int = setting(12, lo=0, hi=1000, help="One-unit charge moves queued per new valid model.")
    charge_rate: float = setting(0.3, lo=0.0, hi=1.0, help="Probability of an integer charge step in mutation.")
    tabu: str = setting("texture", choices=TABUS,
                        help="What a found model makes tabu: its light texture (every charge assignment with the same "
                             "light physics), its charge assignment only, or nothing (the paper).")

    def __post_init__(self) -> None:
        check(self)
        if isinstance(self.targets, str) or not isinstance(self.targets, (tuple, list)):
            raise ValueError(f"targets must be a list of texts like 'm_ee<1e-4', not {self.targets!r}")
        object.__setattr__(self, "targets", tuple(t.text for t in fn_targets.parse_all(self.targets)))
        Space(self.regime, self.log10_lambda)  # log10_lambda finite inside fn.LOG10_LAMBDA_RANGE
        n_dirs = n_reference_directions(len(self.objective_names), self.n_partitions)
        if n_dirs > MAX_POP_SIZE:
            raise ValueError(f"n_partitions {self.n_partitions} gives {n_dirs} reference directions (at most {MAX_POP_SIZE})")
        if not 1 <= self.n_offsprings <= MAX_OFFSPRINGS:
            raise ValueError(f"offspring_ratio {self.offspring_ratio} gives {self.n_offsprings} offspring at pop_size "
                             f"{self.pop_size} (1 to {MAX_OFFSPRINGS})")
        if self.restart_keep + self.restart_archive > 1.0:
            raise ValueError(f"restart_keep {self.restart_keep} + restart_archive {self.restart_archive} exceed the "
                             "whole restarted population (at most 1 together)")
        if self.method == "paper" and (self.refine_top or self.neighbours or self.charge_rate or self.tabu != "none"):
            raise ValueError("method 'paper' has no refinement, neighbour queue, integer charge steps or tabu: "
                             "refine_top, neighbours and charge_rate must be 0 and tabu 'none' (or use method 'fast')")

    @property
    def n_offsprings(self) -> int:
        """Offspring per generation: ``round(offspring_ratio * pop_size)``."""
        return int(round(self.offspring_ratio * self.pop_size))

    @property
    def objective_names(self) -> list[str]:
        """The objectives this configuration optimises (``fn.objective_names``, then the targets)."""
        return fn.objective_names(force_io=self.ordering == "IO", max_exponent=self.max_exponent) + list(self.targets)


ISLAND_PRESETS: dict[str, IslandConfig] = {
    "fast": IslandConfig(),
    "paper": IslandConfig(
        method="paper", pop_size=156, n_partitions=2, offspring_ratio=1.0, patience=500, restarts=0, restart_keep=0.0,
        restart_archive=0.0,
        refine_top=0, refine_iters=0, refine_budget=0, neighbours=0, charge_rate=0.0, tabu="none",
    ),
}

__all__ = ["ISLAND_PRESETS", "IslandConfig", "MAX_OFFSPRINGS", "MAX_POP_SIZE", "METHODS", "ORDERINGS", "TABUS", "n_reference_directions"]

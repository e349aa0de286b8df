"""NSGA-III islands stepped one generation at a time: pymoo's NSGA-III, no Ray.

Two engines, chosen by :attr:`IslandConfig.method` through :func:`make_island`:

:class:`PaperIsland` (``"paper"``)
    The FN paper as published (sec. III.4): pymoo ``NSGA3`` defaults (SBX eta 30, PM eta 20 on
    every gene, duplicate elimination), Das-Dennis reference directions, the paper's losses as
    objectives, charges rounded at evaluation.  With ``ISLAND_PRESETS["paper"]``: population 156,
    2 partitions (153 directions for 17 objectives), as many offspring as the population.

:class:`FastIsland` (``"fast"``, the default) extends it through the engine's hooks with the
    levers the paper names as future work:

    * integer-aware charge operators (:mod:`.operators`), no duplicate elimination, fewer
      reference directions and more offspring per generation (:meth:`~PaperIsland._make_nsga3`);
      after a run's first population each generation is pymoo's, done on arrays
      (:mod:`.generation`: the same search bit for bit, without pymoo's per-individual
      bookkeeping);
    * **shaped objectives** (:mod:`.shaping`): the 17 objectives as residuals with the paper's
      zero set and a slope where its losses saturate (:meth:`~PaperIsland._objective_matrix`);
    * **continuous refinement** (:mod:`.refine`): every generation the ``refine_top`` most
      promising offspring (no negative exponents, charges not found yet, refinement budget left
      for their charge assignment) get ``refine_iters`` Levenberg-Marquardt steps on their
      continuous genes with the charges frozen; the improved genes go back into the population
      (:meth:`~PaperIsland._after_evaluation`);
    * **tabu on found textures** (``tabu="texture"``, the default; ``"charges"``: on found charge
      assignments only): individuals whose light texture (:func:`rayflavor.physics.fn.light_textures`)
      is already among the valid models get :data:`TABU_PENALTY` added to every objective
      (:meth:`~PaperIsland._before_tell`), are not refined, queued as neighbours or kept over a
      restart -- the search is steered to physically new models rather than to charge shifts and
      heavy-neutrino charges that leave the light physics unchanged;
    * **charge neighbourhood**: each new valid assignment queues ``neighbours`` copies with one
      charge of ``Q u d L e`` moved by one unit (never ``N``, whose charges cancel from the light
      masses, never a common shift), evaluated with the next offspring
      (:meth:`~PaperIsland._on_new_models`, :meth:`~PaperIsland._prepare_offspring`).

Targets (``IslandConfig.targets``, :mod:`rayflavor.physics.targets`) add one objective each for
NSGA-III, the distance to the target's corner
(:meth:`~rayflavor.methods.ga.problem.Objectives.with_targets`: the sum of the other objectives
far from validity, the target's shaped residual near it), 0 exactly on the valid models that
meet the target.  They are not residuals of the refinement, its choice of rows or the best
loss (patience): those keep steering towards validity alone (with the target's residual among
them, a 3-minute up-leading NO smoke scan found no valid model, against 99 without the target).
Validity is unchanged: every valid model is kept, with a ``targets_met`` column (it meets every
target), and becomes tabu as without targets (the search moves on to new textures, the target
objective choosing which); only the models meeting every target count towards ``target_valid``.

Stopping (paper sec. III.4): ``max_generations``; ``target_valid`` unique valid models (unique by
charge assignment inside the island; with targets: meeting every target); ``patience``
generations of the current run without a better best loss (smallest sum of shaped residuals), a
larger number of satisfied objectives (targets met included) or a new valid model.  On
``patience`` an island with restarts left (``IslandConfig.restarts``) restarts instead: a fresh NSGA-III population from the seed
``SeedSequence(seed, spawn_key=(k,))`` of restart ``k``, its first ``restart_keep * pop_size``
members replaced by the stalled run's best non-valid points; the found set survives, so no
model is reported twice.  With ``restart_archive > 0`` a further ``restart_archive * pop_size``
members come from the scan-wide archive of near-valid points the scan driver hands the island
(:meth:`~PaperIsland.set_archive`; a seeded choice, found models excluded); with ``foreign =
"until-found"`` only until the island's first valid model, as for immigrants.  The wall-clock limit is
the caller's (:meth:`~PaperIsland.request_stop`).

Migration (:mod:`.migration`, driven by the scan): :meth:`~PaperIsland.emigrants` picks the
island's best points not found valid yet, :meth:`~PaperIsland.immigrate` evaluates points from
other islands with this island's own problem (a valid one is harvested like any other) and lets
them replace the worst members they beat.  An island nobody calls these on searches exactly as
without them.

State (:meth:`~PaperIsland.get_state`, :func:`island_from_state`) is plain data: a JSON-able
dict and a dict of numeric arrays, never a pickle.

>>> from rayflavor.physics import data
>>> from dataclasses import replace
>>> cfg = replace(ISLAND_PRESETS["paper"], pop_size=20, n_partitions=1)
>>> isl = make_island(cfg, data.load("nufit-6.0+pdg-2024"), island=0, seed=1)
>>> isl.step(); isl.generation, isl.done, type(isl).__name__
(1, False, 'PaperIsland')
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.population import Population
from pymoo.core.termination import NoTermination
from pymoo.util.ref_dirs import get_reference_directions

from rayflavor.configfile import from_mapping
from rayflavor.methods.ga import generation
from rayflavor.methods.ga.config import ISLAND_PRESETS, METHODS, ORDERINGS, IslandConfig
from rayflavor.methods.ga.migration import ARCHIVE, IMMIGRATION, best_distinct, choose, fair_replace, stream
from rayflavor.methods.ga.operators import IntegerAwareMutation, IntegerAwareSampling, TripletCrossover
from rayflavor.methods.ga.problem import (
    CHARGES,
    CONT,
    GENE_PARAMETERS,
    I_LAMBDA,
    N_CHARGES,
    FNProblem,
    Objectives,
    Space,
    decode,
    encode,
    round_charges,
)
from rayflavor.methods.ga.refine import levenberg_marquardt
from rayflavor.methods.ga.shaping import Shaper
from rayflavor.physics import fn
from rayflavor.physics import targets as fn_targets

STOP_REASONS = ("max-generations", "target-valid", "patience", "time-limit", "interrupted", "no-offspring")
RESUMABLE = ("time-limit", "interrupted")  # stops that resume() continues
STATE_FORMAT = "rayflavor-island/2"
TABU_PENALTY = 1e6
CHARGE_ONLY = ("n_negative", "max_exponent")  # objectives that depend on the charges alone
BUDGET_MEMORY = 200_000  # refinement budgets remembered (the oldest half is forgotten beyond)


def _keys(charges: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.ascontiguousarray(charges, dtype=np.int8)]


def _light_keys(charges: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.ascontiguousarray(fn.light_textures(np.rint(charges).astype(np.int64)))]


def _charges(keys) -> np.ndarray:
    """int8 charge rows ``(n, 18)`` from :func:`_keys` keys."""
    return np.frombuffer(b"".join(keys), dtype=np.int8).reshape(-1, N_CHARGES).copy()


#: the clock of an island's own compute time (``step_seconds``, ``eval_seconds``,
#: ``refine_seconds``, ``first_valid_seconds``): the CPU time of the calling thread, so the figures
#: are core-seconds on a shared machine too (the island's numpy runs in that thread)
compute_clock = time.thread_time


def restart_seed(seed: int, restart: int) -> int:
    """Seed of restart ``restart`` (1, 2, ...) of the island with seed ``seed``: the first word of
    ``SeedSequence(seed, spawn_key=(restart,))``, i.e. of ``SeedSequence(seed).spawn(restart)[-1]``.

    >>> restart_seed(7, 1) == restart_seed(7, 1) != restart_seed(7, 2)
    True
    """
    return int(np.random.SeedSequence(seed, spawn_key=(restart,)).generate_state(1)[0])


@dataclass
class Counters:
    """The island's counters (JSON-able through :meth:`to_json`).  ``best_*``: over the whole
    island (reported); ``run_best_*``, ``last_improvement``: of the current run (patience)."""

    generation: int = 0
    n_evals: int = 0
    n_found: int = 0
    n_met: int = 0  # of n_found: meeting every target (with targets)
    best_loss: float = float("inf")
    best_satisfied: int = 0
    run_best_loss: float = float("inf")
    run_best_satisfied: int = 0
    last_improvement: int = 0
    stop_reason: str | None = None
    restarts: int = 0
    run_seed: int = 0
    eval_seconds: float = 0.0
    refine_seconds: float = 0.0
    step_seconds: float = 0.0
    first_valid_evals: int | None = None
    first_valid_seconds: float | None = None
    stop_history: list[dict] = field(default_factory=list)
    immigrants: int = 0  # immigrants that took a place in the population (or seeded a fresh one)
    immigrant_batches: int = 0  # exchanges received (numbers the seeded choice of immigrants)
    emigrant_batches: int = 0  # emigrant batches handed out
    archive_seeded: int = 0  # restart seeds taken from the scan-wide archive

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("best_loss", "run_best_loss"):
            if not np.isfinite(d[k]):
                d[k] = None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Counters":
        d = dict(d)
        for k in ("best_loss", "run_best_loss"):
            d[k] = float("inf") if d[k] is None else float(d[k])
        return cls(**d)


class PaperIsland:
    """The FN paper's NSGA-III island (see the module docstring); the base of every engine.

    Subclasses change the search only through the hooks :meth:`_make_nsga3`,
    :meth:`_objective_matrix`, :meth:`_prepare_offspring`, :meth:`_after_evaluation`,
    :meth:`_before_tell`, :meth:`_on_new_models` and their state through :meth:`_extra_state`,
    :meth:`_load_extra_state`.
    """

    engine = "paper"

    def __init__(self, config: IslandConfig, data, *, island: int = 0, seed: int = 0) -> None:
        if config.method != self.engine:
            raise ValueError(f"{type(self).__name__} runs method {self.engine!r}, not {config.method!r} (use make_island)")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.config = config
        self.island = int(island)
        self.seed = int(seed)
        self.space = Space(config.regime, config.log10_lambda)
        self.objectives = Objectives(
            data=data,
            mass_tolerance=config.mass_tolerance,
            force_io=config.ordering == "IO",
            max_exponent=config.max_exponent,
            targets=fn_targets.parse_all(config.targets),
        )
        self.names = self.objectives.names
        self.shaper = Shaper(self.objectives)
        self.problem = FNProblem(self.space, self.objectives)
        self.ref_dirs = get_reference_directions("das-dennis", len(self.names), n_partitions=config.n_partitions)
        self.c = Counters(run_seed=self.seed)
        self.found: set[bytes] = set()  # charge assignments found valid: tabu
        self.restart_rows = np.empty((0, self.problem.n_var))  # genes that seed the next initial population
        self.archive_rows = np.empty((0, self.problem.n_var))  # the scan's archive (set_archive; not state)
        self._pending: list[dict[str, np.ndarray]] = []
        self.algorithm = self._new_algorithm(self.seed)

    # ------------------------------------------------------------------ hooks
    def _make_nsga3(self) -> NSGA3:
        """The pymoo algorithm (paper: NSGA3's defaults)."""
        return NSGA3(ref_dirs=self.ref_dirs, pop_size=self.config.pop_size, n_offsprings=self.config.n_offsprings)

    def _objective_matrix(self, res: dict[str, np.ndarray], R: np.ndarray) -> np.ndarray:
        """What NSGA-III minimises (paper: its CC-type losses)."""
        return self.objectives.matrix(res)

    def _prepare_offspring(self, G: np.ndarray, initial: bool) -> np.ndarray:
        """Gene rows to evaluate this generation, from the algorithm's offspring ``G``
        (``initial``: the first population of a run).  The base seeds a restarted run's first
        population with :attr:`restart_rows`."""
        if initial and len(self.restart_rows):
            k = min(len(self.restart_rows), len(G))
            G[:k] = self.restart_rows[:k]
            self.restart_rows = self.restart_rows[:0]
        return G

    def _after_evaluation(self, G: np.ndarray, F: np.ndarray, R: np.ndarray) -> None:
        """Change the evaluated rows in place before survival (paper: nothing)."""

    def _before_tell(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        """The objective matrix handed to survival (paper: ``F``)."""
        return F

    def _on_new_models(self, x: np.ndarray, met: np.ndarray) -> None:
        """Called with the parameter rows of newly found valid models and whether each meets every
        target (paper: nothing)."""

    def _conform(self, G: np.ndarray) -> np.ndarray:
        """Gene rows from elsewhere (immigrants, the archive) made into rows this engine breeds
        (paper: as they are; the charges are rounded at evaluation)."""
        return G

    def _penalised(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        """The survival objectives of evaluated rows ``G`` with objectives ``F`` (paper: ``F``)."""
        return F

    def _ask(self) -> np.ndarray | None:
        """The gene rows the algorithm asks to evaluate (paper: pymoo's ``ask``)."""
        off = self.algorithm.ask()
        return None if off is None else off.get("X").astype(np.float64)

    def _tell(self, G: np.ndarray, F: np.ndarray) -> None:
        """Hand the evaluated rows to the algorithm's survival (paper: pymoo's ``tell``)."""
        self.algorithm.tell(infills=Population.new("X", G, "F", F))

    def _extra_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {}

    def _load_extra_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        pass

    # ------------------------------------------------------------------ evaluation
    def _new_algorithm(self, seed: int) -> NSGA3:
        algo = self._make_nsga3()
        algo.setup(self.problem, seed=seed, termination=NoTermination(), verbose=False)
        return algo

    @property
    def generation(self) -> int:
        return self.c.generation

    def _evaluate(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective matrix ``F`` and shaped residuals ``R`` of gene rows; harvests valid models."""
        t = compute_clock()
        x = decode(G, self.space)
        res = self.objectives.evaluate(x)
        R = self.shaper.residuals(res)
        F = self._objective_matrix(res, R)
        met = self.objectives.targets_met(res)  # (N, n_targets)
        self.c.n_evals += len(G)
        self.c.eval_seconds += compute_clock() - t
        self._harvest(x, res, met.all(axis=1))
        self._track(R, res, met.sum(axis=1))
        return F, R

    def _valid(self, res: dict[str, np.ndarray]) -> np.ndarray:
        ok = np.asarray(res["valid"], dtype=bool)
        if self.config.ordering != "any":
            ok = ok & (res["ordering"] == self.config.ordering)
        return ok

    @property
    def n_counted(self) -> int:
        """Models that count towards ``target_valid``: valid ones, with targets those meeting all."""
        return self.c.n_met if self.config.targets else self.c.n_found

    def _harvest(self, x: np.ndarray, res: dict[str, np.ndarray], met: np.ndarray) -> None:
        ok = np.flatnonzero(self._valid(res))
        if ok.size == 0:
            return
        keys = _keys(x[ok, :N_CHARGES])
        room = self.config.target_valid - self.n_counted  # never overshoot the target
        new, new_met, n_met = [], [], 0
        for i, k in zip(ok, keys):
            if k in self.found or (met[i] and n_met >= room):
                continue
            self.found.add(k)
            n_met += bool(met[i])
            new.append(i)
            new_met.append(bool(met[i]))
        if not new:
            return
        new, new_met = np.asarray(new), np.asarray(new_met, dtype=bool)
        if self.c.first_valid_evals is None:
            self.c.first_valid_evals = self.c.n_evals
            self.c.first_valid_seconds = self.c.step_seconds
        self.c.n_found += len(new)
        self.c.n_met += int(new_met.sum()) if self.config.targets else 0
        self.c.last_improvement = self.c.generation
        row = {name: x[new, k] for k, name in enumerate(fn.PARAMETERS)}
        for k in fn.CHARGES:
            row[k] = row[k].astype(np.int64)
        row.update({k: np.asarray(v)[new] for k, v in res.items()})
        row["generation"] = np.full(len(new), self.c.generation, dtype=np.int64)
        row["found_at"] = np.full(len(new), time.time())
        if self.config.targets:
            row["targets_met"] = new_met
        self._pending.append(row)
        self._on_new_models(x[new], new_met)

    def _track(self, R: np.ndarray, res: dict[str, np.ndarray], n_met: np.ndarray) -> None:
        """Best loss (the shaped residuals' sum, targets aside) and best number of satisfied
        objectives (targets met included) of the rows evaluated; patience restarts on either."""
        if not len(R):
            return
        c = self.c
        sat = int(np.max(res["n_satisfied"] + n_met))
        loss = float(np.min(R.sum(axis=1)))
        c.best_satisfied = max(c.best_satisfied, sat)
        c.best_loss = min(c.best_loss, loss)
        improved = False
        if sat > c.run_best_satisfied:
            c.run_best_satisfied, improved = sat, True
        if loss < c.run_best_loss * (1 - 1e-12):
            c.run_best_loss, improved = loss, True
        if improved:
            c.last_improvement = c.generation

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one generation (the first call of a run evaluates its initial population)."""
        if self.done:
            return
        t0 = compute_clock()
        G = self._ask()
        if G is None or len(G) == 0:
            self._stop("no-offspring")
            return
        G = self._prepare_offspring(G, initial=not self.algorithm.is_initialized)
        F, R = self._evaluate(G)
        self._after_evaluation(G, F, R)
        F = self._before_tell(G, F)
        self._tell(G, F)
        self.c.generation += 1
        self.c.step_seconds += compute_clock() - t0
        self._check_stop()

    def _check_stop(self) -> None:
        cfg, c = self.config, self.c
        if c.stop_reason is not None:
            return
        if self.n_counted >= cfg.target_valid:
            self._stop("target-valid")
        elif c.generation >= cfg.max_generations:
            self._stop("max-generations")
        elif c.generation - c.last_improvement >= cfg.patience:
            if c.restarts < cfg.restarts:
                self._restart("patience")
            else:
                self._stop("patience")

    def _stop(self, reason: str) -> None:
        self.c.stop_reason = reason
        self.c.stop_history.append({"reason": reason, "generation": self.c.generation, "seed": self.c.run_seed, "restart_seed": None})

    def _restart(self, reason: str) -> None:
        """A fresh run: new algorithm from :func:`restart_seed`, seeded with the best non-valid
        points of the stalled population; found set, counters and queues survive."""
        c = self.c
        k = c.restarts + 1
        new_seed = restart_seed(self.seed, k)
        c.stop_history.append({"reason": reason, "generation": c.generation, "seed": c.run_seed, "restart_seed": new_seed})
        self.restart_rows = self._best_unfound(int(round(self.config.restart_keep * self.config.pop_size)))
        n_archive = int(round(self.config.restart_archive * self.config.pop_size))
        if n_archive and len(self.archive_rows) and self._takes_foreign():
            self.restart_rows = np.concatenate([self.restart_rows, self._from_archive(n_archive, k)])
        c.restarts, c.run_seed = k, new_seed
        c.last_improvement = c.generation
        c.run_best_loss, c.run_best_satisfied = float("inf"), 0
        self.algorithm = self._new_algorithm(new_seed)

    def _is_tabu(self, charges: np.ndarray) -> np.ndarray:
        """Which rows of (rounded) ``charges`` a restart must not keep: assignments found valid."""
        return np.array([k in self.found for k in _keys(charges)], dtype=bool)

    def _best_unfound(self, n: int) -> np.ndarray:
        """Up to ``n`` gene rows of the population with the smallest objective sums, one per charge
        assignment, none of them tabu (:meth:`_is_tabu`: found valid)."""
        return self._best_unfound_scored(n)[0]

    def _best_unfound_scored(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_best_unfound` and the objective sums of its rows."""
        pop = self.algorithm.pop
        if n <= 0 or pop is None or not len(pop):
            return np.empty((0, self.problem.n_var)), np.empty(0)
        X, F = pop.get("X"), pop.get("F")
        charges = round_charges(X)
        score = F.sum(axis=1)
        rows = best_distinct(score, _keys(charges), n, exclude=self._is_tabu(charges))
        return np.array(X[rows], dtype=np.float64).reshape(-1, self.problem.n_var), np.array(score[rows], np.float64)

    def _takes_foreign(self) -> bool:
        """Whether rows from elsewhere (immigrants, the archive) are taken now: always, or with
        ``foreign = "until-found"`` only while the island has found no valid model."""
        return self.config.foreign == "always" or not self.found

    def _foreign(self, G: np.ndarray) -> np.ndarray:
        """Gene rows from another island or the archive inside this island's bounds, conformed."""
        G = np.asarray(G, dtype=np.float64).reshape(-1, self.problem.n_var)
        G = np.clip(np.nan_to_num(G, nan=0.0), self.problem.xl, self.problem.xu)
        return self._conform(G)

    def _from_archive(self, n: int, restart: int) -> np.ndarray:
        """Up to ``n`` rows of the scan's archive for restart ``restart``: a seeded choice among
        those whose charges are not tabu here and not already seeding this restart."""
        G = self._foreign(self.archive_rows)
        taken = set(_keys(round_charges(self.restart_rows))) if len(self.restart_rows) else set()
        charges = round_charges(G)
        ok = ~self._is_tabu(charges) & np.array([k not in taken for k in _keys(charges)], dtype=bool)
        G = G[ok]
        G = G[choose(len(G), n, stream(self.seed, ARCHIVE, restart))]
        self.c.archive_seeded += len(G)
        return G

    # ------------------------------------------------------------------ migration
    def set_archive(self, genes: np.ndarray) -> None:
        """The scan-wide archive of near-valid gene rows a restart draws from (``restart_archive``);
        replaced at every call, not part of the state (the driver hands it again)."""
        self.archive_rows = np.asarray(genes, dtype=np.float64).reshape(-1, self.problem.n_var)

    def emigrants(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` emigrants: the population's best points not found valid here, one per
        charge assignment (:meth:`_best_unfound`), as ``(genes, objective sums)``; a found model is
        never sent (it is stored already: a copy would only be a duplicate in another island)."""
        G, loss = self._best_unfound_scored(n)
        if len(G):
            self.c.emigrant_batches += 1
        return G, loss

    def immigrate(self, genes: np.ndarray, n: int) -> int:
        """Take in up to ``n`` immigrants from ``genes`` (gene rows from other islands; more than
        ``n``: a seeded choice).  They are evaluated with this island's own problem (valid ones are
        harvested like any model found here) and replace the worst members they beat
        (:func:`.migration.fair_replace`); a fresh run not evaluated yet takes them as seeds of its
        first population.  With ``foreign = "until-found"`` an island that has found a valid model
        takes none.  Returns how many were taken in."""
        if self.done or n <= 0 or not self._takes_foreign():
            return 0
        G = self._foreign(genes)
        if not len(G):
            return 0
        c = self.c
        G = G[choose(len(G), n, stream(self.seed, IMMIGRATION, c.immigrant_batches))]
        c.immigrant_batches += 1
        algo = self.algorithm
        pop = algo.pop
        if not algo.is_initialized or pop is None or not len(pop):
            room = self.config.pop_size - len(self.restart_rows)
            G = G[: max(room, 0)]
            self.restart_rows = np.concatenate([self.restart_rows, G])
            c.immigrants += len(G)
            return len(G)
        F, _ = self._evaluate(G)
        F = self._penalised(G, F)
        X, Fp = np.array(pop.get("X"), np.float64), np.array(pop.get("F"), np.float64)
        members, new = fair_replace(Fp.sum(axis=1), F.sum(axis=1))
        if len(members):
            X[members], Fp[members] = G[new], F[new]
            pop.set("X", X)
            pop.set("F", Fp)
        c.immigrants += len(members)
        self._check_stop()
        return len(members)

    # ------------------------------------------------------------------ API for the orchestration
    @property
    def done(self) -> bool:
        return self.c.stop_reason is not None

    @property
    def n_pending(self) -> int:
        """Valid models found and not drained yet."""
        return sum(len(r["generation"]) for r in self._pending)

    def drain(self) -> dict[str, np.ndarray] | None:
        """The valid models found since the last call, as columns (``None`` if there are none)."""
        if not self._pending:
            return None
        rows, self._pending = self._pending, []
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def request_stop(self, reason: str) -> None:
        """Stop for ``reason`` (one of :data:`STOP_REASONS`, e.g. ``"time-limit"``); no-op if done."""
        if reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {reason!r} (use {', '.join(STOP_REASONS)})")
        if not self.done:
            self._stop(reason)

    def resume(self) -> bool:
        """Continue an island stopped by ``"time-limit"`` or ``"interrupted"``: clear the reason and
        restart the patience count.  Returns whether it was resumed."""
        if self.c.stop_reason not in RESUMABLE:
            return False
        self.c.stop_reason = None
        self.c.last_improvement = self.c.generation
        return True

    def status(self) -> dict:
        """Counters for progress reports and ``scan.json`` (JSON-able; no NaN or inf)."""
        c = self.c
        return {
            "island": self.island,
            "seed": self.seed,
            "method": self.engine,
            "generation": c.generation,
            "n_evals": c.n_evals,
            "n_valid": c.n_found,
            **({"n_targets_met": c.n_met} if self.config.targets else {}),
            "best_satisfied": c.best_satisfied,
            "n_objectives": len(self.names),
            "best_loss": c.best_loss if np.isfinite(c.best_loss) else None,
            "stop_reason": c.stop_reason,
            "step_seconds": c.step_seconds,
            "eval_seconds": c.eval_seconds,
            "refine_seconds": c.refine_seconds,
            "first_valid_seconds": c.first_valid_seconds,
            "first_valid_evals": c.first_valid_evals,
            "restarts": c.restarts,
            "run_seed": c.run_seed,
            "stop_history": [dict(h) for h in c.stop_history],
            "immigrants": c.immigrants,
            "emigrant_batches": c.emigrant_batches,
            "archive_seeded": c.archive_seeded,
        }

    # ------------------------------------------------------------------ state
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything needed to continue exactly here, as ``(meta, arrays)``: ``meta`` is JSON-able
        (``json.dumps(meta, allow_nan=False)`` works), ``arrays`` are numeric numpy arrays
        (``np.savez`` / ``np.load(allow_pickle=False)``).  Call after :meth:`drain` (pending models
        are not part of the state)."""
        if self._pending:
            raise RuntimeError("drain() the island before taking its state")
        algo = self.algorithm
        init = bool(algo.is_initialized)
        norm = algo.survival.norm
        n_var, n_obj = self.problem.n_var, len(self.names)
        arrays = {
            "pop_X": np.asarray(algo.pop.get("X"), np.float64) if init else np.empty((0, n_var)),
            "pop_F": np.asarray(algo.pop.get("F"), np.float64) if init else np.empty((0, n_obj)),
            "norm_ideal": np.asarray(norm.ideal_point, np.float64),
            "norm_worst": np.asarray(norm.worst_point, np.float64),
            "norm_nadir": np.empty(0) if norm.nadir_point is None else np.asarray(norm.nadir_point, np.float64),
            "norm_extreme": np.empty((0, n_obj)) if norm.extreme_points is None else np.asarray(norm.extreme_points, np.float64),
            "found": _charges(sorted(self.found)),
            "restart_rows": np.asarray(self.restart_rows, np.float64),
        }
        meta = {
            "format": STATE_FORMAT,
            "engine": self.engine,
            "config": asdict(self.config),
            "island": self.island,
            "seed": self.seed,
            "counters": self.c.to_json(),
            "algorithm": {
                "initialized": init,
                "n_iter": None if algo.n_iter is None else int(algo.n_iter),
                "rng": algo.random_state.bit_generator.state,
                "norm_nadir": norm.nadir_point is not None,
                "norm_extreme": norm.extreme_points is not None,
            },
        }
        extra_meta, extra_arrays = self._extra_state()
        meta["extra"] = extra_meta
        arrays.update(extra_arrays)
        return meta, arrays

    def _load_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.c = Counters.from_json(meta["counters"])
        if self.c.run_seed != self.seed:
            self.algorithm = self._new_algorithm(self.c.run_seed)
        algo, a = self.algorithm, meta["algorithm"]
        if a["initialized"]:
            algo._initialize()
            algo.pop = Population.new("X", np.asarray(arrays["pop_X"], np.float64), "F", np.asarray(arrays["pop_F"], np.float64))
            algo.is_initialized = True
            algo.n_iter = a["n_iter"]
        norm = algo.survival.norm
        norm.ideal_point = np.array(arrays["norm_ideal"], np.float64)
        norm.worst_point = np.array(arrays["norm_worst"], np.float64)
        norm.nadir_point = np.array(arrays["norm_nadir"], np.float64) if a["norm_nadir"] else None
        norm.extreme_points = np.array(arrays["norm_extreme"], np.float64) if a["norm_extreme"] else None
        algo.random_state.bit_generator.state = a["rng"]
        self.found = set(_keys(np.asarray(arrays["found"]).reshape(-1, N_CHARGES)))
        self.restart_rows = np.array(arrays["restart_rows"], np.float64).reshape(-1, self.problem.n_var)
        self._load_extra_state(meta.get("extra", {}), arrays)


class FastIsland(PaperIsland):
    """The paper's island plus integer operators, shaped objectives, refinement, tabu and the
    charge neighbourhood (see the module docstring)."""

    engine = "fast"

    def __init__(self, config: IslandConfig, data, *, island: int = 0, seed: int = 0) -> None:
        super().__init__(config, data, island=island, seed=seed)
        self.charge_only = np.array([n in CHARGE_ONLY for n in self.names])
        self.found_light: set[bytes] = set()  # light textures of the found models (tabu "texture")
        self.budget: dict[bytes, int] = {}  # LM iterations spent per charge assignment
        self.queue = np.empty((0, self.problem.n_var))  # neighbour genes waiting for evaluation
        free = np.arange(CONT.start, self.problem.n_var)
        if config.log10_lambda is not None:
            free = free[free != I_LAMBDA]
        self.free = free
        xl, xu = self.problem.xl, self.problem.xu
        self.h = 1e-4 * (xu[free] - xl[free])
        # which shaped residuals each free gene moves: a quark and a lepton coefficient share a
        # Jacobian probe (fn.PARAMETER_SECTORS; 29 probes for the 47 free genes instead of 47)
        gene = np.array([fn.PARAMETER_SECTORS[GENE_PARAMETERS[i]] for i in free])[:, None]
        col = np.array(self.shaper.sectors)[None, :]
        self.sparsity = (col != "charges") & ((gene == "both") | (gene == col))

    # ------------------------------------------------------------------ hooks
    def _make_nsga3(self) -> NSGA3:
        cfg = self.config
        return NSGA3(
            ref_dirs=self.ref_dirs,
            pop_size=cfg.pop_size,
            n_offsprings=cfg.n_offsprings,
            sampling=IntegerAwareSampling(),
            crossover=TripletCrossover(),
            mutation=IntegerAwareMutation(charge_rate=cfg.charge_rate),
            eliminate_duplicates=False,
        )

    def _objective_matrix(self, res: dict[str, np.ndarray], R: np.ndarray) -> np.ndarray:
        return self.objectives.with_targets(self.shaper.objectives(R), res)

    def _ask(self) -> np.ndarray | None:
        algo = self.algorithm  # after a run's first population: the same generation on arrays
        if algo.is_initialized and generation.supports(algo):
            return generation.offspring(algo, np.asarray(algo.pop.get("X"), np.float64))
        return super()._ask()

    def _tell(self, G: np.ndarray, F: np.ndarray) -> None:
        if self.algorithm.is_initialized and generation.supports(self.algorithm):
            generation.survive(self.algorithm, G, F)
        else:
            super()._tell(G, F)

    def _prepare_offspring(self, G: np.ndarray, initial: bool) -> np.ndarray:
        G = super()._prepare_offspring(G, initial)
        top = self.config.refine_top
        if not initial and len(self.queue):
            extra, self.queue = self.queue[:top], self.queue[top:]
            G = np.concatenate([G, extra])
        G[:, CHARGES] = np.rint(G[:, CHARGES])
        return G

    def _after_evaluation(self, G: np.ndarray, F: np.ndarray, R: np.ndarray) -> None:
        if self.config.refine_top > 0 and self.config.refine_iters > 0:
            idx = self._pick(G, F, R)
            if idx.size:
                self._refine(G, F, R, idx)

    def _before_tell(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        F = self._tabu(G, F)
        if self.found:  # penalise survivors whose assignment has just been found
            pop = self.algorithm.pop
            if pop is not None and len(pop):
                Fp = self._tabu(pop.get("X"), pop.get("F"))
                Fp = np.where(Fp >= TABU_PENALTY * 2, pop.get("F"), Fp)  # penalise once
                pop.set("F", Fp)
        return F

    def _conform(self, G: np.ndarray) -> np.ndarray:
        G = G.copy()
        G[:, CHARGES] = np.rint(G[:, CHARGES])
        return G

    def _penalised(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        return self._tabu(G, F)

    def _on_new_models(self, x: np.ndarray, met: np.ndarray) -> None:
        if self.config.tabu == "texture":
            self.found_light.update(_light_keys(x[:, :N_CHARGES]))
        if self.config.neighbours:
            self._queue_neighbours(x)

    def _is_tabu(self, charges: np.ndarray) -> np.ndarray:
        """The base's found assignments, and with ``tabu="texture"`` also every assignment of a
        found light texture."""
        hit = super()._is_tabu(charges)
        if self.config.tabu == "texture" and self.found_light:
            hit |= np.array([k in self.found_light for k in _light_keys(charges)], dtype=bool)
        return hit

    # ------------------------------------------------------------------ the levers
    def _queue_neighbours(self, x: np.ndarray) -> None:
        """Queue one-unit charge moves (``Q u d L e`` only) of newly valid models."""
        rng = self.algorithm.random_state
        g = np.repeat(encode(x), self.config.neighbours, axis=0)
        q = np.rint(g[:, CHARGES])
        col = rng.integers(0, 15, len(g))  # 0..14: Q u d L e
        q[np.arange(len(g)), col] += rng.choice((-1.0, 1.0), len(g))
        g[:, CHARGES] = np.clip(q, -9, 9)
        ok = (fn.exponents(g[:, CHARGES].astype(np.int64)) >= 0).all(axis=1)
        ok &= ~self._is_tabu(g[:, CHARGES])
        self.queue = np.concatenate([self.queue, g[ok]])[-20 * self.config.refine_top :]

    def _refine(self, G: np.ndarray, F: np.ndarray, R: np.ndarray, idx: np.ndarray) -> None:
        """Levenberg-Marquardt (:func:`.refine.levenberg_marquardt`) on the continuous genes of
        rows ``idx``, charges frozen; ``G``, ``F``, ``R`` are updated in place."""
        t = compute_clock()
        out = levenberg_marquardt(
            lambda X: self._evaluate(X)[::-1],  # (residuals, payload = objective matrix)
            G[idx], R[idx], payload=F[idx], free=self.free, step=self.h,
            lower=self.problem.xl, upper=self.problem.xu, iters=self.config.refine_iters, sparsity=self.sparsity,
        )
        G[idx], R[idx], F[idx] = out.x, out.r, out.payload
        self.c.refine_seconds += compute_clock() - t

    def _pick(self, G: np.ndarray, F: np.ndarray, R: np.ndarray) -> np.ndarray:
        """Rows to refine: charge-feasible, not found, budget left, smallest residual norm."""
        cfg = self.config
        ok = (F[:, self.charge_only] == 0).all(axis=1)
        charges = round_charges(G)
        keys = _keys(charges)
        ok &= ~self._is_tabu(charges)
        for i, k in enumerate(keys):
            if ok[i] and self.budget.get(k, 0) >= cfg.refine_budget:
                ok[i] = False
        cand = np.flatnonzero(ok)
        if cand.size == 0:
            return cand
        phi = (R[cand] ** 2).sum(axis=1)
        chosen, seen = [], set()
        for i in cand[np.argsort(phi)]:  # one row per charge assignment
            if keys[i] not in seen:
                seen.add(keys[i])
                chosen.append(i)
            if len(chosen) == cfg.refine_top:
                break
        for i in chosen:
            self.budget[keys[i]] = self.budget.get(keys[i], 0) + cfg.refine_iters
        if len(self.budget) > BUDGET_MEMORY:  # bounded memory: forget the oldest half
            for k in list(self.budget)[: BUDGET_MEMORY // 2]:
                del self.budget[k]
        return np.asarray(chosen, dtype=np.int64)

    def _tabu(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        if not self.found or self.config.tabu == "none":
            return F
        hit = self._is_tabu(round_charges(G))
        if hit.any():
            F = F.copy()
            F[hit] += TABU_PENALTY
        return F

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        keys = list(self.budget)  # insertion order: the oldest are forgotten first
        return {}, {
            "budget_charges": _charges(keys),
            "budget_iters": np.array([self.budget[k] for k in keys], dtype=np.int64),
            "queue": np.asarray(self.queue, np.float64),
        }

    def _load_extra_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        keys = _keys(np.asarray(arrays["budget_charges"]).reshape(-1, N_CHARGES))
        self.budget = dict(zip(keys, (int(v) for v in arrays["budget_iters"])))
        self.queue = np.array(arrays["queue"], np.float64).reshape(-1, self.problem.n_var)
        if self.config.tabu == "texture" and self.found:  # derived from the found set, not stored
            self.found_light = set(_light_keys(_charges(sorted(self.found))))


ENGINES: dict[str, type[PaperIsland]] = {"paper": PaperIsland, "fast": FastIsland}  # one per METHODS entry


def make_island(config: IslandConfig, data, *, island: int, seed: int) -> PaperIsland:
    """A new island of ``config.method``'s engine for data set ``data``."""
    return ENGINES[config.method](config, data, island=island, seed=seed)


def island_from_state(meta: dict, arrays: dict[str, np.ndarray], data) -> PaperIsland:
    """Rebuild an island from :meth:`PaperIsland.get_state` (the data set is passed, not stored).
    Raises ``ValueError`` (one line) for a state of another format or engine."""
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"not an island state of format {STATE_FORMAT} (got {got!r})")
    config = from_mapping(IslandConfig, meta["config"], where="island state")
    if meta.get("engine") != config.method:
        raise ValueError(f"island state of engine {meta.get('engine')!r} with method {config.method!r}")
    for k, a in arrays.items():
        if np.asarray(a).dtype.kind not in "biuf":
            raise ValueError(f"island state array {k!r} is not numeric ({np.asarray(a).dtype})")
    isl = make_island(config, data, island=meta["island"], seed=meta["seed"])
    isl._load_state(meta, arrays)
    return isl


__all__ = [
    "ENGINES", "FastIsland", "ISLAND_PRESETS", "IslandConfig", "METHODS", "ORDERINGS", "PaperIsland",
    "RESUMABLE", "STOP_REASONS", "Shaper", "island_from_state", "make_island", "restart_seed",
]

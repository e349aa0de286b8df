"""One NSGA-III island: plain pymoo ask/tell, no Ray.

Two configurations (:attr:`IslandConfig.method`):

``"paper"``
    The FN paper as published (sec. III.4): pymoo ``NSGA3`` defaults (SBX eta 30, PM eta 20,
    duplicate elimination), Das-Dennis directions with 2 partitions (153 for 17 objectives),
    population 156, SBX + PM on every gene, charges rounded at evaluation.

``"fast"`` (default)
    The same NSGA-III engine (Das-Dennis directions, reference-direction survival) plus the levers
    the paper names as future work:

    * integer-aware charge operators (:mod:`.operators`);
    * **continuous refinement**: every generation the ``refine_top`` most promising offspring
      (no negative exponents, charges not yet found valid, refinement budget left for their
      charge assignment) get ``refine_iters`` batched Levenberg-Marquardt steps on their
      continuous genes (Wilson coefficients, vevs, phase, Lambda) with the charges frozen; the
      improved genes go back into the population (Lamarckian).  Residuals: :class:`Shaper`;
      Jacobians by forward differences, all candidates in one batch;
    * **shaped objectives**: NSGA-III sees the 17 objectives as :class:`Shaper` residuals,
      which vanish exactly where the paper's losses vanish but keep a slope where the paper's
      mass and splitting losses saturate;
    * **tabu on found assignments**: once a charge assignment is valid its individuals get a
      large penalty added to every objective, so the population moves on instead of crowding
      around a model already stored;
    * **charge neighbourhood**: each new valid assignment queues ``neighbours`` copies with one
      charge of ``Q, u, d, L, e`` moved by one unit (never ``N``, whose charges cancel from the
      light-neutrino masses, and never a common shift, which leaves the physics unchanged), which
      are evaluated and refined with the next offspring;
    * no pymoo duplicate elimination and fewer reference directions (less overhead per
      generation), larger offspring batches.

Stopping (FN paper sec. III.4): ``max_generations``; ``target_valid`` unique valid models (unique
by charge assignment inside the island); ``patience`` generations without a better best loss
(the smallest sum of :class:`Shaper` residuals seen), a larger best number of satisfied
objectives, or a new valid model.  The wall-clock limit is the caller's.

>>> from rayflavor.physics import data
>>> isl = Island(IslandConfig(method="paper", pop_size=20, n_partitions=1), data.load("nufit-6.0+pdg-2024"), seed=1)
>>> isl.step(); isl.generation
1
"""

from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass

import numpy as np
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.population import Population
from pymoo.core.termination import NoTermination
from pymoo.util.ref_dirs import get_reference_directions

from rayflavor.methods.ga.operators import (
    IntegerAwareMutation,
    IntegerAwareSampling,
    TripletCrossover,
)
from rayflavor.methods.ga.problem import (
    CHARGES,
    CONT,
    I_LAMBDA,
    N_CHARGES,
    FNProblem,
    Objectives,
    Space,
    decode,
    round_charges,
)
from rayflavor.physics import fn

METHODS = ("fast", "paper")
ORDERINGS = ("any", "NO", "IO")
STOP_REASONS = ("max-generations", "target-valid", "patience", "time-limit", "interrupted", "no-offspring")
TABU_PENALTY = 1e6
CHARGE_ONLY = ("n_negative", "max_exponent")  # objectives that depend on the charges alone


@dataclass(frozen=True)
class IslandConfig:
    """Everything that defines an island's search (not its seed or index)."""

    method: str = "fast"
    regime: str = "up"
    ordering: str = "any"
    max_exponent: int | None = None
    mass_tolerance: float = 0.2
    log10_lambda: float | None = None
    pop_size: int | None = None  # None: 156 (paper) / 100 (fast)
    n_partitions: int | None = None  # Das-Dennis partitions; None: 2 (paper) / 1 (fast)
    n_offsprings: int | None = None  # None: pop_size (paper) / 2 pop_size (fast)
    max_generations: int = 1_000_000
    target_valid: int = 100
    patience: int = 500
    refine_top: int = 8
    refine_iters: int = 3
    refine_budget: int = 60  # LM iterations per charge assignment
    neighbours: int = 12
    charge_rate: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r} (use {' or '.join(METHODS)})")
        if self.ordering not in ORDERINGS:
            raise ValueError(f"unknown ordering {self.ordering!r} (use any, NO or IO)")
        Space(self.regime)  # validates the regime

    @property
    def paper(self) -> bool:
        return self.method == "paper"

    def resolved(self) -> dict:
        """The configuration with every default filled in (for scan.json)."""
        d = asdict(self)
        d["pop_size"] = self.pop_size or (156 if self.paper else 100)
        d["n_partitions"] = self.n_partitions if self.n_partitions is not None else (2 if self.paper else 1)
        d["n_offsprings"] = self.n_offsprings or (d["pop_size"] if self.paper else 2 * d["pop_size"])
        return d


class Shaper:
    """Shaped residuals: zero exactly where the paper's losses are zero, informative outside.

    The paper's mass loss ``C(m/m_0, 1-tol, 1+tol)`` saturates at ``1 - tol`` for a mass far
    too small (``m = 1e-10 m_0`` and ``m = 0.5 m_0`` score alike), and so do the splittings; a
    search there has no slope to follow.  The residuals used by the fast island are

    * CKM and PMNS quantities: ``loss / s`` with ``s`` the half width of the 3 sigma window;
    * ``dm21``, ``|dm3l|``: ``max(0, ln(lo/O), ln(O/hi)) / ln(hi/lo)`` (window of the predicted
      ordering), 50 for a non-positive or missing value;
    * each of the nine charged masses: ``max(0, ln((1-tol) m_0/m), ln(m/((1+tol) m_0))) / tol``;
    * ``n_negative``, ``max_exponent``: the loss; ``io``: ``max(0, ln(m3/m1))``.

    Non-finite rows get 1e3 everywhere.  :meth:`objectives` groups them like the paper's 17
    objectives (masses summed per quark generation) so that NSGA-III sees the same objective
    list with the same zero set.
    """

    def __init__(self, objectives: Objectives) -> None:
        d = objectives.data
        self.names = objectives.names
        self.tol = objectives.mass_tolerance
        self.window = {n: d.window(n, "NO") for n in fn.WINDOW_OBJECTIVES if n != "dm21"}
        self.dm21 = d.window("dm21", "NO")
        self.dm3l = {o: tuple(sorted(abs(v) for v in d.window("dm3l", o))) for o in ("NO", "IO")}
        self.m0 = {m: d.get(m).central for m in fn.MASSES}

    @staticmethod
    def _log_window(o: np.ndarray, lo, hi) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = np.maximum(np.maximum(np.log(lo / o), np.log(o / hi)), 0.0) / np.log(hi / lo)
        return np.where(o > 0, r, 50.0)

    def residuals(self, res: dict[str, np.ndarray]) -> np.ndarray:
        cols = []
        for n, (lo, hi) in self.window.items():
            cols.append(res[f"loss_{n}"] / (0.5 * (hi - lo)))
        cols.append(self._log_window(res["dm21"], *self.dm21))
        is_io = res["ordering"] == "IO"
        a = np.abs(res["dm3l"])
        cols.append(np.where(is_io, self._log_window(a, *self.dm3l["IO"]), self._log_window(a, *self.dm3l["NO"])))
        lt = np.log1p(-self.tol), np.log1p(self.tol)
        with np.errstate(all="ignore"):
            for m in fn.MASSES:
                lr = np.log(res[m] / self.m0[m])
                cols.append(np.where(res[m] > 0, np.maximum(np.maximum(lt[0] - lr, lr - lt[1]), 0.0) / self.tol, 50.0))
        cols.append(res["loss_n_negative"])
        if "io" in self.names:
            with np.errstate(all="ignore"):
                cols.append(np.maximum(np.log(res["nu_m3"] / res["nu_m1"]), 0.0))
        if "max_exponent" in self.names:
            cols.append(res["loss_max_exponent"])
        R = np.column_stack(cols).astype(np.float64)
        R[~np.isfinite(R).all(axis=1)] = 1e3
        R[res["ordering"] == "none", 9] += 1.0  # m1 < m3 < m2: no ordering, never valid
        return R

    def objectives(self, R: np.ndarray) -> np.ndarray:
        """Residuals grouped into the objective list (same order as ``names``)."""
        m = R[:, 10:19]  # u c t d s b e mu tau
        quark = [m[:, 0] + m[:, 3], m[:, 1] + m[:, 4], m[:, 2] + m[:, 5]]
        cols = [R[:, k] for k in range(10)] + quark + [m[:, 6], m[:, 7], m[:, 8]] + [R[:, k] for k in range(19, R.shape[1])]
        return np.column_stack(cols)


def _keys(charges: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.ascontiguousarray(charges, dtype=np.int8)]


@dataclass
class Counters:
    generation: int = 0
    n_evals: int = 0
    n_found: int = 0
    best_loss: float = float("inf")
    best_satisfied: int = 0
    last_improvement: int = 0
    stop_reason: str | None = None
    eval_seconds: float = 0.0
    refine_seconds: float = 0.0
    step_seconds: float = 0.0
    first_valid_evals: int | None = None
    first_valid_seconds: float | None = None


class Island:
    """An NSGA-III island stepped one generation at a time (see the module docstring)."""

    def __init__(self, config: IslandConfig, data, *, island: int = 0, seed: int = 0) -> None:
        self.config = config
        self.island = island
        self.seed = int(seed)
        r = config.resolved()
        self.space = Space(config.regime, config.log10_lambda)
        self.objectives = Objectives(
            data=data,
            mass_tolerance=config.mass_tolerance,
            force_io=config.ordering == "IO",
            max_exponent=config.max_exponent,
        )
        self.names = self.objectives.names
        self.shaper = Shaper(self.objectives)
        self.charge_only = np.array([n in CHARGE_ONLY for n in self.names])
        self.problem = FNProblem(self.space, self.objectives)
        ref_dirs = get_reference_directions("das-dennis", len(self.names), n_partitions=r["n_partitions"])
        if config.paper:
            algo = NSGA3(ref_dirs=ref_dirs, pop_size=r["pop_size"])
        else:
            algo = NSGA3(
                ref_dirs=ref_dirs,
                pop_size=r["pop_size"],
                n_offsprings=r["n_offsprings"],
                sampling=IntegerAwareSampling(),
                crossover=TripletCrossover(),
                mutation=IntegerAwareMutation(charge_rate=config.charge_rate),
                eliminate_duplicates=False,
            )
        algo.setup(self.problem, seed=self.seed, termination=NoTermination(), verbose=False)
        self.algorithm = algo
        self.c = Counters()
        self.found: set[bytes] = set()
        self.budget: dict[bytes, int] = {}
        self.queue = np.empty((0, self.problem.n_var))
        self._pending: list[dict[str, np.ndarray]] = []
        free = np.arange(CONT.start, self.problem.n_var)
        if config.log10_lambda is not None:
            free = free[free != I_LAMBDA]
        self.free = free
        xl, xu = self.problem.xl, self.problem.xu
        self.h = 1e-4 * (xu[free] - xl[free])

    # ------------------------------------------------------------------ evaluation
    @property
    def generation(self) -> int:
        return self.c.generation

    def _evaluate(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective matrix ``F`` and shaped residuals ``R`` of gene rows; harvests valid models."""
        t = time.perf_counter()
        x = decode(G, self.space)
        res = self.objectives.evaluate(x)
        R = self.shaper.residuals(res)
        F = self.objectives.matrix(res) if self.config.paper else self.shaper.objectives(R)
        self.c.n_evals += len(G)
        self.c.eval_seconds += time.perf_counter() - t
        self._harvest(x, res)
        self._track(R, res)
        return F, R

    def _valid(self, res: dict[str, np.ndarray]) -> np.ndarray:
        ok = np.asarray(res["valid"], dtype=bool)
        if self.config.ordering != "any":
            ok = ok & (res["ordering"] == self.config.ordering)
        return ok

    def _harvest(self, x: np.ndarray, res: dict[str, np.ndarray]) -> None:
        ok = np.flatnonzero(self._valid(res))
        if ok.size == 0:
            return
        keys = _keys(x[ok, :N_CHARGES])
        room = self.config.target_valid - self.c.n_found  # never overshoot the target
        new = []
        for i, k in zip(ok, keys):
            if len(new) >= room:
                break
            if k not in self.found:
                self.found.add(k)
                new.append(i)
        if not new:
            return
        new = np.asarray(new)
        if self.c.first_valid_evals is None:
            self.c.first_valid_evals = self.c.n_evals
            self.c.first_valid_seconds = self.c.step_seconds
        self.c.n_found += len(new)
        self.c.last_improvement = self.c.generation
        row = {name: x[new, k] for k, name in enumerate(fn.PARAMETERS)}
        for k in fn.CHARGES:
            row[k] = row[k].astype(np.int64)
        row.update({k: np.asarray(v)[new] for k, v in res.items()})
        row["generation"] = np.full(len(new), self.c.generation, dtype=np.int64)
        row["found_at"] = np.full(len(new), time.time())
        self._pending.append(row)
        if not self.config.paper and self.config.neighbours:
            self._queue_neighbours(x[new])

    def _track(self, R: np.ndarray, res: dict[str, np.ndarray]) -> None:
        sat = int(np.max(res["n_satisfied"])) if len(R) else 0
        loss = float(np.min(R.sum(axis=1))) if len(R) else float("inf")
        improved = False
        if sat > self.c.best_satisfied:
            self.c.best_satisfied, improved = sat, True
        if loss < self.c.best_loss * (1 - 1e-12):
            self.c.best_loss, improved = loss, True
        if improved:
            self.c.last_improvement = self.c.generation

    def _queue_neighbours(self, x: np.ndarray) -> None:
        """Queue one-unit charge moves (``Q u d L e`` only) of newly valid models."""
        from rayflavor.methods.ga.problem import encode

        rng = self.algorithm.random_state
        g = np.repeat(encode(x), self.config.neighbours, axis=0)
        q = np.rint(g[:, CHARGES])
        col = rng.integers(0, 15, len(g))  # 0..14: Q u d L e
        q[np.arange(len(g)), col] += rng.choice((-1.0, 1.0), len(g))
        g[:, CHARGES] = np.clip(q, -9, 9)
        ok = (fn.exponents(g[:, CHARGES].astype(np.int64)) >= 0).all(axis=1)
        keys = _keys(g[:, CHARGES])
        ok &= np.array([k not in self.found for k in keys], dtype=bool)
        self.queue = np.concatenate([self.queue, g[ok]])[-20 * self.config.refine_top :]

    # ------------------------------------------------------------------ refinement
    def _refine(self, G: np.ndarray, F: np.ndarray, R: np.ndarray, idx: np.ndarray) -> None:
        """Levenberg-Marquardt on the continuous genes of rows ``idx`` (in place)."""
        t = time.perf_counter()
        xl, xu = self.problem.xl, self.problem.xu
        free, h = self.free, self.h
        P = len(free)
        mus = np.array([1e-3, 1e-1, 1e1])
        g = G[idx].copy()
        r = R[idx].copy()
        phi = (r**2).sum(axis=1)
        K = len(idx)
        for _ in range(self.config.refine_iters):
            probe = np.repeat(g, P, axis=0).reshape(K, P, -1)
            probe[:, np.arange(P), free] += h
            _, Rp = self._evaluate(probe.reshape(K * P, -1))
            J = (Rp.reshape(K, P, -1) - r[:, None, :]) / h[None, :, None]  # (K,P,m)
            A = J @ J.transpose(0, 2, 1)  # (K,P,P)
            b = -(J @ r[:, :, None])[:, :, 0]  # (K,P)
            d = np.diagonal(A, axis1=1, axis2=2)
            trials = []
            for mu in mus:
                M = A + mu * (np.eye(P)[None] * (d[:, None, :] + 1e-6))
                try:
                    step = np.linalg.solve(M, b[:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    step = np.zeros_like(b)
                step = np.where(np.isfinite(step), step, 0.0)
                gt = g.copy()
                gt[:, free] = np.clip(g[:, free] + step, xl[free], xu[free])
                trials.append(gt)
            T = np.concatenate(trials)  # (len(mus)*K, n_var)
            Ft, rt = self._evaluate(T)
            phit = (rt**2).sum(axis=1).reshape(len(mus), K)
            best = np.argmin(phit, axis=0)
            better = phit[best, np.arange(K)] < phi
            sel = best * K + np.arange(K)
            g[better] = T[sel[better]]
            r[better] = rt[sel[better]]
            phi[better] = phit[best, np.arange(K)][better]
            F[idx[better]] = Ft[sel[better]]
            R[idx[better]] = rt[sel[better]]
            if not better.any():
                break
        G[idx] = g
        self.c.refine_seconds += time.perf_counter() - t

    def _pick(self, G: np.ndarray, F: np.ndarray, R: np.ndarray) -> np.ndarray:
        """Rows to refine: charge-feasible, not found, budget left, smallest residual norm."""
        cfg = self.config
        ok = (F[:, self.charge_only] == 0).all(axis=1)
        keys = _keys(round_charges(G))
        for i, k in enumerate(keys):
            if ok[i] and (k in self.found or self.budget.get(k, 0) >= cfg.refine_budget):
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
        if len(self.budget) > 200_000:  # bounded memory: forget the oldest half
            for k in list(self.budget)[:100_000]:
                del self.budget[k]
        return np.asarray(chosen, dtype=np.int64)

    def _tabu(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        if not self.found:
            return F
        hit = np.array([k in self.found for k in _keys(round_charges(G))], dtype=bool)
        if hit.any():
            F = F.copy()
            F[hit] += TABU_PENALTY
        return F

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one generation (the first call evaluates the initial population)."""
        t0 = time.perf_counter()
        algo = self.algorithm
        off = algo.ask()
        if off is None or len(off) == 0:
            self.c.stop_reason = "no-offspring"
            return
        G = off.get("X").astype(np.float64)
        if not self.config.paper and algo.is_initialized and len(self.queue):
            extra, self.queue = self.queue[: self.config.refine_top], self.queue[self.config.refine_top :]
            G = np.concatenate([G, extra])
        if not self.config.paper:
            G[:, CHARGES] = np.rint(G[:, CHARGES])
        F, R = self._evaluate(G)
        if not self.config.paper and self.config.refine_top > 0:
            idx = self._pick(G, F, R)
            if idx.size:
                self._refine(G, F, R, idx)
        if not self.config.paper:
            F = self._tabu(G, F)
            if self.found:  # penalise survivors whose assignment has just been found
                pop = algo.pop
                if pop is not None and len(pop):
                    Fp = self._tabu(pop.get("X"), pop.get("F"))
                    Fp = np.where(Fp >= TABU_PENALTY * 2, pop.get("F"), Fp)  # penalise once
                    pop.set("F", Fp)
        infills = Population.new("X", G, "F", F)
        algo.tell(infills=infills)
        self.c.generation += 1
        self.c.step_seconds += time.perf_counter() - t0
        self._check_stop()

    def _check_stop(self) -> None:
        cfg, c = self.config, self.c
        if c.stop_reason is not None:
            return
        if c.n_found >= cfg.target_valid:
            c.stop_reason = "target-valid"
        elif c.generation >= cfg.max_generations:
            c.stop_reason = "max-generations"
        elif c.generation - c.last_improvement >= cfg.patience:
            c.stop_reason = "patience"

    @property
    def done(self) -> bool:
        return self.c.stop_reason is not None

    def drain(self) -> dict[str, np.ndarray] | None:
        """The valid models found since the last call, as columns (``None`` if there are none)."""
        if not self._pending:
            return None
        rows, self._pending = self._pending, []
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def status(self) -> dict:
        """Counters for progress reports."""
        c = self.c
        return {
            "island": self.island,
            "seed": self.seed,
            "generation": c.generation,
            "n_evals": c.n_evals,
            "n_valid": c.n_found,
            "best_satisfied": c.best_satisfied,
            "n_objectives": len(self.names),
            "best_loss": c.best_loss,
            "stop_reason": c.stop_reason,
            "step_seconds": c.step_seconds,
            "eval_seconds": c.eval_seconds,
            "refine_seconds": c.refine_seconds,
            "first_valid_seconds": c.first_valid_seconds,
            "first_valid_evals": c.first_valid_evals,
        }

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict:
        """Everything needed to continue exactly here: population, RNG, counters, seen sets.

        Call after :meth:`drain` (pending models are not part of the state)."""
        if self._pending:
            raise RuntimeError("drain() the island before taking its state")
        algo = self.algorithm
        pop = algo.pop
        found = np.frombuffer(b"".join(sorted(self.found)), dtype=np.int8).reshape(-1, N_CHARGES)
        return {
            "format": "rayflavor-island/1",
            "config": asdict(self.config),
            "island": self.island,
            "seed": self.seed,
            "initialized": bool(algo.is_initialized),
            "X": None if pop is None or not algo.is_initialized else pop.get("X"),
            "F": None if pop is None or not algo.is_initialized else pop.get("F"),
            "n_iter": algo.n_iter,
            "rng": algo.random_state.bit_generator.state,
            "norm": pickle.dumps(algo.survival.norm),
            "counters": asdict(self.c),
            "found": found,
            "budget": (list(self.budget.keys()), list(self.budget.values())),
            "queue": self.queue,
        }

    @classmethod
    def from_state(cls, state: dict, data) -> "Island":
        """Rebuild an island from :meth:`get_state` (the data set is passed, not stored)."""
        isl = cls(IslandConfig(**state["config"]), data, island=state["island"], seed=state["seed"])
        algo = isl.algorithm
        if state["initialized"]:
            algo._initialize()
            algo.pop = Population.new("X", state["X"], "F", state["F"])
            algo.is_initialized = True
            algo.n_iter = state["n_iter"]
            algo.survival.norm = pickle.loads(state["norm"])
        algo.random_state.bit_generator.state = state["rng"]
        isl.c = Counters(**state["counters"])
        isl.found = set(_keys(state["found"]))
        keys, vals = state["budget"]
        isl.budget = dict(zip(keys, vals))
        isl.queue = np.asarray(state["queue"], dtype=np.float64).reshape(-1, isl.problem.n_var)
        return isl


__all__ = ["Island", "IslandConfig", "METHODS", "ORDERINGS", "STOP_REASONS", "Shaper"]

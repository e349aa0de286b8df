"""An independent reference of a solution set: nested sampling down to it, then a constrained walk.

The diffusion chain is judged against what an ideal sampler would give: points **uniform under
the prior, restricted to the solution set** S = {x in the prior box : loss(x) = 0} (for the
seesaw: the prior of eqs. 2.17-2.18 and every label inside its 3 sigma window). S holds a tiny
fraction of the prior (the diffusion paper's network needed 3x10^7 samples for 104 solutions), so
plain rejection sampling from the prior is hopeless. This module reaches it without any network:

1. **Nested sampling to the set** (:func:`nested_to_set`). ``n_live`` prior points; each iteration
   the ``k`` points with the largest loss are replaced by points drawn from the prior restricted
   to ``loss < loss*`` (the largest loss kept), each by a constrained random walk started at a
   random surviving point. The live points stay (approximately) uniform on the shrinking contour,
   so separated modes keep live points in proportion to their prior volume -- the property a
   chain started from the network's own solutions lacks. The log prior volume inside the contour
   shrinks by ``ln(1 - k/n_live)`` per iteration; when every live point has loss 0 the run stops,
   and ``log_volume`` estimates ln(prior fraction of S).
2. **Constrained random walk within S** (:func:`walk`, :func:`constrained_chains`). Many chains
   start from the live points; a Gaussian step (shaped by the live points' covariance) is accepted
   exactly when the new point stays in the box and in S. For a uniform target and a symmetric
   proposal this Metropolis rule samples S uniformly; per-prediction split-R-hat and effective
   sample size (:func:`split_rhat`, :func:`ess`) say whether the chains mixed. An optional
   ``move`` that leaves the target invariant and maps S onto itself is applied before every kept
   state; for the seesaw, :func:`seesaw_orbit_move` redraws the heavy masses along the exact
   symmetries of m_nu, the directions the walk alone barely moves.

Periodic coordinates (phases) wrap around instead of being rejected at the box faces, which keeps
the walk symmetric. The step is adapted only while the walkers are being replaced (nested part)
or during a burn-in; the kept samples use a fixed step, so detailed balance holds for them.

Everything is vectorised over walkers: one ``loss`` call evaluates all proposals of a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rayflavor.settings_model import MAX_SEED, check, seed_setting, setting

Loss = Callable[[np.ndarray], np.ndarray]  # (N, D) -> (N,), >= 0, 0 exactly on the set, inf if invalid


@dataclass(frozen=True)
class Box:
    """The prior box: uniform on ``[lower, upper]`` per coordinate, ``periodic`` ones wrap, and an
    optional extra constraint ``inside(x) -> mask`` (e.g. |M1| <= |M2|)."""

    lower: np.ndarray
    upper: np.ndarray
    periodic: np.ndarray  # bool per coordinate
    inside: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower

    def wrap(self, x: np.ndarray) -> np.ndarray:
        if not self.periodic.any():
            return x
        y = x.copy()
        p = self.periodic
        y[:, p] = self.lower[p] + np.mod(x[:, p] - self.lower[p], self.width[p])
        return y

    def contains(self, x: np.ndarray) -> np.ndarray:
        ok = np.all((x >= self.lower) & (x <= self.upper), axis=1)
        if self.inside is not None:
            ok &= np.asarray(self.inside(x), dtype=bool)
        return ok


@dataclass
class NestedResult:
    """Live points at the end of :func:`nested_to_set` and what it took."""

    points: np.ndarray  # (n_live, D)
    loss: np.ndarray  # (n_live,)
    log_volume: float  # ln(prior volume inside the final contour); at loss 0: ln(prior fraction of S)
    iterations: int
    evaluations: int
    reached: bool  # every live point is in the set
    acceptance: float  # mean acceptance of the last iterations' walks

    def summary(self) -> str:
        state = "reached the set" if self.reached else f"stopped at loss* {self.loss.max():.3g}"
        return (f"nested sampling: {state} after {self.iterations} iterations, {self.evaluations} evaluations; "
                f"ln(prior fraction) {self.log_volume:.2f} (fraction {math.exp(self.log_volume):.3g}), "
                f"walk acceptance {self.acceptance:.2f}")


def _proposal_chol(points: np.ndarray, box: Box) -> np.ndarray:
    """Cholesky factor of the live points' covariance (regularised by the box scale)."""
    d = points.shape[1]
    if len(points) > d + 1:
        c = np.cov(points, rowvar=False)
    else:
        c = np.diag((box.width / 10) ** 2)
    c = c + np.diag((1e-9 * box.width) ** 2 + 1e-300)
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return np.diag(np.sqrt(np.clip(np.diag(c), 1e-300, None)))


def _loss_in_box(points: np.ndarray, loss: Loss, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """(which points lie in the box, their ``loss``: ``inf`` outside the box, where it is not evaluated)."""
    ok = box.contains(points)
    out = np.full(len(points), np.inf)
    if ok.any():
        out[ok] = loss(points[ok])
    return ok, out


def walk(x: np.ndarray, fx: np.ndarray, threshold: float | np.ndarray, loss: Loss, box: Box, chol: np.ndarray,
         scale: float, steps: int, rng: np.random.Generator, *,
         strict: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """``steps`` Metropolis steps of every walker within ``{loss < threshold}`` (``<=`` when not
    ``strict``) and the box: (points, their loss, acceptance rate)."""
    x, fx = x.copy(), fx.copy()
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), fx.shape)
    accepted = 0
    for _ in range(steps):
        prop = box.wrap(x + scale * rng.standard_normal(x.shape) @ chol.T)
        ok, fp = _loss_in_box(prop, loss, box)
        acc = ok & ((fp < thr) if strict else (fp <= thr))
        x[acc], fx[acc] = prop[acc], fp[acc]
        accepted += int(acc.sum())
    return x, fx, accepted / max(1, steps * len(x))


def nested_to_set(loss: Loss, sample_prior: Callable[[int, np.random.Generator], np.ndarray], box: Box, *,
                  n_live: int, k: int, steps: int, max_iterations: int = 5000,
                  rng: np.random.Generator, log: Callable[[str], None] | None = None,
                  log_every: int = 25) -> NestedResult:
    """Nested sampling from the prior until every live point lies in the set (module docstring).

    ``k`` points are replaced per iteration (``k / n_live`` sets the compression per iteration and
    the error of ``log_volume``); each replacement walks ``steps`` steps with an adaptive scale
    (target acceptance 0.25).
    """
    if not 0 < k < n_live:
        raise ValueError("need 0 < k < n_live")
    x = sample_prior(n_live, rng)
    fx = np.asarray(loss(x), dtype=np.float64)
    evaluations = n_live
    log_vol, scale, acc = 0.0, 1.0, 0.0
    shrink = math.log1p(-k / n_live)
    it = 0
    for it in range(1, max_iterations + 1):
        order = np.argsort(fx, kind="stable")
        worst = order[-k:]
        threshold = fx[order[-k - 1]] if fx[order[-k - 1]] > 0 else 0.0
        if fx[order[-1]] <= 0:  # every live point in the set
            it -= 1
            break
        if threshold <= 0:  # the set holds more than n_live - k live points: finish on its share
            n_in = int(np.sum(fx <= 0))
            log_vol += math.log(n_in / n_live)
            bad = np.flatnonzero(fx > 0)
            starts = rng.choice(np.flatnonzero(fx <= 0), len(bad))
            chol = _proposal_chol(x[fx <= 0], box)
            y, fy, acc = walk(x[starts], fx[starts], 0.0, loss, box, chol, scale, steps, rng, strict=False)
            evaluations += steps * len(bad)
            x[bad], fx[bad] = y, fy
            break
        log_vol += shrink
        keep = order[:-k]
        starts = rng.choice(keep, k)
        chol = _proposal_chol(x[keep], box)
        y, fy, acc = walk(x[starts], fx[starts], threshold, loss, box, chol, scale, steps, rng)
        evaluations += steps * k
        # a walker that never moved is a copy of its start; it is still a valid (if correlated) draw
        x[worst], fx[worst] = y, fy
        scale *= math.exp(np.clip(acc - 0.25, -0.5, 0.5) * 2)
        scale = float(np.clip(scale, 1e-4, 10.0))
        if log is not None and it % log_every == 0:
            log(f"nested: iteration {it}, loss* {threshold:.3g}, ln(volume) {log_vol:.2f}, acceptance {acc:.2f}")
    reached = bool(np.all(fx <= 0))
    return NestedResult(x, fx, log_vol, it, evaluations, reached, acc)


@dataclass
class Chains:
    """States of ``n_chains`` constrained random walks: ``samples[t, c]`` (draws, chains, D)."""

    samples: np.ndarray
    acceptance: float
    scale: float

    def flat(self) -> np.ndarray:
        return self.samples.reshape(-1, self.samples.shape[-1])


Move = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # (N, D) -> (N, D), leaves the target invariant


def constrained_chains(starts: np.ndarray, loss: Loss, box: Box, *, draws: int, thin: int,
                       burn: int, rng: np.random.Generator, target: float = 0.25,
                       move: Move | None = None) -> Chains:
    """Uniform samples of the set {loss = 0} by random walks started in it (module docstring).

    During ``burn`` steps the common step scale adapts toward ``target`` acceptance; then it is
    fixed and ``draws`` states per chain are kept, one every ``thin`` steps. ``move`` (optional):
    a kernel that leaves the uniform target invariant and maps the set onto itself, e.g. a draw
    along exact symmetries of the loss; it is applied before every kept state, and a row it took
    out of the set or the box (rounding at a window's edge) keeps its old state.
    """
    f0 = np.asarray(loss(starts), dtype=np.float64)
    if np.any(f0 > 0) or not np.all(box.contains(starts)):
        raise ValueError("every chain must start inside the set and the box")
    chol = _proposal_chol(starts, box)
    x, fx, scale = starts.copy(), f0, 0.5
    for _ in range(max(1, burn // 20)):
        x, fx, acc = walk(x, fx, 0.0, loss, box, chol, scale, 20, rng, strict=False)
        scale = float(np.clip(scale * math.exp(2 * (acc - target)), 1e-5, 10.0))
    chol = _proposal_chol(x, box)  # shape from the burnt-in states, then fixed
    kept, accs = [], []
    for _ in range(draws):
        x, fx, acc = walk(x, fx, 0.0, loss, box, chol, scale, thin, rng, strict=False)
        accs.append(acc)
        if move is not None:
            y = move(x, rng)
            ok, fy = _loss_in_box(y, loss, box)
            ok &= fy <= 0
            x[ok], fx[ok] = y[ok], fy[ok]
        kept.append(x.copy())
    return Chains(np.stack(kept), float(np.mean(accs)), scale)


# ---------------------------------------------------------------------------- mixing diagnostics


def split_rhat(chains: np.ndarray) -> float:
    """Split-R-hat (Gelman et al., BDA3 eq. 11.4 on half-chains) of one quantity, ``chains[t, c]``.

    Close to 1 when the chains sample the same distribution; well above 1 (say > 1.05) when they
    disagree, e.g. chains stuck in different modes.

    >>> rng = np.random.default_rng(0)
    >>> round(split_rhat(rng.standard_normal((500, 8))), 2)
    1.0
    """
    y = np.asarray(chains, dtype=np.float64)
    n = y.shape[0] // 2
    if n < 2:
        return float("nan")
    halves = np.concatenate([y[:n], y[n:2 * n]], axis=1)
    means = halves.mean(axis=0)
    w = halves.var(axis=0, ddof=1).mean()
    b = n * means.var(ddof=1)
    if w == 0:
        return 1.0 if b == 0 else float("inf")
    var_plus = (n - 1) / n * w + b / n
    return float(np.sqrt(var_plus / w))


def ess(chains: np.ndarray) -> float:
    """Effective sample size of one quantity over all chains ``chains[t, c]`` (Geyer's initial
    positive sequence on the chain-averaged autocorrelation, as in BDA3 sec. 11.5).

    >>> rng = np.random.default_rng(1)
    >>> 3000 < ess(rng.standard_normal((1000, 4))) < 5000
    True
    """
    y = np.asarray(chains, dtype=np.float64)
    t, m = y.shape
    if t < 4:
        return float(t * m)
    yc = y - y.mean(axis=0)
    f = np.fft.rfft(yc, n=2 * t, axis=0)
    acov = np.fft.irfft(f * np.conj(f), axis=0)[:t] / t  # (t, m)
    w = acov[0].mean()
    if w == 0:
        return float(t * m)
    means = y.mean(axis=0)
    var_plus = (t - 1) / t * w + (means.var(ddof=1) if m > 1 else 0.0)
    rho = 1 - (w - acov.mean(axis=1)) / var_plus
    rho[0] = 1.0
    total, prev = 0.0, np.inf
    for k in range(0, t - 1, 2):
        pair = rho[k] + rho[k + 1]
        if pair < 0:
            break
        pair = min(pair, prev)
        total += pair
        prev = pair
    tau = max(-1 + 2 * total, 1e-12)
    return float(t * m / tau)


def task_ess(values: np.ndarray, task: np.ndarray) -> float:
    """Effective sample size of one quantity from the spread of its mean between independent
    tasks (batch means): ``T var(x) / var(task means)``, capped at the number of values.

    Unlike :func:`ess`, which reads autocorrelations within chains and cannot see chains that
    all sit near where their task's descent left them, this counts what independent runs agree
    on. With few tasks it is itself noisy (``T - 1`` degrees of freedom).

    >>> rng = np.random.default_rng(2)
    >>> 1000 < task_ess(rng.standard_normal(4000), np.repeat(np.arange(16), 250)) < 8000
    True
    """
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(task)
    ids = np.unique(t)
    if len(ids) < 2:
        return float("nan")
    means = np.array([v[t == i].mean() for i in ids])
    between = means.var(ddof=1)
    if between == 0:
        return float(len(v))
    return float(min(len(v), len(ids) * v.var() / between))


def circular_components(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of an angle [rad]: the diagnostics of a circular quantity use both."""
    a = np.asarray(angle, dtype=np.float64)
    return np.cos(a), np.sin(a)


# ---------------------------------------------------------------------------- the seesaw's solution set


#: how a reference is drawn (``ReferenceSettings.method``)
METHODS = ("nested", "importance")


@dataclass(frozen=True)
class ReferenceSettings:
    """How the reference is built; the defaults finish in a few minutes on a 2-core laptop."""

    tasks: int = setting(16, lo=1, hi=10**5, option=True, help="Independent nested-sampling runs (Ray tasks, one core each).")
    n_live: int = setting(1000, lo=10, hi=10**7, option=True, help="Live points per run; also the number of chains per run.")
    k: int = setting(100, lo=1, hi=10**7, help="Live points replaced per nested iteration (below n_live).")
    steps: int = setting(60, lo=1, hi=10**5, option=True, help="Random-walk steps per replaced live point.")
    draws: int = setting(50, lo=2, hi=10**6, option=True, help="States kept per chain after the descent.")
    thin: int = setting(20, lo=1, hi=10**5, option=True, help="Walk steps between kept states.")
    burn: int = setting(200, lo=0, hi=10**6, help="Walk steps before keeping (step-size adaptation).")
    seed: int = seed_setting(0)
    ordering: str = setting("NO", choices=("NO", "IO"), option=True, help="Neutrino mass ordering of the labels.")
    data: str = setting("nufit-6.0-sk", help="Experimental data set: a shipped name or the path of a data file.")
    #: 0 = the walk alone (how the chain's teacher is built, as measured)
    orbits: int = setting(1, lo=0, hi=10**4, option=True,
                          help="Sweeps of orbit resampling (seesaw_orbit_move) before every kept state: the heavy "
                               "masses redrawn along the exact symmetries of m_nu from the prior (no observable "
                               "changes); 0 = the walk alone.")
    #: task ``i`` draws from ``default_rng([seed, i])`` (stream 0, a reference) or
    #: ``default_rng([seed, i, stream])``; a diffusion chain's teacher uses stream 1, so it never
    #: shares draws with a reference it is later compared against, whatever the seeds.
    stream: int = setting(0, lo=0, hi=MAX_SEED, help="Random stream (the chain's teacher uses 1).")
    #: "nested": nested sampling + constrained walks (this module); "importance": the exact
    #: importance sampler in Casas-Ibarra coordinates (:mod:`.reference_importance`, NO only), whose
    #: weighted draws are resampled into an unweighted set of Kish-ESS rows
    method: str = setting("nested", choices=METHODS, option=True,
                          help="nested: nested sampling and constrained random walks; importance: the exact "
                               "importance sampler in Casas-Ibarra coordinates (NO only).")
    #: importance: proposals per task (about 5x10^5 per CPU-second; Kish ESS ~0.28 % of them)
    proposals: int = setting(2_000_000, lo=1, hi=10**10, help="importance: proposals per task.")
    #: importance: cut of the imaginary parts of R's complex angles (the weight beyond it is
    #: measured from the outermost shells and written to reference.json)
    im_z_max: float = setting(4.0, lo=0.0, lo_open=True, hi=50.0,
                              help="importance: cut of |Im z| of the complex angles of R.")
    #: importance: the Yukawa bound of the drawn set in units of the prior's; 1 is the prior (a
    #: reference must keep it); > 1 continues the prior's density past the box's faces (a teacher
    #: for a network that smears its density across them; docs/experiments.md#2026-12-07-network-levers)
    box: float = setting(1.0, lo=1.0, hi=2.0,
                         help="importance: Yukawa bound of the drawn set in units of the prior box's (1: the "
                              "prior; > 1: its density continued past the faces, for a teacher).")

    def __post_init__(self) -> None:
        check(self)
        if self.k >= self.n_live:
            raise ValueError("k must be smaller than n_live")
        if self.method == "importance" and self.ordering != "NO":
            raise ValueError("method importance samples normal ordering only (ordering NO)")
        if self.box != 1.0 and self.method != "importance":
            raise ValueError(f"box ({self.box:g}) is a setting of method importance; nested sampling draws inside the prior box")


def seesaw_target(data_name: str | None = None, ordering: str = "NO") -> tuple[Loss, Callable, Box]:
    """(loss, prior sampler, box) of the seesaw's solution set under the paper's prior.

    Box: eqs. 2.17-2.18 (:data:`rayflavor.physics.seesaw.PRIOR`) with ``|M1| <= |M2|`` as
    ``seesaw.sample_prior`` imposes it; the two phases ``arg_m1``, ``arg_m2`` are periodic. Loss:
    the distance to the 3 sigma box of the labels (:func:`rayflavor.methods.diffusion.selection.window_miss`
    over ``seesaw.SOLUTION_TERMS``), 0 exactly for the rows ``seesaw.evaluate`` flags ``solution``.
    """
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    ds = physics_data.load(data_name or seesaw.DEFAULT_DATA)
    windows = seesaw.solution_windows(ds, ordering)
    lo, hi = np.asarray(windows, dtype=np.float64).T
    half = 0.5 * (hi - lo)

    def loss(x: np.ndarray) -> np.ndarray:
        res = seesaw.evaluate(x, ordering=ordering, data=ds)
        v = np.stack([np.asarray(res[c], dtype=np.float64) for c in seesaw.SOLUTION_TERMS], axis=1)
        d = np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0)
        with np.errstate(invalid="ignore"):
            m = np.sum((d / half) ** 2, axis=1)
        return np.where(np.isfinite(m), m, np.inf)

    return loss, seesaw.sample_prior, seesaw_box()


def seesaw_orbit_move(sweeps: int = 1) -> Move:
    """The seesaw's orbit resampling as a chain move: ``sweeps`` prior-exact sweeps along the exact
    symmetries of m_nu (:func:`rayflavor.physics.seesaw_symmetry.resample_orbits`). It changes no
    observable, so it maps the solution set onto itself, and it leaves the prior invariant, so also
    the uniform target on the set; the walk alone moves the heavy masses only ~0.5 % of the box per
    step, this redraws them along the orbits at every kept state."""
    from rayflavor.physics import seesaw_symmetry

    return lambda x, rng: seesaw_symmetry.resample_orbits(x, rng, sweeps)


def seesaw_box() -> Box:
    """The paper's prior box (eqs. 2.17-2.18, :data:`rayflavor.physics.seesaw.PRIOR`) over the 23
    parameters, with ``|M1| <= |M2|`` and the phases ``arg_m1``, ``arg_m2`` periodic."""
    from rayflavor.physics import seesaw

    p = seesaw.PRIOR
    lower = np.array([p["y"][0]] * 18 + [p["mass_ratio"][0]] * 2 + [p["log10_h2_over_m3_ev"][0]] + [p["arg"][0]] * 2)
    upper = np.array([p["y"][1]] * 18 + [p["mass_ratio"][1]] * 2 + [p["log10_h2_over_m3_ev"][1]] + [p["arg"][1]] * 2)
    periodic = np.zeros(len(seesaw.PARAMETERS), dtype=bool)
    periodic[[seesaw.PARAMETERS.index("arg_m1"), seesaw.PARAMETERS.index("arg_m2")]] = True
    return Box(lower, upper, periodic, inside=lambda x: x[:, 18] <= x[:, 19])


__all__ = ["Box", "Chains", "NestedResult", "ReferenceSettings", "circular_components", "constrained_chains", "ess",
           "nested_to_set", "seesaw_box", "seesaw_orbit_move", "seesaw_target", "split_rhat", "task_ess", "walk"]

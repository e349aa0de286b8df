"""An exact sampler of the seesaw solution set: importance sampling in Casas-Ibarra coordinates.

Target: the paper's prior (uniform in its 23 parameters on the box of eqs. 2.17-2.18 with
``|M1| <= |M2|``, :func:`rayflavor.physics.seesaw.sample_prior`) restricted to the 3 sigma set.
In Casas-Ibarra coordinates (:mod:`rayflavor.physics.casas_ibarra`) the 3 sigma windows of
dm21 and dm31 are intervals and the nine |U| windows depend on four coordinates only, so a box
proposal there lands in the set ~2 % of the time (the rest leave the prior's Yukawa box), where
the prior's own draws do 2x10^-14 of the time.

**Sampled coordinates** ``x`` (21 real + a sign), normal ordering:

* light (12): ``log10 m1``, ``log10 dm21``, ``log10 dm31`` [eV, eV^2] of the ascending Takagi
  values; ``s12^2 = sin^2 t12``, ``s13^2``, ``s23^2``; ``delta`` in [0, 2 pi); ``beta2``,
  ``beta3`` in [0, pi) (``U = diag(e^{i phi}) Ubar diag(1, e^{i beta2}, e^{i beta3})``);
  ``phi_e``, ``phi_mu``, ``phi_tau`` in [-pi, pi);
* ``R = s R23(z23) R13(z13) R12(z12)``, 6 real: ``Re z12``, ``Im z12``, ``Re z13``, ``Im z13``,
  ``Re z23``, ``Im z23`` with ``Re z13`` in [-pi/2, pi/2], the others' real parts in [-pi, pi),
  ``|Im z| <= im_z_max``, and ``s = det R = +-1`` (both signs);
* heavy (5): the paper's ``|M1|/M3``, ``|M2|/M3``, ``g = log10(<H>^2/M3 [eV])``, ``arg M1``,
  ``arg M2``.

``Y = D^(-1/2) R sqrt(m) U^dagger`` (:func:`casas_ibarra.from_coordinates`, times ``s``).

**Multiplicity 2, constant.** ``(U S, R S)`` for a diagonal sign matrix ``S`` is the same ``Y``;
the ranges of ``beta2, beta3`` fix ``S`` up to ``S = +-1``, and ``S = -1`` flips ``det R`` and
shifts every ``phi`` by pi. So every ``Y`` (with distinct, non-zero light masses) has exactly two
preimages, ``(phi, s)`` and ``(phi + pi, -s)``; :func:`multiplicity_check` counts them numerically
through the module's canonical inverse.

**Jacobian.** ``|det dY/dx|`` over the 23 real components factorises: each row ``i`` of ``Y`` is
``A_i`` (the rows of ``R sqrt(m) U^dagger``) times the complex number ``10^(-g/2) sqrt(r_i)
e^{i arg M_i / 2}`` (``r_3 = 1``), a scaling of three complex numbers by ``|c_i|^2 = 10^-g r_i`` each,
and the heavy coordinates are copied, so

    |det dY/dx| = (r1 r2)^3 10^(-9 g) * J_light(x_light, z),

    J_light = C * prod_{i<j} |m_i^2 - m_j^2| * m1 * (dm21 / m2) * (dm31 / m3) * |cos z13|^2 * (1 - s13^2)

(:func:`light_jacobian`): ``R^T dA U = Omega sqrt(m) + d sqrt(m) + sqrt(m) dU^dagger U`` has
determinant ``prod sqrt(m_i) prod_{i<j} |m_i^2 - m_j^2|`` against the Haar measures of SO(3, C)
(``|cos z13|^2`` in the complex Euler angles, the square of the real group's ``cos t13`` since the map is
holomorphic) and U(3) (``d s12^2 d c13^4 d s23^2 d delta d phases``), and ``d sqrt(m_i)`` of the log10
coordinates gives the mass factors. ``C = ln(10)^3 / 256`` (the product of the constants, checked
against central differences in the tests).

**Proposal.** The light coordinates and ``z`` uniform on a box that holds the 3 sigma set
(:func:`solution_box`), ``s`` uniform, and the heavy coordinates from their exact share of the
weight, ``(r1 r2)^3 10^(-9 g)`` on the prior's ``{1e-5 <= r1 <= r2 <= 1} x [-1.22, 2.78] x [-pi, pi)^2``
(inverse CDF). The weight of a draw is then

    w = 1[3 sigma] 1[Y in the box] J_light Z_heavy 2 V_light / (multiplicity V_prior)

with ``E_q[w]`` = the prior probability of the set (so ``mean(w)`` over all proposals estimates
it). Cheap indicators first: the dm windows are the box itself, the |U| windows are checked
from ``(s12^2, s13^2, s23^2, delta)``, then ``Y`` is built only for those rows and checked
against the prior box. ``|Im z|`` is cut at ``im_z_max`` and ``log10 m1`` at the ends of its
range: :func:`shell_weights` measures the weight in the outermost shells so that the cut-off
mass can be stated (and extrapolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rayflavor.physics import casas_ibarra, mixing, seesaw

LIGHT: tuple[str, ...] = (
    "log10_m1_ev", "log10_dm21_ev2", "log10_dm31_ev2", "s2_12", "s2_13", "s2_23", "delta", "beta2", "beta3",
    "phi_e", "phi_mu", "phi_tau", "re_z12", "im_z12", "re_z13", "im_z13", "re_z23", "im_z23",
)
MULTIPLICITY = 2
JACOBIAN_CONSTANT = math.log(10.0) ** 3 / 256.0
_LN10 = math.log(10.0)
_K_G = 9.0 * _LN10  # 10^(-9 g) = exp(-_K_G g)


@dataclass(frozen=True)
class LightBox:
    """Uniform proposal box of the 18 light + R coordinates (:data:`LIGHT` order)."""

    lower: np.ndarray
    upper: np.ndarray

    @property
    def volume(self) -> float:
        return float(np.prod(self.upper - self.lower))

    @property
    def im_z_max(self) -> float:
        return float(self.upper[13])


def solution_box(windows: np.ndarray, im_z_max: float, log10_m1: tuple[float, float] = (-7.0, 0.0)) -> LightBox:
    """The box holding the NO 3 sigma set (``windows``: :func:`seesaw.solution_windows`, (11, 2)).

    dm21, dm31 (= dm3l for NO): their windows exactly; ``s13^2 = |U_e3|^2``; ``s12^2 =
    |U_e2|^2 / c13^2`` and ``s23^2 = |U_mu3|^2 / c13^2`` over the ``s13^2`` range; ``delta`` whole.
    """
    w = np.asarray(windows, dtype=np.float64)
    s13 = w[4] ** 2
    s12 = (w[3, 0] ** 2 / (1 - s13[0]), w[3, 1] ** 2 / (1 - s13[1]))
    s23 = (w[7, 0] ** 2 / (1 - s13[0]), w[7, 1] ** 2 / (1 - s13[1]))
    pi = math.pi
    lo = [log10_m1[0], math.log10(w[0, 0]), math.log10(w[1, 0]), s12[0], s13[0], s23[0], 0.0, 0.0, 0.0, -pi, -pi, -pi,
          -pi, -im_z_max, -pi / 2, -im_z_max, -pi, -im_z_max]
    hi = [log10_m1[1], math.log10(w[0, 1]), math.log10(w[1, 1]), s12[1], s13[1], s23[1], 2 * pi, pi, pi, pi, pi, pi,
          pi, im_z_max, pi / 2, im_z_max, pi, im_z_max]
    return LightBox(np.array(lo), np.array(hi))


def masses(x: np.ndarray) -> np.ndarray:
    """(N, 3) ascending light masses [eV] of the light coordinates."""
    m1 = 10.0 ** x[:, 0]
    return np.stack([m1, np.sqrt(m1 ** 2 + 10.0 ** x[:, 1]), np.sqrt(m1 ** 2 + 10.0 ** x[:, 2])], axis=1)


def light_jacobian(x: np.ndarray) -> np.ndarray:
    """``J_light`` (module docstring): |det| of (18 light + R coordinates) -> the 18 real components of
    ``A = R sqrt(m) U^dagger`` [eV^(1/2)] per unit of the coordinates (log10 units for the masses)."""
    m = masses(x)
    m2 = m ** 2
    vdm = np.abs((m2[:, 1] - m2[:, 0]) * (m2[:, 2] - m2[:, 0]) * (m2[:, 2] - m2[:, 1]))
    z13 = x[:, 14] + 1j * x[:, 15]
    return (JACOBIAN_CONSTANT * vdm * m[:, 0] * 10.0 ** x[:, 1] / m[:, 1] * 10.0 ** x[:, 2] / m[:, 2]
            * np.abs(np.cos(z13)) ** 2 * (1.0 - x[:, 4]))


def abs_u(x: np.ndarray) -> np.ndarray:
    """(N, 9) |U| (rows e, mu, tau; columns 1-3) of the light coordinates (``seesaw.ABS_U`` order)."""
    t = [np.arcsin(np.sqrt(np.clip(x[:, k], 0.0, 1.0))) for k in (3, 4, 5)]
    return np.abs(mixing.standard(t[0], t[1], t[2], x[:, 6])).reshape(-1, 9)


def to_ci_coordinates(x: np.ndarray, heavy: np.ndarray) -> np.ndarray:
    """(N, 23) :mod:`casas_ibarra` coordinates of the sampled light + R coordinates and heavy ones."""
    c = np.empty((len(x), 23))
    c[:, 0:6] = x[:, 0:6]
    c[:, 6] = np.cos(x[:, 6])
    c[:, 7:9] = x[:, 7:9]
    c[:, 9] = x[:, 9] + np.where(x[:, 6] > np.pi, 2 * np.pi, 0.0)
    c[:, 10:18] = x[:, 10:18]
    c[:, 18:23] = heavy
    return c


def parameters(x: np.ndarray, sign: np.ndarray, heavy: np.ndarray) -> np.ndarray:
    """(N, 23) the paper's parameters ``Y`` (and heavy masses) of the sampled coordinates:
    ``s * from_coordinates`` (``det R = s``; -R is the ``det = -1`` branch)."""
    y = casas_ibarra.from_coordinates(to_ci_coordinates(x, heavy))
    y[:, :18] *= np.asarray(sign, dtype=np.float64)[:, None]
    return y


def sample_heavy(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 5) heavy coordinates with density ``(r1 r2)^3 10^(-9 g)`` on the prior's heavy box
    (``r1 <= r2``; phases uniform), by inverse CDFs: ``r^4`` uniform, then ordered; ``g`` truncated exponential."""
    p = seesaw.PRIOR
    lo4 = p["mass_ratio"][0] ** 4
    r = np.sort((lo4 + rng.uniform(size=(n, 2)) * (1.0 - lo4)) ** 0.25, axis=1)
    g0, g1 = p["log10_h2_over_m3_ev"]
    g = g0 - np.log1p(-rng.uniform(size=n) * -np.expm1(-_K_G * (g1 - g0))) / _K_G
    a = rng.uniform(*p["arg"], size=(n, 2))
    return np.column_stack([r, g, a])


def heavy_normalisation() -> float:
    """``Z_heavy``: the integral of ``(r1 r2)^3 10^(-9 g)`` over the prior's heavy box."""
    p = seesaw.PRIOR
    lo = p["mass_ratio"][0]
    g0, g1 = p["log10_h2_over_m3_ev"]
    zr = 0.5 * ((1.0 - lo ** 4) / 4.0) ** 2
    zg = math.exp(-_K_G * g0) * -math.expm1(-_K_G * (g1 - g0)) / _K_G
    return zr * zg * (2 * math.pi) ** 2


def prior_volume() -> float:
    """Volume of the paper's prior (23 parameters, ``r1 <= r2``)."""
    p = seesaw.PRIOR
    lo = p["mass_ratio"][0]
    g0, g1 = p["log10_h2_over_m3_ev"]
    return 2.0 ** 18 * 0.5 * (1.0 - lo) ** 2 * (g1 - g0) * (2 * math.pi) ** 2


def in_prior_box(y: np.ndarray, bound: float) -> np.ndarray:
    """Yukawa part of the prior box, every ``|Re Y|``, ``|Im Y|`` at most ``bound`` times the prior's
    bound (``bound = 1``: the prior box; the heavy coordinates are drawn inside it)."""
    return np.all(np.abs(y[:, :18]) <= bound * seesaw.PRIOR["y"][1], axis=1) & np.isfinite(y).all(axis=1)


def draw(n: int, box: LightBox, rng: np.random.Generator, windows: np.ndarray | None = None,
         *, bound: float, chunk: int = 200_000) -> dict:
    """``n`` proposals; returns the draws with non-zero weight and the counts per stage.

    ``windows`` (11, 2) (:func:`seesaw.solution_windows`): the |U| windows are checked (dm21, dm31
    are the box); None: no 3 sigma indicator (the weight is then that of the prior restricted to
    the box's image, for checks). ``bound``: the Yukawa bound in units of the prior's (1: draws of
    the prior restricted to the set; > 1: the prior's density continued past the box's faces, the
    same proposals and weights, more of them kept). Returned: ``x`` (k, 18), ``sign`` (k,), ``heavy`` (k, 5),
    ``params`` (k, 23), ``weight`` (k,) with ``sum(weight) / n`` estimating the prior probability,
    and ``counts`` {proposals, in_windows, in_box}.
    """
    keep: dict[str, list] = {"x": [], "sign": [], "heavy": [], "params": [], "weight": []}
    counts = {"proposals": 0, "in_windows": 0, "in_box": 0}
    # 1 / q = 2 V_light / h(heavy) (the sign is one of two), h = (r1 r2)^3 10^(-9 g) / Z_heavy
    scale = heavy_normalisation() * 2.0 * box.volume / (MULTIPLICITY * prior_volume())
    done = 0
    while done < n:
        k = min(chunk, n - done)
        done += k
        x = box.lower + rng.uniform(size=(k, len(LIGHT))) * (box.upper - box.lower)
        ok = np.ones(k, dtype=bool)
        if windows is not None:
            au = abs_u(x)
            w = np.asarray(windows)[2:]
            ok = np.all((au >= w[:, 0]) & (au <= w[:, 1]), axis=1)
        x = x[ok]
        sign = rng.choice(np.array([-1.0, 1.0]), size=len(x))
        heavy = sample_heavy(len(x), rng)
        counts["in_windows"] += len(x)
        y = parameters(x, sign, heavy)
        inside = in_prior_box(y, bound)
        counts["in_box"] += int(inside.sum())
        x, sign, heavy, y = x[inside], sign[inside], heavy[inside], y[inside]
        for key, v in (("x", x), ("sign", sign), ("heavy", heavy), ("params", y),
                       ("weight", light_jacobian(x) * scale)):
            keep[key].append(v)
    counts["proposals"] = done
    out = {key: np.concatenate(v) for key, v in keep.items()}
    out["counts"] = counts
    return out


def kish_ess(weight: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 for no weight)."""
    w = np.asarray(weight, dtype=np.float64)
    s2 = float(np.sum(w * w))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


def systematic_resample(weight: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` draws by systematic resampling (one uniform offset; each index appears
    ``floor`` or ``ceil`` of ``size * w_i / sum w`` times), in a random order."""
    w = np.asarray(weight, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    u = (rng.uniform() + np.arange(size)) / size
    idx = np.searchsorted(cdf, u, side="right")
    return rng.permutation(np.minimum(idx, len(w) - 1))


def shell_weights(x: np.ndarray, weight: np.ndarray, box: LightBox, shells: int = 8) -> dict[str, dict[str, float]]:
    """Share of the weight in the outermost shells of the cut coordinates and the extrapolated
    share beyond the cut (geometric tail from the last two shells; 0 when both are empty, None
    when the weight does not fall toward the cut, i.e. the cut is too tight).

    ``im_z``: ``max |Im z|`` over the three angles in ``shells`` equal shells of [0, im_z_max];
    ``log10_m1_low`` / ``log10_m1_high``: the lowest / highest ``1/shells`` of the log10 m1 range.
    """
    w = np.asarray(weight, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return {}

    def tail(last: float, prev: float) -> float | None:
        if prev <= 0 or last >= prev:
            return None if last > 0 else 0.0  # None: the weight does not fall off toward the cut
        q = last / prev
        return last * q / (1 - q)

    out = {}
    im = np.max(np.abs(x[:, [13, 15, 17]]), axis=1) / box.im_z_max
    idx = np.minimum((im * shells).astype(int), shells - 1)
    per = np.bincount(idx, weights=w, minlength=shells) / total
    out["im_z"] = {"last_shell": float(per[-1]), "previous_shell": float(per[-2]),
                   "beyond_cut": tail(per[-1], per[-2])}
    lo, hi = box.lower[0], box.upper[0]
    t = (x[:, 0] - lo) / (hi - lo)
    idx = np.minimum((t * shells).astype(int), shells - 1)
    per = np.bincount(idx, weights=w, minlength=shells) / total
    out["log10_m1_low"] = {"last_shell": float(per[0]), "previous_shell": float(per[1]),
                           "beyond_cut": tail(per[0], per[1])}
    out["log10_m1_high"] = {"last_shell": float(per[-1]), "previous_shell": float(per[-2]),
                            "beyond_cut": tail(per[-1], per[-2])}
    return out


def numeric_jacobian(x: np.ndarray, sign: np.ndarray, heavy: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """|det| of d(23 parameters)/d(18 light + R coordinates, 5 heavy) by vectorised central
    differences (a check of :func:`light_jacobian` times the heavy factor; 46 parameter evaluations per row)."""
    z = np.column_stack([x, heavy])
    jac = np.empty((len(z), 23, 23))
    for j in range(23):
        e = np.zeros(23)
        e[j] = h
        yp = parameters((z + e)[:, :18], sign, (z + e)[:, 18:])
        ym = parameters((z - e)[:, :18], sign, (z - e)[:, 18:])
        jac[:, :, j] = (yp - ym) / (2 * h)
    return np.abs(np.linalg.det(jac))


def multiplicity_check(x: np.ndarray, sign: np.ndarray, heavy: np.ndarray, box: LightBox) -> np.ndarray:
    """Number of preimages in the proposal's chart of each row's ``Y``, counted numerically.

    ``Y`` is mapped back by the module's canonical inverse :func:`casas_ibarra.to_coordinates`
    (``det R = +1``, ``beta`` in [0, pi)). Every preimage is one of the eight sign images
    ``(U S, R S)``, ``S = diag(+-1, +-1, +-1)``, of that canonical point: for each, ``U S`` is
    rewritten in the chart's phases, ``s R S`` (``s = det S``) in its complex Euler angles, and the
    image counts when it lies in the chart (the box, ``beta`` in [0, pi)) and maps back to ``Y``.
    """
    y = parameters(x, sign, heavy)
    c = casas_ibarra.to_coordinates(y)
    delta, phi_e = casas_ibarra.delta_and_phi_e(c[:, 6], c[:, 9])
    r = casas_ibarra._rotations(c[:, 12] + 1j * c[:, 13], c[:, 14] + 1j * c[:, 15], c[:, 16] + 1j * c[:, 17])
    count = np.zeros(len(x), dtype=int)
    for signs in np.array(np.meshgrid([1.0, -1.0], [1.0, -1.0], [1.0, -1.0])).T.reshape(-1, 3):
        # U S = s1 diag(e^{i phi}) Ubar diag(1, s1 s2 e^{i beta2}, s1 s3 e^{i beta3})
        cand = np.column_stack([c[:, 0:6], delta, c[:, 7:9], phi_e, c[:, 10:12], np.zeros((len(x), 6))])
        if signs[0] < 0:
            cand[:, 9:12] = np.mod(cand[:, 9:12] + 2 * np.pi, 2 * np.pi) - np.pi
        cand[:, 7] += np.pi * (signs[0] * signs[1] < 0)
        cand[:, 8] += np.pi * (signs[0] * signs[2] < 0)
        det_s = float(np.prod(signs))
        z12, z13, z23 = casas_ibarra._rotation_angles(det_s * r * signs[None, None, :])
        cand[:, 12:18] = np.column_stack([z12.real, z12.imag, z13.real, z13.imag, z23.real, z23.imag])
        cand[:, [12, 16]] = np.mod(cand[:, [12, 16]] + np.pi, 2 * np.pi) - np.pi
        inside = np.all((cand >= box.lower) & (cand < box.upper), axis=1)
        if inside.any():
            back = parameters(cand[inside], np.full(int(inside.sum()), det_s), heavy[inside])
            # the canonical inverse loses digits where m1 << m3 and |Im z| is large (R's entries cancel
            # in Y; up to ~1e-3 of the row's scale at m1 = 1e-7 eV, Im z = 3.5), while a sign image
            # that is not a preimage misses Y at O(1): compare at 1 % of the row's scale
            scale = np.max(np.abs(y[inside]), axis=1)
            same = np.max(np.abs(back - y[inside]), axis=1) <= 1e-2 * scale
            count[np.flatnonzero(inside)[same]] += 1
    return count


__all__ = ["JACOBIAN_CONSTANT", "LIGHT", "LightBox", "MULTIPLICITY", "abs_u", "draw", "heavy_normalisation",
           "kish_ess", "light_jacobian", "multiplicity_check", "numeric_jacobian", "parameters", "prior_volume",
           "sample_heavy", "shell_weights", "solution_box", "systematic_resample", "to_ci_coordinates"]

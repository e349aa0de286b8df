"""Global dedupe of a scan's part files into ``OUT/models.parquet``.

Models are unique on their 18-charge assignment.  Among the rows of one assignment the kept row
is the one **closest to the central values**, with the distance

    D = sum over the 11 window observables (CKM s12 s23 s13 delta, PMNS theta12 theta13
        theta23 delta, dm21, dm3l) of ((O - central) / sigma)^2
      + sum over the 9 charged masses of (ln(m / m_0) / tol_ref)^2,     tol_ref = 0.2

(sigma: the data set's 1 sigma error on the side of the deviation, ``dm3l`` against the value of
the model's ordering; m_0: the central mass, so a mass 20 % off counts like a 1 sigma pull).
Ties break on island, then generation.

Counts reported (:class:`Counts`):

* ``found``: rows in all part files;  ``unique``: distinct charge assignments;
  ``duplicates = found - unique``;
* ``textures``: distinct 45-exponent textures (``n_u n_d n_nu n_e n_N``).  A common shift of the
  ``Q``, ``u``, ``d`` charges (and likewise ``L``, ``e``, ``N`` with ``Q(H)`` fixed by the top)
  leaves every exponent unchanged, hence identical physics;
* ``light_textures``: distinct textures of what the light spectrum depends on -- ``n_u n_d n_e``
  and the Weinberg exponents ``n^W_ij = n^nu_i1 + n^nu_j1 - n^N_11`` (the ``N`` charges cancel from
  ``M_nu = -m_D M_N^-1 m_D^T``).  This is the number of physically distinct models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rayflavor.physics import data as fndata
from rayflavor.physics import fn
from rayflavor.storage.parquet import atomic_write_bytes, empty_table, list_parts

WINDOW = ("ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta", "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "dm21")
TOL_REF = 0.2


@dataclass(frozen=True)
class Counts:
    found: int
    unique: int
    duplicates: int
    textures: int
    light_textures: int

    def line(self) -> str:
        return (
            f"found {self.found}  unique {self.unique}  duplicates {self.duplicates}  "
            f"textures {self.textures}  physically distinct (light textures) {self.light_textures}"
        )


def _pull(col: str, central: float, minus: float, plus: float) -> pl.Expr:
    d = pl.col(col) - central
    return pl.when(d >= 0).then(d / plus).otherwise(d / minus) ** 2


def distance_expr(ds) -> pl.Expr:
    """Polars expression of the distance ``D`` to the central values (module docstring)."""
    terms = []
    for name in WINDOW:
        o = ds.get(name, "NO")
        mi, pl_ = o.sigmas()
        terms.append(_pull(name, o.central, mi, pl_))
    no, io = ds.get("dm3l", "NO"), ds.get("dm3l", "IO")
    t_no = _pull("dm3l", no.central, *no.sigmas())
    t_io = _pull("dm3l", io.central, *io.sigmas())
    terms.append(pl.when(pl.col("ordering") == "IO").then(t_io).otherwise(t_no))
    for m in fn.MASSES:
        terms.append(((pl.col(m) / ds.get(m).central).log() / TOL_REF) ** 2)
    return pl.sum_horizontal(terms).alias("distance")


def _texture_keys(frame: pl.DataFrame) -> tuple[int, int]:
    if frame.height == 0:
        return 0, 0
    e = frame.select(list(fn.EXPONENTS)).to_numpy().astype(np.int64)
    textures = len(np.unique(e, axis=0))
    nu = e[:, 18:27].reshape(-1, 3, 3)
    nN = e[:, 36:45].reshape(-1, 3, 3)
    w = nu[:, :, 0][:, :, None] + nu[:, :, 0][:, None, :] - nN[:, 0, 0][:, None, None]
    light = np.concatenate([e[:, 0:18], e[:, 27:36], w.reshape(-1, 9)], axis=1)
    return textures, len(np.unique(light, axis=0))


def dedupe(out: str | Path, data_name: str = fn.DEFAULT_DATA) -> Counts:
    """Read every part file lazily, write ``OUT/models.parquet`` (atomically), return the counts."""
    out = Path(out)
    parts = list_parts(out)
    ds = fndata.load(data_name)
    if not parts:  # nothing found: an empty models.parquet, so readers see "0 models", not a missing file
        lf = pl.from_arrow(empty_table()).lazy()
    else:
        lf = pl.scan_parquet([str(p) for p in parts])
    found = lf.select(pl.len()).collect().item()
    best = (
        lf.with_columns(distance_expr(ds))
        .sort(["distance", "island", "generation"])
        .unique(subset=list(fn.CHARGES), keep="first", maintain_order=True)
        .sort(list(fn.CHARGES))
        .collect()
    )
    tex, light = _texture_keys(best)
    import io

    buf = io.BytesIO()
    best.write_parquet(buf, compression="zstd")
    atomic_write_bytes(out / "models.parquet", buf.getvalue())
    return Counts(found, best.height, found - best.height, tex, light)

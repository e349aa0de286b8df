"""Losses and acceptance tests shared by both models.

* CC-type loss (FN paper eq. 36): ``C(O, L, U) = max(0, L - O, O - U)``; zero inside the window,
  linear outside, in the unit of ``O``.  NaN observables give ``+inf`` (never a silent NaN).
* Asymmetric chi2 term (diffusion paper eq. 2.22): ``((P - mu)/sigma)^2`` with ``sigma = plus``
  above the central value and ``minus`` below it.

>>> import numpy as np
>>> cc_loss(np.array([0.5, 1.5, 3.0, np.nan]), 1.0, 2.0).tolist()
[0.5, 0.0, 1.0, inf]
"""

from __future__ import annotations

import numpy as np


def cc_loss(observable: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """CC-type loss ``max(0, lower - O, O - upper)``; ``+inf`` where ``O`` is not a number."""
    o = np.asarray(observable, dtype=np.float64)
    out = np.maximum(np.maximum(lower - o, o - upper), 0.0)
    return np.where(np.isnan(o), np.inf, out)


def chi2_term(observable: np.ndarray, central: float, minus: float, plus: float) -> np.ndarray:
    """``((O - central)/sigma)^2`` with ``sigma = plus`` above and ``minus`` below the central value."""
    o = np.asarray(observable, dtype=np.float64)
    d = o - central
    return (d / np.where(d >= 0.0, plus, minus)) ** 2


def in_window(observable: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """``lower <= O <= upper`` (False for NaN)."""
    o = np.asarray(observable, dtype=np.float64)
    return (o >= lower) & (o <= upper)

"""A confidence band for an ROC curve: the sensitivity at fixed specificities with stratified-bootstrap
percentile intervals (as R's ``pROC::ci.se``: cases and controls resampled separately, 2000 replicates).

Sensitivity at specificity ``s`` is that of the ROC curve's best point with a specificity of at least ``s``: a
case is called positive when its score is above the ``k``-th lowest control score, ``k = ceil(s x controls)``
(every case at ``s = 0``), so that at least that share of controls is called negative. Ties between a case and
that control score count as negative (the curve's conservative step). pROC instead interpolates between the
curve's points; with tens of controls the two differ by less than one case's share of sensitivity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError
from sarcomri.stats.roc import ArrayLike, cases_and_controls

#: The specificities of the band (pROC's default for ci.se is every 0.1; a finer grid draws a smoother band).
SPECIFICITIES = np.linspace(0.0, 1.0, 21)


def sensitivity_at(cases: np.ndarray, controls: np.ndarray, specificities: np.ndarray) -> np.ndarray:
    """The sensitivities of score sets at ``specificities`` (module definition): ``cases`` (b, m) and
    ``controls`` (b, n) are b score sets (one row per bootstrap replicate); returns (b, len(specificities))."""
    cases, controls = np.atleast_2d(cases), np.sort(np.atleast_2d(controls), axis=1)
    k = np.ceil(np.asarray(specificities, float) * controls.shape[1] - 1e-9).astype(int)
    out = np.ones((cases.shape[0], len(k)))
    for j, kk in enumerate(k):
        if kk > 0:
            out[:, j] = (cases > controls[:, kk - 1 : kk]).mean(axis=1)
    return out


def sensitivity_band(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<",
                     specificities: np.ndarray = SPECIFICITIES, n_boot: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> pd.DataFrame:
    """The ROC curve's sensitivity at each specificity with its (1 - alpha) stratified-bootstrap percentile
    interval: columns specificity, sensitivity, lower, upper. ``direction`` as :func:`~sarcomri.stats.roc.auc`."""
    if n_boot < 100:
        raise InputError(None, f"a bootstrap band needs at least 100 replicates, not {n_boot}")
    cases, controls = cases_and_controls(truth, scores, positive, direction)
    rng = np.random.default_rng(seed)
    boot = sensitivity_at(cases[rng.integers(0, len(cases), (n_boot, len(cases)))],
                          controls[rng.integers(0, len(controls), (n_boot, len(controls)))], specificities)
    lower, upper = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return pd.DataFrame({"specificity": np.asarray(specificities, float),
                         "sensitivity": sensitivity_at(cases, controls, specificities)[0], "lower": lower,
                         "upper": upper})

"""Deep features with clinical variables: logistic regression on the image likelihood plus clinical columns.

This is the design of the review's deep-learning radiomics nomograms. The combined model is fitted inside
the same patient-level folds as the networks (fold k's patients are predicted by a model fitted on the other
folds), and reported beside the image-only model. The image likelihood of every patient is already an
out-of-fold prediction of the grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sarcomri.errors import SarcomriError


def combined_predictions(
    likelihood: pd.Series,
    clinical: pd.DataFrame,
    labels: pd.Series,
    folds: pd.Series,
    columns: list[str],
    include_image: bool = True,
) -> pd.Series:
    """Out-of-fold probabilities of a logistic regression on [likelihood] + ``columns``.

    All inputs are indexed by patient_id; ``folds`` gives each patient's test fold. Categorical columns are
    one-hot encoded; missing values are refused (impute before, and say how).
    """
    missing = [c for c in columns if c not in clinical.columns]
    if missing:
        raise SarcomriError(f"patients.csv has no clinical column(s) {missing}")
    ids = likelihood.index.intersection(labels.index).intersection(folds.index)
    x = pd.get_dummies(clinical.loc[ids, columns], drop_first=True).astype(float)
    if x.isna().any().any():
        bad = x.columns[x.isna().any()].tolist()
        raise SarcomriError(f"clinical columns {bad} have missing values; impute them first")
    if include_image:
        x.insert(0, "image_likelihood", likelihood.loc[ids].astype(float))
    y = labels.loc[ids].astype(int).to_numpy()
    out = pd.Series(np.nan, index=ids, name="p_combined")
    for k in sorted(folds.loc[ids].unique()):
        test = (folds.loc[ids] == k).to_numpy()
        if len(np.unique(y[~test])) < 2:
            raise SarcomriError(f"fold {k}: the training patients hold a single class")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x.to_numpy()[~test], y[~test])
        out.iloc[np.flatnonzero(test)] = model.predict_proba(x.to_numpy()[test])[:, 1]
    return out

"""The intensity profile of a series: two scale-free numbers that say whether a new patient's image looks like the
study's (``sarcomri predict`` warns when it does not, :mod:`sarcomri.predict_checks`).

* ``tumour_to_body``: the tumour's median intensity over the body's median (body: voxels above
  :func:`~sarcomri.prep.slices.body_threshold`), the contrast the classifier reads;
* ``body_range``: the body's 99th minus 1st intensity percentile over its median, how spread its intensities are.

Both are ratios, so a scanner's or vendor's overall scaling (which the classifiers' per-slice normalisation
removes anyway) does not change them; a different contrast, weighting or fat suppression does. Undefined (NaN)
where the body's median is not positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.prep.prepare2d import SliceSpec, load_channels
from sarcomri.prep.slices import body_threshold

PROFILE_COLUMNS = ["patient_id", "tumour_to_body", "body_range"]
MEASURES = {"tumour_to_body": "tumour-to-body intensity ratio", "body_range": "intensity spread of the body"}


def intensity_profile(volume: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """The profile of one series' volume (z, y, x) with its tumour mask (None or empty: no tumour ratio)."""
    volume = np.asarray(volume, np.float64)
    body = volume[np.isfinite(volume) & (volume > body_threshold(volume))]
    centre = float(np.median(body)) if body.size else np.nan
    if not centre > 0:
        return {"tumour_to_body": np.nan, "body_range": np.nan}
    low, high = np.percentile(body, [1, 99])
    tumour = volume[np.asarray(mask, bool)] if mask is not None else np.zeros(0)
    return {"tumour_to_body": float(np.median(tumour)) / centre if tumour.size else np.nan,
            "body_range": float(high - low) / centre}


def cohort_profile(cohort: Cohort, spec: SliceSpec) -> pd.DataFrame:
    """One row per patient with the spec's sequences: the profile of its first sequence (the one the page shows
    and the masks are on), with the mask the slices are cut by."""
    rows = []
    have = cohort.series.groupby("patient_id")["sequence"].apply(set)
    for pid in cohort.patient_ids:
        if not set(spec.sequences) <= have.get(pid, set()):
            continue
        vol, mask = load_channels(cohort, pid, spec.sequences)
        rows.append({"patient_id": pid, **intensity_profile(vol[0], mask)})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)

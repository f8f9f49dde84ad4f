"""Warnings when a new patient's input is unlike what the study's models were trained on (``sarcomri predict``):
a missing sequence, a voxel spacing or an image matrix outside the range of the study's series of that sequence,
or an intensity profile (:mod:`sarcomri.prep.profile`) outside the range of the study's patients.

A warning never stops the prediction: it is listed in ``result.json`` (``warnings``) and on the patient page
beside the score, so the reader knows the score extrapolates. Ranges are the study cohort's smallest and largest
values per sequence (``series.csv``), widened by :data:`TOLERANCE` for spacing (scanners round it differently);
an intensity profile measure is flagged outside the study's range widened by the factor :data:`PROFILE_FACTOR`
(ratios: the study's smallest divided by it, its largest multiplied by it). Runs made before the profiles were
recorded (no ``cache/<sequence>.profile.csv``) have their intensities not compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sarcomri.cohort.manifest import Cohort

#: Relative widening of the study's spacing range before a patient's spacing is flagged.
TOLERANCE = 0.05
#: Widening (a factor) of the study's range of each intensity profile measure before a patient's is flagged.
PROFILE_FACTOR = 1.25
SPACING = {"spacing_x": "in-plane spacing (x)", "spacing_y": "in-plane spacing (y)", "spacing_z": "slice spacing"}
MATRIX = {"size_x": "matrix (columns)", "size_y": "matrix (rows)", "size_z": "slices"}


@dataclass(frozen=True)
class InputWarning:
    """One way the input is unlike the study's training data."""

    kind: str  # missing_sequence, spacing, matrix, intensity
    sequence: str
    message: str


def _outside(value: float, low: float, high: float, tolerance: float) -> bool:
    return value < low * (1 - tolerance) or value > high * (1 + tolerance)


def input_warnings(patient: pd.DataFrame, study: Cohort, sequences: list[str]) -> list[InputWarning]:
    """The warnings for a patient's series (``patient``: rows of ``series.csv`` of one patient) against the study
    cohort's series of the ``sequences`` its models read."""
    out = []
    for seq in sequences:
        mine = patient[patient["sequence"] == seq]
        theirs = study.series[study.series["sequence"] == seq]
        if theirs.empty:
            continue
        if mine.empty:
            out.append(InputWarning("missing_sequence", seq, f"{seq} is missing: the study's models of {seq} "
                                    "cannot score this patient"))
            continue
        row = mine.iloc[0]
        for columns, kind, unit, tolerance in ((SPACING, "spacing", " mm", TOLERANCE), (MATRIX, "matrix", "", 0.0)):
            for column, what in columns.items():
                low, high = float(theirs[column].min()), float(theirs[column].max())
                value = float(row[column])
                if _outside(value, low, high, tolerance):
                    out.append(InputWarning(kind, seq, f"{seq}: {what} {_num(value)}{unit}, outside the study's "
                                            f"{_num(low)}-{_num(high)}{unit} ({len(theirs)} series)"))
    return out


def intensity_warnings(patient: dict[str, dict[str, float]], study: dict[str, pd.DataFrame]) -> list[InputWarning]:
    """The warnings for a patient's intensity profiles (``patient``: sequence -> measure -> value) against the
    study's (``study``: sequence -> one row per patient, :data:`~sarcomri.prep.profile.PROFILE_COLUMNS`)."""
    from sarcomri.prep.profile import MEASURES

    out = []
    for seq, mine in patient.items():
        theirs = study.get(seq)
        if theirs is None:
            continue
        for measure, what in MEASURES.items():
            values = pd.to_numeric(theirs[measure], errors="coerce").dropna()
            value = mine.get(measure, float("nan"))
            if values.empty or not value == value:
                continue
            low, high = float(values.min()), float(values.max())
            if value < low / PROFILE_FACTOR or value > high * PROFILE_FACTOR:
                out.append(InputWarning("intensity", seq, f"{seq}: {what} {value:.2f}, outside the study's "
                                        f"{low:.2f}-{high:.2f} ({len(values)} patients): another contrast or "
                                        "weighting than the study's?"))
    return out


def _num(value: float) -> str:
    """A spacing or matrix size as a reader writes it: up to 2 decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")

"""Warnings when a new patient's input is unlike what the study's models were trained on (``sarcomri predict``):
a missing sequence, a voxel spacing or an image matrix outside the range of the study's series of that sequence.

A warning never stops the prediction: it is listed in ``result.json`` (``warnings``) and on the patient page
beside the score, so the reader knows the score extrapolates. Ranges are the study cohort's smallest and largest
values per sequence (``series.csv``), widened by :data:`TOLERANCE` for spacing (scanners round it differently).
Intensity distributions are not compared here (the study's per-series intensities are not recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sarcomri.cohort.manifest import Cohort

#: Relative widening of the study's spacing range before a patient's spacing is flagged.
TOLERANCE = 0.05
SPACING = {"spacing_x": "in-plane spacing (x)", "spacing_y": "in-plane spacing (y)", "spacing_z": "slice spacing"}
MATRIX = {"size_x": "matrix (columns)", "size_y": "matrix (rows)", "size_z": "slices"}


@dataclass(frozen=True)
class InputWarning:
    """One way the input is unlike the study's training data."""

    kind: str  # missing_sequence, spacing, matrix
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


def _num(value: float) -> str:
    """A spacing or matrix size as a reader writes it: up to 2 decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")

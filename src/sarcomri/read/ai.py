"""What the AI-assisted session shows a reader about a case: the model's out-of-fold likelihood and vote per
sequence, the summed score and the study's decision at its threshold (from the classification run's tables:
``likelihood.csv``, ``votes.csv``, ``summed_score.csv``, ``summed_threshold.csv``). The case's label, which those
tables also hold, is never part of it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import pandas as pd

from sarcomri.analysis.voting import summed_call
from sarcomri.runs import ClassificationRun


class ModelOutputs:
    """The model's outputs for the cases of a reading plan, read once from the run's tables."""

    def __init__(self, run: ClassificationRun, class_names: tuple[str, str]):
        self.run = run
        self.positive, self.negative = class_names

    def _table(self, name: str) -> pd.DataFrame | None:
        path = self.run.table_path(name)
        return pd.read_csv(path, dtype={"patient_id": str}) if path.is_file() else None

    @cached_property
    def _tables(self) -> dict[str, pd.DataFrame | None]:
        return {n: self._table(n) for n in ("likelihood", "votes", "summed_score", "summed_threshold")}

    def of(self, patient_id: str) -> dict[str, Any] | None:
        """The case's per-sequence likelihood and vote, summed score, threshold and decision; None when the run
        has no likelihood for it."""
        t = self._tables
        lik = t["likelihood"]
        if lik is None:
            return None
        mine = lik[lik["patient_id"] == patient_id]
        if mine.empty:
            return None
        votes = t["votes"]
        vote_row = votes[votes["patient_id"] == patient_id] if votes is not None else pd.DataFrame()
        sequences = [{"sequence": str(r.sequence), "likelihood": round(float(r.likelihood), 3),
                      "vote": int(vote_row[r.sequence].iloc[0]) if r.sequence in vote_row.columns and len(vote_row)
                      else None} for r in mine.itertuples(index=False)]
        out: dict[str, Any] = {"sequences": sequences, "summed_score": None, "threshold": None, "decision": None}
        summed, rule = t["summed_score"], t["summed_threshold"]
        if summed is not None and rule is not None and len(rule):
            row = summed[summed["patient_id"] == patient_id]
            if len(row):
                score, threshold = int(row["summed_score"].iloc[0]), float(rule["threshold"].iloc[0])
                out.update(summed_score=score, threshold=threshold,
                           decision=self.positive if bool(summed_call(score, threshold)) else self.negative)
        return out

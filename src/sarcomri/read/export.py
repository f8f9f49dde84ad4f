"""The reads as the long table the reader analysis takes (docs/synthetic.md's ``readers.csv``): one row per
reader x case x session (x sequence in ``per_sequence`` designs), ``patient_id, reader, group, sequence, session,
confidence``, with ``sequence`` ``all`` (a read of the whole case) or the sequence rated, ``session`` ``first`` or
``ai_assisted``, and ``confidence`` on the analysis's
6-point scale (:data:`sarcomri.stats.readers.CARCINOSARCOMA_SCALE`: 0, 0.2, ..., 1; 0 = definitely positive): the
stored level (0-5) divided by 5. Added columns, which the analysis ignores and ``sarcomri stats`` can name:
``score`` (1 - confidence: higher = more likely positive, for ``stats mrmc --score``), ``truth`` (the case's label,
when the cohort is given: for ``stats mrmc --truth``), ``call`` and ``certainty`` (call_confidence designs),
``seconds`` (time on the case) and ``read_at`` (UTC, ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.read.store import ReadingStore

COLUMNS = ["patient_id", "reader", "group", "sequence", "session", "confidence", "score", "truth", "call",
           "certainty", "seconds", "read_at"]


def reads_table(store: ReadingStore, cohort: Cohort | None = None) -> pd.DataFrame:
    """Every reader's reads (see the module notes), sorted by reader, session and case."""
    rows = store.reads()
    frame = pd.DataFrame(rows, columns=["reader", "group", "patient_id", "session", "sequence", "confidence",
                                        "call_positive", "certainty", "read_at", "seconds"])
    labels = cohort.patients.set_index("patient_id")["label"].astype(str) if cohort is not None else None
    out = pd.DataFrame({
        "patient_id": frame["patient_id"].astype(str), "reader": frame["reader"], "group": frame["group"],
        "sequence": frame["sequence"], "session": frame["session"],
        "confidence": (frame["confidence"].astype(int) / 5).round(1),
        "score": (1 - frame["confidence"].astype(int) / 5).round(1),
        "truth": frame["patient_id"].map(labels) if labels is not None else pd.NA,
        "call": frame["call_positive"].map({True: "positive", False: "negative"}),
        "certainty": frame["certainty"], "seconds": frame["seconds"].round(1),
        "read_at": [datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") for t in frame["read_at"]]})
    return out.sort_values(["reader", "session", "patient_id", "sequence"], kind="stable").reset_index(drop=True)[
        COLUMNS]

"""The study's synthetic readers read a reading plan through the store (the same rules as a radiologist at the
reading page): each plan reader who is one of the study's simulated readers (``<study>/readers/readers.csv``,
:mod:`sarcomri.synth.readers`) gives their rating of each case (of the whole case, or of each sequence in
``per_sequence`` designs), case by case in their own order, unaided and then, after the washout, AI-assisted.
So the demo shows a reader study end to end.

The reads carry a simulated clock: from ``start``, a minute per case, and the design's washout between the
sessions (the store refuses session 2 earlier, as it would a person).
"""

from __future__ import annotations

import time

import pandas as pd

from sarcomri.errors import InputError
from sarcomri.read.design import AI_ASSISTED, CERTAINTIES, UNAIDED
from sarcomri.read.store import ReadingStore

#: Seconds the simulated readers take per case.
SECONDS_PER_CASE = 60.0


def rating(confidence: float, scale: str) -> dict:
    """A simulated read (confidence on the 0-1 six-point scale, 0 = definitely positive) as the store takes it."""
    level = int(round(5 * float(confidence)))
    if scale == "six_point":
        return {"confidence": level}
    return {"call_positive": level <= 2, "certainty": CERTAINTIES[level if level <= 2 else 5 - level]}


def simulate_reads(store: ReadingStore, reads: pd.DataFrame, start: float | None = None) -> int:
    """Let every plan reader found in ``reads`` (the study's simulated readers.csv) read both sessions; returns
    how many reads were given. A plan reader with no simulated reads is left alone."""
    rated = store.rated()
    whole = reads[reads["sequence"].astype(str).isin(rated)]
    given = 0
    for reader in store.readers():
        mine = whole[whole["reader"] == reader["name"]]
        if mine.empty:
            continue
        rid = store.reader_id(reader["name"])
        # a reader who has read already (a simulation stopped midway) continues after their last read
        t = max([time.time() if start is None else start] + [r["read_at"] + 1.0 for r in store.reads(rid)])
        for session in store.design.sessions:
            part = mine[mine["session"] == session]
            ratings = part.set_index([part["patient_id"].astype(str), part["sequence"].astype(str)])["confidence"]
            if session == AI_ASSISTED:
                t += store.design.washout_days * 86400.0 + 1.0
            while (case := store.next_case(rid, session, now=t)) is not None:
                missing = [q for q in rated if (case, q) not in ratings.index]
                if missing:
                    raise InputError(None, f"the simulated reads have no {session} read of {case} ({missing[0]}) "
                                           f"by {reader['name']}")
                store.open_case(rid, session, case, now=t)
                t += SECONDS_PER_CASE
                for q in rated:
                    store.submit(rid, session, case, **rating(ratings[(case, q)], store.design.scale), now=t,
                                 sequence=q)
                    given += 1
            if session == UNAIDED:
                t += 1.0
    return given

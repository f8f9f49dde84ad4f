"""Synthetic readers through the store (`read simulate`, the demo's reader study): every planned case read in
both sessions with the simulated rating, the washout kept on the simulated clock, and a simulation stopped midway
(in either session) continued without a read given twice."""

from __future__ import annotations

import pandas as pd
import pytest

from sarcomri.read.design import AI_ASSISTED, UNAIDED
from sarcomri.read.simulate import SECONDS_PER_CASE, rating, simulate_reads
from sarcomri.read.store import ReadingStore

START = 1.8e9  # a fixed simulated clock


def _simulated(store: ReadingStore) -> pd.DataFrame:
    """readers.csv-like simulated reads of every planned case: r1 and r2, both sessions, confidences that
    differ by reader, session and case."""
    rows = []
    for k, case in enumerate(store.cases()):
        for j, reader in enumerate(("r1", "r2")):
            for s, session in enumerate((UNAIDED, AI_ASSISTED)):
                rows.append({"reader": reader, "patient_id": case, "sequence": "all", "session": session,
                             "confidence": ((k + 2 * j + 3 * s) % 6) / 5})
    return pd.DataFrame(rows)


def _check(store: ReadingStore, simulated: pd.DataFrame) -> None:
    reads = pd.DataFrame(store.reads())
    assert len(reads) == len(simulated) and not reads.duplicated(["reader", "session", "patient_id"]).any()
    for r in reads.itertuples():
        want = simulated[(simulated["reader"] == r.reader) & (simulated["session"] == r.session)
                         & (simulated["patient_id"] == r.patient_id)]["confidence"].iloc[0]
        assert {"call_positive": bool(r.call_positive), "certainty": r.certainty} == rating(want, "call_confidence")
    for _, mine in reads.groupby("reader"):  # the design's washout on the simulated clock
        gap = (mine.loc[mine["session"] == AI_ASSISTED, "read_at"].min()
               - mine.loc[mine["session"] == UNAIDED, "read_at"].max())
        assert gap >= store.design.washout_days * 86400


def test_the_synthetic_readers_read_every_case_in_both_sessions(reading_run):
    _, db, _ = reading_run
    store = ReadingStore(db)
    simulated = _simulated(store)
    assert simulate_reads(store, simulated, start=START) == len(simulated)
    _check(store, simulated)
    first = pd.DataFrame(store.reads())
    assert first.groupby("reader")["read_at"].min().eq(START + SECONDS_PER_CASE).all()  # each from the start


@pytest.mark.parametrize("stop_after", [2, "first", "first+1"])
def test_a_simulation_stopped_midway_continues_where_it_stopped(reading_run, stop_after):
    _, db, _ = reading_run
    store = ReadingStore(db)
    simulated = _simulated(store)
    n_cases = len(store.cases())
    r1 = store.reader_id("r1")
    done = {2: 2, "first": n_cases, "first+1": n_cases + 1}[stop_after]
    partial = simulated[simulated["reader"] == "r1"]
    for k, row in enumerate(_in_reading_order(store, r1, partial)):  # r1 alone, stopped after `done` reads
        if k == done:
            break
        store.open_case(r1, row["session"], row["patient_id"], now=row["at"])
        store.submit(r1, row["session"], row["patient_id"], **rating(row["confidence"], "call_confidence"),
                     now=row["at"] + 1)
    assert simulate_reads(store, simulated, start=START) == len(simulated) - done
    _check(store, simulated)


def _in_reading_order(store: ReadingStore, rid: int, simulated: pd.DataFrame):
    """r1's simulated reads in the order the store gives the cases, with a clock that keeps the washout."""
    t = START
    for session in (UNAIDED, AI_ASSISTED):
        if session == AI_ASSISTED:
            t += store.design.washout_days * 86400 + 10
        for case in store.upcoming(rid, session, 10**6, now=t):
            row = simulated[(simulated["session"] == session) & (simulated["patient_id"] == case)].iloc[0]
            yield {"session": session, "patient_id": case, "confidence": row["confidence"], "at": t}
            t += 100

"""The reading store's rules, on SQLite and on a real PostgreSQL server: tokens (hashed, checked), each reader's
own order, reads committed at once and resumable after a crash, the AI-assisted session closed until every
unaided read is in and the washout has passed, unaided reads frozen once it is opened, readers isolated."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa

from sarcomri.errors import InputError
from sarcomri.read.design import AI_ASSISTED, PRESETS, UNAIDED, Reader, ReadingDesign, case_order
from sarcomri.read.store import READERS, ReadingError, ReadingStore

CASES = [f"P{k:03d}" for k in range(5)]
DAY = 86400.0
T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reads.sqlite'}"
    return request.getfixturevalue("pg_database")


def _create(url, design=None):
    readers = [Reader(name="specialist1", group="specialist"), Reader(name="practitioner1", group="practitioner")]
    return ReadingStore.create(url, "study", design or PRESETS["sarcoma"], readers, CASES, ["T2axi", "ADC"], now=T0)


def _read_all(store, reader, session, t):
    while (case := store.next_case(reader, session, now=t)) is not None:
        store.open_case(reader, session, case, now=t)
        t += 30
        store.submit(reader, session, case, call_positive=case.endswith(("1", "3")), certainty="medium", now=t)
    return t


def test_tokens_are_hashed_and_checked(url):
    store, tokens = _create(url)
    me = store.authenticate("specialist1", tokens["specialist1"])
    with pytest.raises(ReadingError, match="unknown reader or wrong token"):
        store.authenticate("specialist1", tokens["practitioner1"])
    with pytest.raises(ReadingError, match="unknown reader or wrong token"):
        store.authenticate("nobody", tokens["specialist1"])
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(READERS.c.token_hash, READERS.c.salt)).all()
    assert all(tokens["specialist1"].encode() not in bytes(h) for h, _ in stored) and me >= 1
    assert store.readers() == [{"name": "specialist1", "group": "specialist"},
                               {"name": "practitioner1", "group": "practitioner"}]
    with pytest.raises(InputError, match="already holds a reading plan"):
        _create(url)


def test_each_reader_reads_in_their_own_order_and_resumes_where_they_stopped(url):
    store, tokens = _create(url)
    me = store.authenticate("specialist1", tokens["specialist1"])
    order = case_order(CASES, 0, "specialist1", UNAIDED)
    assert order != case_order(CASES, 0, "practitioner1", UNAIDED) and sorted(order) == CASES
    assert store.next_case(me, UNAIDED, now=T0) == order[0]
    store.open_case(me, UNAIDED, order[0], now=T0)
    store.submit(me, UNAIDED, order[0], call_positive=True, certainty="high", now=T0 + 42)
    again = ReadingStore(url)  # a new process after a crash: the committed read is there
    assert again.next_case(me, UNAIDED, now=T0 + 50) == order[1]
    (read,) = again.reads(me)
    assert (read["patient_id"], read["confidence"], read["seconds"], read["certainty"]) == (order[0], 0, 42.0, "high")


def test_the_ai_session_opens_after_every_unaided_read_and_the_washout(url):
    store, tokens = _create(url)
    me = store.authenticate("specialist1", tokens["specialist1"])
    with pytest.raises(ReadingError, match="read every case unaided first .0 of 5"):
        store.next_case(me, AI_ASSISTED, now=T0)
    t = _read_all(store, me, UNAIDED, T0)
    state = store.state(me, AI_ASSISTED, now=t + 13 * DAY)
    assert not state.open and state.reason == "the washout ends in 1.0 days" and state.opens_at == t + 14 * DAY
    with pytest.raises(ReadingError, match="washout"):
        store.open_case(me, AI_ASSISTED, CASES[0], now=t + 13 * DAY)
    # before opening session 2 an unaided read may still be changed; reading a case again restarts the washout
    store.submit(me, UNAIDED, CASES[0], call_positive=False, certainty="low", now=t + DAY)
    assert not store.state(me, AI_ASSISTED, now=t + 14 * DAY + 1).open
    later = t + 15 * DAY + 1
    case = store.next_case(me, AI_ASSISTED, now=later)
    store.open_case(me, AI_ASSISTED, case, now=later)
    with pytest.raises(ReadingError, match="cannot change once the AI-assisted session has been opened"):
        store.submit(me, UNAIDED, CASES[0], call_positive=True, certainty="high", now=later + 5)
    store.submit(me, AI_ASSISTED, case, call_positive=True, certainty="high", now=later + 60)
    mine = {(r["session"], r["patient_id"]): r["confidence"] for r in store.reads(me)}
    assert mine[(UNAIDED, CASES[0])] == 3 and mine[(AI_ASSISTED, case)] == 0 and len(mine) == 6


def test_readers_see_only_their_own_reads_and_the_owner_sees_progress(url):
    store, tokens = _create(url)
    me = store.authenticate("specialist1", tokens["specialist1"])
    other = store.authenticate("practitioner1", tokens["practitioner1"])
    _read_all(store, me, UNAIDED, T0)
    assert store.reads(other) == [] and {r["reader"] for r in store.reads(me)} == {"specialist1"}
    progress = {(p["reader"], p["session"]): (p["read"], p["open"]) for p in store.progress(now=T0 + DAY)}
    assert progress == {("specialist1", UNAIDED): (5, True), ("specialist1", AI_ASSISTED): (0, False),
                        ("practitioner1", UNAIDED): (0, True), ("practitioner1", AI_ASSISTED): (0, False)}


def test_ratings_follow_the_scale_and_the_plan(url):
    store, tokens = _create(url, ReadingDesign())  # six_point, one unaided session
    me = store.authenticate("specialist1", tokens["specialist1"])
    with pytest.raises(ReadingError, match="whole number 0-5"):
        store.submit(me, UNAIDED, CASES[0], confidence=6, now=T0)
    with pytest.raises(ReadingError, match="not a case of this reading plan"):
        store.submit(me, UNAIDED, "P999", confidence=2, now=T0)
    with pytest.raises(ReadingError, match="no 'ai_assisted' session"):
        store.next_case(me, AI_ASSISTED, now=T0)
    assert store.submit(me, UNAIDED, CASES[0], confidence=2, now=T0) == 2


def _reader_process(url: str, token: str, results) -> None:
    store = ReadingStore(url)
    me = store.authenticate("specialist1", token)
    for case in CASES:
        store.open_case(me, UNAIDED, case, now=T0)
        store.submit(me, UNAIDED, case, call_positive=True, certainty="low", now=T0 + 1)
        results.put(case)  # said only after the commit returned
    results.put("stop")
    multiprocessing.current_process().join(timeout=60)  # never returns: the test kills this process


def test_a_killed_process_loses_no_committed_read(url):
    store, tokens = _create(url)
    results = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=_reader_process, args=(url, tokens["specialist1"],
                                                                                       results))
    proc.start()
    committed = []
    while (item := results.get(timeout=120)) != "stop":
        committed.append(item)
    proc.kill()
    proc.join()
    me = store.authenticate("specialist1", tokens["specialist1"])
    assert sorted(r["patient_id"] for r in ReadingStore(url).reads(me)) == sorted(committed) == CASES


def test_per_sequence_designs_rate_each_sequence_of_a_case(url):
    store, tokens = _create(url, PRESETS["carcinosarcoma"])  # per sequence, 6-point, one session
    me = store.authenticate("specialist1", tokens["specialist1"])
    assert store.rated() == ["T2axi", "ADC"]
    case = store.next_case(me, UNAIDED, now=T0)
    with pytest.raises(ReadingError, match="rates T2axi or ADC in this study, not 'all'"):
        store.submit(me, UNAIDED, case, confidence=1, now=T0)
    store.submit(me, UNAIDED, case, confidence=1, now=T0, sequence="T2axi")
    assert store.next_case(me, UNAIDED, now=T0) == case and store.state(me, UNAIDED, T0).read == 0  # half read
    store.submit(me, UNAIDED, case, confidence=4, now=T0, sequence="ADC")
    assert store.next_case(me, UNAIDED, now=T0) != case and store.state(me, UNAIDED, T0).read == 1
    assert {(r["sequence"], r["confidence"]) for r in store.reads(me)} == {("T2axi", 1), ("ADC", 4)}

"""The reader workstation's API on a tiny study: log in, read the first session case by case (volumes served
once and cached), the AI hidden until the AI-assisted session opens after the washout, unaided reads frozen then,
readers isolated, the owner's progress behind the owner's token; no label is ever sent."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sarcomri.cohort.manifest import Cohort
from sarcomri.read.server import COOKIE, create_app
from sarcomri.read.store import ReadingStore

DAY = 86400.0


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def served(reading_run):
    """(app, tokens, clock, run folder) of the tiny reading plan, the app's time on a clock the test moves."""
    run, db, tokens = reading_run
    clock = Clock()
    return create_app(run, ReadingStore(db), owner_token="owner-secret", clock=clock), tokens, clock, run


def _login(app, name, token):
    client = TestClient(app)
    res = client.post("/api/login", json={"name": name, "token": token})
    assert res.status_code == 200 and COOKIE in res.cookies
    return client


def test_a_reader_reads_both_sessions_through_the_api(served, tiny_cohort):
    app, tokens, clock, _ = served
    assert TestClient(app).post("/api/login", json={"name": "r1", "token": tokens["r2"]}).status_code == 401
    assert TestClient(app).get("/api/me").status_code == 401
    client = _login(app, "r1", tokens["r1"])
    me = client.get("/api/me").json()
    assert me["sequences"] == ["T2axi"] and me["scale"] == "call_confidence"
    assert [(s["session"], s["open"]) for s in me["sessions"]] == [("first", True), ("ai_assisted", False)]
    cohort = Cohort.load(tiny_cohort)
    seen = []
    while (case := client.get("/api/next/first").json()["case"]) is not None:
        assert client.post("/api/open", json={"session": "first", "case": case}).status_code == 200
        vol = client.get(f"/api/volume/{case}/T2axi")
        assert vol.status_code == 200 and vol.content == (cohort.root / cohort.series_row(case, "T2axi")["image"]
                                                          ).read_bytes()
        assert "max-age" in vol.headers["cache-control"]
        again = client.get(f"/api/volume/{case}/T2axi", headers={"If-None-Match": vol.headers["etag"]})
        assert again.status_code == 304 and not again.content  # served once: the browser's copy stands
        assert client.get(f"/api/ai/{case}").status_code == 403  # no AI in the unaided session
        clock.t += 20
        res = client.post("/api/read", json={"session": "first", "case": case, "call_positive": True,
                                             "certainty": "low"})
        assert res.json() == {"confidence": 2}
        seen.append(case)
    assert sorted(seen) == [p for k, p in enumerate(cohort.patient_ids) if k % 3 == 0]
    refused = client.get("/api/next/ai_assisted")
    assert refused.status_code == 403 and "washout ends in 14.0 days" in refused.json()["detail"]
    clock.t += 14 * DAY + 1
    case = client.get("/api/next/ai_assisted").json()["case"]
    client.post("/api/open", json={"session": "ai_assisted", "case": case})
    ai = client.get(f"/api/ai/{case}").json()
    assert set(ai) == {"sequences", "summed_score", "threshold", "decision", "overlays"}
    assert "label" not in json.dumps(ai)
    assert ai["overlays"] == []  # a bare classification run: no segmentation model
    assert ai["decision"] in ("sarcoma", "leiomyoma") and ai["sequences"][0]["sequence"] == "T2axi"
    frozen = client.post("/api/read", json={"session": "first", "case": seen[0], "call_positive": False,
                                            "certainty": "high"})
    assert frozen.status_code == 409 and "cannot change" in frozen.json()["detail"]
    assert client.post("/api/read", json={"session": "ai_assisted", "case": case, "call_positive": False,
                                          "certainty": "high"}).json() == {"confidence": 5}
    mine = client.get("/api/reads").json()["reads"]
    assert len(mine) == len(seen) + 1 and {r["reader"] for r in mine} == {"r1"}


def test_readers_are_isolated_and_the_owner_sees_progress(served):
    app, tokens, _, _ = served
    first = _login(app, "r1", tokens["r1"])
    case = first.get("/api/next/first").json()["case"]
    first.post("/api/read", json={"session": "first", "case": case, "call_positive": True, "certainty": "high"})
    second = _login(app, "r2", tokens["r2"])
    assert second.get("/api/reads").json()["reads"] == []
    assert second.get("/api/volume/P999/T2axi").status_code == 404
    assert second.get(f"/api/volume/{case}/ADC").status_code == 404  # not a sequence of the plan
    bad = second.post("/api/read", json={"session": "first", "case": case, "confidence": 9})
    assert bad.status_code == 409
    assert TestClient(app).get("/api/progress").status_code == 401
    progress = TestClient(app).get("/api/progress", headers={"X-Owner-Token": "owner-secret"}).json()["progress"]
    assert {(p["reader"], p["session"]): p["read"] for p in progress} == {
        ("r1", "first"): 1, ("r1", "ai_assisted"): 0, ("r2", "first"): 0, ("r2", "ai_assisted"): 0}
    first.post("/api/logout")
    assert first.get("/api/me").status_code == 401

"""The reading page in real headless Chromium (Playwright, Debian's chromium, WebGL2 in software for NiiVue) over
a real server: a reader logs in, reads three cases of session 1 (each case's sequences shown by NiiVue, the
slices scrolled, a rating clicked), reads the rest, is refused session 2 before the washout, reads session 2 with
the AI shown once the washout has passed, and the export equals what was clicked; another reader sees none of it."""

from __future__ import annotations

import time

import pytest

from sarcomri.read.export import reads_table
from sarcomri.read.server import background_server, create_app
from sarcomri.read.store import ReadingStore

from .conftest import login

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def server(reading_run):
    """(base URL, tokens, clock, database URL, volumes served) of the app served by uvicorn in a thread of this
    process; ``volumes served`` lists the image requests the server answered with the file (not 304)."""
    run, db, tokens = reading_run
    clock = Clock()
    app = create_app(run, ReadingStore(db), owner_token="o", clock=clock)
    served: list[str] = []

    @app.middleware("http")
    async def count(request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/api/volume/") and response.status_code == 200:
            served.append(request.url.path)
        return response

    with background_server(app) as base:
        yield base, tokens, clock, db, served


def _read_case(page, call: str, certainty: str, scroll: bool) -> str:
    """Wait for the case's volumes, optionally scroll a slice, rate it; returns the case."""
    page.wait_for_function("window.sarcomriReader.loaded === window.sarcomriReader.me.sequences.length",
                           timeout=30000)
    case = page.evaluate("window.sarcomriReader.case")
    if scroll:
        before = page.evaluate("window.sarcomriReader.slice(0)")
        page.hover(".viewer canvas")
        page.mouse.wheel(0, 300)
        page.wait_for_function(f"window.sarcomriReader.slice(0) !== {before}", timeout=10000)
    page.check(f"input[name=call][value={call}]")
    page.check(f"input[name=certainty][value={certainty}]")
    page.click("#rating button[type=submit]")
    page.wait_for_function(f"window.sarcomriReader.case !== '{case}' || !document.getElementById('sessions').hidden",
                           timeout=30000)
    return case


def test_a_reader_reads_both_sessions_in_the_browser(browser, server):
    base, tokens, clock, db, served = server
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, base, "r1", tokens["r1"])
    assert "closed: read every case unaided first" in page.inner_text("#session-list")
    page.click("button[data-session=first]")
    clicked = {}
    cases = ReadingStore(db).cases()
    for k in range(len(cases)):
        call, certainty = ("positive", "high") if k % 2 else ("negative", "medium")
        clicked[("first", _read_case(page, call, certainty, scroll=k < 3))] = (call, certainty)
    assert sorted(c for _, c in clicked) == sorted(cases)
    assert sorted(served) == sorted(f"/api/volume/{c}/T2axi" for c in cases)  # each volume sent once
    page.wait_for_selector("#sessions:not([hidden])")
    assert "closed: the washout ends in 14.0 days" in page.inner_text("#session-list")
    assert page.is_disabled("button[data-session=ai_assisted]")
    clock.t += 14 * DAY + 60
    page.reload()
    page.wait_for_selector("#sessions:not([hidden])")
    page.click("button[data-session=ai_assisted]")
    page.wait_for_selector("#ai:not([hidden])")
    assert "likelihood" in page.inner_text("#ai") and "threshold" in page.inner_text("#ai-decision")
    for _ in range(len(cases)):
        clicked[("ai_assisted", _read_case(page, "positive", "low", scroll=False))] = ("positive", "low")
    assert errors == []
    exported = reads_table(ReadingStore(db))
    got = {(r.session, r.patient_id): (r.call, r.certainty) for r in exported.itertuples()}
    assert got == clicked and set(exported["reader"]) == {"r1"}
    other = browser.new_context().new_page()
    login(other, base, "r2", tokens["r2"])
    assert other.evaluate("fetch('/api/reads').then(r => r.json())")["reads"] == []


def test_a_per_sequence_design_rates_each_sequence_in_the_browser(browser, reading_run, tmp_path):
    from sarcomri.read.design import PRESETS, Reader
    from sarcomri.read.plan import create_plan

    run, _, _ = reading_run
    db = f"sqlite:///{tmp_path / 'per-sequence.sqlite'}"
    store, tokens = create_plan(run, PRESETS["carcinosarcoma"], [Reader(name="r1")], db)
    with background_server(create_app(run, store)) as base:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        login(page, base, "r1", tokens["r1"])
        page.click("button[data-session=first]")
        page.wait_for_function("window.sarcomriReader.loaded === 1", timeout=30000)
        assert page.locator(".rate h4").all_inner_texts() == ["T2axi"]  # one rating per sequence, titled
        page.click("#zoom-in")
        page.click("#zoom-in")
        assert page.evaluate("window.sarcomriReader.zoom()") == [1.5625]
        page.click("#zoom-reset")
        assert page.evaluate("window.sarcomriReader.zoom()") == [1]
        page.select_option("#drag-mode", "pan")
        assert page.evaluate("window.sarcomriReader.viewers[0].opts.dragMode") == 3  # NiiVue's pan
        case = page.evaluate("window.sarcomriReader.case")
        page.check("input[name='confidence:T2axi'][value='4']")
        page.click("#rating button[type=submit]")
        page.wait_for_function(f"window.sarcomriReader.case !== '{case}'", timeout=30000)
    (read,) = ReadingStore(db).reads()
    assert (read["patient_id"], read["sequence"], read["confidence"]) == (case, "T2axi", 4)


def test_the_owner_sees_progress_counts_in_the_browser(browser, server):
    base, tokens, _, db, _ = server
    store = ReadingStore(db)
    me = store.authenticate("r1", tokens["r1"])
    case = store.next_case(me, "first")
    store.submit(me, "first", case, call_positive=True, certainty="high")
    page = browser.new_context().new_page()
    page.goto(base + "/owner.html")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('owner-message').textContent.length > 0")
    assert "owner's token" in page.inner_text("#owner-message") and page.is_hidden("#progress")
    page.fill("input[name=token]", "o")
    page.click("button[type=submit]")
    page.wait_for_selector("#progress:not([hidden])")
    rows = [r.split("\t") for r in page.inner_text("#progress").splitlines()[1:]]
    n = len(store.cases())
    assert [r[:4] for r in rows] == [["r1", "specialist", "unaided", f"1 of {n}"],
                                     ["r1", "specialist", "AI-assisted", f"0 of {n}"],
                                     ["r2", "practitioner", "unaided", f"0 of {n}"],
                                     ["r2", "practitioner", "AI-assisted", f"0 of {n}"]]

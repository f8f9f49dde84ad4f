"""The study report (`sarcomri report`) in a real browser: one self-contained page that passes the page checks at
1280 px, reads with JavaScript off, sorts its tables on a click, and prints on A4 landscape without clipping."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

#: The report tests' synthetic run builders (tests/report/conftest.py), loaded by path: fixtures of a sibling
#: folder's conftest are not visible here.
BUILDERS = Path(__file__).resolve().parents[1] / "report" / "conftest.py"
#: A4 landscape less the print margins (297 mm - 2 x 12 mm) in CSS pixels (96 per inch).
PRINT_WIDTH = round((297 - 24) / 25.4 * 96)


def _builders():
    """tests/report/conftest.py as a module (registered, as its dataclass needs)."""
    name = "sarcomri_tests_report_builders"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BUILDERS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """The study report of the report tests' synthetic run (ROC with readers, tables, sessions, Grad-CAM,
    segmentation, model card), built once for this module."""
    from sarcomri.report import build_report

    build = _builders()
    root = tmp_path_factory.mktemp("study-report")
    cohort = build.make_cohort(root / "cohort")
    run = build.make_run(root / "run", cohort)
    seg = build.make_segmentation_run(root / "seg", cohort)
    return build_report(run, segmentation_dirs=[seg])


def _open_all(page) -> None:
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")


def _table(page, title: str):
    return page.locator(f"xpath=//*[self::h3 or self::summary][normalize-space()='{title}']"
                        "/following::table[1]")


def _column(table, k: int) -> list[str]:
    return table.locator(f"tbody tr td:nth-child({k + 1})").all_inner_texts()


def _first_number(text: str) -> float:
    found = re.match(r"[<>]?(-?\d+(?:\.\d+)?)", text.strip())
    assert found, text
    return float(found.group(1))


def test_the_page_passes_the_checks(checks, report_html):
    page, failed = checks.open(report_html)
    _open_all(page)  # the folded tables too
    assert not (report_html.parent / "figures").exists()
    assert page.evaluate("() => document.images.length") >= 7
    assert checks.broken_images(page) == [] and failed == []
    assert checks.horizontal_overflow(page) == 0
    assert checks.long_floats(page) == []
    assert checks.code_style_headers(page) == []
    too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('table'))
        .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)
        .map(t => t.closest('section').id)""")
    assert too_wide == []  # no table needs its scroll bar at 1280 px
    numeric = page.locator("th.num").all_inner_texts()
    assert "AUC (95% CI)" in numeric and "p" in numeric and "sequence" not in numeric
    assert page.locator("td.num").first.evaluate("td => getComputedStyle(td).textAlign") == "right"
    sessions = _column(_table(page, "Reader groups, unaided and AI-assisted (reads pooled)"), 1)
    assert set(sessions) == {"unaided", "AI-assisted"}
    text = page.evaluate("() => document.body.innerText")
    first = text.index("SS-Avg")
    assert re.search(r"SS-Avg (\(\(sensitivity \+ specificity\) / 2\)|= mean of sensitivity and specificity)",
                     text[first:first + 2000])  # defined where first used
    assert checks.keep_screenshot(page, "study-report").stat().st_size > 0


def test_tables_read_without_javascript(browser, report_html):
    html = report_html.read_text()
    context = browser.new_context(java_script_enabled=False, offline=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(report_html.as_uri())
    assert page.locator("table.data").count() == html.count('<table class="data') >= 15
    assert page.locator("table.matrix").count() == html.count('<table class="matrix') >= 21 + 3  # 2 x 2, kappa
    rows = sum(body.count("<tr>") for body in re.findall(r"<tbody>(.*?)</tbody>", html, re.S))
    assert page.locator("tbody tr").count() == rows > 150
    assert page.locator("table.js-sortable").count() == 0 and page.locator("th[tabindex]").count() == 0
    accuracy = _table(page, "Diagnostic accuracy")
    assert _column(accuracy, 1)[:2] == ["CNN", "specialist 1"]  # as written, unsorted
    context.close()


def test_clicking_a_header_sorts_its_column(checks, report_html):
    page, _ = checks.open(report_html)
    accuracy = _table(page, "Diagnostic accuracy")
    headers = accuracy.locator("thead th").all_inner_texts()
    auc, p, who = headers.index("AUC (95% CI)"), headers.index("DeLong p vs CNN"), headers.index("interpreter")
    before = _column(accuracy, auc)
    assert re.fullmatch(r"\d\.\d\d \(\d\.\d\d-\d\.\d\d\)", before[0])
    header = accuracy.locator("thead th").nth(auc)
    header.click()
    up = [_first_number(v) for v in _column(accuracy, auc)]
    assert up == sorted(up) and up != [_first_number(v) for v in before]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    down = [_first_number(v) for v in _column(accuracy, auc)]
    assert down == sorted(up, reverse=True) and header.get_attribute("aria-sort") == "descending"
    accuracy.locator("thead th").nth(p).click()  # empty cells (the CNN against itself) go last
    ps = _column(accuracy, p)
    filled = [v for v in ps if v]
    assert ps == filled + [""] * (len(ps) - len(filled)) and filled == sorted(filled, key=_first_number)
    assert set(_column(accuracy, who)[len(filled):]) == {"CNN"}
    wrong = page.locator("xpath=//h3[starts-with(normalize-space(), 'Misdiagnosed patients')]/following::table[1]")
    for title in ("mask volume (cm³)", "score"):  # magnitudes and signs that text order would get wrong
        k = wrong.locator("thead th").all_inner_texts().index(title)
        wrong.locator("thead th").nth(k).click()
        values = [float(v) for v in _column(wrong, k)]
        assert values == sorted(values) and len(set(values)) > 1, title
    accuracy.locator("thead th").nth(who).click()  # text: alphabetical, numbers inside in order
    names = _column(accuracy, who)
    assert names == sorted(names, key=lambda s: (re.sub(r"\d+$", "", s).lower(), int(re.sub(r"\D", "", s) or 0)))


def test_the_print_layout_clips_nothing(browser, report_html):
    context = browser.new_context(offline=True, viewport={"width": PRINT_WIDTH, "height": 900})
    page = context.new_page()
    page.emulate_media(media="print")
    page.goto(report_html.as_uri())
    _open_all(page)
    clipped = page.evaluate("""(width) => Array.from(document.querySelectorAll('table, img, figure'))
        .filter(e => e.getBoundingClientRect().right > width + 0.5)
        .map(e => e.tagName + ' in ' + e.closest('section').id)""", PRINT_WIDTH)
    assert clipped == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PRINT_WIDTH
    assert page.locator("header").evaluate("h => getComputedStyle(h).backgroundColor") == "rgba(0, 0, 0, 0)"
    context.close()


def test_roc_points_name_themselves_on_hover(checks, report_html):
    """Each reader's call on an ROC figure has a hover label (a title, no script) over its drawn point, and the
    labels move with the image when the page is narrower."""
    page, _ = checks.open(report_html)
    figure = page.locator('figure[id^="figure-roc_"]').filter(has=page.locator(".hotspot")).first
    spots = figure.locator(".hotspot")
    titles = spots.evaluate_all("els => els.map(e => e.getAttribute('title'))")
    assert any(t.startswith("CNN at its cut-off: sensitivity ") for t in titles)
    assert any(", unaided: sensitivity " in t for t in titles) and any(", AI-assisted: " in t for t in titles)
    image = figure.locator("img").bounding_box()
    spot = spots.nth(1).bounding_box()
    cx, cy = spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2
    assert image["x"] < cx < image["x"] + image["width"] and image["y"] < cy < image["y"] + image["height"]
    fraction = ((cx - image["x"]) / image["width"], (cy - image["y"]) / image["height"])
    page.set_viewport_size({"width": 700, "height": 900})
    image, spot = figure.locator("img").bounding_box(), spots.nth(1).bounding_box()
    cx, cy = spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2
    assert ((cx - image["x"]) / image["width"], (cy - image["y"]) / image["height"]) == pytest.approx(fraction,
                                                                                                   abs=0.01)
    spots.nth(1).hover()
    assert spots.nth(1).evaluate("e => getComputedStyle(e).outlineStyle") == "solid"

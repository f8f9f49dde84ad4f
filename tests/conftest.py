"""Shared fixtures: the real test data in ../shared/data (skipped with a message when absent), and a real
headless Chromium for the pages' browser tests (``browser``, ``checks``; see the section below)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SARCOMRI_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real de-identified test data; tests using it skip when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set SARCOMRI_SHARED_DATA or clone beside ../shared)")
    return SHARED_DATA


@pytest.fixture()
def tiny_cohort(tmp_path) -> Path:
    """A written 12-patient cohort (4 sarcoma, 8 leiomyoma; T2axi for all, ADC for some, masks on T2axi)."""
    import numpy as np
    import SimpleITK as sitk

    from sarcomri.cohort.manifest import CohortWriter

    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
        for i in range(12):
            pid = f"P{i:03d}"
            w.add_patient(pid, "sarcoma" if i < 4 else "leiomyoma", age=40 + i, center="ABC"[i % 3])
            img = sitk.GetImageFromArray(rng.normal(100, 10, (6, 16, 16)).astype(np.float32))
            img.SetSpacing((1.5, 1.5, 5.0))
            m = np.zeros((6, 16, 16), np.uint8)
            m[2:4, 5:10, 6:11] = 1
            mask = sitk.GetImageFromArray(m)
            mask.CopyInformation(img)
            w.add_series(pid, "T2axi", img, mask)
            if i % 2 == 0:
                w.add_series(pid, "ADC", img)
    return root


# ------------------------------------------------------------------------------------------ the browser
# A real headless Chromium (Debian's ``chromium``, driven by Playwright through ``executable_path``; no browser
# is downloaded). The browser tests skip with a message only where no Chromium or no Playwright is installed
# (``.ci/run`` installs Debian's chromium; ``make venv`` installs Playwright) or the browser cannot start.
#
# The ``checks`` fixture holds what a page must pass (issue 16): no broken image, no horizontal overflow at 1280 px,
# no raw float longer than 4 decimals, no code-style column name; and a screenshot kept as a test artifact. Each
# check returns what it found wrong (empty when the page passes), so a failure names the offending items.

#: Where screenshots are kept (``SARCOMRI_TEST_ARTIFACTS``, default ``test-artifacts/`` in the repository).
ARTIFACTS = Path(os.environ.get("SARCOMRI_TEST_ARTIFACTS", REPO / "test-artifacts"))
WIDTH = 1280
#: A number with more than 4 decimals, as a float printed raw would show (not inside a longer token).
LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?![\w.])")
#: Column names as code writes them: snake_case, or words run into digits (``modality1``), or known code names.
CODE_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z]+\d+$")
CODE_WORDS = {"rrrc", "frrc", "rrfc"}


def open_offline(browser, path: Path, width: int = WIDTH, height: int = 900):
    """A page showing the file ``path`` with the network disabled, ``width`` px wide; returns (page, the URLs
    that failed to load)."""
    context = browser.new_context(offline=True, viewport={"width": width, "height": height})
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(Path(path).resolve().as_uri(), wait_until="load")
    return page, failed


def broken_images(page) -> list[str]:
    """The ``src`` (first 80 characters) of every image the browser could not decode or load."""
    return page.evaluate("""() => Array.from(document.images)
        .filter(img => !img.complete || img.naturalWidth === 0)
        .map(img => (img.getAttribute('src') || '').slice(0, 80))""")


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than its viewport (0 when nothing overflows)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def long_floats(page) -> list[str]:
    """Numbers with more than 4 decimals in the page's visible text."""
    return LONG_FLOAT.findall(page.evaluate("() => document.body.innerText"))


def code_style_headers(page) -> list[str]:
    """Table headers written as code (``auc_mean``, ``modality1``, ``rrrc``) rather than words."""
    headers = page.evaluate("() => Array.from(document.querySelectorAll('th')).map(th => th.innerText.trim())")
    return [h for h in headers if CODE_NAME.match(h) or h.lower() in CODE_WORDS]


def keep_screenshot(page, name: str) -> Path:
    """A full-page screenshot in :data:`ARTIFACTS` (``<name>.png``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _chromium_path() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process."""
    path = _chromium_path()
    if path is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (.ci/run does)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: `pip install -e .[dev]`")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=path, args=[
                "--no-sandbox", "--disable-dev-shm-usage",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])  # WebGL2 in software, for NiiVue
        except Error as err:
            pytest.skip(f"Chromium at {path} could not start: {str(err).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def checks(browser) -> SimpleNamespace:
    """The page checks, with ``open(path)`` opening a file in the session's browser (network off)."""
    return SimpleNamespace(open=lambda path, width=WIDTH: open_offline(browser, path, width),
                           broken_images=broken_images, horizontal_overflow=horizontal_overflow,
                           long_floats=long_floats, code_style_headers=code_style_headers,
                           keep_screenshot=keep_screenshot)

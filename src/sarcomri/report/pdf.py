"""A report page printed to PDF by headless Chromium's command line (``--print-to-pdf``), written atomically.

The page's print style sheet (``@media print`` in ``templates/report.html.j2``) lays it out for A4: tables over the
full width in a smaller type with wrapping cells, figures no wider than the page, no page break inside a figure or
a table row. Chromium is Debian's ``chromium`` (or ``chromium-browser``, ``google-chrome``) on the PATH; nothing
is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from sarcomri.errors import SarcomriError
from sarcomri.io.atomic import atomic_path

#: The browsers tried, in order.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: Seconds a print may take.
TIMEOUT = 180.0


class PdfError(SarcomriError):
    """The PDF could not be printed: no Chromium, or Chromium failed."""


def find_chromium() -> str | None:
    """The path of the first of :data:`BROWSERS` on the PATH, or None."""
    return next((found for found in map(shutil.which, BROWSERS) if found), None)


def _command(browser: str, html: Path, pdf: Path, profile: Path) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-pdf-header-footer", "--allow-file-access-from-files", f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}", html.resolve().as_uri()]


def print_pdf(html: str | Path, pdf: str | Path, browser: str | None = None, timeout: float = TIMEOUT) -> Path:
    """Print the page ``html`` to ``pdf`` (replaced when it exists) with headless Chromium; ``browser``: its
    path (default :func:`find_chromium`). Raises :class:`PdfError` when no Chromium is installed, it fails or
    times out, or what it wrote is not a PDF (nothing is left at ``pdf`` then)."""
    html = Path(html)
    if not html.is_file():
        raise PdfError(f"{html}: no such page to print")
    browser = browser or find_chromium()
    if browser is None:
        raise PdfError(f"no Chromium to print the PDF with (looked for {', '.join(BROWSERS)} on the PATH): install "
                       "it (`apt-get install chromium`) or leave out --pdf")
    with tempfile.TemporaryDirectory(prefix="sarcomri-chromium-") as profile, \
            atomic_path(pdf, suffix=".pdf", overwrite=True) as tmp:
        try:
            done = subprocess.run(_command(browser, html, tmp, Path(profile)), capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{browser} did not print {html} within {timeout:g} s") from None
        except OSError as err:
            raise PdfError(f"{browser} could not be started ({err})") from None
        head = tmp.read_bytes()[:5] if tmp.is_file() else b""
        if done.returncode != 0 or head != b"%PDF-":
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise PdfError(f"{browser} did not print {html} to a PDF (exit {done.returncode}): {tail}")
    return Path(pdf)

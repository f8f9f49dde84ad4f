"""The one-page HTML of a single patient's prediction (``sarcomri predict``), for the radiologist."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sarcomri import __version__
from sarcomri.io.atomic import write_text
from sarcomri.report.html import environment


def render_patient_page(prediction: dict, figures: Sequence[dict] = ()) -> str:
    """The page from a prediction (``Prediction.to_dict()``) and figures (``src`` relative, ``caption``)."""
    return environment().get_template("patient.html.j2").render(p=prediction, figures=list(figures),
                                                                 version=__version__)


def write_patient_page(out_dir: str | Path, prediction: dict, figures: Sequence[dict] = ()) -> Path:
    """``<out>/report.html``, written atomically."""
    return write_text(Path(out_dir) / "report.html", render_patient_page(prediction, figures), overwrite=True)

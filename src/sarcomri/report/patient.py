"""The one-page HTML of a single patient's prediction (``sarcomri predict``), for the radiologist: the images
with the tumour's contour first, the decision and what its score meant in the study, warnings and
substitutions, each sequence's likelihood with the spread of its models, and Grad-CAM. The figures are
embedded (``data:`` URIs), so the page is one self-contained file; a print layout fits it on paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sarcomri import __version__
from sarcomri.io.atomic import write_text
from sarcomri.report.embed import file_data_uri
from sarcomri.report.html import environment


def percent(value: float | None) -> str:
    """A proportion as a whole percentage ('8%'), '-' when undefined."""
    return "-" if value is None or value != value else f"{100 * value:.0f}%"


def score_rows(meaning: dict[str, Any] | None, score: int) -> list[dict[str, Any]]:
    """The study's score levels for the page's table, the patient's own level marked (``mine``)."""
    if not meaning:
        return []
    return [{**lv, "mine": lv["score"] == score} for lv in meaning["levels"]]


def render_patient_page(prediction: dict, figures: Sequence[dict] = (), folder: str | Path | None = None,
                        viewers: Sequence[dict] = ()) -> str:
    """The page from a prediction (``Prediction.to_dict()``), its figures (``src`` relative to ``folder``,
    ``kind``, ``caption``; with ``folder`` each figure is embedded, else linked by its ``src``) and the slice
    viewer's data per sequence (:func:`sarcomri.report.viewer.viewer_payload`)."""
    from sarcomri.report.viewer import viewer_json, viewer_script

    shown = [{**f, "uri": file_data_uri(Path(folder) / f["src"]) if folder is not None else f["src"]}
             for f in figures]
    by_kind = {kind: [f for f in shown if f.get("kind") == kind] for kind in ("slices", "likelihoods", "gradcam")}
    meaning = prediction.get("score_meaning")
    levels = score_rows(meaning, prediction["summed_score"])
    return environment().get_template("patient.html.j2").render(
        p=prediction, figures=by_kind, version=__version__, meaning=meaning,
        mine=next((lv for lv in levels if lv["mine"]), None), levels=levels, percent=percent,
        viewers=[{"sequence": v["sequence"], "json": viewer_json(v)} for v in viewers],
        viewer_js=viewer_script() if viewers else "")


def write_patient_page(out_dir: str | Path, prediction: dict, figures: Sequence[dict] = (),
                       viewers: Sequence[dict] = ()) -> Path:
    """``<out>/report.html`` with the figures in ``out`` and the viewers' data embedded, written atomically."""
    out_dir = Path(out_dir)
    return write_text(out_dir / "report.html", render_patient_page(prediction, figures, out_dir, viewers),
                      overwrite=True)

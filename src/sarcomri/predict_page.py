"""The patient page of ``sarcomri predict``: its figures (the tumour's slices with the contour, the patient's
likelihoods among the study's patients, Grad-CAM in context) written beside ``result.json``, and ``report.html``
with them embedded, so that the page is one file that can be mailed or archived alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sarcomri.prep.prepare2d import PreparedSlice
from sarcomri.runs import ClassificationRun

if TYPE_CHECKING:
    from sarcomri.predict_scoring import View

#: A :class:`sarcomri.predict.Prediction` (which imports this module: not imported here).
Prediction = Any


@dataclass
class PageInputs:
    """What the page shows beyond ``result.json``: per scored sequence its view and central slice, and the
    Grad-CAM of its first model (absent without ``gradcam``)."""

    run: ClassificationRun
    views: dict[str, View] = field(default_factory=dict)
    central: dict[str, PreparedSlice] = field(default_factory=dict)
    cams: dict[str, np.ndarray] = field(default_factory=dict)


def crop_box(run: ClassificationRun, seq: str, view: View, z: int) -> tuple[int, int, int, int]:
    """The box of slice ``z`` the network's input was cut from, as :func:`~sarcomri.prep.prepare2d.
    slices_from_volume` cut it."""
    from sarcomri.prep.slices import body_box, body_threshold, square_box

    spec = run.slice_spec(seq)
    if spec.crop_to_tumour:
        m = view.mask[z]
        return square_box(m if m.any() else view.mask.max(axis=0), spec.margin)
    return body_box(view.volume[z], body_threshold(view.volume))


def study_likelihoods(run: ClassificationRun) -> pd.DataFrame | None:
    """The study's out-of-fold likelihood per patient and sequence (``tables/likelihood.csv``), None without."""
    path = run.table_path("likelihood")
    return pd.read_csv(path, dtype={"patient_id": str}) if path.is_file() else None


def page_figures(dest: Path, pred: Prediction, page: PageInputs) -> list[dict[str, Any]]:
    """Write the page's figures into ``dest``; returns one entry per figure: ``src`` (file name), ``kind``
    (``slices``, ``likelihoods``, ``gradcam``), ``sequence`` and ``caption``."""
    from sarcomri.report.figures import save_png
    from sarcomri.report.patient_figures import gradcam_context_figure, likelihood_figure, slices_figure

    results = {r.sequence: r for r in pred.sequences}
    figures: list[dict[str, Any]] = []
    for seq, view in page.views.items():
        size = results[seq].tumour or {}
        largest = int(size.get("largest_slice", page.central[seq].slice_index))
        save_png(slices_figure(view, largest), dest / f"slices_{seq}.png")
        figures.append({"src": f"slices_{seq}.png", "kind": "slices", "sequence": seq, "caption": (
            f"{seq}: slice {largest + 1} of {view.volume.shape[0]}, the tumour's largest cross-section, and its "
            f"neighbours; tumour volume {size.get('volume_ml', 0):.1f} mL, diameters "
            f"{size.get('long_axis_mm', 0):.0f} x {size.get('short_axis_mm', 0):.0f} mm in plane and "
            f"{size.get('through_plane_mm', 0):.0f} mm through the slices")})
    study = study_likelihoods(page.run)
    scored = {r.sequence: (r.likelihood, min(r.model_likelihoods), max(r.model_likelihoods))
              for r in pred.sequences if r.likelihood is not None and r.model_likelihoods}
    if study is not None and scored:
        save_png(likelihood_figure(study, scored, pred.positive_label, pred.negative_label), dest / "likelihoods.png")
        figures.append({"src": "likelihoods.png", "kind": "likelihoods", "sequence": "", "caption": (
            f"This patient's {pred.positive_label} likelihood per sequence (black diamond; the bar spans the "
            "ensemble's models) among the study's patients, each scored by models that did not train on it")})
    for seq, cam in page.cams.items():
        view, central = page.views[seq], page.central[seq]
        z = central.slice_index
        own = results[seq].model_likelihoods[0]
        save_png(gradcam_context_figure(view.volume[z], view.mask[z], cam, crop_box(page.run, seq, view, z),
                                        view.spacing, f"{seq}: slice {z + 1} (central)", pred.positive_label),
                 dest / f"gradcam_{seq}.png")
        figures.append({"src": f"gradcam_{seq}.png", "kind": "gradcam", "sequence": seq, "caption": (
            f"{seq}: where the first model of the ensemble found evidence for {pred.positive_label} on the central "
            f"tumour slice (its likelihood {own:.3f}; the ensemble's mean {results[seq].likelihood:.3f}); the "
            "network saw the square around the tumour, shown here in the slice's context")})
    if page.cams:
        pred.outputs["gradcam"] = ",".join(f"gradcam_{q}.png" for q in page.cams)
    return figures


def viewers(pred: Prediction, page: PageInputs) -> list[dict[str, Any]]:
    """The slice viewer's data per scored sequence (:mod:`sarcomri.report.viewer`), opening at the tumour's
    largest slice, with the Grad-CAM of the central slice where there is one."""
    from sarcomri.report.viewer import viewer_payload

    results = {r.sequence: r for r in pred.sequences}
    out = []
    for seq, view in page.views.items():
        size = results[seq].tumour or {}
        z = page.central[seq].slice_index
        cam = page.cams.get(seq)
        box = crop_box(page.run, seq, view, z) if cam is not None else None
        out.append(viewer_payload(view, int(size.get("largest_slice", z)), cam, z if cam is not None else None,
                                  box))
    return out


def write_page(dest: Path, pred: Prediction, page: PageInputs) -> Path:
    """The page's figures and ``report.html`` (figures and the slice viewer's data embedded) in ``dest``."""
    from sarcomri.report.patient import write_patient_page

    figures = page_figures(dest, pred, page)
    return write_patient_page(dest, pred.to_dict(), figures, viewers(pred, page))

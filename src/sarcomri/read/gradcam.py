"""Grad-CAM as an overlay of the reading page's AI-assisted session: for one case and sequence, the evidence for the
positive class of the sequence's first model (the same model and class as the patient page) on each tumour slice
the classifier reads, put back where the network's input was cut from, as a volume on the sequence's grid.

A map is computed the first time a reader asks for it (about a second: the network is rebuilt and run on one
PyTorch thread) and kept as ``<cache>/<case>_<sequence>_gradcam.nii.gz``; it depends only on the trained model and
the case's images, which a reading plan never changes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.atomic import atomic_path
from sarcomri.runs import ClassificationRun

_LOCK = threading.Lock()  # one map computed at a time (each is a network's work on the CPU)


def gradcam_sequences(run: ClassificationRun, sequences: list[str]) -> list[str]:
    """The shown sequences that have a classifier of their own (a single-sequence model group with models)."""
    return [q for q in sequences if q in run.trained_sequences() and run.models(q)]


def gradcam_overlay(run: ClassificationRun, cohort: Cohort, case: str, sequence: str, cache: Path) -> Path | None:
    """The Grad-CAM volume of ``case``'s ``sequence`` (values 0-1, 0 outside the network's crops), computed once
    into ``cache``; None when the case has no tumour slices to explain on that sequence."""
    path = cache / f"{case}_{sequence}_gradcam.nii.gz"
    with _LOCK:
        if path.is_file():
            return path
        volume = _volume(run, cohort, case, sequence)
        if volume is None:
            return None
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as tmp:
            sitk.WriteImage(volume, str(tmp), useCompression=True)
    return path


def _volume(run: ClassificationRun, cohort: Cohort, case: str, sequence: str) -> sitk.Image | None:
    import torch

    from sarcomri.models.folder import load_model
    from sarcomri.predict_page import crop_box
    from sarcomri.predict_scoring import patient_slices, view_of
    from sarcomri.report.gradcam import gradcam
    from sarcomri.report.patient_figures import place_cam
    from sarcomri.train.threads import torch_threads

    group = (sequence,)
    slices, choice, vol = patient_slices(cohort, case, group, run.slice_spec(sequence), None)
    if not slices or choice.mask is None:
        return None
    view = view_of(cohort, case, group, vol, choice.mask)
    with torch_threads(1):
        cams = gradcam(load_model(run.models(sequence)[0]), torch.from_numpy(np.stack([s.image for s in slices])),
                       target=1)
    out = np.zeros(view.volume.shape, np.float32)
    for s, cam in zip(slices, cams, strict=True):
        placed = place_cam(cam, crop_box(run, sequence, view, s.slice_index), view.volume.shape[1:])
        out[s.slice_index] = np.nan_to_num(placed, nan=0.0)
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(cohort.read_image(case, sequence))
    return image

"""Segment one new patient with a trained 3D model: the call a study runner or ``sarcomri predict`` makes.

::

    from sarcomri.seg3d.predict import segment_patient

    result = segment_patient("runs/seg3d-cpu/models/T1", {"T1": "patient/T1.nii.gz"})
    sitk.WriteImage(result.mask, "T1_mask.nii.gz")      # uint8 0/1 on the grid of the T1 image
    print(result.volume_ml)

The model is one model folder (``models/<seq>/fold<k>-rep0``), a folder holding several (the folds of a
cross-validation: their tumour probabilities are averaged), or models already loaded with
:func:`sarcomri.seg3d.infer.find_models` (load once, segment many patients). Images are given by sequence
name, as SimpleITK images, NIfTI paths or DICOM series folders; the models' sequences are taken in their
order (extra ones are ignored) and the later ones are resampled onto the first, whose grid the mask and
probability have (same size, spacing, origin and direction). Without ``settings`` the inference settings
the models were trained with are used (overlap, mirroring, largest component, threshold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sarcomri.cohort.sequences import group_name
from sarcomri.errors import InputError
from sarcomri.seg3d.config import InferSettings
from sarcomri.seg3d.infer import Model, find_models, predict_images
from sarcomri.seg3d.patient import ImageLike, PatientSegmentation, read_input_image


def model_settings(models: Sequence[Model]) -> InferSettings:
    """The inference settings of the config the (first) model was trained with, else the defaults."""
    for model in models:
        infer = (model.meta.get("config") or {}).get("infer")
        if infer:
            return InferSettings(**infer)
    return InferSettings()


def segment_patient(
    model: str | Path | Model | Sequence[Model],
    images: Mapping[str, ImageLike],
    settings: InferSettings | None = None,
    case_id: str = "patient",
) -> PatientSegmentation:
    """Segment the tumour of one patient (see the module docstring): ``images`` maps sequence names to
    images, NIfTI paths or DICOM series folders; returns the mask and probability on the grid of the first
    of the models' sequences."""
    if isinstance(model, str | Path):
        models = find_models(model)
    elif isinstance(model, Model):
        models = [model]
    else:
        models = list(model)
    if not models:
        raise InputError(None, "no model to segment with")
    sequences = list(models[0].plan.sequences)
    missing = [s for s in sequences if s not in images]
    if missing:
        raise InputError(case_id, f"the model takes {group_name(sequences)}; missing {', '.join(missing)} "
                                  f"(given: {', '.join(images) or 'nothing'})")
    channels = [read_input_image(images[s], s) for s in sequences]
    s = settings or model_settings(models)
    mask, prob = predict_images(models, channels, s, case_id=case_id)
    return PatientSegmentation(mask, prob, sequences, len(models))

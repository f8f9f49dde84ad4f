"""Inference: MONAI sliding windows with Gaussian weighting on the plan's grid, mirroring, fold ensembles,
and the prediction written back onto the input image's own grid (same origin, spacing, direction, size).

The tumour probability is resampled (linear) from the plan's grid to the original grid and thresholded
there, which gives smoother contours than resampling a label map with nearest neighbours. Several models
(the folds of a cross-validation) are averaged on the original grid, so their plans may differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference

from sarcomri.errors import InputError
from sarcomri.models.folder import LEGACY_WEIGHTS, MODEL_JSON, is_model_folder, load_model, read_info
from sarcomri.seg3d.cascade import REFINE_DIR, RefineSettings, crop, prior_on_grid, roi_box
from sarcomri.seg3d.config import InferSettings, SlicesSettings
from sarcomri.seg3d.data import Case, on_reference_grid, prepare_case
from sarcomri.seg3d.model import resolve_device
from sarcomri.seg3d.plan import Plan
from sarcomri.seg3d.postprocess import body_region, keep_components, largest_component
from sarcomri.seg3d.slices import SLICES_DIR, gated_fusion, slices_probability
from sarcomri.train.threads import torch_threads


@dataclass
class Model:
    """A trained network with its plan, ready for inference; ``meta`` is what training saved beside the
    weights (fold, seed, training patients, the config, versions); ``refiner`` the refining stage of a cascade
    (the model folder's ``refine/`` subfolder, :mod:`sarcomri.seg3d.cascade`), else None; ``slices`` the slice
    stage (the 2D model in ``slices/``, a :class:`~sarcomri.seg2d.infer.Segmenter`, :mod:`sarcomri.seg3d.slices`),
    else None."""

    network: torch.nn.Module
    plan: Plan
    folder: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    refiner: Model | None = None
    slices: Any = None

    @classmethod
    def load(cls, folder: str | Path) -> Model:
        """Read a 3D model folder (:mod:`sarcomri.models.folder`): network in evaluation mode on the CPU, with
        its refining stage and its slice stage when the folder holds them."""
        folder = Path(folder)
        info = read_info(folder)
        if info.task != "seg3d":
            raise InputError(folder, f"not a 3D segmentation model folder (a {info.task} model)")
        refiner = cls.load(folder / REFINE_DIR) if is_model_folder(folder / REFINE_DIR) else None
        slices = None
        if is_model_folder(folder / SLICES_DIR):
            from sarcomri.seg2d.infer import Segmenter

            slices = Segmenter.load(folder / SLICES_DIR)
        return cls(load_model(folder), info.spec, folder, info.meta, refiner, slices)


#: What new patients get from a folder holding both a run's fold models and its model trained on every patient
#: (``segment train --final``): ``"final"`` or ``"folds"`` (their ensemble). Chosen by measurement
#: (``benchmarks/seg3d_final.py``, docs/segmentation3d.md).
NEW_PATIENTS = "folds"


def find_models(path: str | Path) -> list[Model]:
    """One model folder, or every 3D model folder below ``path`` (an ensemble, e.g. the folds of a run). Below a
    folder that holds a run's fold models and its ``final`` model, :data:`NEW_PATIENTS` says which are used;
    give the ``final`` folder or a fold's folder itself to choose otherwise."""
    from sarcomri.runs.kinds import FINAL_MODEL

    path = Path(path)
    if is_model_folder(path):
        return [_load_finished(path)]
    found = sorted({p.parent for name in (MODEL_JSON, LEGACY_WEIGHTS) for p in path.rglob(name)
                    if not is_model_folder(p.parent.parent)})  # refine/ and slices/ belong to their parent
    folders = [info.folder for info in map(read_info, found) if info.task == "seg3d"]  # a damaged one: an error
    final = [f for f in folders if f.name == FINAL_MODEL]
    if final and len(final) < len(folders):
        folders = final if NEW_PATIENTS == "final" else [f for f in folders if f.name != FINAL_MODEL]
    if not folders:
        raise InputError(path, "no 3D segmentation model found in it or below it")
    models = [_load_finished(f) for f in folders]
    seqs = {tuple(m.plan.sequences) for m in models}
    if len(seqs) > 1:
        raise InputError(path, f"the models below it take different sequences {sorted(seqs)}; choose one folder")
    return models


def _load_finished(folder: Path) -> Model:
    """:meth:`Model.load`, refusing a model whose ``refine/`` or ``slices/`` stage is there but unfinished (a run
    still training or stopped), which it would otherwise use without that stage."""
    for stage in (REFINE_DIR, SLICES_DIR):
        if (folder / stage).is_dir() and not is_model_folder(folder / stage):
            raise InputError(folder / stage, "this model's second stage is not finished (a run still training, or "
                             "stopped: `segment train` resumes it)")
    return Model.load(folder)


def check_same_stages(models: Sequence[Model]) -> None:
    """Raise :class:`InputError` when some of an ensemble's models have a refining or slice stage and others do
    not (models of different runs, or a run's fold whose stage is missing): an ensemble uses a stage only when
    every member has it, so a mix would silently drop it."""
    for stage, name in (("refiner", REFINE_DIR), ("slices", SLICES_DIR)):
        has = [getattr(m, stage) is not None for m in models]
        if any(has) and not all(has):
            lacking = next(m.folder for m, h in zip(models, has, strict=True) if not h)
            raise InputError(lacking, f"has no {name}/ stage while other models of the ensemble have one: "
                             "give the models of one run")


@torch.no_grad()
def predict_grid(network: torch.nn.Module, case: Case, plan: Plan, settings: InferSettings | None = None) -> np.ndarray:
    """Softmax probabilities (classes, z, y, x) of one prepared case on the plan's grid.

    Sliding windows of the patch size with ``overlap`` and Gaussian importance weighting (MONAI
    ``mode='gaussian'``, sigma 0.125 of the window, as nnU-Net); with ``mirror`` the softmax is averaged over
    the 8 combinations of flips along z, y and x (nnU-Net's test-time mirroring); with ``precision`` ``bf16``
    the network runs under bfloat16 autocast.
    """
    s = settings or InferSettings()
    device = resolve_device(s.device)
    network = network.to(device).eval()
    image = case.image if case.prior is None else np.concatenate([case.image, case.prior.astype(np.float32)])
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    flips = [()] if not s.mirror else [c for r in range(4) for c in itertools.combinations((2, 3, 4), r)]
    bf16 = s.precision == "bf16"

    def predictor(patches: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return network(patches).float()

    total = None
    with torch_threads(s.threads):
        for axes in flips:
            xi = torch.flip(x, axes) if axes else x
            logits = sliding_window_inference(xi, roi_size=plan.patch_size, sw_batch_size=s.sw_batch_size,
                                              predictor=predictor, overlap=s.overlap, mode="gaussian",
                                              sigma_scale=0.125, padding_mode="constant", cval=0.0)
            prob = torch.softmax(logits.as_tensor() if hasattr(logits, "as_tensor") else logits, dim=1)
            prob = torch.flip(prob, axes) if axes else prob
            total = prob if total is None else total + prob
        return (total / len(flips))[0].cpu().numpy()


def to_original(prob: np.ndarray, case: Case) -> sitk.Image:
    """A probability map on the plan's grid resampled (linear) onto the case's original grid."""
    img = sitk.GetImageFromArray(prob.astype(np.float32))
    img.CopyInformation(case.grid)
    return sitk.Resample(img, case.original, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def nonzero_region(images: Sequence[sitk.Image]) -> np.ndarray:
    """Where any of ``images`` is non-zero, with enclosed holes filled (nnU-Net's nonzero mask), as a boolean
    (z, y, x) array on the grid of the first image (the later ones resampled onto it)."""
    from scipy import ndimage

    arrays = [sitk.GetArrayViewFromImage(img) != 0 for img in on_reference_grid(images)]
    return ndimage.binary_fill_holes(np.logical_or.reduce(arrays))


def refine_probability(refiners: Sequence, images: Sequence[sitk.Image], coarse: sitk.Image,
                       settings: InferSettings, case_id: str = "case") -> sitk.Image:
    """The refining models' mean tumour probability on the grid of ``images[0]``, given the coarse stage's
    probability ``coarse`` on that grid (returned unchanged when its mask is empty)."""
    total = None
    for model in refiners:
        rs = RefineSettings.from_meta(model.meta)
        case = prepare_case(case_id, images, None, model.plan)
        prior = prior_on_grid(coarse, case.grid, rs.threshold)
        box = roi_box(prior[0] > 0, model.plan.target_spacing, rs.margin_mm)
        if box is None:
            return coarse
        s = settings if rs.mirror is None else settings.model_copy(update={"mirror": rs.mirror})
        inside = predict_grid(model.network, crop(replace(case, prior=prior), box), model.plan, s)[1]
        full = np.zeros(case.image.shape[1:], np.float32)
        full[box] = inside
        prob = to_original(full, case)
        total = prob if total is None else total + prob
    return total / len(refiners)


def allowed_region(models: Sequence[Model], images: Sequence[sitk.Image], s: InferSettings) -> np.ndarray | None:
    """Where a tumour may be predicted, as a boolean (z, y, x) array on the grid of ``images[0]``: inside
    :func:`nonzero_region` when ``restrict_to_nonzero`` applies to ``models``, and inside
    :func:`~sarcomri.seg3d.postprocess.body_region` with ``restrict_to_body``; None where neither applies."""
    nonzero = s.restrict_to_nonzero and all(m.plan.normalisation == "zscore_nonzero" for m in models)
    region = nonzero_region(images) if nonzero else None
    if s.restrict_to_body:
        body = body_region(images, s.body_fraction)
        region = body if region is None else region & body
    return region


def _restrict(prob: sitk.Image, region: np.ndarray | None, images: Sequence[sitk.Image]) -> sitk.Image:
    """``prob`` set to 0 outside ``region`` (:func:`allowed_region`; None: nowhere), as float32 on the grid of
    ``images[0]``."""
    if region is not None:
        array = sitk.GetArrayFromImage(prob)
        array[~region] = 0
        prob = sitk.GetImageFromArray(array)
    prob = sitk.Cast(prob, sitk.sitkFloat32)
    prob.CopyInformation(images[0])
    return prob


def _with_slices(prob: sitk.Image, models: Sequence[Model], images: Sequence[sitk.Image], s: InferSettings,
                 region: np.ndarray | None, case_id: str) -> tuple[sitk.Image, float]:
    """The 3D probability ``prob`` and threshold, or the fused ones where the slice stage's gate opens
    (:func:`~sarcomri.seg3d.slices.gated_fusion`, with the first model's slice settings); the 2D probability is
    restricted to ``region`` as the 3D one is."""
    settings = SlicesSettings(**models[0].slices.meta["slices"])
    with torch_threads(s.threads):  # the 2D networks run on the CPU, under bfloat16 autocast with ``bf16``
        prob2d = slices_probability([m.slices for m in models], images, case_id, s.precision == "bf16")
    prob2d = _restrict(prob2d, region, images)
    fused = gated_fusion(sitk.GetArrayFromImage(prob), sitk.GetArrayFromImage(prob2d), s.threshold,
                         s.keep_components, settings)
    if fused is None:
        return prob, s.threshold
    out = sitk.GetImageFromArray(fused[0])
    out.CopyInformation(images[0])
    return out, fused[1]


def predict_images(models: Sequence[Model], images: Sequence[sitk.Image], settings: InferSettings | None = None,
                   case_id: str = "case") -> tuple[sitk.Image, sitk.Image]:
    """The tumour mask (uint8 0/1) and tumour probability (float32) of one case, on the grid of ``images[0]``.

    ``images`` are the models' sequences in order (the later ones are resampled onto the first). The
    probability is the mean over ``models``, set to 0 outside :func:`nonzero_region` with
    ``restrict_to_nonzero`` (and outside the body with ``restrict_to_body``; see :class:`InferSettings`); the
    mask thresholds it, keeps the components ``keep_components`` says and, with ``largest_component``, the
    largest connected component. When every model has a refining stage, the
    refining models redraw the tumour around the mean coarse mask (:func:`~sarcomri.seg3d.cascade.refine_probability`).
    When every model has a slice stage, the 2D models' mean probability joins the 3D one where the gate of
    :func:`~sarcomri.seg3d.slices.gated_fusion` opens (the returned probability is then the fused one, and the
    mask its threshold's).
    """
    s = settings or InferSettings()
    if not models:
        raise InputError(None, "no model to predict with")
    check_same_stages(models)
    total = None
    for model in models:
        case = prepare_case(case_id, images, None, model.plan)
        prob = to_original(predict_grid(model.network, case, model.plan, s)[1], case)
        total = prob if total is None else total + prob
    region = allowed_region(models, images, s)
    prob = _restrict(total / len(models), region, images)
    if all(m.refiner is not None for m in models):
        refiners = [m.refiner for m in models]
        prob = _restrict(refine_probability(refiners, images, prob, s, case_id),
                         allowed_region(refiners, images, s), images)
    threshold = s.threshold
    if all(m.slices is not None for m in models):
        prob, threshold = _with_slices(prob, models, images, s, region, case_id)
    mask = sitk.Cast(prob >= threshold, sitk.sitkUInt8)
    if s.keep_components > 0:
        kept = keep_components(sitk.GetArrayViewFromImage(mask) > 0, sitk.GetArrayViewFromImage(prob),
                               s.keep_components)
        mask = sitk.GetImageFromArray(kept.astype(np.uint8))
    if s.largest_component:
        mask = largest_component(mask)
    mask.CopyInformation(images[0])
    return mask, prob

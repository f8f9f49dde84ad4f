"""Grad-CAM heat maps of a classifier (Selvaraju et al. 2017), and the report's explainability section.

:func:`gradcam` uses Captum's ``LayerGradCam`` (the channel weights are the spatially averaged gradients of
the target logit at the target layer; the map is ReLU of the weighted channel sum), upsampled bilinearly to
the input's size and scaled to [0, 1] per image. The default target layer is the last feature block of a timm
model (``feature_info[-1]``: ``blocks.6`` of MobileNetV2, ``layer4`` of a ResNet), else the last Conv2d.

:func:`gradcam_section` explains the run's own models: for each sequence it takes the repeat-0 model that
tested each chosen patient (``models/<seq>/fold<k>-rep<r>``), that patient's central tumour slice from the
slice cache (``cache/<seq>.npz``), and draws the heat toward the class the model predicted, for correctly and
wrongly classified patients (the ensemble likelihood at the study's cut-off decides which is which).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from sarcomri.analysis.voting import vote
from sarcomri.errors import InputError
from sarcomri.report.figures import gradcam_figure, save_png
from sarcomri.report.layout import Figure, Section, Table, pretty
from sarcomri.report.sources import RunInputs
from sarcomri.runs import ClassificationRun
from sarcomri.train.threads import torch_threads


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last feature block of a timm model (``feature_info``), else the model's last ``nn.Conv2d``."""
    info = getattr(model, "feature_info", None)
    name = None
    if info is not None:
        if hasattr(info, "module_name"):
            name = info.module_name()[-1]
        elif isinstance(info, list | tuple) and info and isinstance(info[-1], dict):
            name = info[-1].get("module")
    if name:
        try:
            return model.get_submodule(name)
        except AttributeError:
            pass
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise InputError(None, f"{type(model).__name__} has no Conv2d layer: give target_layer")
    return convs[-1]


def _layer(model: nn.Module, target_layer: nn.Module | str | None) -> nn.Module:
    if target_layer is None:
        return default_target_layer(model)
    if isinstance(target_layer, str):
        return model.get_submodule(target_layer)
    return target_layer


def gradcam(model: nn.Module, images: torch.Tensor, target_layer: nn.Module | str | None = None,
            target: int | None = None, batch_size: int = 16) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] of ``images`` (N, C, H, W) at ``target_layer``.

    ``target`` is the class whose logit is explained; None takes each image's predicted class. The model is
    run in eval mode (its mode is restored afterwards); a map that is zero everywhere stays zero.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    if images.ndim != 4:
        raise InputError(None, f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    layer = _layer(model, target_layer)
    explainer = LayerGradCam(model, layer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    maps = []
    try:
        for batch in images.split(batch_size):
            x = batch.detach().to(device=device, dtype=torch.float32)
            if target is None:
                with torch.no_grad():
                    cls = model(x).argmax(dim=1)
            else:
                cls = torch.full((len(x),), int(target), dtype=torch.long, device=device)
            with torch.enable_grad():
                cam = explainer.attribute(x, target=cls, relu_attributions=True)
            cam = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
            maps.append(cam.sum(dim=1).float().cpu().numpy())
    finally:
        model.train(was_training)
    return _normalise(np.concatenate(maps) if maps else np.zeros((0, *images.shape[-2:]), np.float32))


def _normalise(maps: np.ndarray) -> np.ndarray:
    maps = np.nan_to_num(maps.astype(np.float32), nan=0.0)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    out = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the section
OUTCOMES = {(1, 1): "TP", (0, 0): "TN", (0, 1): "FP", (1, 0): "FN"}


def choose_cases(likelihood: pd.DataFrame, cutoff: float, n_correct: int = 2, n_wrong: int = 2) -> pd.DataFrame:
    """The most confidently right and wrong patients of one sequence, alternating the classes.

    ``likelihood``: patient_id, label (0/1), likelihood. Returns the chosen rows with ``outcome`` (TP, TN, FP,
    FN) and ``correct``.
    """
    t = likelihood.copy()
    t["call"] = (vote(t["likelihood"], cutoff) == 1).astype(int)
    t["outcome"] = [OUTCOMES[(int(y), int(c))] for y, c in zip(t["label"], t["call"], strict=True)]
    t["correct"] = t["label"] == t["call"]
    t["margin"] = (t["likelihood"] - cutoff).abs()
    picked = []
    for k, kinds in ((n_correct, ("TP", "TN")), (n_wrong, ("FN", "FP"))):
        pools = [t[t["outcome"] == o].sort_values("margin", ascending=False) for o in kinds]
        rows, i = [], 0
        while len(rows) < k and any(i < len(p) for p in pools):
            rows += [p.iloc[[i]] for p in pools if i < len(p)]
            i += 1
        picked += rows[:k]
    return pd.concat(picked, ignore_index=True) if picked else t.head(0)


def _central_slice(slices: Any, patient_id: str) -> np.ndarray | None:
    idx = np.flatnonzero(slices.patient_ids == patient_id)
    if not len(idx):
        return None
    central = idx[slices.central[idx]] if slices.central is not None else idx[:0]
    return slices.images[central[0] if len(central) else idx[len(idx) // 2]]


def sequence_cases(inputs: RunInputs, sequence: str, n_correct: int = 2, n_wrong: int = 2) -> list[dict]:
    """Grad-CAM of the chosen patients of one sequence: dicts with patient_id, outcome, likelihood,
    p_model (that model's probability of the positive class on this slice), image (H, W) and cam (H, W)."""
    from sarcomri.data.sliceset import SliceSet
    from sarcomri.models.folder import load_model

    run, lik, splits = _run(inputs), inputs.table("likelihood"), inputs.splits
    cache = run.cache_path(sequence)
    if lik is None or splits is None or not cache.is_file():
        return []
    part = lik[lik["sequence"] == sequence]
    chosen = choose_cases(part, inputs.cutoff(), n_correct, n_wrong)
    if chosen.empty:
        return []
    rep = splits["repeat"].min()
    tested = splits[(splits["repeat"] == rep) & (splits["role"] == "test")]
    fold_of = tested.drop_duplicates("patient_id").set_index("patient_id")["fold"]
    slices = SliceSet.load(cache)
    out = []
    for fold, group in chosen.groupby(chosen["patient_id"].map(fold_of), sort=True):
        folder = run.model_folder(sequence, int(fold), int(rep))
        if not (folder / "model.json").is_file():
            continue
        model = load_model(folder)
        rows = [(r, _central_slice(slices, r.patient_id)) for r in group.itertuples()]
        rows = [(r, img) for r, img in rows if img is not None]
        if not rows:
            continue
        x = torch.from_numpy(np.stack([img for _, img in rows]).astype(np.float32))
        with torch.no_grad():
            p = torch.softmax(model(x), dim=1)[:, 1].numpy()
        cams = gradcam(model, x)
        for (r, img), cam, pm in zip(rows, cams, p, strict=True):
            out.append({"patient_id": r.patient_id, "outcome": r.outcome, "correct": bool(r.correct),
                        "likelihood": float(r.likelihood), "p_model": float(pm), "fold": int(fold),
                        "image": np.asarray(img[0]), "cam": cam})
    order = {pid: i for i, pid in enumerate(chosen["patient_id"])}
    return sorted(out, key=lambda c: order[c["patient_id"]])


def _run(inputs: RunInputs) -> ClassificationRun:
    """The run whose models and slice caches the Grad-CAM figures explain (:mod:`sarcomri.runs` owns the paths)."""
    return inputs.run if inputs.run is not None else ClassificationRun(inputs.run_dir)


def gradcam_section(inputs: RunInputs, figures_dir: Path, rel: str = "figures", n_correct: int = 2,
                    n_wrong: int = 2, threads: int | None = 1) -> Section | None:
    """Grad-CAM overlays of correctly and wrongly classified test patients, one figure per sequence.

    ``threads``: torch threads while explaining; a handful of slices run fastest on one thread (several
    threads spin against each other on a busy CPU).
    """
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        if not any(_run(inputs).models_dir.glob("*/fold*-rep*/model.json")):
            return None
        return Section(id="gradcam", title="Explainability: Grad-CAM",
                       notes=["Grad-CAM needs the captum package, which is not installed here."])
    figures, rows = [], []
    for seq in inputs.sequences:
        with torch_threads(threads):
            cases = sequence_cases(inputs, seq, n_correct, n_wrong)
        if not cases:
            continue
        titles = [f"{c['patient_id']} {c['outcome']} ({'right' if c['correct'] else 'wrong'})\n"
                  f"likelihood {c['likelihood']:.2f}" for c in cases]
        name = f"gradcam_{''.join(ch if ch.isalnum() else '_' for ch in seq)}.png"
        save_png(gradcam_figure([c["image"] for c in cases], [c["cam"] for c in cases], titles, columns=2),
                 figures_dir / name)
        figures.append(Figure(f"{rel}/{name}", f"{seq}: Grad-CAM of the repeat-{int(inputs.splits['repeat'].min())} "
                                               "model that tested each patient, on the central tumour slice; bright = "
                                               "regions that drove the model toward the class it predicted."))
        rows += [{k: c[k] for k in ("patient_id", "outcome", "correct", "likelihood", "p_model", "fold")}
                 | {"sequence": seq} for c in cases]
    if not figures:
        return None
    table = pd.DataFrame(rows)[["sequence", "patient_id", "outcome", "correct", "likelihood", "p_model", "fold"]]
    return Section(id="gradcam", title="Explainability: Grad-CAM", figures=figures,
                   intro="Where the classifier looked. Heat maps are a qualitative aid: they show which regions "
                         "changed the model's output, not that the model understood the anatomy.",
                   tables=[Table("Patients shown", table, pretty(table), collapsed=True)],
                   data={"cases": table})

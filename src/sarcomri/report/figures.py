"""The report's figures (matplotlib): ROC curves with readers, mask overlays, Grad-CAM overlays.

Plotting only: every number drawn comes from a table the analysis wrote (the caller reads it). Figures are built
with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state, no display needed) and saved as
PNG atomically (:func:`save_png`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sarcomri.io.atomic import atomic_path

REFERENCE_COLOUR = "#00c853"  # green: the reference (manual) mask
PREDICTION_COLOUR = "#ff1744"  # red: the model's mask
MODEL_COLOUR = "black"
DPI = 200  # print resolution


@dataclass
class Curve:
    """One interpreter's ROC: points (fpr, sensitivity), an operating point and how to label it."""

    name: str
    fpr: np.ndarray
    sensitivity: np.ndarray
    point: tuple[float, float] | None = None
    assisted_point: tuple[float, float] | None = None
    group: str = ""
    auc: float | None = None


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically."""
    with atomic_path(path, suffix=".png", overwrite=True) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    return Path(path)


def roc_figure(title: str, model: Curve, readers: Sequence[Curve] = ()) -> Figure:
    """The model's ROC curve (thick) with the readers' curves (thin, one colour per group) and operating
    points (filled: unaided; open: AI-assisted), as the carcinosarcoma study's Figure 3."""
    fig = Figure(figsize=(4.6, 4.6))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, ls="--")
    groups = list(dict.fromkeys(r.group for r in readers))
    palette = colormaps["tab10"]
    colour = {g: palette(i % 10) for i, g in enumerate(groups)}
    seen: set[str] = set()
    for r in readers:
        c = colour[r.group]
        label = r.group if r.group not in seen else None
        seen.add(r.group)
        ax.plot(r.fpr, r.sensitivity, color=c, lw=0.9, alpha=0.7, label=label)
        if r.point is not None:
            ax.plot(*r.point, "o", color=c, ms=5, mec="white", mew=0.5)
        if r.assisted_point is not None:
            ax.plot(*r.assisted_point, "o", mfc="none", mec=c, ms=6, mew=1.2)
    auc = f" (AUC {model.auc:.3f})" if model.auc is not None else ""
    ax.plot(model.fpr, model.sensitivity, color=MODEL_COLOUR, lw=2.2, label=f"{model.name}{auc}")
    if model.point is not None:
        ax.plot(*model.point, "*", color=MODEL_COLOUR, ms=12, mec="white", mew=0.6, label=f"{model.name} cut-off")
    if any(r.assisted_point is not None for r in readers):
        ax.plot([], [], "o", mfc="none", mec="0.3", label="AI-assisted")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7, frameon=True)
    ax.grid(alpha=0.25)
    return fig


def _grey(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    return np.clip((image - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(image, dtype=float)


def overlay_panel(ax: Axes, image: np.ndarray, reference: np.ndarray | None, prediction: np.ndarray | None,
                  title: str = "", aspect: float = 1.0) -> None:
    """One slice in grey with the reference (green) and predicted (red) mask outlines."""
    ax.imshow(_grey(np.asarray(image, dtype=float)), cmap="gray", aspect=aspect, interpolation="nearest")
    for mask, colour in ((reference, REFERENCE_COLOUR), (prediction, PREDICTION_COLOUR)):
        if mask is not None and np.asarray(mask).any() and not np.asarray(mask).all():
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=[colour], linewidths=1.3)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def overlay_figure(panels: Sequence[dict]) -> Figure:
    """Mask overlays side by side; each panel is ``dict(image=, reference=, prediction=, title=, aspect=)``."""
    n = max(len(panels), 1)
    fig = Figure(figsize=(2.6 * n, 2.9))
    axes = fig.subplots(1, n, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=False):
        overlay_panel(ax, panel["image"], panel.get("reference"), panel.get("prediction"), panel.get("title", ""),
                      panel.get("aspect", 1.0))
    handles = [Line2D([], [], color=REFERENCE_COLOUR, lw=2, label="reference"),
               Line2D([], [], color=PREDICTION_COLOUR, lw=2, label="prediction")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def heatmap_panel(ax: Axes, image: np.ndarray, cam: np.ndarray, title: str = "", alpha: float = 0.6) -> None:
    """A slice in grey with a Grad-CAM map (values in [0, 1]) over it in the 'jet' colour map; the map's
    opacity grows with its value, so cold regions leave the slice readable."""
    ax.imshow(_grey(np.asarray(image, dtype=float)), cmap="gray", interpolation="nearest")
    heat = np.clip(np.asarray(cam, dtype=float), 0, 1)
    rgba = colormaps["jet"](heat)
    rgba[..., 3] = alpha * heat
    ax.imshow(rgba, interpolation="bilinear")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def gradcam_figure(images: Sequence[np.ndarray], cams: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   columns: int = 4) -> Figure:
    """Grad-CAM overlays in a grid: each image (H, W) with its map (H, W) in [0, 1] over it."""
    n = len(images)
    titles = list(titles) if titles is not None else [""] * n
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(2.5 * cols, 2.7 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i < n:
            heatmap_panel(ax, images[i], cams[i], titles[i])
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def roc_curve_arrays(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, sensitivity) from :func:`sarcomri.stats.roc.roc_points`."""
    return points["fpr"].to_numpy(float), points["sensitivity"].to_numpy(float)

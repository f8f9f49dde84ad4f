"""The report's figures (matplotlib): ROC curves with readers, mask overlays, Grad-CAM overlays.

Plotting only: every number drawn comes from a table the analysis wrote (the caller reads it). Figures are built
with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state, no display needed) and saved as
PNG atomically (:func:`save_png`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sarcomri.io.atomic import atomic_path

REFERENCE_COLOUR = "#56B4E9"  # sky blue (Okabe-Ito): the reference (manual) mask
PREDICTION_COLOUR = "#E69F00"  # orange (Okabe-Ito): the model's mask; blue/orange stays apart in colour blindness
MODEL_COLOUR = "black"
#: Okabe & Ito's colour-blind-safe palette (black left out: it is the model's), for the reader groups.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
DPI = 200  # print resolution
PAD_INCHES = 0.1  # the margin save_png leaves around the figure's tight bounding box


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
    band: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (fpr, lower, upper) of a 95% confidence band


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically."""
    with atomic_path(path, suffix=".png", overwrite=True) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES, format="png")
    return Path(path)


def point_fractions(fig: Figure, ax: Axes, points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where data ``points`` of ``ax`` land in the PNG :func:`save_png` writes of ``fig``, as fractions (left, top)
    of its width and height, so that page elements placed at those percentages follow the image's scaling. Call
    after the figure is complete (the tight bounding box :func:`save_png` crops to depends on every artist)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # a Figure made without pyplot has no drawing canvas yet
    fig.draw(renderer)
    box = fig.get_tightbbox(renderer).padded(PAD_INCHES)
    out = []
    for x, y in points:
        px, py = ax.transData.transform((x, y)) / fig.dpi
        out.append(((px - box.x0) / box.width, (box.y1 - py) / box.height))
    return out


def reader_tag(name: str) -> str:
    """A reader's short label on a figure: the initial and number of its id ('specialist2' -> 'S2'), else the
    name's first three characters."""
    found = re.fullmatch(r"([A-Za-z])[A-Za-z_ -]*?(\d+)", name)
    return f"{found.group(1).upper()}{found.group(2)}" if found else name[:3]


def _reader(ax: Axes, r: Curve, colour: Any) -> None:
    """One reader: the thin curve, the unaided call (filled) labelled with its tag, the AI-assisted call (open)
    and an arrow from the first to the second."""
    ax.plot(r.fpr, r.sensitivity, color=colour, lw=0.9, alpha=0.6)
    if r.point is not None:
        ax.plot(*r.point, "o", color=colour, ms=5, mec="white", mew=0.5, zorder=4)
        below = r.point[1] > 0.08  # the tag under the dot, above it at the bottom edge
        ax.annotate(reader_tag(r.name), r.point, xytext=(4, -9 if below else 4), textcoords="offset points",
                    fontsize=6, color=colour, zorder=5)
    if r.assisted_point is not None:
        ax.plot(*r.assisted_point, "o", mfc="white", mec=colour, ms=6, mew=1.2, zorder=4)
        if r.point is not None and r.point != r.assisted_point:
            ax.annotate("", xy=r.assisted_point, xytext=r.point, zorder=3,
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 0.8, "shrinkA": 3, "shrinkB": 4})


def _legend(ax: Axes, readers: Sequence[Curve], colour: dict[str, Any]) -> None:
    """The groups' colours, what the filled and open dots and the arrows mean, the model's curve and cut-off."""
    handles, labels = ax.get_legend_handles_labels()
    extra = [(Line2D([], [], color=c, lw=1.2), g) for g, c in colour.items()]
    if any(r.point is not None for r in readers):
        extra.append((Line2D([], [], ls="", marker="o", color="0.35", mec="white", ms=5), "unaided call"))
    if any(r.assisted_point is not None for r in readers):
        extra.append((Line2D([], [], ls="", marker="o", mfc="white", mec="0.35", ms=6, mew=1.2),
                      "AI-assisted call (arrow: change)"))
    ax.legend([h for h, _ in extra] + handles, [lab for _, lab in extra] + labels, loc="lower right", fontsize=6.5,
              frameon=True, framealpha=0.9)


def roc_figure(title: str, model: Curve, readers: Sequence[Curve] = ()) -> Figure:
    """The model's ROC curve (thick) with the readers' curves (thin, one colour-blind-safe colour per group) and
    calls: filled dots unaided (labelled with :func:`reader_tag`), open dots AI-assisted, an arrow from one to the
    other; as the carcinosarcoma study's Figure 3."""
    fig = Figure(figsize=(4.6, 4.6))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, ls="--")
    groups = list(dict.fromkeys(r.group for r in readers))
    colour = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(groups)}
    for r in readers:
        _reader(ax, r, colour[r.group])
    auc = f" (AUC {model.auc:.3f})" if model.auc is not None else ""
    if model.band is not None:
        fpr, lower, upper = model.band
        order = np.argsort(fpr)
        ax.fill_between(fpr[order], lower[order], upper[order], step="post", color=MODEL_COLOUR, alpha=0.15, lw=0,
                        label=f"{model.name} 95% CI (bootstrap)", zorder=1)
    ax.plot(model.fpr, model.sensitivity, color=MODEL_COLOUR, lw=2.2, label=f"{model.name}{auc}", zorder=3)
    if model.point is not None:
        ax.plot(*model.point, "*", color=MODEL_COLOUR, ms=12, mec="white", mew=0.6, label=f"{model.name} cut-off",
                zorder=5)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.set_aspect("equal")
    _legend(ax, readers, colour)
    ax.grid(alpha=0.25)
    return fig


def _grey(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    return np.clip((image - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(image, dtype=float)


def overlay_panel(ax: Axes, image: np.ndarray, reference: np.ndarray | None, prediction: np.ndarray | None,
                  title: str = "", aspect: float = 1.0) -> None:
    """One slice in grey with the reference (blue) and predicted (orange) mask outlines."""
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


#: The Grad-CAM colour map: perceptually uniform, readable in grey and by colour-blind readers.
CAM_COLOURS = "inferno"


def heatmap_panel(ax: Axes, image: np.ndarray, cam: np.ndarray, title: str = "", alpha: float = 0.6) -> None:
    """A slice in grey with a Grad-CAM map (values in [0, 1]) over it in the perceptually uniform 'inferno'
    colour map (:data:`CAM_COLOURS`); the map's opacity grows with its value, so cold regions leave the slice
    readable."""
    ax.imshow(_grey(np.asarray(image, dtype=float)), cmap="gray", interpolation="nearest")
    heat = np.clip(np.asarray(cam, dtype=float), 0, 1)
    rgba = colormaps[CAM_COLOURS](heat)
    rgba[..., 3] = alpha * heat
    ax.imshow(rgba, interpolation="bilinear")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def gradcam_figure(images: Sequence[np.ndarray], cams: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   columns: int = 4) -> Figure:
    """Grad-CAM overlays in a grid: each image (H, W) with its map (H, W) in [0, 1] over it, and one colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

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
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), CAM_COLOURS), ax=list(axes.ravel()), fraction=0.03, pad=0.02)
    bar.set_label("relative evidence", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return fig


def roc_curve_arrays(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, sensitivity) from :func:`sarcomri.stats.roc.roc_points`."""
    return points["fpr"].to_numpy(float), points["sensitivity"].to_numpy(float)

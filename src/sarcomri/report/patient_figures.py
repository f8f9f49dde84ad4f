"""The figures of the patient page (``sarcomri predict``): the tumour's slices with its contour, where the
patient's likelihoods lie among the study's patients, and Grad-CAM in the context of the whole slice.

Each function takes arrays and returns a matplotlib ``Figure`` (no pyplot state); writing is the caller's.
Colours: grey-scale images windowed at the 1st-99th percentile of the volume; the contour in amber (#ffb000) and
the study's classes in blue (#0072b2) and vermillion (#d55e00), both colour-blind safe (Okabe-Ito); Grad-CAM in
``inferno``, perceptually uniform, with its colour bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from sarcomri.predict_scoring import View

CONTOUR = "#ffb000"
NEGATIVE_COLOUR, POSITIVE_COLOUR = "#0072b2", "#d55e00"


def window(volume: np.ndarray) -> tuple[float, float]:
    """The grey-scale window of a volume: its 1st and 99th percentiles (a flat volume gets a unit window)."""
    lo, hi = np.percentile(volume, [1, 99])
    return (float(lo), float(hi)) if hi > lo else (float(lo), float(lo) + 1.0)


def context_box(mask2d: np.ndarray, scale: float = 2.0, min_side: int = 32) -> tuple[int, int, int, int]:
    """A box (y0, y1, x0, x1) inside the slice around the tumour, ``scale`` times its larger side, so that the
    tumour is seen with its surroundings (the whole slice when the tumour is absent or the slice small)."""
    h, w = mask2d.shape
    ys, xs = np.nonzero(mask2d)
    if ys.size == 0:
        return 0, h, 0, w
    side = max(min_side, int(np.ceil(scale * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))))
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    y0 = int(np.clip(round(cy - side / 2), 0, max(0, h - side)))
    x0 = int(np.clip(round(cx - side / 2), 0, max(0, w - side)))
    return y0, min(h, y0 + side), x0, min(w, x0 + side)


def place_cam(cam: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A Grad-CAM map ((S, S) on the network's input crop ``box`` = (y0, y1, x0, x1), which may extend past the
    slice) put back on a slice of ``shape``: NaN where the network saw nothing."""
    from scipy.ndimage import zoom

    y0, y1, x0, x1 = box
    canvas = np.full(shape, np.nan, np.float32)
    placed = zoom(cam.astype(np.float32), ((y1 - y0) / cam.shape[0], (x1 - x0) / cam.shape[1]), order=1)
    ty0, tx0, ty1, tx1 = max(0, y0), max(0, x0), min(shape[0], y1), min(shape[1], x1)
    canvas[ty0:ty1, tx0:tx1] = placed[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
    return canvas


def _grey(ax, image: np.ndarray, win: tuple[float, float], aspect: float) -> None:
    ax.imshow(image, cmap="gray", vmin=win[0], vmax=win[1], aspect=aspect, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _contour(ax, mask2d: np.ndarray) -> None:
    if mask2d.any() and (~mask2d.astype(bool)).any():
        ax.contour(mask2d.astype(float), levels=[0.5], colors=[CONTOUR], linewidths=1.4)


def slices_figure(view: View, centre: int, neighbours: int = 1) -> Figure:
    """The slice ``centre`` (the tumour's largest) and ``neighbours`` slices on each side, grey scale, with the
    tumour's contour, in the context box of the centre slice; each panel titled with its slice index."""
    z = [k for k in range(centre - neighbours, centre + neighbours + 1) if 0 <= k < view.volume.shape[0]]
    y0, y1, x0, x1 = context_box(view.mask[centre])
    win = window(view.volume)
    aspect = view.spacing[1] / view.spacing[0]
    fig = Figure(figsize=(2.6 * len(z), 2.9))
    for ax, k in zip(fig.subplots(1, len(z), squeeze=False)[0], z, strict=True):
        _grey(ax, view.volume[k, y0:y1, x0:x1], win, aspect)
        _contour(ax, view.mask[k, y0:y1, x0:x1])
        ax.set_title(f"slice {k + 1}" + (" (largest)" if k == centre else ""), fontsize=9)
    fig.suptitle(f"{view.sequence}: the tumour's contour (amber) as the scores used it", fontsize=9.5)
    fig.tight_layout()
    return fig


def likelihood_figure(study: pd.DataFrame, patient: dict[str, tuple[float, float, float]], positive: str,
                      negative: str) -> Figure:
    """Per sequence, the study's patients' likelihoods (``study``: sequence, label 0/1, likelihood; out-of-fold)
    as strips by class, and this patient's likelihood (``patient``: sequence -> (likelihood, lowest, highest
    model)) as a black diamond with the range of the ensemble's models."""
    seqs = list(patient)
    fig = Figure(figsize=(max(3.6, 2.4 * len(seqs)), 3.4))
    rng = np.random.default_rng(0)  # the jitter only spreads the points; it is the same on every page
    for ax, seq in zip(fig.subplots(1, len(seqs), squeeze=False)[0], seqs, strict=True):
        rows = study[study["sequence"] == seq]
        for x, (label, colour, name) in enumerate(((0, NEGATIVE_COLOUR, negative), (1, POSITIVE_COLOUR, positive))):
            values = rows.loc[rows["label"] == label, "likelihood"].to_numpy(float)
            ax.scatter(x + rng.uniform(-0.18, 0.18, len(values)), values, s=11, color=colour, alpha=0.65,
                       linewidths=0, label=f"study {name} (n={len(values)})")
        p, lo, hi = patient[seq]
        ax.errorbar([0.5], [p], yerr=[[p - lo], [hi - p]], fmt="D", color="black", markersize=7, capsize=4,
                    label="this patient (range of the models)")
        ax.set_xticks([0, 1], [negative, positive], fontsize=8.5)
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(seq, fontsize=9.5)
        ax.set_ylabel(f"{positive} likelihood", fontsize=8.5)
        ax.tick_params(labelsize=8)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def gradcam_context_figure(image: np.ndarray, mask2d: np.ndarray, cam: np.ndarray, box: tuple[int, int, int, int],
                           spacing: tuple[float, float, float], title: str, explained: str) -> Figure:
    """Grad-CAM of one slice in the context of the whole slice: ``cam`` ((S, S) in [0, 1], on the network's input
    crop ``box`` = (y0, y1, x0, x1) of ``image``, which may extend past it) is put back where the crop came from;
    the view is the tumour's context box, the grey image on the left and the map over it on the right, the
    tumour's contour on both, and a colour bar saying which class's evidence is shown (``explained``)."""
    canvas = place_cam(cam, box, image.shape)
    vy0, vy1, vx0, vx1 = context_box(mask2d, scale=2.5)
    view = (slice(vy0, vy1), slice(vx0, vx1))
    win, aspect = window(image), spacing[1] / spacing[0]
    fig = Figure(figsize=(5.8, 2.9))
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        _grey(ax, image[view], win, aspect)
    shown = right.imshow(canvas[view], cmap="inferno", vmin=0, vmax=1, alpha=0.55, aspect=aspect,
                         interpolation="bilinear")
    for ax in (left, right):
        _contour(ax, mask2d[view])
    left.set_title(title, fontsize=9)
    right.set_title(f"Grad-CAM: evidence for {explained}", fontsize=9)
    bar = fig.colorbar(shown, ax=right, fraction=0.046, pad=0.03)
    bar.set_label("relative evidence", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig

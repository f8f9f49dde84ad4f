"""The one-image summary of a prediction, for a viewer that shows neither the SR nor the page (pushed as a DICOM
secondary capture by ``sarcomri predict --summary-image``): the tumour's largest slice of the first scored
sequence with the mask's outline, beside the per-sequence likelihoods and votes, the summed score against the
threshold, the decision, the tumour's size, and the statement that this is decision support."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Pixels of the summary image (width, height): a viewer's single-image frame.
SIZE = (1200, 600)


def summary_figure(result: dict[str, Any], view: Any | None = None) -> np.ndarray:
    """The summary as an RGB image (height, width, 3) of uint8: ``result`` is ``result.json``'s content, ``view``
    a :class:`~sarcomri.predict_scoring.View` of one scored sequence (its volume, mask and spacing) or None."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(SIZE[0] / dpi, SIZE[1] / dpi), dpi=dpi, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    image_ax = fig.add_axes((0.0, 0.0, 0.5, 1.0))
    image_ax.set_axis_off()
    if view is not None and view.volume.ndim == 3:
        areas = view.mask.reshape(view.mask.shape[0], -1).sum(axis=1) if view.mask is not None else None
        z = int(np.argmax(areas)) if areas is not None and areas.any() else view.volume.shape[0] // 2
        plane = view.volume[z].astype(float)
        lo, hi = np.percentile(plane, [1, 99])
        aspect = float(view.spacing[1]) / float(view.spacing[0])
        image_ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect)
        if view.mask is not None and view.mask[z].any():
            image_ax.contour(view.mask[z] > 0, levels=[0.5], colors=["#ff3030"], linewidths=1.5)
        shown = f"image: {view.sequence}, slice {z + 1} of {view.volume.shape[0]}" + (
            ", tumour outlined in red" if view.mask is not None and view.mask[z].any() else "")
    else:
        shown = ""
    text_ax = fig.add_axes((0.52, 0.0, 0.48, 1.0))
    text_ax.set_axis_off()
    text_ax.text(0.0, 0.97, "\n".join(summary_lines(result) + ["", shown]), color="white", va="top", ha="left",
                 fontsize=12, family="DejaVu Sans", transform=text_ax.transAxes, linespacing=1.5)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The text of the summary, line by line."""
    positive = result.get("positive_label", "positive")
    lines = [f"sarcomri: {result.get('study', '')}".rstrip(": "), "",
             f"{positive} likelihood per sequence (vote):"]
    for s in result["sequences"]:
        likelihood = "not scored" if s.get("likelihood") is None else f"{s['likelihood']:.2f}"
        vote = {1: "+1", -1: "-1"}.get(int(s.get("vote", 0)), "0")
        lines.append(f"   {s['sequence']}: {likelihood} ({vote})")
    lines += ["", f"summed score {result['summed_score']} (threshold {result['threshold']:g})",
              f"decision: {result['decision']}"]
    sized = next((s["tumour"] for s in result["sequences"] if s.get("tumour")), None)
    if sized:
        lines.append(f"tumour: {sized['volume_ml']:.1f} mL, {sized['long_axis_mm']:.0f} x "
                     f"{sized['short_axis_mm']:.0f} x {sized['through_plane_mm']:.0f} mm")
    lines += ["", "Decision support for a radiologist,", "not a diagnosis."]
    return lines

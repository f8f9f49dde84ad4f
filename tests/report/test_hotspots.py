"""Hover labels on ROC figures: each label sits where its point is drawn in the saved PNG (found by its colour),
and an ROC figure gets one per call: the model's cut-off and every reader's unaided and AI-assisted call."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from sarcomri.report.curves import roc_hotspots
from sarcomri.report.figures import Curve, point_fractions, roc_figure, save_png


def test_the_fractions_are_where_the_point_lands_in_the_png(tmp_path):
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.8")
    ax.plot([0.3], [0.7], "s", color="#ff00ff", ms=6)
    ax.set_title("a long title that widens the tight box", fontsize=9)
    ax.set_ylabel("sensitivity")
    (fx, fy), = point_fractions(fig, ax, [(0.3, 0.7)])
    pixels = imread(save_png(fig, tmp_path / "f.png"))[..., :3]
    ys, xs = np.nonzero((pixels[..., 0] > 0.9) & (pixels[..., 1] < 0.2) & (pixels[..., 2] > 0.9))
    h, w = pixels.shape[:2]
    # within 4 pixels of 200 dpi (half a millimetre; the hover target is 14 screen pixels wide)
    assert xs.mean() / w == pytest.approx(fx, abs=4 / w) and ys.mean() / h == pytest.approx(fy, abs=4 / h)


def test_an_roc_figure_labels_every_call():
    model = Curve("CNN", np.array([0, 0.2, 1]), np.array([0, 0.8, 1]), point=(0.2, 0.8), auc=0.81)
    reader = Curve("specialist1", np.array([0, 0.3, 1]), np.array([0, 0.6, 1]), point=(0.3, 0.6),
                   assisted_point=(0.25, 0.75), group="specialist")
    spots = roc_hotspots(roc_figure("T2", model, [reader]), model, [reader])
    assert [s.title for s in spots] == [
        "CNN at its cut-off: sensitivity 0.80, specificity 0.80",
        "S1 (specialist 1), unaided: sensitivity 0.60, specificity 0.70",
        "S1 (specialist 1), AI-assisted: sensitivity 0.75, specificity 0.75"]
    assert all(0 < s.left < 1 and 0 < s.top < 1 for s in spots)
    assert spots[1].left > spots[0].left and spots[1].top > spots[0].top  # more false positives, less sensitive

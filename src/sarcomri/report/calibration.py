"""The report's calibration section: per sequence, the reliability curve of the model's likelihoods (observed
rate of the positive class against the mean likelihood per bin, with Wilson intervals) and the Brier score beside
that of always predicting the prevalence. Reads ``calibration.csv`` and ``brier.csv`` of the run's tables
(:mod:`sarcomri.analysis.calibration`); computes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from sarcomri.report.figures import save_png
from sarcomri.report.layout import Figure, Section, Table, pretty
from sarcomri.report.sources import RunInputs

MODEL_COLOUR = "#0072b2"


def reliability_figure(curve: pd.DataFrame, brier: pd.DataFrame, positive: str) -> MplFigure:
    """One panel per sequence: the diagonal of perfect calibration and each bin's observed rate (95% CI) at its
    mean likelihood, the marker's area growing with the bin's patients; the Brier scores in the title."""
    seqs = list(dict.fromkeys(curve["sequence"]))
    fig = MplFigure(figsize=(3.0 * len(seqs), 3.2))
    scores = brier.set_index("sequence")
    for ax, seq in zip(fig.subplots(1, len(seqs), squeeze=False)[0], seqs, strict=True):
        part = curve[curve["sequence"] == seq]
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        x, y = part["mean_likelihood"].to_numpy(float), part["observed"].to_numpy(float)
        err = np.vstack([y - part["lower"].to_numpy(float), part["upper"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor=MODEL_COLOUR, elinewidth=0.9, capsize=2)
        ax.scatter(x, y, s=12 + 3 * part["n"].to_numpy(float), color=MODEL_COLOUR, zorder=3)
        ax.plot(x, y, color=MODEL_COLOUR, lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean likelihood in the bin", fontsize=8)
        ax.set_ylabel(f"observed rate of {positive}", fontsize=8)
        ax.tick_params(labelsize=7)
        title = seq
        if seq in scores.index:
            row = scores.loc[seq]
            title += f"\nBrier {row['brier']:.3f} (prevalence only {row['brier_prevalence']:.3f})"
        ax.set_title(title, fontsize=8.5)
    fig.tight_layout()
    return fig


def calibration_section(inputs: RunInputs, figures_dir: Path, rel: str = "figures") -> Section | None:
    """The calibration section, None when the run has no calibration tables (made by an earlier version)."""
    curve, brier = inputs.table("calibration"), inputs.table("brier")
    if curve is None or curve.empty or brier is None or brier.empty:
        return None
    pos, _ = inputs.class_names
    save_png(reliability_figure(curve, brier, pos), figures_dir / "calibration.png")
    shown = brier[["sequence", "n", "prevalence", "brier", "brier_prevalence"]].rename(columns={
        "prevalence": f"prevalence of {pos}", "brier": "Brier score", "brier_prevalence": "Brier, prevalence only"})
    return Section(
        id="calibration", title="Calibration of the likelihoods",
        intro=f"How well each sequence's ensemble likelihood matches the observed rate of {pos} (out-of-fold: each "
              "patient scored by models that did not train on it). Points on the diagonal are well calibrated; the "
              "Brier score is the mean squared difference between likelihood and outcome (lower is better), beside "
              "that of always predicting the prevalence.",
        figures=[Figure(f"{rel}/calibration.png", f"Reliability curves: the observed rate of {pos} (95% Wilson CI) "
                                                   "per likelihood bin of width 0.2, at the bin's mean likelihood; "
                                                   "marker area grows with the bin's patients.")],
        tables=[Table("Brier scores", brier, pretty(shown))], data={"calibration": curve, "brier": brier})

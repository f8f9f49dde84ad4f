"""Confusion matrices as 2 x 2 grids, kappa as a shaded lower triangle, and the ROC figure's captions."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from sarcomri.report.curves import curve_caption, levels_note
from sarcomri.report.figures import Curve, reader_tag
from sarcomri.report.matrices import KAPPA_SHADES, confusion_html, kappa_html, kappa_shade

CONFUSION = pd.DataFrame({"sequence": ["T2", "T2", "T2", "T2"], "interpreter": ["CNN", "CNN", "reader1", "reader1"],
                          "truth": ["sarcoma", "leiomyoma", "sarcoma", "leiomyoma"],
                          "predicted sarcoma": [3, 2, 4, 0], "predicted leiomyoma": [1, 16, 0, 18],
                          "total": [4, 18, 4, 18]})
KAPPA = pd.DataFrame({"sequence": ["all"] * 3, "interpreter": ["CNN", "reader1", "reader2"],
                      "CNN": [1.0, 0.7013, -0.12], "reader1": [0.7013, 1.0, 0.35], "reader2": [-0.12, 0.35, 1.0]})


def _grids(html: str) -> dict[str, list[list[str]]]:
    """Each grid's caption and its body rows (row header, then cells)."""
    out = {}
    for caption, body in re.findall(r"<caption>([^<]*)</caption>.*?<tbody>(.*?)</tbody>", html):
        out[caption] = [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    return out


def test_confusion_grids_are_the_tables_counts():
    html = confusion_html(CONFUSION, "sarcoma", "leiomyoma")
    assert _grids(html) == {"CNN": [["sarcoma", "3", "1"], ["leiomyoma", "2", "16"]],
                            "reader 1": [["sarcoma", "4", "0"], ["leiomyoma", "0", "18"]]}
    assert html.count('class="num hit"') == 4  # the diagonal: correct calls
    assert '<h4 class="matrix-heading">T2</h4>' in html and "<th scope=\"col\">sarcoma</th>" in html


def test_kappa_is_a_shaded_lower_triangle_with_landis_koch_labels():
    html = kappa_html(KAPPA)
    assert '<h4 class="matrix-heading">whole study</h4>' in html
    cells = re.findall(r'<td class="num kappa" style="background:([^;]+);[^"]*">([^<]+)<span class="band">([^<]*)',
                       html)
    assert cells == [(KAPPA_SHADES[4], "0.70", "substantial"), (KAPPA_SHADES[0], "-0.12", "poor"),
                     (KAPPA_SHADES[2], "0.35", "fair")]  # reader1-CNN; reader2-CNN, reader2-reader1
    assert re.findall(r'<th scope="col">([^<]*)</th>', html) == ["CNN", "reader 1"]
    assert re.findall(r'<th scope="row">([^<]*)</th>', html) == ["reader 1", "reader 2"]
    assert kappa_shade(0.2) == KAPPA_SHADES[1] and kappa_shade(0.81) == KAPPA_SHADES[5]
    assert kappa_shade(float("nan")) == "transparent"


def test_kappa_cells_carry_their_intervals_from_the_ci_table():
    cis = pd.DataFrame({"sequence": ["all"] * 3, "rater1": ["CNN", "CNN", "reader1"],
                        "rater2": ["reader1", "reader2", "reader2"], "kappa": [0.7013, -0.12, 0.35],
                        "lower": [0.41, -0.5, 0.02], "upper": [0.99, 0.26, 0.68]})
    html = kappa_html(KAPPA, cis)
    assert re.findall(r'">([-0-9.]+)<span class="ci">\(([^)]*)\)</span>', html) == [
        ("0.70", "0.41 to 0.99"), ("-0.12", "-0.50 to 0.26"), ("0.35", "0.02 to 0.68")]
    assert '<span class="ci">' not in kappa_html(KAPPA)  # a readers stage of an earlier version: no CIs


def test_roc_captions_name_the_readers_and_coarse_scores():
    fine = Curve("CNN", np.linspace(0, 1, 20), np.linspace(0, 1, 20), auc=0.9123)
    coarse = Curve("CNN", np.array([0, 0.1, 0.3, 1.0]), np.array([0, 0.5, 0.8, 1.0]), auc=0.8)
    assert levels_note(fine) == "" and "takes only 3 distinct values here, so its curve joins 4 points" in \
        levels_note(coarse)
    readers = [Curve("specialist2", coarse.fpr, coarse.sensitivity, (0.1, 0.5), (0.05, 0.6)),
               Curve("practitioner1", coarse.fpr, coarse.sensitivity, (0.3, 0.8))]
    text = curve_caption("T2axi", fine, readers, 23)
    assert text.startswith("T2axi: ROC of the CNN (23 patients, AUC 0.912) and 2 readers (S2 = specialist 2, "
                           "P1 = practitioner 1)")
    assert "open dots: AI-assisted calls, arrows" in text
    assert "open dots" not in curve_caption("ADC", fine, readers[1:], 23)
    assert [reader_tag(n) for n in ("specialist2", "practitioner13", "CNN")] == ["S2", "P13", "CNN"]

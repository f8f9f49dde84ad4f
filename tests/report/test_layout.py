"""How the report prints a table: titles for code names, words for code values, numbers, alignment, abbreviations."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sarcomri.report.columns import cell_text, column_title, is_code_name, words
from sarcomri.report.htmltable import is_numeric, table_html
from sarcomri.report.layout import Figure, Section, Table, define_abbreviations, fmt_df, pretty, with_cis, with_sd


@pytest.mark.parametrize(("name", "title"), [
    ("auc_mean", "AUC mean"), ("ss_avg_std", "SS-Avg SD"), ("accuracy_min", "accuracy min"),
    ("modality1", "reading A"), ("modality2", "reading B"), ("specialist1", "specialist 1"),
    ("rrrc", "random readers and cases"), ("mean_sensitivity", "mean sensitivity"),
    ("mean_first", "mean unaided"), ("mean_ai_assisted", "mean AI-assisted"), ("assisted", "AI-assisted"),
    ("hd95_mm", "HD95 (mm)"), ("tumour_length_mm", "tumour length (mm)"), ("volume_mask_cm3", "mask volume (cm³)"),
    ("median volume_mask_cm3", "median mask volume (cm³)"), ("p_vs_model", "DeLong p vs CNN"),
    ("n_pos", "positives"), ("brand_new_column", "brand new column"),
    ("AUC (95% CI)", "AUC (95% CI)"), ("CNN", "CNN"), ("predicted sarcoma", "predicted sarcoma"), ("n", "n"),
])
def test_column_titles(name, title):
    assert column_title(name) == title
    assert not is_code_name(column_title(name))


def test_cell_words_keep_identifiers():
    assert [cell_text("session", v) for v in ("first", "ai_assisted")] == ["unaided", "AI-assisted"]
    assert cell_text("modality1", "ai_assisted") == "AI-assisted"
    assert cell_text("test", "paired-t") == "paired t-test" and cell_text("test", "welch") == "Welch's t-test"
    assert cell_text("sequence", "all") == "whole study" and cell_text("sequence", "T2_axi") == "T2_axi"
    assert cell_text("interpreter", "practitioner3") == "practitioner 3"
    assert cell_text("histology", "endometrial_stromal_sarcoma") == "endometrial stromal sarcoma"
    assert cell_text("attribute", "irregular_margin") == "irregular margin"
    assert cell_text("patient_id", "p_001") == "p_001" and cell_text("case", "case_7") == "case_7"
    assert cell_text("value", "mobilenetv2_050") == "mobilenetv2_050"  # free values are not reworded
    assert words("CNN") == "CNN" and words("T2axi+ADC") == "T2axi+ADC"


def test_numbers_for_print():
    frame = pd.DataFrame({"df": [5.0, 9.93871, np.nan], "n": [23.0, 24.0, 23.0], "p": [0.0004, 0.0312, 0.5],
                          "auc": [0.91234567, 0.5, 0.75], "ok": [True, False, True]})
    shown = pretty(frame, p_columns=["p"])
    assert list(shown["df"]) == ["5", "9.9", ""] and [fmt_df(57.0), fmt_df(303.976)] == ["57", "304.0"]
    assert list(shown["n"]) == ["23", "24", "23"] and list(shown["p"]) == ["<0.001", "0.031", "0.500"]
    assert list(shown["auc"]) == ["0.912", "0.500", "0.750"] and list(shown["ok"]) == ["yes", "no", "yes"]
    assert list(pretty(frame, digits_by={"auc": 1})["auc"]) == ["0.9", "0.5", "0.8"]
    cis = with_cis(pd.DataFrame({"auc": [0.87], "auc_lower": [0.791], "auc_upper": [0.9449]}), ["auc"])
    assert cis.to_dict("list") == {"AUC (95% CI)": ["0.87 (0.79-0.94)"]}
    sd = with_sd(pd.DataFrame({"sequence": ["T2axi"], "auc_mean": [0.9], "auc_std": [0.0164], "k": [2]}), ["auc"])
    assert sd.to_dict("list") == {"sequence": ["T2axi"], "AUC, mean (SD)": ["0.900 (0.016)"], "k": [2]}


def test_numeric_columns_are_right_aligned_and_headers_titled():
    frame = pd.DataFrame({"reader": ["specialist1", "practitioner2"], "auc": ["0.87 (0.79-0.94)", ""],
                          "p_value": ["<0.001", "0.034"], "diameters_mm": ["35 x 35 x 25", "12 x 9 x 4"],
                          "note": ["<b>bold</b>", "n/a"]})
    html = table_html(frame)
    assert re.findall(r"<th[^>]*>([^<]*)</th>", html) == ["reader", "AUC", "p", "diameters (mm)", "note"]
    assert re.findall(r'<th scope="col" class="num">([^<]*)</th>', html) == ["AUC", "p"]
    assert '<td class="num">0.87 (0.79-0.94)</td>' in html and "<td>specialist 1</td>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html
    assert html.startswith('<table class="data sortable">')
    assert 'class="data"' in table_html(frame.head(1))  # one row: nothing to sort
    assert "wide" in table_html(pd.DataFrame({f"c{i}": [1] for i in range(12)}))
    assert is_numeric(["12 (50.0%)", "45.0 [38.0, 52.0]", "-0.217", ""]) and not is_numeric(["", ""])
    assert not is_numeric(["0.5", "T2axi"])


def test_an_abbreviation_is_defined_where_first_used():
    first = Section("a", "A", tables=[Table("Votes", pd.DataFrame({"ss_avg": [0.8]}))])
    later = Section("b", "B", intro="The SS-Avg again, and PPV.", figures=[Figure("f/x.png", "no abbreviations")])
    define_abbreviations([first, later])
    assert first.tables[0].note == "SS-Avg = mean of sensitivity and specificity."
    assert "SS-Avg = " not in later.intro and later.intro.endswith("PPV = positive predictive value; NPV = negative "
                                                                  "predictive value.")
    own = Section("c", "C", tables=[Table("T", pd.DataFrame({"ss_avg": [1]}), note="SS-Avg ((sens + spec) / 2).")])
    define_abbreviations([own])
    assert own.tables[0].note == "SS-Avg ((sens + spec) / 2)."  # defined there already
    assert Figure("figures/roc_T2axi.png", "").name == "roc_T2axi"

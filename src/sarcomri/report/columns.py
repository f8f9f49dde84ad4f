"""The words a report prints for the code names of its tables: column titles and the values of categorical cells.

This is the one place where a table's column names (``auc_mean``, ``p_vs_model``, ``modality1``) become the titles
a reader sees ("AUC mean", "DeLong p vs CNN", "reading A"); the analysis tables keep their code names on disk.
:func:`column_title` looks a name up in :data:`COLUMN_TITLES`, then reads a statistic suffix (``_mean``, ``_std``,
``_lower``), a ``mean_`` prefix or a unit suffix (``_mm``, ``_cm3``) around a known name, and otherwise turns
snake_case into words and splits a word from its number (``specialist1`` -> "specialist 1").

:func:`cell_text` does the same for the values of categorical columns: the two reading sessions are always
"unaided" and "AI-assisted", test and analysis codes become their names, the whole-study sequence ``all`` is
"whole study", reader ids are split like column names. Identifier columns (patients, cases) are never changed.
"""

from __future__ import annotations

import re
from typing import Any

#: The reading sessions, as every page says them.
UNAIDED, AI_ASSISTED = "unaided", "AI-assisted"

#: Column titles by code name (lower case, like the rest of the report's headers; abbreviations as written).
COLUMN_TITLES: dict[str, str] = {
    # metrics
    "auc": "AUC", "sensitivity": "sensitivity", "specificity": "specificity", "accuracy": "accuracy",
    "ss_avg": "SS-Avg", "ppv": "PPV", "npv": "NPV", "precision": "precision", "dice": "Dice", "iou": "IoU",
    "f2": "F2", "kappa": "kappa", "kappa_calls": "kappa of the calls", "icc": "ICC", "dsc": "DSC",
    "dsc_ci_lower": "DSC lower 95% limit", "dsc_ci_upper": "DSC upper 95% limit", "icc_form": "ICC form",
    "brier": "Brier score", "brier_prevalence": "Brier, prevalence only",
    # counts and cut-offs
    "n_pos": "positives", "n_neg": "negatives", "n_patients": "patients", "n_sequences": "number of sequences",
    "n_ensembles": "ensembles", "n_reads": "reads", "n_target_train": "target training patients",
    "n_distance": "cases with distances", "n_cases": "cases",
    "tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN", "total": "total", "cutoff": "cut-off",
    "optimal_cutoff": "optimal cut-off", "vote_cutoff": "vote cut-off",
    # who and what
    "patient_id": "patient", "interpreter": "interpreter", "clinical_columns": "clinical variables",
    "center": "centre", "irregular_margin": "irregular margin", "mask_sequence": "mask sequence",
    "misdiagnosed_by": "misdiagnosed by", "model_call": "model call", "p_model": "model probability",
    "mean_likelihood": "mean likelihood", "summed_score": "summed score", "model_only": "model only",
    "readers_only": "readers only",
    # the model card
    "ideal_observer_auc": "ideal-observer AUC", "val_ratio": "validation fraction", "test_ratio": "test fraction",
    "stratify_by": "stratified by", "batch_size": "batch size", "lr": "learning rate",
    "positive_label": "positive class", "patients_split": "patients split",
    # sessions
    "first": UNAIDED, "unaided": UNAIDED, "assisted": AI_ASSISTED, "ai_assisted": AI_ASSISTED,
    "second": AI_ASSISTED, "mean_first": f"mean {UNAIDED}", "mean_second": f"mean {AI_ASSISTED}",
    "mean_ai_assisted": f"mean {AI_ASSISTED}", "mean_difference": "mean difference",
    # tests and MRMC
    "p": "p", "p_value": "p", "p_adj": "adjusted p", "p_vs_model": "DeLong p vs CNN", "p_vs_cnn": "DeLong p vs CNN",
    "delong_z": "DeLong z", "delong_p": "DeLong p", "statistic": "statistic", "df": "df", "se": "SE",
    "lower": "lower 95% limit", "upper": "upper 95% limit", "modality": "reading", "modality1": "reading A",
    "modality2": "reading B", "comparison": "comparison",
    # images and masks
    "auc_image": "AUC image only", "auc_combined": "AUC image + clinical", "hd_mm": "Hausdorff (mm)",
    "hd95_mm": "HD95 (mm)", "assd_mm": "ASSD (mm)", "pred_voxels": "predicted voxels",
    "ref_voxels": "reference voxels", "pred_volume_mm3": "predicted volume (mm³)",
    "ref_volume_mm3": "reference volume (mm³)", "empty_pred": "empty prediction", "empty_ref": "empty reference",
    "both_empty": "both empty", "volume_mask_cm3": "mask volume (cm³)",
    "volume_ellipsoid_cm3": "ellipsoid volume (cm³)",
}

#: Statistic suffixes: ``<name>_<suffix>`` is "<title of name> <word>".
STATISTICS = {"mean": "mean", "std": "SD", "sd": "SD", "min": "min", "median": "median", "max": "max",
              "lower": "lower", "upper": "upper", "se": "SE", "q1": "Q1", "q3": "Q3"}
#: Unit suffixes: ``<name>_<suffix>`` is "<title of name> (<unit>)".
UNITS = {"mm": "mm", "cm3": "cm³", "mm3": "mm³", "ml": "ml", "s": "s", "pct": "%"}

#: Values of categorical cells by code.
VALUE_TEXT: dict[str, str] = {
    "first": UNAIDED, "unaided": UNAIDED, "ai_assisted": AI_ASSISTED, "assisted": AI_ASSISTED,
    "paired-t": "paired t-test", "welch": "Welch's t-test", "wilcoxon": "Wilcoxon signed-rank test",
    "rrrc": "random readers and cases", "frrc": "fixed readers, random cases", "rrfc": "random readers, fixed cases",
}
#: Columns that hold identifiers: printed exactly as stored.
ID_COLUMNS = frozenset({"patient_id", "case", "model"})
#: Columns whose values are code words (session, test, reader ids, histology): printed as words.
WORD_COLUMNS = frozenset({"session", "modality", "modality1", "modality2", "test", "analysis", "interpreter",
                          "reader", "group", "kind", "histology", "site", "misdiagnosed_by"})
#: Columns whose values are column names (the clinical attribute of a count, the model card's items).
NAME_COLUMNS = frozenset({"attribute", "item"})
#: The whole-study rows of the per-sequence tables (:data:`sarcomri.analysis.readers.WHOLE_STUDY`).
SEQUENCE_TEXT = {"all": "whole study"}

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_WORD_NUMBER = re.compile(r"^([a-z]+)(\d+)$")


def is_code_name(text: str) -> bool:
    """True for a name as code writes it: snake_case (``auc_mean``) or a word run into digits (``modality1``)."""
    return bool(_SNAKE.match(text) or _WORD_NUMBER.match(text))


def words(text: str) -> str:
    """A code word as words: :data:`VALUE_TEXT`'s name, else snake_case with spaces, a word and its number apart
    (``specialist1`` -> "specialist 1"); other text unchanged."""
    if text in VALUE_TEXT:
        return VALUE_TEXT[text]
    found = _WORD_NUMBER.match(text)
    if found:
        return f"{found.group(1)} {found.group(2)}"
    return text.replace("_", " ") if _SNAKE.match(text) else text


def _composed(name: str) -> str | None:
    """The title of ``<known>_<statistic>``, ``mean_<known>`` or ``<known>_<unit>``; None when none fits."""
    base, _, last = name.rpartition("_")
    if base and last in STATISTICS and base in COLUMN_TITLES:
        return f"{COLUMN_TITLES[base]} {STATISTICS[last]}"
    if base and last in UNITS:
        return f"{column_title(base)} ({UNITS[last]})"
    first, _, rest = name.partition("_")
    if first == "mean" and rest in COLUMN_TITLES:
        return f"mean {COLUMN_TITLES[rest]}"
    return None


def column_title(name: Any) -> str:
    """The printed title of a column: :data:`COLUMN_TITLES`, a composed title (statistic, unit or ``mean_``
    around a known name), else each code word of the name as words; a title already in words is kept."""
    text = str(name)
    if text in COLUMN_TITLES:
        return COLUMN_TITLES[text]
    if " " in text:
        return " ".join(map(column_title, text.split(" ")))
    composed = _composed(text)
    if composed is not None:
        return composed
    return words(text)


def cell_text(column: Any, value: str) -> str:
    """The printed text of one (already formatted) cell of ``column``: identifiers as stored; the column names
    of :data:`NAME_COLUMNS` as titles; the whole-study sequence as words; the code words of :data:`WORD_COLUMNS`
    as :func:`words`."""
    column = str(column)
    if column in ID_COLUMNS or not value:
        return value
    if column in NAME_COLUMNS:
        return column_title(value)
    if column == "sequence":
        return SEQUENCE_TEXT.get(value, value)
    if column in WORD_COLUMNS:
        return words(value)
    return value

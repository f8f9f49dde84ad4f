"""The model card (Mitchell et al. 2019; the transparency the review paper asks for): data, splits, cut-offs
and how they were chosen, metrics with CIs, versions, intended use and limits.

:func:`model_card` gathers it as a plain dict from the run's inputs (its metrics are the run's
``tables/model_card.csv``, :func:`sarcomri.analysis.published.model_card_table`); :func:`render_markdown` writes
``model_card.md`` and the HTML report shows the same dict as a section.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sarcomri.report.columns import column_title
from sarcomri.report.layout import Section, Table, pretty, with_cis
from sarcomri.report.sources import RunInputs

INTENDED_USE = ("Decision support, not a diagnosis. The model gives radiologists a likelihood that a tumour on "
                "MRI is {positive} rather than {negative}, to be read together with the images, the clinical "
                "history and histology. It must not decide treatment on its own, and a low likelihood does not rule "
                "{positive} out.")
GENERAL_LIMITS = (
    "Retrospective cross-validation: patients were scored by models that did not see them, but nothing here "
    "was tested prospectively or on another hospital's data.",
    "Rare tumours make small test sets: the confidence intervals are wide and should be read before the point "
    "estimates.",
    "Scanners, protocols and sequence availability differ between hospitals; performance may drop on "
    "acquisitions unlike the training data.",
    "Thresholds chosen on the same patients they are scored on (the summed score, the combination search) are "
    "optimistic.",
)


def _data(inputs: RunInputs) -> dict[str, Any]:
    cohort = inputs.cohort
    if cohort is None:
        return {}
    pats = cohort.patients
    out: dict[str, Any] = {
        "patients": len(pats), "labels": pats["label"].value_counts().to_dict(),
        "positive_label": inputs.positive_label, "sequences_in_cohort": cohort.sequences,
        "sequences_modelled": inputs.sequences,
    }
    if "center" in pats.columns:
        out["centres"] = pats["center"].value_counts().sort_index().to_dict()
    prov = cohort.meta.get("provenance") or {}
    if prov.get("generator"):
        out["source"] = (f"synthetic cohort ({prov['generator']} {prov.get('version', '')}, task "
                         f"{cohort.meta.get('task', '?')}, seed {prov.get('seed', '?')})")
        if cohort.meta.get("ideal_observer_auc") is not None:
            out["ideal_observer_auc"] = cohort.meta["ideal_observer_auc"]
    return out


def _splits(inputs: RunInputs) -> dict[str, Any]:
    cfg = (inputs.config or {}).get("splits") or {}
    keys = ("scheme", "test_ratio", "val_ratio", "stratify_by", "seed") if cfg.get("scheme") == "holdout" else (
        "scheme", "folds", "repeats", "val_ratio", "stratify_by", "group", "seed")
    out = {k: cfg[k] for k in keys if k in cfg and (k != "group" or cfg.get("scheme") == "groups")}
    if inputs.splits is not None:
        s = inputs.splits
        out["patients_split"] = int(s["patient_id"].nunique())
        out["repeats_found"] = int(s["repeat"].nunique())
        out["folds_found"] = int(s["fold"].nunique())
        out["note"] = ("splits are by patient; every patient is tested once per repeat by a model that did not "
                       "train on it")
    return out


def _cutoffs(inputs: RunInputs) -> list[str]:
    lines = []
    if inputs.table("likelihood") is not None:
        lines.append(f"Each sequence's likelihood is called positive at >= {inputs.cutoff():g}, a fixed cut-off "
                     "(not tuned on these patients).")
    thr = inputs.table("summed_threshold")
    if thr is not None and len(thr):
        lines.append(f"The summed +1/-1 vote over a patient's sequences is called positive at >= "
                     f"{int(thr['threshold'].iloc[0])}, the threshold that maximised SS-Avg (mean of sensitivity and "
                     "specificity) on these same patients: optimistic.")
    if any(n.startswith("combinations") for n in inputs.tables):
        lines.append("The sequence-combination search picks each subset's threshold on the patients it scores: "
                     "exploratory only.")
    return lines


def _metrics(inputs: RunInputs) -> pd.DataFrame:
    """The run's ``model_card.csv`` (:func:`sarcomri.analysis.published.model_card_table`), empty without one."""
    found = inputs.table("model_card")
    return pd.DataFrame() if found is None else found


def _model(inputs: RunInputs) -> dict[str, Any]:
    cfg = inputs.config or {}
    model, slices, train = cfg.get("model") or {}, cfg.get("slices") or {}, cfg.get("train") or {}
    out = {"architecture": model.get("name"), "initial_weights": model.get("weights") or "random",
           "input": f"{slices.get('size', '?')} px 2D slices ({slices.get('mode', '?')} slices), "
                    f"patient score = {slices.get('test_aggregation', 'mean')} of slice probabilities",
           "training": {k: train[k] for k in ("epochs", "batch_size", "lr", "optimizer", "augmentation", "sampling")
                        if k in train}}
    if cfg.get("clinical_columns"):
        out["clinical_columns"] = cfg["clinical_columns"]
    return {k: v for k, v in out.items() if v not in (None, {}, "")}


def model_card(inputs: RunInputs) -> dict[str, Any]:
    """The model card of a run as a plain dict (keys: name, data, splits, model, cutoffs, metrics, versions,
    intended_use, limits)."""
    data = _data(inputs)
    pos, neg = inputs.class_names
    limits = list(GENERAL_LIMITS)
    if "source" in data:
        limits.insert(0, "Trained and evaluated on SYNTHETIC images and simulated readers: the numbers describe the "
                         "software, not clinical performance.")
    return {"name": (inputs.config or {}).get("name") or inputs.run_dir.name, "data": data,
            "splits": _splits(inputs), "model": _model(inputs), "cutoffs": _cutoffs(inputs),
            "metrics": _metrics(inputs), "versions": inputs.versions or {},
            "intended_use": INTENDED_USE.format(positive=pos, negative=neg),
            "limits": limits}


def metrics_text(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics table with 'estimate (lower-upper)' cells."""
    return pretty(with_cis(metrics, ["auc", "sensitivity", "specificity", "accuracy"]))


def _flat(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{column_title(k)}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def render_markdown(card: dict[str, Any]) -> str:
    """``model_card.md``: the card as Markdown."""
    lines = [f"# Model card: {card['name']}", "", "## Intended use", "", card["intended_use"], ""]
    for title, key in (("Data", "data"), ("Splits", "splits"), ("Model", "model")):
        if card[key]:
            lines += [f"## {title}", ""] + [f"- **{k}**: {_flat(v)}" for k, v in card[key].items()] + [""]
    if card["cutoffs"]:
        lines += ["## Cut-offs and how they were chosen", ""] + [f"- {c}" for c in card["cutoffs"]] + [""]
    metrics = card["metrics"]
    if isinstance(metrics, pd.DataFrame) and len(metrics):
        shown = metrics_text(metrics)
        lines += ["## Metrics (95% CIs: DeLong for AUC, Wilson for proportions)", "",
                  "| " + " | ".join(map(str, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)] + [""]
    if card["versions"]:
        lines += ["## Versions", ""] + [f"- {k}: {v}" for k, v in card["versions"].items()] + [""]
    lines += ["## Limits", ""] + [f"- {x}" for x in card["limits"]] + [""]
    return "\n".join(lines)


def model_card_section(card: dict[str, Any]) -> Section:
    """The card as a report section (its lists and mappings as definition rows, the metrics as a table)."""
    rows = [{"item": k, "value": _flat(v)} for key in ("data", "splits", "model") for k, v in card[key].items()]
    tables = [Table("Data, splits and model", pd.DataFrame(rows))] if rows else []
    metrics = card["metrics"]
    if isinstance(metrics, pd.DataFrame) and len(metrics):
        tables.append(Table("Metrics with 95% CIs", metrics, metrics_text(metrics)))
    if card["versions"]:
        v = pd.DataFrame({"package": list(card["versions"]), "version": list(card["versions"].values())})
        tables.append(Table("Versions", v, collapsed=True))
    return Section(id="model-card", title="Model card", intro=card["intended_use"], tables=tables,
                   lists=[("Cut-offs and how they were chosen", card["cutoffs"]), ("Limits", card["limits"])],
                   data={"card": card})

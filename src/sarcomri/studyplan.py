"""``sarcomri study plan``: a study config checked against its cohort, with the resolved protocol, the design it
implies (models, ensembles, splits, training sizes) and its stages, before anything runs.

A user checks the plan before a week of GPU time: the sequences the cohort has, the labels, the masks the
design needs, the patients per class per fold, and each published value of the preset (its ``published:``
list) beside the value the study will use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import parse_group
from sarcomri.config import ClassificationConfig
from sarcomri.errors import SarcomriError
from sarcomri.study_config import StudyConfig

#: The number of target training patients of the DWI transfer study (100%), for its published sizes.
PAPER_TARGET_TRAINING = 256


def lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in nested mappings (list items by index); KeyError naming the missing part."""
    node: Any = tree
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"{dotted}: no {part!r}")
    return node


def same_value(paper: Any, preset: Any) -> bool:
    """Whether a preset's value is the paper's (numbers to 1e-9 relative, lists item by item)."""
    if isinstance(paper, list) and isinstance(preset, list | tuple):
        return len(paper) == len(preset) and all(same_value(a, b) for a, b in zip(paper, preset, strict=True))
    if isinstance(paper, bool) or isinstance(preset, bool):
        return paper is preset
    if isinstance(paper, int | float) and isinstance(preset, int | float):
        return math.isclose(float(paper), float(preset), rel_tol=1e-9, abs_tol=1e-12)
    return paper == preset


# ----------------------------------------------------------------------------------------------- the design
def classification_design(c: ClassificationConfig) -> dict[str, Any]:
    """What a classification section trains: models per sequence, ensembles and their size, the sequence
    combinations searched, slices drawn per model, and each sequence's epochs and validation share."""
    n = len(c.sequences)
    folds = c.splits.folds if c.splits.scheme == "kfold" else 1
    repeats = c.splits.repeats if c.splits.scheme == "kfold" else 1
    per_sequence = {}
    for seq in c.sequences:
        own_val = c.own_val_ratio(seq)
        per_sequence[seq] = {"epochs": c.train_for(seq).epochs,
                             "val_ratio": c.splits.val_ratio if own_val is None else own_val}
    spe = c.train.slices_per_epoch
    return {
        "sequences": n,
        "models_per_sequence": folds * repeats if c.splits.scheme != "groups" else None,
        "models": n * folds * repeats if c.splits.scheme != "groups" else None,
        "ensembles_per_sequence": repeats,
        "ensemble_size": repeats - 1 if repeats > 1 else 1,
        "combinations": 2 ** n - 1,
        "slices_per_model": {s: v["epochs"] * spe for s, v in per_sequence.items()} if spe else None,
        "per_sequence": per_sequence,
        "validation": "none: a fixed number of epochs" if c.splits.val_ratio == 0 and not c.per_sequence
        else "the epoch of the best validation " + c.train.monitor.replace("val_", ""),
    }


def transfer_design(cfg: StudyConfig, cohort_dir: str | None) -> dict[str, Any]:
    """The transfer study's models and the target training sizes at each fraction (for the paper's 256 target
    training patients, and for the cohort's when one is given)."""
    from sarcomri.seg2d.design import subset_size

    t = cfg.transfer_config(cohort_dir)
    kinds = {k: (len(t.levels) if k == "transfer" else 1) * (1 if k == "source" else len(t.fractions))
             for k in t.models}
    return {
        "fractions": list(t.fractions),
        "training_sizes_at_256": [subset_size(f, PAPER_TARGET_TRAINING, t.subset_rounding) for f in t.fractions],
        "levels": list(t.levels),
        "models": kinds,
        "trainings": sum(kinds.values()) * (t.cv.folds if t.cv else 1),
    }


def segmentation_design(cfg: StudyConfig) -> dict[str, Any]:
    """The 3D segmentation models: one per sequence or combination, its channels, and the trainings."""
    s = cfg.segmentation_config("cohort")
    return {"model_count": len(s.sequences), "models": {seq: list(parse_group(seq)) for seq in s.sequences},
            "folds": s.folds, "trainings": len(s.sequences) * s.folds}


def design(cfg: StudyConfig, cohort_dir: str | None) -> dict[str, Any]:
    """The design of every section the study has."""
    out: dict[str, Any] = {}
    if cfg.classification is not None:
        out["classification"] = classification_design(cfg.classification_config("cohort"))
    if cfg.segmentation is not None:
        out["segmentation"] = {**segmentation_design(cfg), "nnunet_export": cfg.nnunet is not None}
    if cfg.transfer is not None:
        out["transfer"] = transfer_design(cfg, cohort_dir)
    return out


def protocol(cfg: StudyConfig, cohort_dir: str | None) -> dict[str, Any]:
    """Every section resolved (defaults written out) as the stages will run it."""
    out: dict[str, Any] = {"seed": cfg.seed, "scale": cfg.scale, "patients": cfg.patients,
                           "readers": cfg.readers.model_dump(mode="json"),
                           "paper": cfg.paper.model_dump(mode="json") if cfg.paper else None}
    if cfg.synth is not None:
        out["synth"] = cfg.synth.model_dump(mode="json")
    if cfg.classification is not None:
        out["classification"] = cfg.classification_config(cohort_dir or "cohort").model_dump(mode="json")
    if cfg.segmentation is not None:
        out["segmentation"] = cfg.segmentation_config(cohort_dir or "cohort").model_dump(mode="json")
    if cfg.transfer is not None:
        out["transfer"] = cfg.transfer_config(cohort_dir).model_dump(mode="json")
    out["nnunet"] = cfg.nnunet.model_dump(mode="json") if cfg.nnunet else None
    return out


def published(cfg: StudyConfig, tree: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each published value of the preset beside the study's (``match``: equal; None when the key is absent)."""
    rows = []
    for item in cfg.published:
        try:
            value, match = lookup(tree, item.key), None
            match = same_value(item.paper, value)
        except KeyError:
            value = None
        rows.append({"item": item.item, "paper": item.paper, "preset": value, "key": item.key, "note": item.note,
                     "match": match})
    return rows


# ----------------------------------------------------------------------------------------------- the cohort
def cohort_summary(cohort: Cohort) -> dict[str, Any]:
    """Patients, labels and, per sequence, the patients with it and with its mask."""
    series = cohort.series
    has_mask = series["mask"].notna() & (series["mask"].astype(str) != "")
    return {"path": str(cohort.root) if cohort.root else None, "patients": len(cohort.patients),
            "labels": {str(k): int(v) for k, v in cohort.patients["label"].value_counts().sort_index().items()},
            "positive_label": cohort.positive_label,
            "sequences": {str(s): int(n) for s, n in series.groupby("sequence")["patient_id"].nunique().items()},
            "masks": {str(s): int(n) for s, n in series[has_mask].groupby("sequence")["patient_id"].nunique().items()}}


def _with(cohort: Cohort, group: tuple[str, ...], need_mask: bool) -> tuple[set[str], set[str]]:
    """Patients with every sequence of ``group``, and those of them with a mask on one of its sequences."""
    series = cohort.series
    have = None
    for seq in group:
        ids = set(series.loc[series["sequence"] == seq, "patient_id"].astype(str))
        have = ids if have is None else have & ids
    have = have or set()
    rows = series[series["sequence"].isin(group) & series["patient_id"].astype(str).isin(have)]
    masked = set(rows.loc[rows["mask"].notna() & (rows["mask"].astype(str) != ""), "patient_id"].astype(str))
    return have, (masked if need_mask else have)


def check_sequences(cohort: Cohort, groups: list[str], need_mask: bool, what: str) -> list[dict[str, str]]:
    """Errors for a sequence (group) no patient has (with a mask, when the design needs one); warnings for
    patients left out for want of a sequence's mask."""
    out = []
    for name in groups:
        have, usable = _with(cohort, parse_group(name), need_mask)
        if not have:
            out.append({"level": "error", "message": f"{what}: no patient has {name} (the cohort has "
                        f"{', '.join(cohort.sequences)})"})
        elif not usable:
            out.append({"level": "error", "message": f"{what}: no patient has a tumour mask on {name}"})
        elif len(usable) < len(have):
            out.append({"level": "warning", "message": f"{what}: {len(have) - len(usable)} of {len(have)} patients "
                        f"with {name} have no tumour mask and are left out"})
    return out


def split_counts(cohort: Cohort, c: ClassificationConfig) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Patients per role and class in every fold of the first repeat, and errors for a fold whose test set or
    training set lacks a class. Slice-balanced folds are planned as patient-balanced ones (the plan reads
    tables, not masks): the counts per class are the same, the patients may differ."""
    from sarcomri.train.grid import make_splits

    splits = make_splits(cohort, c.splits.model_copy(update={"balance": "patients"})
                         if c.splits.balance == "slices" else c.splits)
    labels = cohort.patients.set_index(cohort.patients["patient_id"].astype(str))["label"].astype(str)
    first = splits[splits["repeat"] == splits["repeat"].min()]
    rows, checks = [], []
    classes = sorted(labels.unique())
    for fold, part in first.groupby("fold"):
        row: dict[str, Any] = {"fold": int(fold)}
        for role in ("train", "val", "test"):
            ids = part.loc[part["role"] == role, "patient_id"].astype(str)
            counts = labels.reindex(ids).value_counts()
            row[role] = {k: int(counts.get(k, 0)) for k in classes}
        rows.append(row)
        for role in ("train", "test"):
            lacking = [k for k in classes if row[role][k] == 0]
            if lacking:
                checks.append({"level": "error", "message": f"fold {fold}: the {role} set has no {', '.join(lacking)} "
                               "patient"})
    return rows, checks


def label_checks(cohort: Cohort, c: ClassificationConfig) -> list[dict[str, str]]:
    """Errors for a cohort with fewer than two classes or without the configured positive class."""
    labels = sorted(cohort.patients["label"].astype(str).unique())
    out = []
    if len(labels) < 2:
        out.append({"level": "error", "message": f"the cohort has one class ({', '.join(labels)}): a classifier "
                    "needs two"})
    positive = c.positive_label or cohort.positive_label
    if positive and positive not in labels:
        out.append({"level": "error", "message": f"the positive class {positive!r} is not among the cohort's labels "
                    f"({', '.join(labels)})"})
    return out


def cohort_checks(cfg: StudyConfig, cohort: Cohort) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The splits' counts and every check of the study's sections against the cohort."""
    checks: list[dict[str, str]] = []
    extra: dict[str, Any] = {}
    if cfg.classification is not None:
        c = cfg.classification_config(str(cohort.root))
        need_mask = c.slices.mode != "all" or c.slices.crop == "tumour"
        checks += check_sequences(cohort, c.sequences, need_mask, "classification")
        checks += label_checks(cohort, c)
        if not any(ch["level"] == "error" for ch in checks):
            try:
                extra["splits"], more = split_counts(cohort, c)
                checks += more
            except (SarcomriError, ValueError) as exc:
                checks.append({"level": "error", "message": f"classification splits: {exc}"})
    if cfg.segmentation is not None:
        s = cfg.segmentation_config(str(cohort.root))
        checks += check_sequences(cohort, list(s.sequences), True, "segmentation")
        if len(cohort.patients) < s.folds:
            checks.append({"level": "error", "message": f"segmentation: {s.folds} folds need at least {s.folds} "
                           f"patients (the cohort has {len(cohort.patients)})"})
    if cfg.transfer is not None:
        checks += transfer_checks(cfg, cohort)
    return extra, checks


def transfer_checks(cfg: StudyConfig, cohort: Cohort) -> list[dict[str, str]]:
    """The transfer study's domains (source and target patients) and its input sequences."""
    t = cfg.transfer_config(str(cohort.root))
    if t.target_cohort or t.synth is not None:
        return []
    out = check_sequences(cohort, ["+".join(t.data.sequences)], True, "transfer")
    column = t.domain.column
    if column not in cohort.patients.columns:
        return out + [{"level": "error", "message": f"transfer: patients.csv has no column {column!r} (the domain)"}]
    values = cohort.patients[column].astype(str).value_counts()
    for role, value in (("source", t.domain.source), ("target", t.domain.target)):
        if int(values.get(value, 0)) < 2:
            out.append({"level": "error", "message": f"transfer: {int(values.get(value, 0))} {role} patient(s) "
                        f"({column} = {value})"})
    return out


# ----------------------------------------------------------------------------------------------- the plan
def stage_rows(cfg: StudyConfig, run_dir: Path) -> list[dict[str, Any]]:
    """The study's stages in order: name, the stages it follows, its folders and outputs (relative)."""
    from sarcomri.study import stages

    return [{"name": st.name, "after": list(st.after), "folders": list(st.folders), "outputs": list(st.outputs)}
            for st in stages(cfg, run_dir, log=lambda _: None, progress=False)]


def plan_study(cfg: StudyConfig, run_dir: str | Path, raw: Mapping[str, Any] | None = None,
               check_files: bool = False) -> dict[str, Any]:
    """The plan of a study: resolved protocol, design, published values, smoke changes, stages, the cohort's
    summary and the checks (``ok``: no error). ``raw``: the config file's mapping (for the smoke changes);
    ``check_files``: also verify every image and mask the cohort names (slow on a large cohort)."""
    from sarcomri.runs import StudyRun
    from sarcomri.scale import scale_changes

    run = Path(run_dir)
    study = StudyRun(run, cfg)
    cohort = None
    checks: list[dict[str, str]] = []
    missing = cfg.missing_cohort()
    if missing:
        checks.append({"level": "error", "message": missing})
    if cfg.cohort:
        try:
            cohort = Cohort.load(cfg.cohort, check_files=check_files)
        except SarcomriError as exc:
            checks.append({"level": "error", "message": f"cohort: {exc}"})
    cohort_dir = str(study.cohort_dir.resolve()) if cfg.has_cohort() else None
    tree = {"protocol": protocol(cfg, cohort_dir), "design": design(cfg, cohort_dir)}
    out: dict[str, Any] = {"name": cfg.name, "scale": cfg.scale, "run_dir": str(run.resolve()),
                           "cohort": cohort_summary(cohort) if cohort is not None else None,
                           "cohort_source": cohort_source(cfg), **tree, "published": published(cfg, tree),
                           "smoke_changes": scale_changes(raw) if raw else []}
    if cohort is not None:
        extra, more = cohort_checks(cfg, cohort)
        out.update(extra)
        checks += more
    out["stages"] = stage_rows(cfg, run)
    out["checks"] = checks
    out["ok"] = not any(c["level"] == "error" for c in checks)
    return out


def cohort_source(cfg: StudyConfig) -> str:
    """Where the study's cohort comes from, in words."""
    if cfg.cohort:
        sample = f" (a stratified sample of {cfg.patients} patients)" if cfg.patients else ""
        return f"the folder {cfg.cohort}{sample}"
    if cfg.source is not None:
        return f"ingested from {cfg.source.folder} (labels {cfg.source.labels})"
    if cfg.synth is not None:
        return f"a synthetic {cfg.synth.task} cohort of {cfg.synth.patients} patients (seed {cfg.synth.seed})"
    return "the transfer section's own cohorts" if cfg.transfer is not None else "none"


def published_frame(plan: Mapping[str, Any]) -> pd.DataFrame:
    """The plan's published values as a table (item, paper, preset, match, key)."""
    return pd.DataFrame(plan["published"], columns=["item", "paper", "preset", "match", "key", "note"])


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value).replace("|", "/")


def published_markdown(plan: Mapping[str, Any]) -> str:
    """The plan's published values as the Markdown table of docs/protocols.md (paper | preset | config key |
    note)."""
    lines = ["| item | paper | preset | config key | note |", "|---|---|---|---|---|"]
    for row in plan["published"]:
        preset = _cell(row["preset"]) if row["match"] else f"**{_cell(row['preset'])}**"
        lines.append(f"| {row['item']} | {_cell(row['paper'])} | {preset} | `{row['key']}` | {row['note']} |")
    return "\n".join(lines)

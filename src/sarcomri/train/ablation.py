"""The ablation of the carcinosarcoma study: each sequence's number of epochs and validation ratio, chosen on
validation data before the main grid.

For each sequence and each ``ablation.val_ratios`` entry one model is trained: the first repeat's first fold
of ``splits.csv``, its validation patients carved again with that ratio
(:func:`sarcomri.cohort.splits.resplit_validation`, as the main grid's will be), for ``max(ablation.epochs)``
epochs without early stopping. Its validation loss and AUC after each candidate epoch count are read from the
history (the loop scores the validation patients after every epoch). Per sequence the best (epochs,
val_ratio) by ``ablation.metric`` becomes that sequence's protocol for the main grid
(:func:`chosen_protocols`); ties go to fewer epochs, then the smaller ratio. Test patients are never scored.

The ablation models train one after another in this process (not through the grid's executor). Each
model's folder, ``ablation/<sequence>/val<ratio>/``, ends with ``history.json`` and ``DONE``: a rerun
skips it, a killed one resumes from its ``checkpoint.pt``. The folders are keyed like the grid's models
(:func:`sarcomri.train.grid.artifact_keys`), so a changed config or cohort reruns them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sarcomri.cohort import splits as sp
from sarcomri.errors import SarcomriError
from sarcomri.io.atomic import write_csv, write_json, write_text
from sarcomri.runs import DONE, ClassificationRun
from sarcomri.train.jobs import Job, build_network, cache_path, job_seed

if TYPE_CHECKING:
    from sarcomri.config import ClassificationConfig, SequenceProtocol

ABLATION_COLUMNS = ["sequence", "val_ratio", "epochs", "val_loss", "val_auc", "chosen"]
HISTORY = "history.json"


def ablation_split(splits: pd.DataFrame, patients: pd.DataFrame, val_ratio: float, seed: int,
                   stratify_by: list[str] | tuple[str, ...] = ("label",)) -> dict[str, list[str]]:
    """The patients of the ablation model for ``val_ratio``: the first repeat's first fold of ``splits`` with its
    validation patients carved again (train, val, test by role; checked for leakage)."""
    first = splits[splits["repeat"] == splits["repeat"].min()]
    first = first[first["fold"] == first["fold"].min()]
    table = sp.resplit_validation(first, patients, val_ratio, seed, stratify_by)
    sp.check_no_leakage(table, kfold_complete=False)
    return {role: table.loc[table["role"] == role, "patient_id"].astype(str).tolist() for role in sp.ROLES}


def train_ablation_model(run_dir: str | Path, config: ClassificationConfig, sequence: str, val_ratio: float,
                         patients: pd.DataFrame, progress: Any = None) -> list[dict[str, Any]]:
    """Train (or read back, when its folder is done) the ablation model of one sequence and validation ratio;
    returns its history (one row per epoch, with ``val_loss`` and ``val_auc``)."""
    import torch

    from sarcomri.data.sliceset import SliceSet
    from sarcomri.train.classifier import fit_classifier

    run = ClassificationRun(run_dir)
    folder = run.ablation_folder(sequence, val_ratio)
    if (folder / DONE).is_file():
        return json.loads((folder / HISTORY).read_text())["history"]
    folder.mkdir(parents=True, exist_ok=True)
    splits = pd.read_csv(run.splits_path, dtype={"patient_id": str, sp.SUBJECT: str})
    s = config.splits
    ids = ablation_split(splits, patients, val_ratio, s.seed, s.stratify_by)
    slices = SliceSet.load(cache_path(run_dir, sequence))
    train, val = slices.subset(ids["train"]), slices.subset(ids["val"])
    if not len(val):
        raise SarcomriError(f"the {sequence} ablation at validation ratio {val_ratio:g} has no validation slices")
    seed = job_seed(config.train.seed, Job(sequence, 0, 0), config.sequences.index(sequence))
    tcfg = config.train.model_copy(update={"epochs": max(config.ablation.epochs), "patience": 0, "seed": seed})
    torch.manual_seed(seed)
    model, _ = build_network(config, slices)
    result = fit_classifier(model, train, val, tcfg, checkpoint_dir=folder, progress=progress)
    write_json(folder / HISTORY, {"history": result.history, "val_ratio": val_ratio, "seed": seed,
                                  "train_patients": ids["train"], "val_patients": ids["val"]}, overwrite=True)
    write_text(folder / DONE, json.dumps({"sequence": sequence, "val_ratio": val_ratio}) + "\n", overwrite=True)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return result.history


def ablation_rows(sequence: str, val_ratio: float, history: list[dict[str, Any]],
                  epochs: list[int]) -> list[dict[str, Any]]:
    """One row per candidate epoch count: the validation loss and AUC after that many epochs."""
    if len(history) < max(epochs):
        raise SarcomriError(f"the {sequence} ablation model ran {len(history)} epochs, fewer than {max(epochs)}")
    return [{"sequence": sequence, "val_ratio": val_ratio, "epochs": e,
             "val_loss": float(history[e - 1].get("val_loss", math.nan)),
             "val_auc": float(history[e - 1].get("val_auc", math.nan))} for e in epochs]


def choose(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``table`` with ``chosen`` True on each sequence's best row by ``metric`` (lowest val_loss or highest
    val_auc; a NaN never wins unless all are; ties to fewer epochs, then the smaller ratio)."""
    out = table.assign(chosen=False)
    sign = 1.0 if metric == "val_loss" else -1.0
    rank = (out[metric] * sign).fillna(math.inf)
    for _, rows in out.assign(_rank=rank).groupby("sequence", sort=False):
        best = rows.sort_values(["_rank", "epochs", "val_ratio"], kind="stable").index[0]
        out.loc[best, "chosen"] = True
    return out[ABLATION_COLUMNS]


def run_ablation(run_dir: str | Path, config: ClassificationConfig, patients: pd.DataFrame,
                 progress: bool = False) -> pd.DataFrame:
    """Train the ablation models not yet done, write ``tables/ablation.csv`` (sequence, val_ratio, epochs,
    val_loss, val_auc, chosen) and return it. Needs the run's ``splits.csv`` and slice caches
    (:func:`sarcomri.train.grid.prepare_run`)."""
    if config.ablation is None:
        raise SarcomriError("the config has no ablation section")
    rows = []
    for seq in config.sequences:
        for ratio in config.ablation.val_ratios:
            history = train_ablation_model(run_dir, config, seq, ratio, patients)
            rows += ablation_rows(seq, ratio, history, config.ablation.epochs)
            if progress:
                from rich.console import Console

                Console().print(f"ablation {seq} val {ratio:g}: done")
    table = choose(pd.DataFrame(rows), config.ablation.metric)
    write_csv(ClassificationRun(run_dir).table_path("ablation"), table, overwrite=True)
    return table


def chosen_protocols(table: pd.DataFrame) -> dict[str, SequenceProtocol]:
    """Each sequence's chosen (epochs, val_ratio) of an ablation table, as ``per_sequence`` entries."""
    from sarcomri.config import SequenceProtocol

    chosen = table[table["chosen"].astype(bool)]
    return {str(r.sequence): SequenceProtocol(epochs=int(r.epochs), val_ratio=float(r.val_ratio))
            for r in chosen.itertuples(index=False)}

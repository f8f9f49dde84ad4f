"""A classification study from config to tables: run folder, cohort, grid, ensembles, votes, combinations.

Stages (each a function of the run folder, each skipped when its outputs exist):

1. :func:`open_run` writes ``config.yaml`` (resolved) and ``versions.json`` (and removes the temporaries a
   killed run left).
2. :func:`resolve_cohort` loads the cohort folder, or synthesises it into ``<run>/cohort``.
3. :func:`run_classification` writes splits, slice caches, the models and ``predictions.parquet``, each
   keyed by what it is made from (``inputs.json``): a changed cohort stops the run, or recomputes what it
   affects.
4. :func:`ensemble_tables` writes ``tables/patient_predictions.csv``, ``tables/ensembles.csv``,
   ``tables/per_sequence.csv``, ``tables/ensemble_summary.csv`` and ``tables/combined.csv`` (the patient's
   mean likelihood over its sequences).
5. :func:`combine_tables` writes ``tables/votes.csv``, ``tables/summed_score.csv`` and
   ``tables/combinations.csv`` (+ ``combinations_top10.csv``).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.validate import require_two_labels
from sarcomri.config import ClassificationConfig, dump_config
from sarcomri.errors import SarcomriError
from sarcomri.io.atomic import write_csv, write_json, write_text
from sarcomri.runrecord import prepare_run_folder

PACKAGES = ("sarcomri", "torch", "timm", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "SimpleITK",
            "pydicom", "highdicom", "monai", "segmentation-models-pytorch", "onnxruntime")


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def open_run(cfg: ClassificationConfig, run_dir: str | Path) -> Path:
    """Create the run folder (removing the temporaries a killed run left in it) and write the resolved config
    and the package versions."""
    run_dir = prepare_run_folder(run_dir)
    text = dump_config(cfg)
    old = run_dir / "config.yaml"
    if old.is_file() and old.read_text() != text:
        previous = dict(_flat(yaml.safe_load(old.read_text())))
        now = dict(_flat(cfg.model_dump(mode="json")))
        changed = sorted(k for k in set(previous) | set(now) if previous.get(k) != now.get(k))
        raise SarcomriError(f"{run_dir} was run with another config (changed: {', '.join(changed[:6])}); "
                            "use a new run folder or delete the old one")
    write_text(old, text, overwrite=True)
    write_json(run_dir / "versions.json", versions(), overwrite=True)
    return run_dir


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        items.extend(_flat(v, key + ".") if isinstance(v, dict) else [(key, json.dumps(v))])
    return items


def resolve_cohort(cfg: ClassificationConfig, run_dir: str | Path, progress: bool = True) -> Cohort:
    """The study's cohort: the configured folder, or a synthetic one generated once into ``<run>/cohort``."""
    if cfg.cohort:
        cohort = Cohort.load(cfg.cohort)
    else:
        from sarcomri.synth.cohort import synthesise_cohort

        target = Path(run_dir) / "cohort"
        if not (target / "cohort.json").is_file():
            s = cfg.synth
            synthesise_cohort(target, task=s.task, n_patients=s.patients, seed=s.seed, sequences=s.sequences,
                              protocol=s.protocol(), progress=progress)
        cohort = Cohort.load(target)
    if cfg.positive_label:
        if cfg.positive_label not in cohort.meta["labels"]:
            raise SarcomriError(f"positive_label {cfg.positive_label!r} is not a label of the cohort "
                                f"({cohort.meta['labels']})")
        cohort.meta["positive_label"] = cfg.positive_label
    if cohort.positive_label is None:
        raise SarcomriError("the cohort has no positive class: set positive_label in the config")
    require_two_labels(cohort)
    missing = [s for g in cfg.channel_groups() for s in g if s not in cohort.sequences]
    if missing:
        raise SarcomriError(f"the cohort has no {sorted(set(missing))} series (it has {cohort.sequences})")
    return cohort


def run_classification(cfg: ClassificationConfig, run_dir: str | Path, cohort: Cohort,
                       progress: bool = True, rerun_changed: bool = False) -> pd.DataFrame:
    """Splits, slice caches, the grid of models and ``predictions.parquet`` (finished jobs are skipped).

    Results made from another cohort content stop the run with a message saying what changed, unless
    ``rerun_changed``: then what the change affects is recomputed (see :func:`sarcomri.train.grid.prepare_run`).
    """
    from sarcomri.train.grid import prepare_run, run_grid

    config = cfg.model_dump(mode="json")
    prepare_run(run_dir, cohort, config, progress=progress, rerun_changed=rerun_changed)
    return run_grid(run_dir, config, progress=progress)


def ensemble_tables(run_dir: str | Path, aggregation: str = "mean") -> dict[str, pd.DataFrame]:
    """Patient predictions, leave-one-out ensembles and per-sequence metrics, written to ``tables/``."""
    from sarcomri.analysis.scoring import combined_table, per_ensemble_table, per_sequence_table, summarise_ensembles
    from sarcomri.infer.aggregate import loo_ensembles, mean_likelihood, patient_predictions

    run_dir = Path(run_dir)
    preds = _read_predictions(run_dir)
    patients = patient_predictions(preds, aggregation)
    ens = loo_ensembles(patients)
    likelihood = mean_likelihood(ens)
    tables = {
        "patient_predictions": patients,
        "ensembles": ens,
        "likelihood": likelihood,
        "per_sequence": per_sequence_table(likelihood),
        "ensemble_summary": summarise_ensembles(per_ensemble_table(ens)),
        "combined": combined_table(likelihood),
    }
    for name, t in tables.items():
        write_csv(run_dir / "tables" / f"{name}.csv", t, overwrite=True)
    return tables


def combine_tables(run_dir: str | Path, cutoff: float = 0.5, top_k: int = 10) -> dict[str, pd.DataFrame]:
    """Per-sequence votes, the summed score with its SS-Avg threshold, and the combination search."""
    from sarcomri.analysis.combinations import search_combinations, top_k_summary
    from sarcomri.analysis.voting import best_integer_threshold, summed_score, votes

    run_dir = Path(run_dir)
    path = run_dir / "tables" / "likelihood.csv"
    if not path.is_file():
        ensemble_tables(run_dir)
    lik = pd.read_csv(path, dtype={"patient_id": str})
    labels = lik.groupby("patient_id")["label"].first()
    v = votes(lik, cutoff)
    score = summed_score(v)
    best = best_integer_threshold(score.to_numpy()[None], labels.reindex(score.index).to_numpy())
    summed = pd.DataFrame({"patient_id": score.index, "label": labels.reindex(score.index).to_numpy(),
                           "summed_score": score.to_numpy(), "n_sequences": (v != 0).sum(axis=1).to_numpy()})
    summed["call_positive"] = summed["summed_score"] >= int(best["threshold"][0])
    threshold = pd.DataFrame([{k: (val[0].item() if hasattr(val[0], "item") else val[0])
                               for k, val in best.items()}])
    threshold["vote_cutoff"] = cutoff
    combos = search_combinations(v, labels)
    tables = {"votes": v.reset_index(), "summed_score": summed, "summed_threshold": threshold,
              "combinations": combos, f"combinations_top{top_k}": top_k_summary(combos, top_k)}
    for name, t in tables.items():
        write_csv(run_dir / "tables" / f"{name}.csv", t, overwrite=True)
    return tables


def clinical_tables(run_dir: str | Path, cohort: Cohort, columns: list[str]) -> pd.DataFrame:
    """Image-only vs image + clinical variables, per sequence: out-of-fold logistic regression (repeat 0's
    folds) on the ensemble likelihood plus ``columns``; AUCs with DeLong CIs and the paired DeLong test.

    Writes ``tables/clinical_combined.csv`` (per sequence) and ``tables/clinical_predictions.csv``.
    """
    from sarcomri.analysis.clinical import combined_predictions
    from sarcomri.stats.roc import auc_ci, delong_test

    run_dir = Path(run_dir)
    lik = pd.read_csv(run_dir / "tables" / "likelihood.csv", dtype={"patient_id": str})
    splits = pd.read_csv(run_dir / "splits.csv", dtype={"patient_id": str})
    rep0 = splits[(splits["repeat"] == splits["repeat"].min()) & (splits["role"] == "test")]
    folds = rep0.drop_duplicates("patient_id").set_index("patient_id")["fold"]
    clinical = cohort.patients.set_index("patient_id")
    rows, preds = [], []
    for seq, g in lik.groupby("sequence", sort=False):
        g = g.set_index("patient_id")
        combined = combined_predictions(g["likelihood"], clinical, g["label"], folds, columns)
        y = g.loc[combined.index, "label"].to_numpy()
        image, both = g.loc[combined.index, "likelihood"].to_numpy(), combined.to_numpy()
        a_img, a_both = auc_ci(y, image, 1), auc_ci(y, both, 1)
        test = delong_test(y, both, image, 1)
        rows.append({"sequence": seq, "n": len(y), "clinical_columns": "+".join(columns),
                     "auc_image": a_img.auc, "auc_image_lower": a_img.lower, "auc_image_upper": a_img.upper,
                     "auc_combined": a_both.auc, "auc_combined_lower": a_both.lower,
                     "auc_combined_upper": a_both.upper, "delong_z": test.statistic, "delong_p": test.p_value})
        preds.append(pd.DataFrame({"sequence": seq, "patient_id": combined.index, "label": y,
                                   "p_image": image, "p_combined": both}))
    table = pd.DataFrame(rows)
    write_csv(run_dir / "tables" / "clinical_combined.csv", table, overwrite=True)
    write_csv(run_dir / "tables" / "clinical_predictions.csv", pd.concat(preds, ignore_index=True), overwrite=True)
    return table


def _read_predictions(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "predictions.parquet"
    if not path.is_file():
        raise SarcomriError(f"{path} does not exist: run `sarcomri classify run` first")
    return pd.read_parquet(path)

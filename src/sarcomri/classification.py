"""A classification study from config to tables: run folder, cohort, grid, ensembles, votes, combinations.

Stages (each a function of the run folder, each skipped when its outputs exist):

1. :func:`open_run` writes ``config.yaml`` (resolved) and ``versions.json`` (and removes the temporaries a
   killed run left).
2. :func:`resolve_cohort` loads the cohort folder, or synthesises it into ``<run>/cohort``.
3. :func:`run_classification` writes splits, slice caches, the ablation (``tables/ablation.csv``, when
   configured: :func:`classification_protocol`), the sequences' own splits, the models and
   ``predictions.parquet``, each keyed by what it is made from (``inputs.json``): a changed cohort stops the
   run, or recomputes what it affects.
4. :func:`ensemble_tables` writes ``tables/patient_predictions.csv``, ``tables/ensembles.csv``,
   ``tables/per_sequence.csv``, ``tables/ensemble_summary.csv``, ``tables/combined.csv`` (the patient's
   mean likelihood over its sequences) and ``tables/single_vs_ensemble.csv`` (also ``paper/``).
5. :func:`combine_tables` writes ``tables/votes.csv``, ``tables/summed_score.csv`` and
   ``tables/combinations.csv`` (+ ``combinations_top10.csv``), then :func:`report_tables`.
6. :func:`report_tables` writes the tables the report prints (``tables/decisions.csv``, ``roc_points.csv``,
   ``operating_points.csv``, ``model_card.csv`` and their ``definition.csv``:
   :mod:`sarcomri.analysis.published`); :func:`reader_report_tables` writes the model-vs-readers tables of a
   reads table into a readers ``tables/`` folder (the study's readers stage; the report for a bare run).
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
from sarcomri.runs import ClassificationRun

PACKAGES = ("sarcomri", "torch", "timm", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "SimpleITK",
            "pydicom", "highdicom", "monai", "segmentation-models-pytorch", "onnxruntime")


def cpu_description() -> str:
    """The CPU model and the vector instructions PyTorch uses on it (e.g. ``AMD EPYC (AVX512)``): on another CPU
    the same seed and versions can round differently (bfloat16 kernels above all) and training take another path."""
    import torch

    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on, and the CPU it was computed on."""
    out = {"python": platform.python_version(), "cpu": cpu_description()}
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
    run = ClassificationRun(run_dir, cfg)
    text = dump_config(cfg)
    old = run.config_path
    if old.is_file() and yaml.safe_load(old.read_text()) != yaml.safe_load(text):  # the settings, in any order
        previous = dict(_flat(yaml.safe_load(old.read_text())))
        now = dict(_flat(cfg.model_dump(mode="json")))
        set_here = {k for k, _ in _flat(cfg.model_dump(mode="json", exclude_defaults=True))}
        # a setting added to the config after the run folder was made, left at its default, changes nothing
        changed = sorted(k for k in set(previous) | set(now) if previous.get(k) != now.get(k)
                         and not (k not in previous and k not in set_here))
    else:
        changed = []
    if changed:
        raise SarcomriError(f"{run_dir} was run with another config (changed: {', '.join(changed[:6])}); "
                            "use a new run folder or delete the old one")
    write_text(old, text, overwrite=True)
    write_json(run.versions_path, versions(), overwrite=True)
    return run_dir


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        items.extend(_flat(v, key + ".") if isinstance(v, dict) else [(key, json.dumps(v))])
    return items


def resolve_cohort(cfg: ClassificationConfig, run_dir: str | Path, progress: bool = True) -> Cohort:
    """The study's cohort (:attr:`sarcomri.runs.Run.cohort_dir`: the configured folder, or a synthetic one
    generated once into ``<run>/cohort``) with the run's positive label (:mod:`sarcomri.runs`' one rule)."""
    run = ClassificationRun(run_dir, cfg)
    if not cfg.cohort and not (run.cohort_dir / "cohort.json").is_file():
        from sarcomri.synth.cohort import synthesise_cohort

        s = cfg.synth
        synthesise_cohort(run.cohort_dir, task=s.task, n_patients=s.patients, seed=s.seed, sequences=s.sequences,
                          protocol=s.protocol(), progress=progress)
    cohort = run.cohort()
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
    from sarcomri.train.grid import prepare_run, prepare_sequence_splits, run_grid

    prepare_run(run_dir, cohort, cfg, progress=progress, rerun_changed=rerun_changed)
    effective = classification_protocol(cfg, run_dir, cohort, progress=progress)
    prepare_sequence_splits(run_dir, cohort, effective)
    return run_grid(run_dir, effective, progress=progress)


def classification_protocol(cfg: ClassificationConfig, run_dir: str | Path, cohort: Cohort,
                            progress: bool = False) -> ClassificationConfig:
    """The config the main grid trains with: ``cfg`` itself, or with an ``ablation`` section ``cfg`` with each
    sequence's (epochs, val_ratio) chosen by the ablation (:func:`sarcomri.train.ablation.run_ablation`, run
    here when not yet done; ``tables/ablation.csv``). Needs :func:`sarcomri.train.grid.prepare_run` first
    (:func:`run_classification` does both)."""
    if cfg.ablation is None:
        return cfg
    from sarcomri.train.ablation import chosen_protocols, run_ablation

    table = run_ablation(run_dir, cfg, cohort.patients, progress=progress)
    return cfg.with_protocols(chosen_protocols(table))


def classify(cfg: ClassificationConfig, run_dir: str | Path, progress: bool = False,
             rerun_changed: bool = False) -> ClassificationRun:
    """Run a classification study from Python as ``sarcomri classify run`` does: open the run folder, resolve
    the cohort, train the grid and write ``predictions.parquet`` and the ensemble tables; return the run."""
    out = open_run(cfg, run_dir)
    cohort = resolve_cohort(cfg, out, progress=progress)
    run_classification(cfg, out, cohort, progress=progress, rerun_changed=rerun_changed)
    ensemble_tables(out, cfg.slices.test_aggregation)
    if cfg.clinical_columns:
        clinical_tables(out, cohort, cfg.clinical_columns)
    return ClassificationRun(out, cfg)


def ensemble_tables(run_dir: str | Path, aggregation: str = "mean",
                    likelihood: str | None = None) -> dict[str, pd.DataFrame]:
    """Patient predictions, leave-one-out ensembles, per-sequence metrics and single models vs ensembles, written
    to ``tables/`` (and the last also to ``paper/``). ``likelihood`` is how an ensemble's models make a
    patient's likelihood (``mean_probability`` or ``vote_share``); None: the run config's ``ensemble``
    section, ``mean_probability`` without one."""
    from sarcomri.analysis.scoring import combined_table, per_ensemble_table, per_sequence_table, summarise_ensembles
    from sarcomri.infer.aggregate import loo_ensembles, mean_likelihood, patient_predictions, single_vs_ensemble
    from sarcomri.report.papertables import PaperTable, write_paper_table

    run = ClassificationRun(run_dir)
    preds = _read_predictions(run)
    how = likelihood or _configured_likelihood(run)
    patients = patient_predictions(preds, aggregation)
    ens = loo_ensembles(patients, likelihood=how)
    lik = mean_likelihood(ens)
    tables = {
        "patient_predictions": patients,
        "ensembles": ens,
        "likelihood": lik,
        "per_sequence": per_sequence_table(lik),
        "ensemble_summary": summarise_ensembles(per_ensemble_table(ens)),
        "combined": combined_table(lik),
        "single_vs_ensemble": single_vs_ensemble(patients, ens),
    }
    for name, t in tables.items():
        write_csv(run.table_path(name), t, overwrite=True)
    note = ("Accuracy and SS-Avg ((sensitivity + specificity) / 2) at cut-off 0.5, patient level: every single "
            "model (one repeat's fold model on its own test patients) and every leave-one-out ensemble (all "
            f"repeats but one, every patient; likelihood: {how.replace('_', ' ')}); minimum, median and maximum.")
    if patients["repeat"].nunique() > 1:  # leave-one-out ensembles exist only over repeats
        write_paper_table(run.paper_dir, PaperTable("single_vs_ensemble", "Single models vs ensembles (sarcoma "
                                                    "paper, Figure 1)", note, order=20), tables["single_vs_ensemble"])
    return tables


def _configured_likelihood(run: ClassificationRun) -> str:
    """The run config's ensemble likelihood; ``mean_probability`` when the run has no config.yaml or it says
    none."""
    section = (run.raw_config() or {}).get("ensemble") or {}
    return str(section.get("likelihood") or "mean_probability")


def combine_tables(run_dir: str | Path, cutoff: float = 0.5, top_k: int = 10) -> dict[str, pd.DataFrame]:
    """Per-sequence votes, the summed score with its SS-Avg threshold, and the combination search."""
    from sarcomri.analysis.combinations import search_combinations, top_k_summary
    from sarcomri.analysis.voting import best_integer_threshold, summed_call, summed_score, votes

    run = ClassificationRun(run_dir)
    path = run.table_path("likelihood")
    if not path.is_file():
        ensemble_tables(run_dir)
    lik = pd.read_csv(path, dtype={"patient_id": str})
    labels = lik.groupby("patient_id")["label"].first()
    v = votes(lik, cutoff)
    score = summed_score(v)
    best = best_integer_threshold(score.to_numpy()[None], labels.reindex(score.index).to_numpy())
    summed = pd.DataFrame({"patient_id": score.index, "label": labels.reindex(score.index).to_numpy(),
                           "summed_score": score.to_numpy(), "n_sequences": (v != 0).sum(axis=1).to_numpy()})
    summed["call_positive"] = summed_call(summed["summed_score"], int(best["threshold"][0]))
    threshold = pd.DataFrame([{k: (val[0].item() if hasattr(val[0], "item") else val[0])
                               for k, val in best.items()}])
    threshold["vote_cutoff"] = cutoff
    combos = search_combinations(v, labels)
    tables = {"votes": v.reset_index(), "summed_score": summed, "summed_threshold": threshold,
              "combinations": combos, f"combinations_top{top_k}": top_k_summary(combos, top_k)}
    for name, t in tables.items():
        write_csv(run.table_path(name), t, overwrite=True)
    report_tables(run_dir)
    return tables


#: The classification tables the report tables are computed from (``tables/<name>.csv``).
REPORT_SOURCES = ("likelihood", "per_sequence", "summed_score", "summed_threshold")


def run_readers_tables_dir(run_dir: str | Path) -> Path:
    """``<run>/readers/tables/``: where a classification run keeps the model-vs-readers tables that no study
    stage made (the report writes them there for a bare run)."""
    return ClassificationRun(run_dir).readers_tables_dir


def report_sources(run: ClassificationRun) -> dict[str, pd.DataFrame | None]:
    """The run's :data:`REPORT_SOURCES` tables by name (None when absent)."""
    paths = {name: run.table_path(name) for name in REPORT_SOURCES}
    return {name: pd.read_csv(p, dtype={"patient_id": str}) if p.is_file() else None for name, p in paths.items()}


def report_inputs_key(run_dir: str | Path, reads_path: str | Path | None = None) -> str:
    """The key of the content of the tables the report tables are made from (:data:`REPORT_SOURCES`) and of
    a reads table: a table made from other content is stale."""
    from sarcomri.fingerprint import key, optional_file_digest

    run = ClassificationRun(run_dir)
    return key([optional_file_digest(run.table_path(name)) for name in REPORT_SOURCES],
               optional_file_digest(reads_path) if reads_path is not None else None)


def read_definition(folder: str | Path) -> pd.DataFrame | None:
    """A tables folder's ``definition.csv`` (cells as text), or None."""
    path = Path(folder) / "definition.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None


def report_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The classification tables the report prints (:func:`sarcomri.analysis.published.model_tables`), written
    to ``tables/`` with their ``definition.csv``; nothing when the run has no ``tables/likelihood.csv``."""
    from sarcomri.analysis.published import definition, model_cutoff, model_tables

    run = ClassificationRun(run_dir)
    found = report_sources(run)
    if found["likelihood"] is None:
        return {}
    tables = model_tables(found["likelihood"], found["per_sequence"], found["summed_score"], found["summed_threshold"])
    settings = {"cutoff": model_cutoff(found["per_sequence"], found["summed_threshold"])}
    tables["definition"] = definition(settings, report_inputs_key(run_dir), list(tables))
    for name, t in tables.items():
        write_csv(run.table_path(name), t, overwrite=True)
    return tables


def reader_settings(run_dir: str | Path, cut: float, positive: str, negative: str) -> dict[str, Any]:
    """The settings a readers folder's ``definition.csv`` records: the reader cut, the model's vote cut-off
    and summed-score threshold (from the run's tables), the class names."""
    from sarcomri.analysis.published import model_cutoff

    found = report_sources(ClassificationRun(run_dir))
    thr = found["summed_threshold"]
    return {"reader_cut": float(cut), "model_cutoff": model_cutoff(found["per_sequence"], thr),
            "summed_threshold": float(thr["threshold"].iloc[0]) if thr is not None and len(thr) else float("nan"),
            "positive": positive, "negative": negative}


def reader_report_tables(run_dir: str | Path, reads_path: str | Path, out_dir: str | Path, positive: str,
                         negative: str, cut: float) -> dict[str, pd.DataFrame]:
    """The model-vs-readers tables of the reads in ``reads_path`` (patient_id, reader, group, sequence, session,
    confidence) against the run's likelihoods and summed score, at reader cut ``cut``
    (:func:`sarcomri.analysis.published.reader_report`), written to ``out_dir`` with their ``definition.csv``."""
    from sarcomri.analysis.published import definition, reader_report

    run = ClassificationRun(run_dir)
    found = report_sources(run)
    if found["likelihood"] is None:
        raise SarcomriError(f"{run.table_path('likelihood')} does not exist: run `sarcomri classify ensemble` first")
    settings = reader_settings(run_dir, cut, positive, negative)
    threshold = None if pd.isna(settings["summed_threshold"]) else settings["summed_threshold"]
    reads = pd.read_csv(reads_path, dtype={"patient_id": str})
    tables = reader_report(found["likelihood"], reads, positive, negative, cut, settings["model_cutoff"],
                           found["summed_score"], threshold)
    tables["definition"] = definition(settings, report_inputs_key(run_dir, reads_path), list(tables))
    for name, t in tables.items():
        write_csv(Path(out_dir) / f"{name}.csv", t, overwrite=True)
    return tables


def clinical_tables(run_dir: str | Path, cohort: Cohort, columns: list[str]) -> pd.DataFrame:
    """Image-only vs image + clinical variables, per sequence: out-of-fold logistic regression (repeat 0's
    folds) on the ensemble likelihood plus ``columns``; AUCs with DeLong CIs and the paired DeLong test.

    Writes ``tables/clinical_combined.csv`` (per sequence) and ``tables/clinical_predictions.csv``.
    """
    from sarcomri.analysis.clinical import combined_predictions
    from sarcomri.stats.roc import auc_ci, delong_test

    run = ClassificationRun(run_dir)
    lik = pd.read_csv(run.table_path("likelihood"), dtype={"patient_id": str})
    splits = pd.read_csv(run.splits_path, dtype={"patient_id": str})
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
    write_csv(run.table_path("clinical_combined"), table, overwrite=True)
    write_csv(run.table_path("clinical_predictions"), pd.concat(preds, ignore_index=True), overwrite=True)
    return table


def _read_predictions(run: ClassificationRun) -> pd.DataFrame:
    path = run.predictions_path
    if not path.is_file():
        raise SarcomriError(f"{path} does not exist: run `sarcomri classify run` first")
    return pd.read_parquet(path)

"""`sarcomri classify`: per-sequence CNN grids, leave-one-out ensembles, sequence votes and combinations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from sarcomri import classification as cls_study
from sarcomri.analysis.combinations import top_k_summary
from sarcomri.cli.options import COHORT_OPT, QUIET_OPT, RUN_DIR_OPT, RUNS_OPT, emit_json, json_option
from sarcomri.config import ClassificationConfig, load_config
from sarcomri.runs import ClassificationRun

app = typer.Typer(help="Classification studies: one CNN per MRI sequence over folds x repeats (e.g. uterine "
                       "sarcoma vs leiomyoma, carcinosarcoma vs endometrial carcinoma).", no_args_is_help=True)


def _run_dir(cfg: ClassificationConfig, runs: Path, run_dir: Path | None) -> Path:
    return run_dir if run_dir is not None else runs / cfg.name


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Classification config YAML: configs/demo-sarcoma.yaml, "
                                  "configs/demo-carcinosarcoma.yaml (CPU demos), or the classification section of "
                                  "a study preset; the published protocols are the study presets "
                                  "configs/s0-carcinosarcoma.yaml and configs/s1-sarcoma.yaml (`study run`)."),
    runs: Path = RUNS_OPT,
    run_dir: Path | None = RUN_DIR_OPT,
    cohort_dir: Path | None = COHORT_OPT,
    quiet: bool = QUIET_OPT,
    rerun_changed: bool = typer.Option(False, "--rerun-changed", help="When the cohort changed since the run "
                                       "folder was made: delete and recompute what the change affects (by "
                                       "default the run stops and says what changed)."),
    as_json: bool = json_option("name, run_dir, models, slice_predictions, predictions (path), per_sequence and "
                                "combined (lists of {sequence, n, n_pos, auc, auc_lower, auc_upper, sensitivity, "
                                "specificity, ...}), ideal_observer_auc, clinical (list or null)"),
) -> None:
    """Train the grid (sequences x folds x repeats) and write predictions.parquet; finished models are skipped."""
    cfg = load_config(config, ClassificationConfig)
    if cohort_dir is not None:
        cfg.cohort = str(cohort_dir.resolve())
    out = cls_study.open_run(cfg, _run_dir(cfg, runs, run_dir))
    progress = not (quiet or as_json)
    cohort = cls_study.resolve_cohort(cfg, out, progress=progress)
    preds = cls_study.run_classification(cfg, out, cohort, progress=progress, rerun_changed=rerun_changed)
    tables = cls_study.ensemble_tables(out, cfg.slices.test_aggregation)
    clinical = cls_study.clinical_tables(out, cohort, cfg.clinical_columns) if cfg.clinical_columns else None
    ideal = cohort.meta.get("ideal_observer_auc")
    if as_json:
        emit_json({"name": cfg.name, "run_dir": str(out), "models": preds["model"].nunique(),
                   "slice_predictions": len(preds), "predictions": str(ClassificationRun(out).predictions_path),
                   "per_sequence": tables["per_sequence"], "combined": tables["combined"],
                   "ideal_observer_auc": ideal, "clinical": clinical})
        return
    con = Console()
    con.print(f"[bold]{cfg.name}[/]: {preds['model'].nunique()} models, {len(preds)} slice predictions -> "
              f"{ClassificationRun(out).predictions_path}")
    print_per_sequence(con, tables["per_sequence"], ideal, tables["combined"])
    if clinical is not None:
        print_clinical(con, clinical)


@app.command("ensemble")
def ensemble(
    run: Path = typer.Argument(..., help="Run folder of `sarcomri classify run`."),
    aggregation: str = typer.Option("mean", help="Slice-to-patient aggregation: mean or central."),
    as_json: bool = json_option("run_dir, aggregation, per_sequence and combined (lists of {sequence, n, n_pos, "
                                "auc, auc_lower, auc_upper, sensitivity, specificity, ...}), ideal_observer_auc"),
) -> None:
    """Leave-one-out ensembles (R ensembles of R-1 repeats) and per-sequence AUC with DeLong 95% CI."""
    tables = cls_study.ensemble_tables(run, aggregation)
    meta = _cohort_meta(run)
    if as_json:
        emit_json({"run_dir": str(run), "aggregation": aggregation, "per_sequence": tables["per_sequence"],
                   "combined": tables["combined"], "ideal_observer_auc": meta.get("ideal_observer_auc")})
        return
    print_per_sequence(Console(), tables["per_sequence"], meta.get("ideal_observer_auc"), tables["combined"])


@app.command("combine")
def combine(
    run: Path = typer.Argument(..., help="Run folder of `sarcomri classify run`."),
    cutoff: float = typer.Option(0.5, help="Likelihood cut-off of each sequence's +1/-1 vote."),
    top: int = typer.Option(10, help="Rows of the combination table to print (as the sarcoma study's Table 1)."),
    as_json: bool = json_option("run_dir, cutoff, summed_threshold ({threshold, ss_avg, sensitivity, specificity, "
                                "...}), combinations (the top rows: {sequences, n_patients, threshold, ss_avg, "
                                "sensitivity, specificity, accuracy, ...})"),
) -> None:
    """Sum +1/-1 votes over a patient's sequences, pick the SS-Avg threshold, search every sequence subset."""
    tables = cls_study.combine_tables(run, cutoff, top)
    if as_json:
        emit_json({"run_dir": str(run), "cutoff": cutoff, "summed_threshold": tables["summed_threshold"].iloc[0],
                   "combinations": top_k_summary(tables["combinations"], top)})
        return
    print_combinations(Console(), tables, top)


def print_combinations(con: Console, tables: dict, top: int) -> None:
    """The summed-score threshold and the top rows of the combination search."""
    thr = tables["summed_threshold"].iloc[0]
    con.print(f"summed score over all sequences: threshold >= {int(thr.threshold)}, SS-Avg {thr.ss_avg:.3f}, "
              f"sensitivity {thr.sensitivity:.3f}, specificity {thr.specificity:.3f}")
    t = Table("sequences", "n", "threshold", "SS-Avg", "sensitivity", "specificity", "accuracy",
              title=f"Top {top} sequence combinations (thresholds chosen on the same patients: exploratory)")
    for r in top_k_summary(tables["combinations"], top).itertuples():
        t.add_row(str(r.sequences), "" if pd.isna(r.n_patients) else str(int(r.n_patients)),
                  "" if pd.isna(r.threshold) else str(int(r.threshold)),
                  f"{r.ss_avg:.3f}", f"{r.sensitivity:.3f}", f"{r.specificity:.3f}", f"{r.accuracy:.3f}")
    con.print(t)


def print_clinical(con: Console, table: pd.DataFrame) -> None:
    t = Table("sequence", "AUC image only", "AUC image + clinical", "DeLong p",
              title=f"Deep features with clinical variables ({table['clinical_columns'].iloc[0]})")
    for r in table.itertuples():
        t.add_row(str(r.sequence), f"{r.auc_image:.3f} ({r.auc_image_lower:.3f}-{r.auc_image_upper:.3f})",
                  f"{r.auc_combined:.3f} ({r.auc_combined_lower:.3f}-{r.auc_combined_upper:.3f})",
                  f"{r.delong_p:.3g}")
    con.print(t)


def _cohort_meta(run: Path) -> dict:
    """cohort.json of the run's cohort (:attr:`sarcomri.runs.Run.cohort_dir`), empty when it cannot be read."""
    cohort = ClassificationRun(run).find_cohort()
    return cohort.meta if cohort is not None else {}


def print_per_sequence(con: Console, table: pd.DataFrame, ideal: float | None,
                       combined: pd.DataFrame | None = None) -> None:
    t = Table("sequence", "patients", "positives", "AUC (95% CI, DeLong)", "sens @0.5", "spec @0.5",
              title="Patient-level performance of the leave-one-out ensembles")
    rows = table if combined is None or len(table) < 2 else pd.concat([table, combined], ignore_index=True)
    for r in rows.itertuples():
        t.add_row(str(r.sequence), str(r.n), str(r.n_pos), f"{r.auc:.3f} ({r.auc_lower:.3f}-{r.auc_upper:.3f})",
                  f"{r.sensitivity:.3f}", f"{r.specificity:.3f}")
    con.print(t)
    if ideal is not None:
        con.print(f"ideal-observer AUC of the synthetic cohort (the ceiling): {ideal:.3f}")

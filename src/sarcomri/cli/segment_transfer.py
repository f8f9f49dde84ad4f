"""`sarcomri segment transfer-study`: the 2D transfer-learning study of tumour segmentation (DeepLabV3+ or
U-Net; source, target-only, transfer per freezing level and aggregated models x training fractions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from sarcomri.cli.console import print_table, training_progress
from sarcomri.cli.options import (
    COHORT_OPT,
    QUIET_OPT,
    RUN_DIR_OPT,
    RUNS_OPT,
    emit_json,
    hidden_alias,
    json_option,
    renamed,
)
from sarcomri.runs import TransferRun
from sarcomri.seg2d.config import TransferStudyConfig, load_transfer_config


def transfer_study(
    config: Path = typer.Argument(..., help="Transfer-study config YAML (configs/demo-transfer.yaml, "
                                  "configs/transfer-dwi.yaml)."),
    run_dir: Path | None = RUN_DIR_OPT,
    runs: Path = RUNS_OPT,
    cohort: Path | None = COHORT_OPT,
    quiet: bool = QUIET_OPT,
    rerun_changed: bool = typer.Option(False, "--rerun-changed", help="When a cohort changed since the run folder "
                                       "was made: delete its splits, models, predictions and tables and make "
                                       "them again (by default the run stops and says what changed)."),
    as_json: bool = json_option("run_dir, tables (folder), figure (path), summary (list of {test_set, model, "
                                "n_target_train, n, mean, ...}), anova (list of {test_set, fraction, models, n, F, p, "
                                "note}), reliability (list of {test_set, model, feature, icc, ...})"),
    old_out: Path | None = hidden_alias("--out", "-o"),
) -> None:
    """Train the source model, then target-only, transfer (fine-tuned from the source model, frozen up to
    L1/L2/L3) and aggregated (source + target) models on nested fractions of the target training patients;
    evaluate each on the source, target and combined test patients. Writes per-case Dice/F2/HD95/ASSD,
    DSC by model x training size x test set, ANOVA + Tukey across models, the learning-curve figure and
    the ICC of ADC first-order features between manual and automatic masks. Finished models are skipped on
    a rerun."""
    from sarcomri.seg2d.transfer import run_transfer_study

    run_dir = renamed(run_dir, old_out, "--run-dir", "--out")
    cfg = load_transfer_config(config)
    if cohort is not None:
        cfg.cohort = str(cohort.resolve())
    run_dir = run_dir if run_dir is not None else runs / cfg.name
    con = Console(highlight=False)
    t0 = time.perf_counter()
    if quiet or as_json:
        tables = run_transfer_study(cfg, run_dir, rerun_changed=rerun_changed)
    else:
        with training_progress(con) as bar:
            tables = run_transfer_study(cfg, run_dir, _progress(con, bar), rerun_changed=rerun_changed)
    if as_json:
        emit_json({"run_dir": str(run_dir), "tables": str(TransferRun(run_dir).tables_dir),
                   "figure": str(TransferRun(run_dir).learning_curve_path), "summary": tables["summary"],
                   "anova": tables["anova"], "reliability": tables["reliability"]})
        return
    _print_tables(con, cfg, tables)
    con.print("DSC mean / median by model x training size x test set (the paper's format): tables/paper.csv")
    con.print(f"[green]tables:[/] {escape(str(TransferRun(run_dir).tables_dir))}  [green]figure:[/] "
              f"{escape(str(TransferRun(run_dir).learning_curve_path))}  ({time.perf_counter() - t0:.0f} s)")


def _progress(con: Console, bar: Progress) -> Callable[[dict], None]:
    """The progress callback of ``segment transfer-study``: a line per stage, a bar per model and one over all."""
    state: dict = {}

    def progress(e: dict) -> None:
        ev = e["event"]
        if ev == "stage":
            con.print(f"[bold]{escape(e['stage'])}[/]")
            if "models" in e:
                state["all"] = bar.add_task("models", total=e["models"], loss="")
        elif ev == "model_start":
            if "task" in state:
                bar.remove_task(state["task"])
            state["task"] = bar.add_task(f"{e['model']} n={e['n_target']} ({e['slices']} slices)",
                                         total=e["steps"], loss="-")
        elif ev == "step" and "task" in state:
            bar.update(state["task"], advance=1, loss=f"{e['loss']:.3f}")
        elif ev == "model_skipped":
            con.print(f"  {e['model']} n={e['n_target']}: done already")
        elif ev == "predicted" and "all" in state:
            bar.update(state["all"], advance=1)

    return progress


def _print_tables(con: Console, cfg: TransferStudyConfig, tables: dict[str, pd.DataFrame]) -> None:
    """Mean DSC by model x training size per test set, the ANOVA across models, and the radiomics ICC."""
    summary = tables["summary"]
    for ts, sub in summary.groupby("test_set", sort=False):
        wide = sub.pivot_table(index="model", columns="n_target_train", values="mean", sort=False)
        wide.columns = [f"n={c}" for c in wide.columns]
        print_table(con, wide.astype(object).where(wide.notna(), "").reset_index(),
                     f"Mean DSC, {ts} test set ({int(sub['n'].max())} patients), by target training patients", 2)
    anova = tables["anova"]
    if not anova.empty:
        print_table(con, anova[["test_set", "fraction", "models", "n", "F", "p", "note"]].fillna({"note": ""}),
                     f"One-way ANOVA of {cfg.anova_metric} across models")
    rel = tables["reliability"]
    if not rel.empty:
        best = rel[rel["test_set"] == "combined"].groupby("model")["icc"].median().reset_index()
        print_table(con, best.rename(columns={"icc": "median ICC(2,1)"}),
                     f"{cfg.radiomics.sequence} first-order features, manual vs automatic masks (combined test set)")


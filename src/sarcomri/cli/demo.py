"""`sarcomri demo`: the main job on a freshly synthesised cohort, every stage end to end."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from sarcomri import classification as cls_study
from sarcomri import demo as demo_lib
from sarcomri.cli import classify as classify_cli
from sarcomri.cli import cohort as cohort_cli
from sarcomri.cli import splits as splits_cli


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder of the demo run (stages already there are "
                             "skipped, so a rerun after a crash continues)."),
    patients: int = typer.Option(60, "--patients", "-n", min=24, help="Synthetic patients (sarcoma vs leiomyoma)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cohort, the splits and the training."),
    skip_training: bool = typer.Option(False, "--skip-training", help="Stop after the cohort and the splits."),
) -> None:
    """Run the demo study: synthesise a uterine sarcoma vs leiomyoma cohort, write it as DICOM, ingest it
    back (de-identified), print the cohort and its patient-level splits, then train per-sequence CNNs over
    folds x repeats, ensemble them, vote over sequences and search the sequence combinations."""
    con = Console()
    t0 = time.perf_counter()
    s = demo_lib.DemoSettings(patients=patients, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    con.rule("1. synthetic cohort")
    synthetic = demo_lib.synthesise(out, s, con.print)
    con.rule("2. DICOM")
    dicom = demo_lib.to_dicom(out, synthetic, con.print)
    con.rule("3. ingestion (de-identified)")
    cohort = demo_lib.ingest_dicom(out, dicom, con.print)
    cohort_cli.info(cohort=cohort.root, as_json=False, matrix=False)
    con.rule("4. patient-level splits")
    table = demo_lib.make_splits(out, cohort, s)
    splits_cli.print_summary(table, cohort.patients)
    con.print(f"{out / 'splits.csv'}: no patient holds two roles in one fold (leakage check passed)")
    if not skip_training:
        con.rule("5. classification: per-sequence CNNs, ensembles, votes, combinations")
        cfg = demo_lib.classification_config(out, s)
        run_dir = cls_study.open_run(cfg, out / "classification")
        cls_study.run_classification(cfg, run_dir, cohort)
        tables = cls_study.ensemble_tables(run_dir, cfg.slices.test_aggregation)
        ideal = synthetic.meta.get("ideal_observer_auc")
        classify_cli.print_per_sequence(con, tables["per_sequence"], ideal)
        classify_cli.print_clinical(con, cls_study.clinical_tables(run_dir, cohort, cfg.clinical_columns))
        combined = cls_study.combine_tables(run_dir)
        classify_cli.print_combinations(con, combined, 5)
    con.rule("done")
    con.print(f"demo finished in {time.perf_counter() - t0:.0f} s; everything is under {out.resolve()}")

"""`sarcomri synth`: generate the synthetic multi-sequence MRI cohort (and optionally its DICOM)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from sarcomri.cli.options import QUIET_OPT, emit_json, json_option, out_option
from sarcomri.errors import InputError

if TYPE_CHECKING:
    from sarcomri.cohort.manifest import Cohort


class SynthTask(StrEnum):
    """The published studies the synthetic cohort imitates."""

    sarcoma = "sarcoma"
    carcinosarcoma = "carcinosarcoma"
    segmentation = "segmentation"
    sts = "sts"


def synth(
    task: SynthTask = typer.Option(
        SynthTask.sarcoma, "--task",
        help="sarcoma: uterine sarcoma vs leiomyoma (63:200); carcinosarcoma: carcinosarcoma vs endometrial "
             "carcinoma (52:279); segmentation: uterine/cervical malignancies with tumour masks on DWI; sts: "
             "soft-tissue sarcoma segmentation (T1, T2FS, T1CEFS co-registered; leiomyosarcoma, "
             "myxofibrosarcoma, myxoid liposarcoma, undifferentiated pleomorphic sarcoma, intramuscular myxoma; "
             "extremity, trunk, abdomen, pelvis)."),
    patients: int = typer.Option(60, "--patients", "-n", min=1, help="Number of patients."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same cohort, byte for byte."),
    out: Path = out_option(..., help="Cohort folder to create (cohort.json, patients.csv, series.csv, images/, "
                           "masks/, latent.csv, readers.csv)."),
    sequences: str | None = typer.Option(
        None, "--sequences",
        help="Comma-separated canonical sequence names (T2axi, T2sag, T2cor, fsT2axi, T1axi, T1sag, fsT1axi, "
             "fsT1sag, fsT1CEaxi, fsT1CEsag, fsT1CEcor, dynamicaxi, dynamicsag, DWI_b0, DWI_b1000, ADC; sts: T1, "
             "T2FS, T1CEFS). Default: the task's (sarcoma: T2axi,T2sag,DWI_b0,DWI_b1000,ADC,fsT1CEaxi; sts: "
             "T1,T2FS,T1CEFS)."),
    size: int | None = typer.Option(None, "--size", min=16, max=512,
                                    help="In-plane matrix of 2D series (default 128, sts 164; DWI uses 3/4 of it)."),
    slices: int | None = typer.Option(None, "--slices", min=4, max=128,
                                      help="Slices of 2D series (default 24, sts 48; 3D contrast series use 4/3 of "
                                           "it)."),
    dicom: Path | None = typer.Option(None, "--dicom",
                                      help="Also write the cohort as DICOM MR series with DICOM-SEG tumour masks "
                                           "and labels.csv here (readable by `sarcomri ingest DIR --labels "
                                           "DIR/labels.csv`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output folders."),
    quiet: bool = QUIET_OPT,
    as_json: bool = json_option("cohort (folder), task, seed, patients, labels ({label: patients}), series (list of "
                                "{sequence, patients, ideal_observer_auc}), ideal_observer_auc, "
                                "ideal_observer_auc_with_age, dicom ({folder, series, files, labels} or null)"),
) -> None:
    """Synthesise a multi-sequence MRI cohort (pelvic, or soft-tissue sarcoma with --task sts) with known ground
    truth: imbalanced classes, hospitals with different protocols and missing sequences, look-alike benign
    tumours, tumour masks, the latent variables of every patient, the ideal-observer AUC (the ceiling any
    classifier can reach) and simulated readers of different skill, with and without AI."""
    from dataclasses import replace

    from sarcomri.synth.cohort import synthesise_cohort
    from sarcomri.synth.tasks import TASKS

    if dicom is not None and dicom.exists() and not overwrite:
        raise InputError(dicom, "exists already; choose another folder or pass --overwrite")
    spec = TASKS[task.value]
    protocol = spec.protocol
    if size is not None:
        protocol = replace(protocol, size=size)
    if slices is not None:
        protocol = replace(protocol, slices=slices)
    seqs = [s.strip() for s in sequences.split(",") if s.strip()] if sequences else None
    cohort = synthesise_cohort(out, task=task.value, n_patients=patients, seed=seed, sequences=seqs,
                               protocol=protocol, overwrite=overwrite, progress=not (quiet or as_json))
    con = Console(quiet=as_json)  # with --json, stdout holds the JSON only
    _print_summary(con, cohort, out, seed)
    written = None
    if dicom is not None:
        from sarcomri.synth.dicom import write_dicom

        report = write_dicom(cohort, dicom, overwrite=overwrite)
        written = {"folder": str(dicom), "series": report.series, "files": report.files,
                   "labels": str(dicom / "labels.csv")}
        con.print(f"DICOM: {report.series} series, {report.files} files under {dicom} (labels: {dicom / 'labels.csv'})")
    if as_json:
        by_seq = cohort.meta.get("ideal_observer_auc_by_sequence") or {}
        emit_json({"cohort": str(out), "task": task.value, "seed": seed, "patients": len(cohort.patients),
                   "labels": cohort.patients["label"].value_counts().to_dict(),
                   "series": [{"sequence": str(q), "patients": int(n), "ideal_observer_auc": by_seq.get(q)}
                              for q, n in cohort.series["sequence"].value_counts(sort=False).items()],
                   "ideal_observer_auc": cohort.meta.get("ideal_observer_auc"),
                   "ideal_observer_auc_with_age": cohort.meta.get("ideal_observer_auc_with_age"), "dicom": written})


def _print_summary(con: Console, cohort: Cohort, out: Path, seed: int) -> None:
    """The cohort's patients per label, its series with their ideal-observer AUC, and where the truth is."""
    counts = ", ".join(f"{k}: {v}" for k, v in cohort.patients["label"].value_counts().items())
    con.print(f"[bold]{out}[/]: {len(cohort.patients)} patients ({counts}), seed {seed}")
    table = Table("sequence", "patients", "ideal-observer AUC", title="Series (each with its tumour mask)")
    by_seq = cohort.meta.get("ideal_observer_auc_by_sequence") or {}
    for seq, n in cohort.series["sequence"].value_counts(sort=False).items():
        table.add_row(str(seq), str(n), f"{by_seq[seq]:.3f}" if seq in by_seq else "-")
    con.print(table)
    if cohort.meta.get("ideal_observer_auc") is not None:
        con.print(f"ideal-observer AUC (all latent variables): {cohort.meta['ideal_observer_auc']:.3f}; "
                  f"with age: {cohort.meta['ideal_observer_auc_with_age']:.3f}")
        con.print("ground truth: latent.csv; simulated readers: readers.csv (0 = definitely "
                  f"{cohort.positive_label} ... 1.0 = definitely not); AI probabilities: ai.csv")

"""`sarcomri predict`: one new patient through a finished study."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sarcomri.predict import predict_patient


def predict(
    study: Path = typer.Argument(..., help="The patient's folder: DICOM (any layout) or NIfTI files "
                                 "<sequence>.nii.gz with optional <sequence>_mask.nii.gz."),
    model: Path = typer.Option(..., "--model", help="Classification run folder (`sarcomri classify run` + "
                               "`classify combine`, or <study run>/classification)."),
    segmentation_model: Path | None = typer.Option(None, "--segmentation-model", help="Segmentation run folder: "
                                                   "its models give the tumour mask (NIfTI, and DICOM-SEG for "
                                                   "DICOM input)."),
    out: Path = typer.Option(..., "--out", help="Folder for result.json, report.html, the mask and figures."),
    deid_key: str | None = typer.Option(None, "--deid-key", envvar="SARCOMRI_DEID_KEY",
                                        help="Secret key of the pseudonym (keyed hash of the patient ID)."),
    gradcam: bool = typer.Option(True, help="Grad-CAM heat maps of one model per sequence on the central slice."),
) -> None:
    """Per-sequence likelihoods from the study's model ensembles (ONNX Runtime), the +1/-1 votes summed and
    the decision at the study's threshold, the tumour mask when a segmentation model is given, Grad-CAM, a
    JSON result and a one-page HTML for the radiologist. Decision support, not a diagnosis."""
    con = Console()
    pred = predict_patient(study, model, out, segmentation_run=segmentation_model,
                           key=deid_key or os.environ.get("SARCOMRI_DEID_KEY"), gradcam=gradcam, log=con.print)
    table = Table(title=f"{pred.patient_id}: {pred.positive_label} likelihood per sequence")
    for col in ("sequence", "likelihood", "vote", "models", "slices", "note"):
        table.add_column(col)
    for s in pred.sequences:
        table.add_row(s.sequence, "" if s.likelihood is None else f"{s.likelihood:.3f}",
                      f"{s.vote:+d}" if s.vote else "", str(s.models), str(s.slices), s.note)
    con.print(table)
    con.print(f"summed score {pred.summed_score} vs threshold {pred.threshold:g}: [bold]{pred.decision}[/] "
              "(decision support, not a diagnosis)")
    lat = pred.latency_seconds
    con.print("latency: " + ", ".join(f"{k} {v:.2f} s" for k, v in lat.items()))
    con.print(f"result: {(out / 'result.json').resolve()}; page: {(out / 'report.html').resolve()}")

"""`sarcomri predict`: one new patient through a finished study."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sarcomri.cli.console import verbose_asked
from sarcomri.cli.options import QUIET_OPT, json_option, out_option
from sarcomri.predict import predict_patient


def predict(
    study: Path = typer.Argument(..., help="The patient's folder: DICOM (any layout) or NIfTI files "
                                 "<sequence>.nii.gz with optional <sequence>_mask.nii.gz."),
    model: Path = typer.Option(..., "--model", help="Classification run folder (`sarcomri classify run` + "
                               "`classify combine`, or <study run>/classification)."),
    segmentation_model: Path | None = typer.Option(None, "--segmentation-model", help="Segmentation run folder: "
                                                   "its models give the tumour mask (NIfTI, and DICOM-SEG for "
                                                   "DICOM input)."),
    out: Path = out_option(..., help="Folder for result.json, report.html, the mask and figures."),
    deid_key: str | None = typer.Option(None, "--deid-key", envvar="SARCOMRI_DEID_KEY",
                                        help="Secret key of the pseudonym (keyed hash of the patient ID)."),
    gradcam: bool = typer.Option(True, help="Grad-CAM heat maps of one model per sequence on the central slice."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing result folder (one that "
                                   "`sarcomri predict` wrote), whole, once the new result is complete."),
    verbose: bool = typer.Option(False, "--verbose", help="Let messages show the input's folder and file names "
                                 "(which may hold the patient's name or ID)."),
    quiet: bool = QUIET_OPT,
    as_json: bool = json_option("those of result.json: patient_id, sequences (list of {sequence, likelihood, vote, "
                                "models, slices, mask, note}), summed_score, threshold, decision, substitutions, "
                                "latency_seconds, outputs, ..."),
) -> None:
    """Per-sequence likelihoods from the study's model ensembles (ONNX Runtime), the +1/-1 votes summed and
    the decision at the study's threshold, the tumour mask when a segmentation model is given, Grad-CAM, a
    JSON result and a one-page HTML for the radiologist. Decision support, not a diagnosis. Every input that
    is not what the study's models expect (an ADC fitted from the DWI, a mask from the segmentation model, a
    sequence that cannot vote...) is listed as a substitution. The result folder appears only when complete;
    an existing one is replaced only with --overwrite."""
    con = Console()
    steps = Console(stderr=as_json, quiet=quiet)  # progress lines: on stderr with --json, none with --quiet
    pred = predict_patient(study, model, out, segmentation_run=segmentation_model,
                           key=deid_key or os.environ.get("SARCOMRI_DEID_KEY"), gradcam=gradcam,
                           overwrite=overwrite, verbose=verbose_asked(verbose),
                           log=lambda line: steps.print(line, markup=False))
    if as_json:
        typer.echo((out / "result.json").read_text(encoding="utf-8").rstrip())
        return
    table = Table(title=f"{pred.patient_id}: {pred.positive_label} likelihood per sequence")
    for col in ("sequence", "likelihood", "vote", "models", "slices", "tumour mask", "note"):
        table.add_column(col)
    for s in pred.sequences:
        table.add_row(s.sequence, "" if s.likelihood is None else f"{s.likelihood:.3f}",
                      f"{s.vote:+d}" if s.vote else "", str(s.models), str(s.slices), escape(s.mask), s.note)
    con.print(table)
    con.print(f"summed score {pred.summed_score} vs threshold {pred.threshold:g}: [bold]{pred.decision}[/] "
              "(decision support, not a diagnosis)")
    for sub in pred.substitutions:
        con.print(f"[bold yellow]substitution:[/] {escape(sub.what)} instead of {escape(sub.instead_of)}: "
                  f"{escape(sub.how)}", soft_wrap=True)
    lat = pred.latency_seconds
    con.print("latency: " + ", ".join(f"{k} {v:.2f} s" for k, v in lat.items()))
    con.print(f"result: {(out / 'result.json').resolve()}; page: {(out / 'report.html').resolve()}")

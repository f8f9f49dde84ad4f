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
from sarcomri.errors import InputError
from sarcomri.pacs.address import is_pacs_address, parse_address
from sarcomri.predict import predict_patient


def predict(
    study: str = typer.Argument(..., help="The patient's folder: DICOM (any layout) or NIfTI files "
                                "<sequence>.nii.gz with optional <sequence>_mask.nii.gz; or a PACS "
                                "(dicomweb+http://HOST/dicom-web or dimse://AET@HOST:PORT) with --study UID."),
    model: Path = typer.Option(..., "--model", help="Classification run folder (`sarcomri classify run` + "
                               "`classify combine`, or <study run>/classification)."),
    segmentation_model: Path | None = typer.Option(None, "--segmentation-model", help="Segmentation run folder "
                                                   "(`segment train`, either engine) or nnU-Net model folder "
                                                   "(`nnUNetv2_train`'s output): its models give the tumour mask "
                                                   "(NIfTI, and DICOM-SEG for DICOM input)."),
    out: Path = out_option(..., help="Folder for result.json, report.html, the mask and figures."),
    deid_key: str | None = typer.Option(None, "--deid-key", envvar="SARCOMRI_DEID_KEY",
                                        help="Secret key of the pseudonym (keyed hash of the patient ID)."),
    gradcam: bool = typer.Option(True, help="Grad-CAM heat maps of one model per sequence on the central slice."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing result folder (one that "
                                   "`sarcomri predict` wrote), whole, once the new result is complete."),
    verbose: bool = typer.Option(False, "--verbose", help="Let messages show the input's folder and file names "
                                 "(which may hold the patient's name or ID)."),
    study_uid: str | None = typer.Option(None, "--study", help="A PACS source: the StudyInstanceUID of the "
                                         "patient's study (pulled de-identified into a temporary folder)."),
    push: str | None = typer.Option(None, "--push", help="Store the result's DICOM-SEG and DICOM SR on this PACS "
                                    "(dicomweb+http://HOST/dicom-web: STOW-RS; dimse://AET@HOST:PORT: C-STORE); "
                                    "they reference the source study."),
    reidentify: bool = typer.Option(False, "--reidentify", help="With --push: give the pushed objects the "
                                    "patient's identity from the PACS's own record of the study, after checking "
                                    "that its PatientID hashes to the result's pseudonym under --deid-key (in "
                                    "memory only; the result folder keeps the pseudonym). Off by default."),
    summary_image: bool = typer.Option(False, "--summary-image", help="DICOM input: also the summary (the tumour's "
                                       "largest slice, the likelihoods, votes and decision) as a DICOM secondary "
                                       "capture, summary.sc.dcm, for viewers that show neither SR nor HTML."),
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="A PACS: seconds to wait for each answer."),
    retries: int = typer.Option(4, "--retries", min=1, help="A PACS: tries of each exchange."),
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
    log = lambda line: steps.print(line, markup=False)  # noqa: E731
    key = deid_key or os.environ.get("SARCOMRI_DEID_KEY")
    destination = parse_address(push) if push else None  # a bad address fails before any work
    if reidentify and destination is None:
        raise InputError(None, "--reidentify is for --push")
    if is_pacs_address(str(study)):
        pred = _predict_from_pacs(study, study_uid, model, out, segmentation_model, key, gradcam, overwrite,
                                  verbose_asked(verbose), log, timeout, retries, progress=not (quiet or as_json),
                                  summary_image=summary_image)
    else:
        if study_uid:
            raise InputError(None, "--study is for a PACS source (dicomweb+http://... or dimse://...)")
        pred = predict_patient(Path(study), model, out, segmentation_run=segmentation_model, key=key,
                               gradcam=gradcam, overwrite=overwrite, verbose=verbose_asked(verbose), log=log,
                               summary_image=summary_image)
    if destination is not None:
        from sarcomri.io.deid import Pseudonymizer
        from sarcomri.pacs.pull import open_pacs
        from sarcomri.pacs.push import push_result
        from sarcomri.pacs.retry import Backoff

        sent = push_result(out, open_pacs(destination, timeout), Pseudonymizer.from_key(key) if reidentify else None,
                           Backoff(attempts=retries))
        log(f"pushed {', '.join(sent.objects)} to {push}" + (" (re-identified from the PACS's record)"
                                                             if sent.reidentified else " (pseudonymous)"))
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


def _predict_from_pacs(source: str, study_uid: str | None, model: Path, out: Path, segmentation_model: Path | None,
                       key: str | None, gradcam: bool, overwrite: bool, verbose: bool, log, timeout: float,
                       retries: int, progress: bool, summary_image: bool = False):
    """Pull one study from a PACS, de-identified, into a temporary folder, and predict on it."""
    import tempfile

    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.pacs.pull import open_pacs, stage_study
    from sarcomri.pacs.retry import Backoff

    if not study_uid:
        raise InputError(None, "a PACS source needs --study UID (the patient's study)")
    with tempfile.TemporaryDirectory(prefix="sarcomri-pull-") as tmp:
        folder, staged = stage_study(open_pacs(parse_address(source), timeout), study_uid, Path(tmp) / "staging",
                                     Pseudonymizer.from_key(key), Backoff(attempts=retries), log, progress)
        return predict_patient(folder, model, out, segmentation_run=segmentation_model, gradcam=gradcam,
                               overwrite=overwrite, verbose=verbose, log=log, pseudonymizer=staged,
                               summary_image=summary_image)

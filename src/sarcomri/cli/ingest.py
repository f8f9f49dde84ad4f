"""`sarcomri ingest`: DICOM or NIfTI studies in, a de-identified cohort folder out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sarcomri.cli.console import verbose_asked
from sarcomri.cli.options import emit_json, json_option, out_option
from sarcomri.errors import InputError
from sarcomri.io.deid import KEY_ENV, Pseudonymizer
from sarcomri.io.ingest import ingest as run_ingest
from sarcomri.io.labels import read_labels
from sarcomri.pacs.address import is_pacs_address, parse_address


def ingest(
    src: str = typer.Argument(
        ..., help="Source folder, or a PACS. DICOM: any layout, files with or without .dcm (series are found by "
        "their headers). NIfTI: SRC/<patient>/<sequence>.nii.gz with optional SRC/<patient>/<sequence>_mask.nii.gz, "
        "or the sts-t1 layout SRC/<patient>/image.nii.gz + mask.nii.gz with --sequence. A PACS: "
        "dicomweb+http://HOST/dicom-web (QIDO-RS, WADO-RS) or dimse://CALLED_AET@HOST:PORT (C-FIND, C-GET), "
        "with --study, --accession, --patients or --dates saying which studies (docs/hospital.md)."),
    out: Path = out_option(..., help="The cohort folder to create (cohort.json, patients.csv, series.csv, images/, "
                           "masks/)."),
    labels: Path | None = typer.Option(
        None, "--labels", help="CSV with patient_id,label (patient_id as in the source: DICOM PatientID or NIfTI "
        "patient folder) and any clinical columns (histology, site, age...), kept as they are. Without it every "
        "patient is labelled 'unknown'."),
    positive: str | None = typer.Option(None, "--positive", help="The positive class among the labels, e.g. "
                                        "'sarcoma' (leiomyoma vs uterine sarcoma)."),
    allowed_labels: str | None = typer.Option(
        None, "--allowed-labels", help="Comma-separated allowed labels, e.g. 'leiomyoma,sarcoma'; a label outside "
        "them is an error. Default: the labels found in --labels."),
    sequence_map: Path | None = typer.Option(
        None, "--sequence-map", help="YAML rules naming series from SeriesDescription/ProtocolName (default: the "
        "package's sequence_map.yaml). The plane (axi/sag/cor) comes from ImageOrientationPatient."),
    compute_adc: bool | None = typer.Option(
        None, "--compute-adc/--no-compute-adc", help="Fit ADC (mono-exponential, all acquired b-values, "
        "10^-6 mm^2/s) from the DWI: always (named ADC_computed beside a scanner ADC), or never. Default: only "
        "for patients without the scanner's ADC map (then named ADC)."),
    deid_key: str | None = typer.Option(
        None, "--deid-key", help=f"Secret key of the keyed-hash pseudonyms (HMAC-SHA256 of the PatientID -> "
        f"P + 10 hex digits); same key, same pseudonyms. Default: ${KEY_ENV}, else a random key."),
    pseudonyms: Path | None = typer.Option(
        None, "--pseudonyms", help="CSV original_id,pseudonym giving each patient's pseudonym yourself."),
    sequence: str | None = typer.Option(
        None, "--sequence", help="NIfTI sts-t1 layout: the sequence name of image.nii.gz, e.g. T1."),
    study: list[str] = typer.Option([], "--study", help="A PACS: pull the study with this StudyInstanceUID "
                                    "(repeatable)."),
    accession: list[str] = typer.Option([], "--accession", help="A PACS: pull the study with this accession "
                                        "number (repeatable)."),
    patients: Path | None = typer.Option(None, "--patients", help="A PACS: pull the MR studies of the patients "
                                         "whose pseudonyms (under --deid-key) this file lists, one per line or in "
                                         "a 'pseudonym' column."),
    dates: str | None = typer.Option(None, "--dates", help="A PACS: only studies of these dates, "
                                     "YYYYMMDD-YYYYMMDD (either end may be left open); alone: every MR study "
                                     "of those dates."),
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="A PACS: seconds to wait for each answer."),
    retries: int = typer.Option(4, "--retries", min=1, help="A PACS: tries of each exchange (connection refused, "
                                "timeout, a 5xx answer, a truncated instance), waiting 1, 2, 4... s between them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing cohort folder (only once "
                                   "the new one is complete)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only warnings, series kept aside and the summary."),
    verbose: bool = typer.Option(False, "--verbose", help="Let messages show the source's folder names (hidden by "
                                 "default: they often hold a patient's name or ID)."),
    as_json: bool = json_option("cohort (folder), source_type, patients, volumes, masks, notes, unmapped (list of "
                                "{patient_id, series_number, description, files, reason}); warnings stay on stderr"),
) -> None:
    """Ingest MRI studies (T2-weighted, fat-saturated contrast-enhanced T1, DWI by b-value, ADC, ...) into a
    de-identified cohort: series named by the sequence map, DWI split by b-value, ADC from the scanner or
    fitted, RTSTRUCT and DICOM-SEG as masks. No patient name, ID, birth date or accession number is written
    or printed (messages name source files relative to SRC, with folder names hidden unless --verbose); series
    the map cannot name are kept aside and listed."""
    console, errors = Console(highlight=False), Console(stderr=True, highlight=False)
    if deid_key and pseudonyms:
        raise InputError(None, "give either --deid-key or --pseudonyms, not both")
    if positive and not labels:
        raise InputError(None, "--positive needs --labels (the labels file that holds that class)")
    allowed = [x.strip() for x in allowed_labels.split(",") if x.strip()] if allowed_labels else None
    label_table = read_labels(labels, allowed=allowed, positive=positive) if labels else None
    pseudo = Pseudonymizer.from_mapping(pseudonyms) if pseudonyms else Pseudonymizer.from_key(deid_key)
    log = None if quiet or as_json else (lambda line: console.print(line, markup=False, soft_wrap=True))
    warn = lambda text: errors.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True)  # noqa: E731
    pacs_options = [name for name, given in (("--study", study), ("--accession", accession),
                                             ("--patients", patients), ("--dates", dates)) if given]
    if is_pacs_address(src):
        if sequence:
            raise InputError(None, "--sequence is for NIfTI folders, not a PACS")
        from sarcomri.pacs.pull import pull_cohort
        from sarcomri.pacs.query import StudyQuery, read_pseudonyms
        from sarcomri.pacs.retry import Backoff

        query = StudyQuery(study_uids=tuple(study), accessions=tuple(accession), dates=dates or "",
                           pseudonyms=tuple(read_pseudonyms(patients)) if patients else ())
        pulled, report = pull_cohort(parse_address(src), query, out, pseudonymizer=pseudo, labels=label_table,
                                     sequence_map=sequence_map, compute_adc=compute_adc, overwrite=overwrite,
                                     log=log, warn=warn, progress=not (quiet or as_json), timeout=timeout,
                                     backoff=Backoff(attempts=retries))
        if log:
            log(f"pulled from {src}: {pulled.studies} stud{'y' if pulled.studies == 1 else 'ies'}, "
                f"{pulled.instances} instances ({pulled.retrieved} retrieved by this run)")
    else:
        if pacs_options:
            raise InputError(None, f"{pacs_options[0]} is for a PACS source (dicomweb+http://... or dimse://...)")
        report = run_ingest(Path(src), out, labels=label_table, pseudonymizer=pseudo, sequence_map=sequence_map,
                            compute_adc=compute_adc, sequence=sequence, overwrite=overwrite, log=log, warn=warn,
                            verbose=verbose_asked(verbose))
    if as_json:
        emit_json({"cohort": str(report.out), "source_type": report.source_type, "patients": report.patients,
                   "volumes": report.volumes, "masks": report.masks, "notes": report.notes,
                   "unmapped": report.unmapped})
        return
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    if report.unmapped:
        table = Table(title=f"{len(report.unmapped)} series kept aside (listed in cohort.json unmapped_series)")
        for col in ("patient", "series", "description", "files", "reason"):
            table.add_column(col)
        for row in report.unmapped:
            table.add_row(*(Text(str(row[k])) for k in ("patient_id", "series_number", "description", "files",
                                                         "reason")))
        console.print(table)
    console.print(f"[green]cohort written:[/] {escape(str(report.out))} ({report.patients} patient(s), "
                  f"{report.volumes} volume(s), {report.masks} mask(s), source {report.source_type})")

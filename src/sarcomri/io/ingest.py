"""Ingestion: a folder of DICOM or NIfTI studies in, a de-identified cohort folder out.

Steps: find the files (DICOM by content, NIfTI by name; a folder must hold one kind), group them by
patient, give every patient a pseudonym (:mod:`sarcomri.io.deid`) and a label (:mod:`sarcomri.io.labels`),
then, inside one :class:`~sarcomri.cohort.manifest.CohortWriter` (so a failure leaves no cohort on disk),
read each patient's volumes and masks (:mod:`sarcomri.io.sources`), add an ADC map fitted from the DWI
when asked or when the scanner gave none (:mod:`sarcomri.prep.adc`), and write everything.

ADC naming: the scanner's map is ``ADC``. A map fitted from the acquired DWI is ``ADC`` when the patient
has no scanner map and ``ADC_computed`` beside one (with ``compute_adc=True``). Both are in 10^-6 mm^2/s;
cohort.json records ``units``, the fitting rule (``adc``) and which map came from where.

cohort.json also records ``provenance`` (source type, sarcomri version, date, sequence map, pseudonym
method, counts), ``unmapped_series`` (series kept aside: pseudonym, series number, description, number
of files, reason), ``computed_series`` (scanner-computed b-value images), ``mask_labels`` (label
tables of multi-label masks) and ``series_sources`` (each volume's source: the DICOM series' number and
description with identifiers scrubbed, or the NIfTI file's sequence). Nothing in it identifies a patient;
console messages use pseudonyms.
Messages and errors name source files relative to the source root with the folder names (which often hold a
patient's name or ID) hidden, unless ``verbose`` (:func:`sarcomri.io.deid.redact_path`).

A mask (RTSTRUCT, DICOM-SEG) whose referenced image series is not in the source is kept aside with a
warning naming it by pseudonym and series number; when no image series at all entered the cohort it is an
error instead (a cohort of masks without images is never written).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sarcomri import __version__
from sarcomri.cohort.manifest import CohortWriter, is_cohort_folder
from sarcomri.cohort.sequences import SequenceMap
from sarcomri.errors import InputError, SarcomriError
from sarcomri.io.atomic import check_folder_replaceable
from sarcomri.io.deid import Pseudonymizer, redact_error, redact_path
from sarcomri.io.dicom import is_dicom_file, scan_dicom, walk_files
from sarcomri.io.labels import UNKNOWN, Labels, no_labels
from sarcomri.io.nifti import is_nifti, scan_nifti
from sarcomri.io.sources import PatientData, Volume, acquired_dwi, load_dicom_patient, load_nifti_patient
from sarcomri.prep import adc as adc_fit

Log = Callable[[str], None]


@dataclass
class IngestReport:
    """What an ingestion wrote: counts, series kept aside, notes and warnings (all de-identified)."""

    out: Path
    source_type: str
    patients: int
    volumes: int
    masks: int
    unmapped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Source:
    """One patient of the source, before anything is read."""

    source_id: str
    where: Path
    load: Callable[[Log | None], PatientData]


def _redacting_source_paths(func: Callable[..., IngestReport]) -> Callable[..., IngestReport]:
    """Rewrite the errors of an ingestion so they name source files by :func:`redact_path` (``verbose`` keeps
    the folder names)."""

    @functools.wraps(func)
    def wrapper(src: str | Path, out: str | Path, **kwargs) -> IngestReport:
        try:
            return func(src, out, **kwargs)
        except SarcomriError as err:
            raise redact_error(err, src, kwargs.get("verbose", False)) from None

    return wrapper


@_redacting_source_paths
def ingest(
    src: str | Path,
    out: str | Path,
    *,
    labels: Labels | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    sequence_map: str | Path | None = None,
    compute_adc: bool | None = None,
    sequence: str | None = None,
    overwrite: bool = False,
    log: Log | None = None,
    warn: Log | None = None,
    verbose: bool = False,
    compress: bool = True,
) -> IngestReport:
    """Ingest the DICOM or NIfTI studies under ``src`` into a new cohort folder ``out``.

    ``compute_adc``: None fits ADC only for patients without a scanner ADC, True always, False never.
    ``sequence`` names ``image.nii.gz`` files of the NIfTI sts-t1 layout. ``log`` receives progress lines
    and ``warn`` warnings as they arise (both de-identified; warnings are also in the report). Raises a
    :class:`~sarcomri.errors.SarcomriError` naming the file and the problem; then ``out`` is untouched.
    Source files are named relative to ``src`` with their folder names hidden unless ``verbose``. ``compress``
    False writes the cohort's images uncompressed (``.nii``; see :class:`~sarcomri.cohort.manifest.CohortWriter`).
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(src, "no such folder")
    check_folder_replaceable(out, overwrite, replaceable=is_cohort_folder, protect=[src])
    labels = labels or no_labels()
    warnings: list[str] = []
    if pseudonymizer is None:
        pseudonymizer = Pseudonymizer.from_key(None)
    if not pseudonymizer.reproducible:
        warnings.append("no de-identification key (--deid-key or SARCOMRI_DEID_KEY): pseudonyms come from a random "
                        "key and will differ on the next run")
        if warn:
            warn(warnings[-1])
    for text in pseudonymizer.warnings:
        _warn(warnings, warn, text)
    seqmap = SequenceMap.load(sequence_map)

    files = list(walk_files(src))
    nifti_files = [f for f in files if is_nifti(f)]
    dicom_files = [f for f in files if not is_nifti(f) and is_dicom_file(f)]
    if dicom_files and nifti_files:
        raise InputError(src, f"holds both DICOM ({len(dicom_files)}) and NIfTI ({len(nifti_files)}) files; "
                         "ingest one kind at a time")
    notes: list[str] = []
    if dicom_files:
        source_type = "dicom"
        scan = scan_dicom(dicom_files, root=src)
        other = len(files) - len(dicom_files) + len(scan.skipped)
        if other:
            notes.append(f"{other} file(s) that are not DICOM images or masks were skipped (other files, DICOMDIR)")
        sources = [
            _Source(pid, series[0].instances[0].path,
                    lambda lg, series=series: load_dicom_patient(series, seqmap, lg))
            for pid, series in scan.series_by_patient().items()
        ]
    elif nifti_files:
        source_type = "nifti"
        patients, notes = scan_nifti(src, files, sequence)
        sources = [_Source(p.source_id, p.folder, lambda lg, p=p: load_nifti_patient(p, lg)) for p in patients]
    else:
        raise InputError(src, "no DICOM or NIfTI files found" + (f" (only {len(files)} other files)" if files else ""))
    if not sources:
        raise InputError(src, "no patient found (see the documented folder layout)")

    pseudonyms = {s.source_id: pseudonymizer(s.source_id, where=redact_path(s.where, src, verbose)) for s in sources}
    patient_labels = {}
    for s in sources:
        label = labels.label_of(s.source_id) if labels.source else UNKNOWN
        if label is None:
            raise InputError(labels.source, f"no row for the patient of {redact_path(s.where, src, verbose)} "
                             f"(pseudonym {pseudonyms[s.source_id]})")
        patient_labels[s.source_id] = label
    unmatched = len(set(labels.table.index) - set(pseudonyms)) if labels.source else 0
    if unmatched:
        notes.append(f"{unmatched} row(s) of the labels file match no patient of the source")

    meta = {"provenance": _provenance(source_type, seqmap, pseudonymizer, labels, compute_adc)}
    report = IngestReport(out=out, source_type=source_type, patients=len(sources), volumes=0, masks=0,
                          notes=notes, warnings=warnings)
    records: dict[str, list] = {"unmapped_series": [], "computed_series": [], "mask_labels": [], "adc_maps": [],
                                "series_sources": []}
    orphans: list[tuple[str, dict]] = []
    with CohortWriter(out, labels=labels.allowed, positive_label=labels.positive, overwrite=overwrite,
                      meta=meta, protect=[src], compress=compress) as writer:
        for s in sorted(sources, key=lambda s: pseudonyms[s.source_id]):
            pid = pseudonyms[s.source_id]
            if log:
                log(f"{pid}")
            data = _load(s, pid, src, verbose, log)
            orphans += [(pid, o) for o in data.orphans]
            _add_adc(data, compute_adc, pid, report, log)
            writer.add_patient(pid, patient_labels[s.source_id], **labels.clinical_of(s.source_id))
            for vol in data.volumes:
                writer.add_series(pid, vol.sequence, vol.image, vol.mask)
                report.volumes += 1
                report.masks += vol.mask is not None
                _record(records, pid, vol)
            if not data.volumes:
                report.notes.append(f"{pid}: no series entered the cohort")
            records["unmapped_series"] += [{"patient_id": pid, **row} for row in data.aside]
        _orphan_masks(orphans, report, src, verbose, warn)
        writer.meta.update(_adc_meta(records.pop("adc_maps")))
        writer.meta.update(records)
        writer.meta["provenance"]["counts"] = {
            "files": len(files), "source_files_used": len(dicom_files or nifti_files), "patients": len(sources),
            "volumes": report.volumes, "masks": report.masks, "unmapped_series": len(records["unmapped_series"]),
        }
    report.unmapped = records["unmapped_series"]
    return report


def _warn(warnings: list[str], warn: Log | None, text: str) -> None:
    """Keep a warning for the report and pass it on as it arises."""
    warnings.append(text)
    if warn:
        warn(text)


def _load(source: _Source, pid: str, src: Path, verbose: bool, log: Log | None) -> PatientData:
    """Read one patient; an error names the patient by pseudonym and its folders (when named by the source
    patient ID) by the pseudonym too."""
    try:
        return source.load(log)
    except InputError as err:
        err = InputError(err.path, f"{err.problem} (patient {pid})")
        raise redact_error(err, src, verbose, {source.source_id: pid}) from None


def _orphan_masks(orphans: list[tuple[str, dict]], report: IngestReport, src: Path, verbose: bool,
                  warn: Log | None) -> None:
    """Masks whose referenced image series is not in the source: an error when no image series entered the
    cohort (it would hold masks of nothing), else one warning each, naming the patient by pseudonym."""
    for pid, orphan in orphans:
        what = f"the {orphan['kind']} of series {orphan['series_number']}"
        if not report.volumes:
            raise InputError(orphan["path"], f"patient {pid}: {what} references an image series that is not in "
                             "the source, and no image series was ingested: add the series it was drawn on")
        _warn(report.warnings, warn, f"{pid}: {what} ({redact_path(orphan['path'], src, verbose)}) references an "
                                     "image series that is not in the source; it is kept aside")


def _add_adc(data: PatientData, compute_adc: bool | None, pid: str, report: IngestReport, log: Log | None) -> None:
    """Fit ADC from the acquired DWI when asked, or when the scanner gave no ADC (see module docstring)."""
    scanner = "ADC" in data.names()
    if compute_adc is False or (compute_adc is None and scanner):
        return
    dwi = acquired_dwi(data)
    if len(dwi) < 2:
        if any(v.role == "dwi" for v in data.volumes):  # a patient without DWI needs no note
            report.notes.append(f"{pid}: ADC not computed (acquired DWI at fewer than two b-values on one grid)")
        return
    name = "ADC_computed" if scanner else "ADC"
    image = adc_fit.adc_map(dwi)
    data.volumes.append(Volume(name, image, role="adc_computed", origin=f"fit over b = {sorted(dwi)}"))
    if log:
        log(f"  ADC fitted from DWI at b = {', '.join(f'{b:g}' for b in dwi)} -> {name}")


def _record(records: dict[str, list], pid: str, vol: Volume) -> None:
    records["series_sources"].append({"patient_id": pid, "sequence": vol.sequence, "source": vol.origin})
    if vol.computed:
        records["computed_series"].append({"patient_id": pid, "sequence": vol.sequence, "b_value": vol.b_value,
                                           "note": "computed (extrapolated) by the scanner, not acquired"})
    if vol.mask_table:
        records["mask_labels"].append({"patient_id": pid, "sequence": vol.sequence, "source": vol.mask_kind,
                                       "labels": vol.mask_table})
    if vol.role in ("adc", "adc_computed"):
        records["adc_maps"].append({"patient_id": pid, "sequence": vol.sequence,
                                    "source": "computed" if vol.role == "adc_computed" else "scanner",
                                    **({"fit": vol.origin} if vol.role == "adc_computed" else {})})


def _adc_meta(maps: list[dict]) -> dict:
    if not maps:
        return {}
    units = {m["sequence"]: adc_fit.ADC_UNIT for m in maps}
    return {
        "units": units,
        "adc": {
            "unit": adc_fit.ADC_UNIT,
            "scanner_maps": "stored as written by the scanner, not rescaled (Siemens and GE write integers in "
                            "1e-6 mm2/s)",
            "computed_maps": f"least-squares fit of ln S against b over all acquired b-values; voxels whose "
                             f"lowest-b signal is at most {adc_fit.NOISE_FRACTION} x the 99th percentile of the "
                             "lowest-b image, or with a non-positive signal, are 0; negative fits are 0",
            "maps": maps,
        },
    }


def _provenance(source_type: str, seqmap: SequenceMap, pseudonymizer: Pseudonymizer, labels: Labels,
                compute_adc: bool | None) -> dict:
    if seqmap.source == "<default>":
        text = resources.files("sarcomri.cohort").joinpath("sequence_map.yaml").read_bytes()
        map_name = "<default>"
    else:
        text, map_name = Path(seqmap.source).read_bytes(), Path(seqmap.source).name
    return {
        "source_type": source_type,
        "sarcomri_version": __version__,
        "ingested_on": _dt.date.today().isoformat(),
        "sequence_map": {"file": map_name, "sha256": hashlib.sha256(text).hexdigest()},
        "pseudonyms": pseudonymizer.provenance(),
        "labels_file": labels.source,
        "compute_adc": {None: "when no scanner ADC", True: "always", False: "never"}[compute_adc],
    }

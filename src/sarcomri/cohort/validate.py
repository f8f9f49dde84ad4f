"""Check a cohort against its contract and list every problem (file, row, field, problem, severity).

Three levels, each doing the checks of the one before:

``tables`` (no file is opened)
    cohort.json: schema_version, a non-empty list of labels, positive_label among them. patients.csv:
    patient_id and label columns, ids of 1-64 safe characters, unique, labels among the allowed ones; a cohort
    with a positive_label but fewer than two labels among its patients is a warning (it can be segmented or
    predicted on, not used to train or evaluate a classifier: :func:`require_two_labels` makes that an error
    where a classifier is trained). series.csv: patient_id, sequence and image columns, known patients, one row
    per (patient, sequence), positive spacing, positive whole sizes, image and mask paths relative to the
    cohort folder without ``..``; both tables hold as many rows as cohort.json ``rows`` records.
``headers`` (every stage that loads a cohort; reads file headers only)
    paths resolve inside the cohort folder (no link leading out), the files exist and their headers are
    intact (:func:`sarcomri.io.niftifile.read_grid`), images and masks are 3D scalar volumes, each mask is on
    exactly its image's grid, and series.csv's spacing and size agree with the image header.
``content`` (``sarcomri cohort validate``; reads every voxel)
    files decompress whole, images hold no NaN or infinite voxel, masks hold whole labels 0..255, only 0 and 1
    unless cohort.json ``mask_labels`` lists more for that series, and not only 0 (a warning).
"""

from __future__ import annotations

from typing import Any

from sarcomri.cohort.problems import WARNING, CohortInvalid, Problem, ValidationReport
from sarcomri.cohort.schema import PATIENT_ID_RE, ROWS_KEY, SCHEMA_VERSION, CohortTables
from sarcomri.cohort.seriesfiles import as_number, check_series_files, path_problem

LEVELS = ("tables", "headers", "content")
__all__ = ["LEVELS", "CohortInvalid", "Problem", "ValidationReport", "require_two_labels", "validate_cohort"]


def validate_cohort(cohort: CohortTables, level: str = "headers") -> ValidationReport:
    """Every problem of ``cohort`` at ``level`` (``tables``, ``headers`` or ``content``; see the module
    docstring). File checks need ``cohort.root``; without it only the tables are checked."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    report = ValidationReport(level=level, root=cohort.root)
    labels = _check_meta(cohort, report.problems)
    patient_ids = _check_patients(cohort, labels, report.problems)
    rows = _check_series_table(cohort, patient_ids, report.problems)
    mask_labels = _mask_labels(cohort, report.problems)
    _check_row_counts(cohort, report.problems)
    if level != "tables" and cohort.root is not None:
        report.problems += check_series_files(cohort.root, rows, _file(cohort, "series.csv"), mask_labels,
                                              content=level == "content")
    report.problems.sort(key=lambda p: (p.file, p.row or 0))  # stable: table checks before file checks of a row
    return report


def _check_row_counts(cohort: CohortTables, out: list[Problem]) -> None:
    """Tables with other row counts than cohort.json records (``rows``, written by :class:`CohortWriter`): a file
    cut at a line end, or rows added or removed by hand. Cohorts written before the count existed are not
    checked."""
    counts = cohort.meta.get(ROWS_KEY)
    if counts is None:
        return
    meta_file = _file(cohort, "cohort.json")
    if not isinstance(counts, dict):
        out.append(Problem(meta_file, "must map each table to its number of rows", field=ROWS_KEY))
        return
    for name, frame in (("patients.csv", cohort.patients), ("series.csv", cohort.series)):
        want = counts.get(name)
        if want is None:
            continue
        if not isinstance(want, int) or isinstance(want, bool):
            out.append(Problem(meta_file, f"the row count of {name} must be a whole number, got {want!r}",
                               field=ROWS_KEY))
        elif len(frame) != want:
            out.append(Problem(_file(cohort, name), f"holds {len(frame)} row(s) but cohort.json records {want}: the "
                               f"table was cut short or edited (after a deliberate edit, set {ROWS_KEY}.{name} in "
                               "cohort.json to the new count)"))


def require_two_labels(cohort: CohortTables) -> None:
    """Raise :class:`CohortInvalid` unless at least two labels occur among the patients (to train or evaluate
    a classifier)."""
    present = sorted({str(v) for v in cohort.patients.get("label", []) if isinstance(v, str)})
    if len(present) < 2:
        raise CohortInvalid([Problem(_file(cohort, "patients.csv"), f"only {present or 'no labels'} among the "
                                     "patients: a classifier needs patients of at least two labels", field="label")])


def _file(cohort: CohortTables, name: str) -> str:
    return name if cohort.root is None else str(cohort.root / name)


def _check_meta(cohort: CohortTables, out: list[Problem]) -> list[str] | None:
    """cohort.json; returns the allowed labels (None when unusable)."""
    meta_file = _file(cohort, "cohort.json")
    version = cohort.meta.get("schema_version")
    if version != SCHEMA_VERSION:
        out.append(Problem(meta_file, f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
                           field="schema_version"))
    labels = cohort.meta.get("labels")
    if not isinstance(labels, list) or not labels:
        out.append(Problem(meta_file, "needs a non-empty list of allowed labels", field="labels"))
        return None
    pos = cohort.meta.get("positive_label")
    if pos is not None and pos not in labels:
        out.append(Problem(meta_file, f"positive_label {pos!r} is not one of {labels}", field="positive_label"))
    return labels


def _check_patients(cohort: CohortTables, labels: list[str] | None, out: list[Problem]) -> set[str] | None:
    """patients.csv; returns the patient ids it lists (None when the table is unusable)."""
    pfile = _file(cohort, "patients.csv")
    missing = [col for col in ("patient_id", "label") if col not in cohort.patients.columns]
    out += [Problem(pfile, f"missing column '{col}'", field=col) for col in missing]
    if missing:
        return None
    if cohort.patients.empty:
        out.append(Problem(pfile, "no patients"))
    seen: set[str] = set()
    for i, (pid, label) in enumerate(zip(cohort.patients["patient_id"], cohort.patients["label"], strict=True)):
        row = i + 2  # the header is line 1
        if not isinstance(pid, str) or not PATIENT_ID_RE.match(pid):
            out.append(Problem(pfile, f"patient_id {pid!r} must be 1-64 letters, digits, '_', '.', '-'",
                               row=row, field="patient_id"))
        elif pid in seen:
            out.append(Problem(pfile, f"patient_id {pid!r} appears twice", row=row, field="patient_id"))
        seen.add(pid)
        if labels is not None and label not in labels:
            out.append(Problem(pfile, f"label {label!r} is not one of {labels}", row=row, field="label"))
    present = {v for v in cohort.patients["label"] if isinstance(v, str)}
    if cohort.positive_label is not None and len(present) == 1:
        out.append(Problem(pfile, f"every patient is {next(iter(present))!r}: fine to segment or predict, but a "
                                  "classifier needs patients of at least two labels", field="label", severity=WARNING))
    return seen


def _check_series_table(cohort: CohortTables, patient_ids: set[str] | None, out: list[Problem]) -> list[dict[str, Any]]:
    """series.csv; returns its records with their ``row`` (line number), empty when the table is unusable."""
    sfile = _file(cohort, "series.csv")
    missing = [col for col in ("patient_id", "sequence", "image") if col not in cohort.series.columns]
    out += [Problem(sfile, f"missing column '{col}'", field=col) for col in missing]
    if missing:
        return []
    pairs: set[tuple[str, str]] = set()
    rows = []
    for i, rec in enumerate(cohort.series.to_dict("records")):
        row = i + 2
        pid, seq = rec["patient_id"], rec["sequence"]
        if patient_ids is not None and pid not in patient_ids:
            out.append(Problem(sfile, f"patient_id {pid!r} is not in patients.csv", row=row, field="patient_id"))
        if not isinstance(seq, str) or not seq:
            out.append(Problem(sfile, "empty sequence name", row=row, field="sequence"))
        elif (pid, seq) in pairs:
            out.append(Problem(sfile, f"({pid}, {seq}) appears twice", row=row, field="sequence"))
        pairs.add((pid, seq))
        out += _check_numbers(rec, sfile, row)
        if not isinstance(rec["image"], str) or not rec["image"]:
            out.append(Problem(sfile, "no image file named", row=row, field="image"))
        for col in ("image", "mask"):
            rel = rec.get(col)
            why = path_problem(rel) if isinstance(rel, str) and rel else None
            if why:
                out.append(Problem(sfile, f"{rel}: {why}", row=row, field=col))
                rec[col] = None  # not opened by the file checks
        rows.append({**rec, "row": row})
    return rows


def _check_numbers(rec: dict[str, Any], sfile: str, row: int) -> list[Problem]:
    out = []
    for axis in "xyz":
        key = f"spacing_{axis}"
        if key in rec and not (as_number(rec[key]) > 0):
            out.append(Problem(sfile, f"spacing must be a positive number, got {rec[key]!r}", row=row, field=key))
        key = f"size_{axis}"
        if key in rec and not (as_number(rec[key]) >= 1 and float(rec[key]).is_integer()):
            out.append(Problem(sfile, f"size must be a positive whole number, got {rec[key]!r}", row=row, field=key))
    return out


def _mask_labels(cohort: CohortTables, out: list[Problem]) -> dict[tuple[str, str], set[int]]:
    """The labels cohort.json ``mask_labels`` records per (patient, sequence) (ingested multi-label masks)."""
    found: dict[tuple[str, str], set[int]] = {}
    entries = cohort.meta.get("mask_labels") or []
    for k, entry in enumerate(entries if isinstance(entries, list) else [entries]):
        try:
            labels = {int(item["label"]) for item in entry["labels"]}
            found[(str(entry["patient_id"]), str(entry["sequence"]))] = labels
        except (TypeError, KeyError, ValueError):
            out.append(Problem(_file(cohort, "cohort.json"), f"mask_labels entry {k} is not {{patient_id, sequence, "
                               "labels: [{label, ...}]}: ignored", field="mask_labels", severity=WARNING))
    return found


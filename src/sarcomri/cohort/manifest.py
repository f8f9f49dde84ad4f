"""The cohort folder: load, validate, save.

A cohort folder holds::

    cohort.json     schema version, labels, sequence vocabulary used, provenance
    patients.csv    patient_id, label, then any clinical columns (kept untouched)
    series.csv      patient_id, sequence, image, mask, spacing_x/y/z (mm), size_x/y/z (voxels)
    images/<patient>/<sequence>.nii.gz
    masks/<patient>/<sequence>.nii.gz

Paths in series.csv are relative to the cohort folder. Spacing and size are in SimpleITK's (x, y, z) order.
Every cohort is written through :class:`CohortWriter`, which builds the folder under a temporary name and
renames it into place only when complete, so an interrupted ingestion leaves nothing a later stage trusts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError, ValidationError
from sarcomri.io import atomic

SCHEMA_VERSION = 1
PATIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SERIES_COLUMNS = [
    "patient_id", "sequence", "image", "mask",
    "spacing_x", "spacing_y", "spacing_z", "size_x", "size_y", "size_z",
]


@dataclass
class Cohort:
    """Patients, their labels and their MRI series.

    ``patients`` has one row per patient (``patient_id``, ``label`` and free clinical columns);
    ``series`` one row per (patient, sequence). ``meta`` is the content of cohort.json; ``meta['labels']``
    lists the allowed labels and ``meta['positive_label']`` names the positive class when there is one.
    """

    patients: pd.DataFrame
    series: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None

    # ---------------------------------------------------------------- reading
    @classmethod
    def load(cls, root: str | Path, check_files: bool = True) -> Cohort:
        """Read and validate a cohort folder."""
        root = Path(root)
        if not root.is_dir():
            raise InputError(root, "not a cohort folder (no such directory)")
        meta_path = root / "cohort.json"
        if not meta_path.is_file():
            raise InputError(meta_path, "missing: a cohort folder needs cohort.json")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValidationError(meta_path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        patients = _read_csv(root / "patients.csv", {"patient_id": str, "label": str})
        series = _read_csv(root / "series.csv", {"patient_id": str, "sequence": str, "image": str, "mask": str})
        cohort = cls(patients=patients, series=series, meta=meta, root=root)
        cohort.validate(check_files=check_files)
        return cohort

    # ------------------------------------------------------------- validation
    def validate(self, check_files: bool = True) -> None:
        """Check the cohort's contract; raise :class:`ValidationError` naming file, row and field."""
        meta_file = "cohort.json" if self.root is None else self.root / "cohort.json"
        pfile = "patients.csv" if self.root is None else self.root / "patients.csv"
        sfile = "series.csv" if self.root is None else self.root / "series.csv"
        version = self.meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValidationError(meta_file, f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
                                  field="schema_version")
        labels = self.meta.get("labels")
        if not isinstance(labels, list) or not labels:
            raise ValidationError(meta_file, "needs a non-empty list of allowed labels", field="labels")
        pos = self.meta.get("positive_label")
        if pos is not None and pos not in labels:
            raise ValidationError(meta_file, f"positive_label {pos!r} is not one of {labels}", field="positive_label")

        for col in ("patient_id", "label"):
            if col not in self.patients.columns:
                raise ValidationError(pfile, f"missing column '{col}'", field=col)
        seen: set[str] = set()
        for i, (pid, label) in enumerate(zip(self.patients["patient_id"], self.patients["label"], strict=True)):
            row = i + 2  # the header is line 1
            if not isinstance(pid, str) or not PATIENT_ID_RE.match(pid):
                raise ValidationError(pfile, f"patient_id {pid!r} must be 1-64 letters, digits, '_', '.', '-'",
                                      row=row, field="patient_id")
            if pid in seen:
                raise ValidationError(pfile, f"patient_id {pid!r} appears twice", row=row, field="patient_id")
            seen.add(pid)
            if label not in labels:
                raise ValidationError(pfile, f"label {label!r} is not one of {labels}", row=row, field="label")

        for col in ("patient_id", "sequence", "image"):
            if col not in self.series.columns:
                raise ValidationError(sfile, f"missing column '{col}'", field=col)
        pairs: set[tuple[str, str]] = set()
        for i, rec in enumerate(self.series.to_dict("records")):
            row = i + 2
            pid, seq = rec["patient_id"], rec["sequence"]
            if pid not in seen:
                raise ValidationError(sfile, f"patient_id {pid!r} is not in patients.csv", row=row, field="patient_id")
            if not isinstance(seq, str) or not seq:
                raise ValidationError(sfile, "empty sequence name", row=row, field="sequence")
            if (pid, seq) in pairs:
                raise ValidationError(sfile, f"({pid}, {seq}) appears twice", row=row, field="sequence")
            pairs.add((pid, seq))
            for axis in "xyz":
                key = f"spacing_{axis}"
                if key in rec and not (np.isfinite(rec[key]) and rec[key] > 0):
                    raise ValidationError(sfile, f"spacing must be a positive number, got {rec[key]!r}",
                                          row=row, field=key)
            if check_files and self.root is not None:
                for col in ("image", "mask"):
                    rel = rec.get(col)
                    if isinstance(rel, str) and rel and not (self.root / rel).is_file():
                        raise ValidationError(sfile, f"file {rel} does not exist", row=row, field=col)

    # ---------------------------------------------------------------- queries
    @property
    def patient_ids(self) -> list[str]:
        """Patient pseudonyms in manifest order."""
        return self.patients["patient_id"].tolist()

    @property
    def sequences(self) -> list[str]:
        """Sequence names present in the cohort, in first-seen order."""
        return list(dict.fromkeys(self.series["sequence"]))

    @property
    def positive_label(self) -> str | None:
        """The label of the positive class (e.g. ``sarcoma``), or None for a segmentation-only cohort."""
        return self.meta.get("positive_label")

    def labels_binary(self) -> pd.Series:
        """1 for the positive class, 0 otherwise, indexed by patient_id."""
        if self.positive_label is None:
            raise ValidationError("cohort.json", "no positive_label: this cohort has no binary task",
                                  field="positive_label")
        return (self.patients.set_index("patient_id")["label"] == self.positive_label).astype(int)

    def availability(self) -> pd.DataFrame:
        """Patients x sequences table of booleans: which sequences each patient has."""
        table = pd.crosstab(self.series["patient_id"], self.series["sequence"]).astype(bool)
        table = table.reindex(index=self.patient_ids, columns=self.sequences, fill_value=False)
        table.index.name, table.columns.name = "patient_id", None
        return table

    def series_row(self, patient_id: str, sequence: str) -> dict[str, Any]:
        """The series.csv row of one (patient, sequence); KeyError when the patient lacks it."""
        hit = self.series[(self.series["patient_id"] == patient_id) & (self.series["sequence"] == sequence)]
        if hit.empty:
            raise KeyError(f"patient {patient_id} has no {sequence} series")
        return hit.iloc[0].to_dict()

    def path(self, relative: str) -> Path:
        """Absolute path of a file named in series.csv."""
        if self.root is None:
            raise ValueError("this cohort has no folder on disk")
        return self.root / relative

    def read_image(self, patient_id: str, sequence: str):
        """The SimpleITK image of one series."""
        import SimpleITK as sitk

        return sitk.ReadImage(str(self.path(self.series_row(patient_id, sequence)["image"])))

    def read_mask(self, patient_id: str, sequence: str):
        """The SimpleITK mask of one series, or None when it has none."""
        import SimpleITK as sitk

        rel = self.series_row(patient_id, sequence).get("mask")
        if not isinstance(rel, str) or not rel:
            return None
        return sitk.ReadImage(str(self.path(rel)))

    def subset(self, patient_ids: Iterable[str]) -> Cohort:
        """A cohort restricted to ``patient_ids`` (same folder, same meta)."""
        keep = set(patient_ids)
        return Cohort(
            patients=self.patients[self.patients["patient_id"].isin(keep)].reset_index(drop=True),
            series=self.series[self.series["patient_id"].isin(keep)].reset_index(drop=True),
            meta=dict(self.meta),
            root=self.root,
        )


def _read_csv(path: Path, dtypes: dict[str, type]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "missing: a cohort folder needs this file")
    try:
        frame = pd.read_csv(path, dtype={k: v for k, v in dtypes.items()}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(path, f"not a readable CSV table ({exc})") from None
    for col, typ in dtypes.items():
        if col in frame.columns and typ is str:
            frame[col] = frame[col].where(frame[col].notna(), None)
    return frame


class CohortWriter:
    """Build a cohort folder atomically: add images and masks, then commit.

    Use as a context manager; the folder appears at ``root`` only when the block ends without error::

        with CohortWriter(out, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
            w.add_patient("P001", "sarcoma", age=54)
            w.add_series("P001", "T2axi", image, mask)
    """

    def __init__(
        self,
        root: str | Path,
        labels: list[str],
        positive_label: str | None = None,
        overwrite: bool = False,
        meta: dict[str, Any] | None = None,
    ):
        self.root = Path(root)
        self.overwrite = overwrite
        self.meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "labels": list(labels),
            "positive_label": positive_label,
            **(meta or {}),
        }
        self._patients: list[dict[str, Any]] = []
        self._series: list[dict[str, Any]] = []
        self._ctx = None
        self.tmp: Path | None = None

    def __enter__(self) -> CohortWriter:
        self._ctx = atomic.atomic_directory(self.root, overwrite=self.overwrite)
        self.tmp = self._ctx.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._ctx is not None
        if exc_type is None:
            try:
                self._finish()
            except BaseException as err:  # validation failed: remove the partial folder
                self._ctx.__exit__(type(err), err, err.__traceback__)
                raise
        return bool(self._ctx.__exit__(exc_type, exc, tb))

    def add_patient(self, patient_id: str, label: str, **clinical: Any) -> None:
        """Record one patient with its label and clinical columns."""
        self._patients.append({"patient_id": patient_id, "label": label, **clinical})

    def add_series(self, patient_id: str, sequence: str, image, mask=None) -> dict[str, Any]:
        """Write one series (a SimpleITK image, and optionally its mask on the same grid)."""
        import SimpleITK as sitk

        from sarcomri.io.images import check_finite, check_same_grid

        assert self.tmp is not None, "use CohortWriter as a context manager"
        check_finite(image, f"{patient_id}/{sequence}")
        rel_img = f"images/{patient_id}/{sequence}.nii.gz"
        (self.tmp / rel_img).parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(self.tmp / rel_img), useCompression=True)
        rel_mask = None
        if mask is not None:
            check_same_grid(image, mask, f"{patient_id}/{sequence} image", "its mask")
            rel_mask = f"masks/{patient_id}/{sequence}.nii.gz"
            (self.tmp / rel_mask).parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.Cast(mask, sitk.sitkUInt8), str(self.tmp / rel_mask), useCompression=True)
        sx, sy, sz = (list(image.GetSpacing()) + [1.0, 1.0])[:3]
        nx, ny, nz = (list(image.GetSize()) + [1, 1])[:3]
        row = {
            "patient_id": patient_id, "sequence": sequence, "image": rel_img, "mask": rel_mask,
            "spacing_x": sx, "spacing_y": sy, "spacing_z": sz, "size_x": nx, "size_y": ny, "size_z": nz,
        }
        self._series.append(row)
        return row

    def _finish(self) -> None:
        assert self.tmp is not None
        patients = pd.DataFrame(self._patients)
        if patients.empty:
            raise InputError(self.root, "no patients were found: nothing to write")
        series = pd.DataFrame(self._series, columns=SERIES_COLUMNS)
        self.meta.setdefault("sequences", list(dict.fromkeys(series["sequence"])))
        cohort = Cohort(patients=patients, series=series, meta=self.meta, root=self.tmp)
        cohort.validate(check_files=True)
        atomic.write_json(self.tmp / "cohort.json", self.meta)
        atomic.write_csv(self.tmp / "patients.csv", patients)
        atomic.write_csv(self.tmp / "series.csv", series)

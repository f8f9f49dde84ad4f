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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sarcomri.cohort.schema import (  # noqa: F401 - re-exported: the cohort's contract
    PATIENT_ID_RE,
    READERS_CSV,
    ROWS_KEY,
    SCHEMA_VERSION,
    SERIES_COLUMNS,
)
from sarcomri.cohort.validate import validate_cohort
from sarcomri.errors import InputError, ValidationError
from sarcomri.io import atomic

if TYPE_CHECKING:
    from sarcomri.cohort.problems import ValidationReport


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
    def load(cls, root: str | Path, check_files: bool = True, level: str = "headers") -> Cohort:
        """Read a cohort folder and validate it (:mod:`sarcomri.cohort.validate`); raise a
        :class:`ValidationError` naming the first errors and their count when it has any.

        ``level``: ``headers`` (the default, cheap: paths, file headers, grids) or ``content`` (also every
        voxel). ``check_files=False`` checks the tables only (for reports on a cohort whose images are away).
        """
        cohort = cls.read(root)
        cohort.validate(check_files=check_files, level=level)
        return cohort

    @classmethod
    def read(cls, root: str | Path) -> Cohort:
        """Read a cohort folder's tables without validating them (``sarcomri cohort validate`` lists the
        problems itself); :meth:`load` is what stages use."""
        root = Path(root)
        if not root.is_dir():
            raise InputError(root, "not a cohort folder (no such directory)")
        meta_path = root / "cohort.json"
        if not meta_path.is_file():
            raise InputError(meta_path, "missing: a cohort folder needs cohort.json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValidationError(meta_path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise ValidationError(meta_path, "not valid JSON (not UTF-8 text: corrupt?)") from None
        if not isinstance(meta, dict):
            raise ValidationError(meta_path, f"must hold a JSON object, not {type(meta).__name__}")
        patients = _read_csv(root / "patients.csv", {"patient_id": str, "label": str})
        series = _read_csv(root / "series.csv", {"patient_id": str, "sequence": str, "image": str, "mask": str})
        return cls(patients=patients, series=series, meta=meta, root=root)

    # ------------------------------------------------------------- validation
    def validate(self, check_files: bool = True, level: str = "headers") -> ValidationReport:
        """Check the cohort's contract at ``level`` (``tables`` when ``check_files`` is False; see
        :mod:`sarcomri.cohort.validate`); raise :class:`ValidationError` naming file, row and field of the first
        errors, with their count; return the report (its warnings) otherwise."""

        report = validate_cohort(self, level=level if check_files else "tables")
        report.raise_errors()
        return report

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
        """The SimpleITK image of one series; InputError naming the file when it is missing, truncated or corrupt."""
        from sarcomri.io.niftifile import read_image

        return read_image(self.path(self.series_row(patient_id, sequence)["image"]))

    def read_mask(self, patient_id: str, sequence: str):
        """The SimpleITK mask of one series, or None when it has none; InputError on a damaged file."""
        from sarcomri.io.niftifile import read_image

        rel = self.series_row(patient_id, sequence).get("mask")
        if not isinstance(rel, str) or not rel:
            return None
        return read_image(self.path(rel))

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
    """A cohort table; a file whose last line has no line end was cut short (the writer ends every line)."""
    if not path.is_file():
        raise InputError(path, "missing: a cohort folder needs this file")
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - 1, 0))
        if fh.read(1) not in (b"\n", b""):
            raise ValidationError(path, "truncated: the last line has no line end (the file was cut short)")
    try:
        frame = pd.read_csv(path, dtype={k: v for k, v in dtypes.items()}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(path, f"not a readable CSV table ({exc})") from None
    for col, typ in dtypes.items():
        if col in frame.columns and typ is str:
            frame[col] = frame[col].where(frame[col].notna(), None)
    return frame


def is_cohort_folder(path: str | Path) -> bool:
    """True when ``path`` holds a cohort.json that says it is a sarcomri cohort (it has a schema_version)."""
    meta = Path(path) / "cohort.json"
    try:
        content = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and "schema_version" in content


class CohortWriter:
    """Build a cohort folder atomically: add images and masks, then commit.

    Use as a context manager; the folder appears at ``root`` only when the block ends without error. With
    ``overwrite`` an existing folder is replaced (then) only if it is a cohort (:func:`is_cohort_folder`); the
    ``protect`` folders (the source being ingested) may neither contain nor lie inside ``root``. ``compress``
    False writes uncompressed ``.nii`` files, for a throw-away cohort read back at once (``predict``'s one
    patient: gzip is most of the time a small image takes to write and to read)::

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
        protect: Iterable[str | Path] = (),
        compress: bool = True,
    ):
        self.root = Path(root)
        self.overwrite = overwrite
        self.protect = list(protect)
        self.suffix = ".nii.gz" if compress else ".nii"
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
        self._ctx = atomic.atomic_directory(self.root, overwrite=self.overwrite, replaceable=is_cohort_folder,
                                            protect=self.protect)
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
        rel_img = f"images/{patient_id}/{sequence}{self.suffix}"
        (self.tmp / rel_img).parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(self.tmp / rel_img), useCompression=self.suffix == ".nii.gz")
        rel_mask = None
        if mask is not None:
            check_same_grid(image, mask, f"{patient_id}/{sequence} image", "its mask")
            rel_mask = f"masks/{patient_id}/{sequence}{self.suffix}"
            (self.tmp / rel_mask).parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.Cast(mask, sitk.sitkUInt8), str(self.tmp / rel_mask),
                            useCompression=self.suffix == ".nii.gz")
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
        self.meta[ROWS_KEY] = {"patients.csv": len(patients), "series.csv": len(series)}
        cohort = Cohort(patients=patients, series=series, meta=self.meta, root=self.tmp)
        cohort.validate(check_files=True)
        atomic.write_json(self.tmp / "cohort.json", self.meta, into_cohort=True)
        atomic.write_csv(self.tmp / "patients.csv", patients, into_cohort=True)
        atomic.write_csv(self.tmp / "series.csv", series, into_cohort=True)

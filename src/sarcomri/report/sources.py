"""What a report reads from a run folder: its tables, config, versions, splits, cohort and readers.

Every input is optional; a section is rendered only when the inputs it needs are here. Files read::

    <run>/config.yaml              the resolved config (cohort path, sequences, splits, model)
    <run>/versions.json            package versions
    <run>/splits.csv               patient_id, fold, role, repeat
    <run>/tables/*.csv             the classification tables (see sarcomri.classification)
    <run>/figures/*.png            figures written by other stages (embedded with captions)
    readers.csv                    <run>/readers.csv, else <run>/tables/readers.csv, else <cohort>/readers.csv:
                                   patient_id, reader, group, sequence, session, confidence

The cohort is the one given, else the config's ``cohort`` folder, else ``<run>/cohort``.

A study folder (``sarcomri study run``) is recognised by its ``classification/`` or ``stages.json``:
:func:`study_layout` finds its classification run, ``readers/readers.csv``, ``segmentation/`` and
``transfer/`` in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError, SarcomriError

READER_FILES = ("readers.csv", "tables/readers.csv")
READER_COLUMNS = ["patient_id", "reader", "group", "sequence", "session", "confidence"]


@dataclass
class RunInputs:
    """The readable inputs of one run folder (absent ones are None or missing from ``tables``)."""

    run_dir: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    splits: pd.DataFrame | None = None
    cohort: Cohort | None = None
    readers: pd.DataFrame | None = None
    readers_path: Path | None = None

    def table(self, name: str) -> pd.DataFrame | None:
        """``tables/<name>.csv`` or None."""
        return self.tables.get(name)

    @property
    def positive_label(self) -> str | None:
        """The positive class's name (cohort, else config), or None."""
        if self.cohort is not None and self.cohort.positive_label:
            return self.cohort.positive_label
        return (self.config or {}).get("positive_label")

    @property
    def class_names(self) -> tuple[str, str]:
        """(positive, negative) label names; 'positive' / 'negative' when the cohort is unknown."""
        pos = self.positive_label or "positive"
        labels = list((self.cohort.meta.get("labels") if self.cohort is not None else None) or [])
        neg = next((label for label in labels if label != pos), "negative")
        return pos, neg

    @property
    def sequences(self) -> list[str]:
        """The model's sequences in the config's order (else the likelihood table's)."""
        lik = self.table("likelihood")
        found = list(dict.fromkeys(lik["sequence"])) if lik is not None else []
        order = [s for s in (self.config or {}).get("sequences", []) if s in found]
        return order + [s for s in found if s not in order]

    def cutoff(self) -> float:
        """The likelihood cut-off of each sequence's decision (per_sequence.csv's, else 0.5)."""
        per = self.table("per_sequence")
        if per is not None and "cutoff" in per.columns and per["cutoff"].notna().any():
            return float(per["cutoff"].dropna().iloc[0])
        return 0.5


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"patient_id": str, "case": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable CSV table ({err})") from None


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every ``*.csv`` of a folder by stem (empty when the folder is absent)."""
    if not folder.is_dir():
        return {}
    return {p.stem: _read_csv(p) for p in sorted(folder.glob("*.csv")) if not p.name.startswith(".")}


def read_yaml(path: Path) -> dict[str, Any] | None:
    """A YAML mapping, or None when the file is absent."""
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when the file is absent."""
    return json.loads(path.read_text()) if path.is_file() else None


def resolve_cohort(run_dir: Path, config: dict[str, Any] | None, cohort: Cohort | None = None) -> Cohort | None:
    """The given cohort, the config's cohort folder, or ``<run>/cohort``; None when none can be read."""
    if cohort is not None:
        return cohort
    candidates = []
    if config and config.get("cohort"):
        path = Path(config["cohort"])
        candidates.append(path if path.is_absolute() else run_dir / path)
    candidates.append(run_dir / "cohort")
    for path in candidates:
        if (path / "cohort.json").is_file():
            try:
                return Cohort.load(path, check_files=False)
            except SarcomriError:
                continue
    return None


def read_readers(run_dir: Path, cohort: Cohort | None,
                 path: str | Path | None = None) -> tuple[pd.DataFrame | None, Path | None]:
    """The readers' long table with ``truth`` (the cohort's label) added, and where it came from: ``path``,
    else the first of ``<run>/readers.csv``, ``<run>/tables/readers.csv``, ``<cohort>/readers.csv``."""
    if path is not None and not Path(path).is_file():
        raise InputError(path, "no such readers table")
    places = [Path(path)] if path is not None else [run_dir / name for name in READER_FILES]
    if path is None and cohort is not None and cohort.root is not None:
        places.append(cohort.root / "readers.csv")
    path = next((p for p in places if p.is_file()), None)
    if path is None or cohort is None:
        return None, None
    reads = _read_csv(path)
    missing = [c for c in READER_COLUMNS if c not in reads.columns]
    if missing:
        raise InputError(path, f"no column(s) {', '.join(missing)} (a readers table needs {READER_COLUMNS})")
    labels = cohort.patients.set_index("patient_id")["label"]
    reads = reads[reads["patient_id"].isin(labels.index)].copy()
    reads["truth"] = reads["patient_id"].map(labels)
    return reads, path


@dataclass
class StudyLayout:
    """Where a study folder keeps its parts (absent parts are None or empty)."""

    classification: Path
    readers: Path | None
    segmentation: list[Path]
    transfer: Path | None


def study_layout(folder: str | Path) -> StudyLayout | None:
    """The parts of a ``sarcomri study run`` folder, or None when ``folder`` is not one."""
    folder = Path(folder)
    if not ((folder / "classification").is_dir() or (folder / "stages.json").is_file()):
        return None
    reads = folder / "readers" / "readers.csv"
    return StudyLayout(
        classification=folder / "classification" if (folder / "classification").is_dir() else folder,
        readers=reads if reads.is_file() else None,
        segmentation=[p for p in (folder / "segmentation",) if (p / "tables").is_dir()],
        transfer=folder / "transfer" if (folder / "transfer").is_dir() else None)


def load_run(run_dir: str | Path, cohort: Cohort | None = None, readers: str | Path | None = None) -> RunInputs:
    """Everything a report can use from a run folder; ``readers`` overrides where readers.csv is found."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "not a run folder (no such directory)")
    config = read_yaml(run_dir / "config.yaml")
    splits_path = run_dir / "splits.csv"
    inputs = RunInputs(run_dir=run_dir, tables=read_tables(run_dir / "tables"), config=config,
                       versions=read_json(run_dir / "versions.json"),
                       splits=_read_csv(splits_path) if splits_path.is_file() else None)
    inputs.cohort = resolve_cohort(run_dir, config, cohort)
    inputs.readers, inputs.readers_path = read_readers(run_dir, inputs.cohort, readers)
    return inputs

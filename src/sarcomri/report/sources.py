"""What a report reads from a run folder: its tables, config, versions, splits, cohort and readers.

Every input is optional; a section is rendered only when the inputs it needs are here. The paths are the
run's (:class:`sarcomri.runs.ClassificationRun`)::

    <run>/config.yaml              the resolved config (cohort path, sequences, splits, model)
    <run>/versions.json            package versions
    <run>/splits.csv               patient_id, fold, role, repeat
    <run>/tables/*.csv             the classification tables (see sarcomri.classification), with the ones the
                                   report prints (decisions, roc_points, operating_points, model_card:
                                   sarcomri.analysis.published)
    <readers>/tables/*.csv         the model-vs-readers tables of those reads (sarcomri.analysis.published):
                                   a study's readers/tables/, else <run>/readers/tables/ (sarcomri.report.derived)
    <run>/figures/*.png            figures written by other stages (embedded with captions)
    readers.csv                    <run>/readers.csv, else <run>/tables/readers.csv, else <cohort>/readers.csv:
                                   patient_id, reader, group, sequence, session, confidence

The cohort is the one given, else the run's (:attr:`sarcomri.runs.Run.cohort_dir`); the positive label follows
:func:`sarcomri.runs.resolve_positive_label`.

A study folder (``sarcomri study run``, :func:`sarcomri.runs.run_kind`) gives its parts through
:class:`sarcomri.runs.StudyRun`: :func:`study_layout` lists those that are there.
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
from sarcomri.runs import READERS, ClassificationRun, StudyRun, open_run, resolve_positive_label, run_kind

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
    run: ClassificationRun | None = None  # the run's paths (cache, models) for the sections that need them
    reader_tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # the readers' tables/ (definition.csv)

    def table(self, name: str) -> pd.DataFrame | None:
        """``tables/<name>.csv`` or None."""
        return self.tables.get(name)

    def reader_table(self, name: str) -> pd.DataFrame | None:
        """The readers' ``tables/<name>.csv`` (:mod:`sarcomri.analysis.published`) or None."""
        return self.reader_tables.get(name)

    def reader_setting(self, name: str) -> float | None:
        """A number the readers' tables were computed with (their ``definition.csv``: reader_cut, model_cutoff,
        summed_threshold), or None."""
        found = self.reader_table("definition")
        if found is None or name not in found.columns or pd.isna(found[name].iloc[0]):
            return None
        return float(found[name].iloc[0])

    @property
    def positive_label(self) -> str | None:
        """The positive class's name (:func:`sarcomri.runs.resolve_positive_label`: the config's, else the
        cohort's), or None when neither names one."""
        try:
            return resolve_positive_label((self.config or {}).get("positive_label"),
                                          self.cohort.meta if self.cohort is not None else None)
        except SarcomriError:
            return None

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
        """The likelihood cut-off of each sequence's decision: the run's vote cut-off
        (:func:`sarcomri.analysis.published.model_cutoff`)."""
        from sarcomri.analysis.published import model_cutoff

        return model_cutoff(self.table("per_sequence"), self.table("summed_threshold"))


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


def read_readers(run: ClassificationRun, cohort: Cohort | None,
                 path: str | Path | None = None) -> tuple[pd.DataFrame | None, Path | None]:
    """The readers' long table with ``truth`` (the cohort's label) added, and where it came from: ``path``,
    else the first of ``<run>/readers.csv``, ``<run>/tables/readers.csv``, ``<cohort>/readers.csv``."""
    if path is not None and not Path(path).is_file():
        raise InputError(path, "no such readers table")
    places = [Path(path)] if path is not None else run.readers_candidates
    if path is None and cohort is not None and cohort.root is not None:
        places.append(cohort.root / READERS)
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
    """The parts of a ``sarcomri study run`` folder that are there, or None when ``folder`` is not one."""
    if run_kind(folder) is not StudyRun:
        return None
    study = StudyRun(folder)
    parts = (study.classification, study.segmentation, study.transfer)
    cls, seg, transfer = (part.path if part.path.is_dir() else None for part in parts)
    return StudyLayout(classification=cls or study.path,
                       readers=study.readers_csv if study.readers_csv.is_file() else None,
                       segmentation=[seg] if seg is not None and study.segmentation.tables_dir.is_dir() else [],
                       transfer=transfer)


def load_run(run_dir: str | Path, cohort: Cohort | None = None, readers: str | Path | None = None,
             readers_tables: str | Path | None = None, reader_cut: float | None = None) -> RunInputs:
    """Everything a report can use from a (classification) run folder; ``readers`` overrides where readers.csv
    is found. The run's report tables and the readers' tables (in ``readers_tables``, default the run's
    ``readers/tables/``, at ``reader_cut``, default the config's) are computed first when missing or stale
    (:mod:`sarcomri.report.derived`)."""
    from sarcomri.report.derived import ensure_model_tables

    run = ClassificationRun(run_dir)
    if not run.config_path.is_file() and not run.tables_dir.is_dir():  # a run, or at least its tables
        open_run(run.path)  # raises: not a run folder, and how to make one
    ensure_model_tables(run.path)
    inputs = RunInputs(run_dir=run.path, tables=read_tables(run.tables_dir), config=read_yaml(run.config_path),
                       versions=read_json(run.versions_path),
                       splits=_read_csv(run.splits_path) if run.splits_path.is_file() else None, run=run)
    inputs.cohort = run.find_cohort(cohort)
    inputs.readers, inputs.readers_path = read_readers(run, inputs.cohort, readers)
    _load_reader_tables(inputs, readers_tables, reader_cut)
    return inputs


def _load_reader_tables(inputs: RunInputs, folder: str | Path | None, cut: float | None) -> None:
    """The readers' tables of ``inputs.readers_path`` (computed when missing or stale) into ``inputs``."""
    from sarcomri.classification import run_readers_tables_dir
    from sarcomri.report.derived import default_reader_cut, ensure_reader_tables

    if inputs.readers_path is None or inputs.table("likelihood") is None:
        return
    folder = Path(folder) if folder is not None else run_readers_tables_dir(inputs.run_dir)
    pos, neg = inputs.class_names
    cut = default_reader_cut() if cut is None else cut
    names = ensure_reader_tables(inputs.run_dir, inputs.readers_path, folder, pos, neg, cut)
    inputs.reader_tables = {name: _read_csv(folder / f"{name}.csv") for name in names}
    inputs.reader_tables["definition"] = _read_csv(folder / "definition.csv")

"""The parts every run shares: the file names of a run folder, the rules of :mod:`sarcomri.runs` (positive label,
slice specification, decision rule) and :class:`Run`, the base of every kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel

from sarcomri.cohort.manifest import READERS_CSV, Cohort
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.configfile import read_config
from sarcomri.errors import InputError, SarcomriError
from sarcomri.prep.prepare2d import SliceSpec

CONFIG, VERSIONS, INPUTS, SEEDS = "config.yaml", "versions.json", "inputs.json", "seeds.json"
SPLITS, PREDICTIONS, READERS, AI_READS = "splits.csv", "predictions.parquet", READERS_CSV, "ai.csv"
TABLES, FIGURES, MODELS, CACHE, REPORT, REPORT_HTML = "tables", "figures", "models", "cache", "report", "report.html"
PAPER = "paper"  # a run's tables in the published formats
COHORT_JSON, READERS_DIR, PREDICTIONS_DIR = "cohort.json", "readers", "predictions"
#: The marker a finished classification job leaves in its model folder, and the job's own predictions.
DONE, JOB_PREDICTIONS = "DONE", PREDICTIONS


class NotARunError(InputError):
    """A folder that is not a run folder of the kind asked for; the message says how to make one."""


def resolve_positive_label(configured: str | None, meta: Mapping[str, Any] | None) -> str:
    """THE positive-label rule: the config's ``positive_label`` (which must be one of the cohort's labels), else
    cohort.json's ``positive_label`` (``meta``), else an error; never a guess such as the first label."""
    labels = list((meta or {}).get("labels") or [])
    if configured:
        if labels and configured not in labels:
            raise SarcomriError(f"positive_label {configured!r} is not a label of the cohort ({labels})")
        return configured
    if meta and meta.get("positive_label"):
        return str(meta["positive_label"])
    raise SarcomriError("no positive class: the config has no positive_label and the cohort's cohort.json names "
                        "none; set positive_label in the config")


def negative_label(positive: str, meta: Mapping[str, Any] | None) -> str:
    """The cohort's other label (the negative class); an error when the cohort lists no other."""
    other = [label for label in (meta or {}).get("labels") or [] if label != positive]
    if not other:
        raise SarcomriError(f"the cohort lists no label other than {positive!r}: no negative class")
    return str(other[0])


def folder_name(group: str | tuple[str, ...]) -> str:
    """A model's sequence (or channel group) as the name of its folders."""
    return group if isinstance(group, str) else group_name(group)


def slice_spec(sequence: str, slices: Any) -> SliceSpec:
    """The slice preparation of one sequence (or ``'+'``-joined channel group) under a config's ``slices``
    section (a :class:`~sarcomri.config.SliceConfig`; ``crop: none`` cuts the whole field of view instead of a
    square around the tumour); use :meth:`ClassificationRun.slice_spec`."""
    group = parse_group(sequence)
    return SliceSpec(group, mode=slices.mode, size=slices.size, margin=slices.margin,
                     crop_to_tumour=slices.crop == "tumour",
                     normalisation=slices.normalisation, channels=3 if len(group) == 1 else None)


@dataclass(frozen=True)
class DecisionRule:
    """How a run turns likelihoods into a call: a sequence votes +1 when its likelihood is >= ``vote_cutoff``
    (None when the run's table gives none), -1 otherwise; the patient is called positive when the summed votes
    reach ``threshold``; a reader's confidence <= ``reader_cut`` reads as positive (a study's ``readers.cut``)."""

    threshold: float
    vote_cutoff: float | None = None
    reader_cut: float | None = None


class Run:
    """A run folder: the paths every kind has, its config (typed; given, or read from ``config.yaml``) and its
    cohort. Building one reads nothing; :func:`open_run` checks that a folder is a run first."""

    kind: ClassVar[str] = "run"
    config_model: ClassVar[type[BaseModel]] = BaseModel
    command: ClassVar[str] = "a sarcomri command"

    def __init__(self, path: str | Path, config: BaseModel | None = None) -> None:
        self.path = Path(path)
        self._config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        """``config.yaml``: the resolved config."""
        return self.path / CONFIG

    @property
    def versions_path(self) -> Path:
        """``versions.json``: Python and package versions."""
        return self.path / VERSIONS

    @property
    def inputs_path(self) -> Path:
        """``inputs.json``: what each artifact was made from (:mod:`sarcomri.runrecord`)."""
        return self.path / INPUTS

    @property
    def splits_path(self) -> Path:
        """``splits.csv``: patient_id, fold, role, repeat."""
        return self.path / SPLITS

    @property
    def tables_dir(self) -> Path:
        return self.path / TABLES

    def table_path(self, name: str) -> Path:
        """``tables/<name>.csv``."""
        return self.tables_dir / f"{name}.csv"

    @property
    def figures_dir(self) -> Path:
        return self.path / FIGURES

    @property
    def paper_dir(self) -> Path:
        """``paper/``: the run's tables in the published papers' formats (:mod:`sarcomri.report.papertables`)."""
        return self.path / PAPER

    @property
    def models_dir(self) -> Path:
        return self.path / MODELS

    @property
    def report_dir(self) -> Path:
        """``report/``: the default folder of ``sarcomri report``."""
        return self.path / REPORT

    @property
    def report_html(self) -> Path:
        return self.report_dir / REPORT_HTML

    # ----------------------------------------------------------------- config
    def raw_config(self) -> dict[str, Any] | None:
        """``config.yaml`` as a mapping (the given config when there is one), None when absent."""
        if self._config is not None:
            return self._config.model_dump(mode="json")
        if not self.config_path.is_file():
            return None
        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None

    @property
    def config(self) -> Any:
        """The typed config (an instance of :attr:`config_model`), read once from ``config.yaml`` as every config
        file is (:func:`sarcomri.configfile.read_config`: a relative ``cohort`` is taken from the file's folder)."""
        if self._config is None:
            if not self.config_path.is_file():
                raise self.not_a_run("no config.yaml")
            self._config = read_config(self.config_path, self.config_model)
        return self._config

    @property
    def name(self) -> str:
        """The config's name, else the folder's."""
        return str((self.raw_config() or {}).get("name") or self.path.name)

    def not_a_run(self, why: str) -> NotARunError:
        """The error for a folder that is not a run of this kind, saying how to make one."""
        return NotARunError(self.path, f"not a {self.kind} run folder ({why}); make one with `{self.command} "
                                       f"--run-dir {self.path}`")

    # ----------------------------------------------------------------- cohort
    @property
    def cohort_dir(self) -> Path:
        """The cohort folder: the config's ``cohort`` (a relative one read from config.yaml is taken from the run
        folder), else ``<run>/cohort`` (a cohort the run synthesised)."""
        configured = (self.raw_config() or {}).get("cohort")
        if not configured:
            return self.path / "cohort"
        path = Path(configured)
        return path if path.is_absolute() or self._config is not None else self.path / path

    def cohort(self, check_files: bool = True) -> Cohort:
        """The run's cohort, validated (its tables only without ``check_files``)."""
        return Cohort.load(self.cohort_dir, check_files=check_files)

    def find_cohort(self, given: Cohort | None = None) -> Cohort | None:
        """``given``, else the run's cohort when it can be read (tables only), else None: for the report, which
        renders what it has."""
        if given is not None:
            return given
        if not (self.cohort_dir / COHORT_JSON).is_file():
            return None
        try:
            return Cohort.load(self.cohort_dir, check_files=False)
        except SarcomriError:
            return None



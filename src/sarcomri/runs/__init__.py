"""THE run contract: a run folder opened as a typed object that owns its artifact paths, its resolved config,
its cohort, its positive label, its slice specification, its decision rule and its models. No other module
builds a path inside a run folder from string literals: writers and readers alike ask the run object.

The kinds, and what :func:`open_run` recognises each by::

    StudyRun           `sarcomri study run`: stages.json, a classification/ folder, or a study config.yaml
        config.yaml versions.json seeds.json stages.json study.json
        synthetic/ dicom/ cohort/ id_map.csv       the synthetic cohort, as DICOM, ingested back de-identified
        cohort/                                    or the configured ``source`` ingested
        sample/                                    the stratified sample of the cohort (``patients``)
        classification/ (a ClassificationRun)  readers/ (readers.csv, ai.csv, tables/*.csv)
        paper/ (the paper's tables)  nnunet/ (the segmentation's folds as nnU-Net datasets)
        segmentation/ (a SegmentationRun)  transfer/ (a TransferRun)  report/report.html
    ClassificationRun  `sarcomri classify run`: a config.yaml that is a ClassificationConfig
        config.yaml versions.json inputs.json splits.csv predictions.parquet cohort/ (when synthesised)
        splits/<seq>.csv (a sequence's own validation share)  ablation/<seq>/val<r>/ (the epochs x validation
        ablation)  cache/<seq>.npz (+ <seq>.skipped.csv)  models/<seq>/fold<k>-rep<r>/ (DONE once finished)
        tables/<name>.csv (sequences_left_out.csv, ablation.csv, ...)  paper/  figures/*.png  report/
    SegmentationRun    `sarcomri segment train`: a config.yaml that is a Seg3DConfig
        config.yaml versions.json inputs.json splits.csv models/<seq>/fold<k>-rep0/
        predictions/<seq>/<patient>.nii.gz  tables/<name>.csv  paper/  figures/
    TransferRun        `sarcomri segment transfer-study`: a config.yaml that is a TransferStudyConfig
        config.yaml inputs.json splits.csv subsets.csv models/ predictions/ tables/ paper/ figures/ cohort/

Every kind may hold ``paper/``: its tables in the published papers' formats (:mod:`sarcomri.report.papertables`).

A config.yaml is tried against the config models in the order classification, segmentation, transfer, study
(a minimal classification config also passes as a segmentation one; classification is the common case).
Folders made before this module existed have the same layout and open the same way; a folder that is none of
these raises :class:`NotARunError`, which names the command that makes one.

The rules, each written once, here:

- **cohort** (:attr:`Run.cohort_dir`): the config's ``cohort`` folder (sarcomri writes it resolved; a relative
  one in a run's config.yaml is taken from the run folder, as any config file's), else the cohort the run
  synthesised into ``<run>/cohort``. A study's (:attr:`StudyRun.cohort_dir`): the config's, else
  the ingested source or DICOM round trip ``<run>/cohort``, else the synthetic cohort ``<run>/synthetic``; its
  ``sample/`` instead when the study samples ``patients`` of a folder or source.
- **positive label** (:func:`resolve_positive_label`): the config's ``positive_label`` (one of the cohort's
  labels), else cohort.json's ``positive_label``, else a :class:`~sarcomri.errors.SarcomriError`: never a
  guess. The negative label is the cohort's other label.
- **slice specification** (:meth:`ClassificationRun.slice_spec`): the one place a
  :class:`~sarcomri.prep.prepare2d.SliceSpec` is built from a config: the training cache and ``predict`` cut
  a patient's slices the same way.
- **decision rule** (:class:`DecisionRule`): the per-sequence vote cut-off and the summed-score threshold of
  ``tables/summed_threshold.csv``; for a study also the readers' cut (``readers.cut``).

Modules: :mod:`~sarcomri.runs.base` (the file names, the rules, :class:`Run`), :mod:`~sarcomri.runs.kinds`
(:class:`ClassificationRun`, :class:`SegmentationRun`, :class:`TransferRun`), :mod:`~sarcomri.runs.study`
(:class:`StudyRun`); this module recognises and opens a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from sarcomri.runs.base import (
    AI_READS,
    CACHE,
    COHORT_JSON,
    CONFIG,
    DONE,
    FIGURES,
    INPUTS,
    JOB_PREDICTIONS,
    MODELS,
    PREDICTIONS,
    READERS,
    READERS_DIR,
    REPORT,
    REPORT_HTML,
    SEEDS,
    SPLITS,
    TABLES,
    VERSIONS,
    DecisionRule,
    NotARunError,
    Run,
    negative_label,
    resolve_positive_label,
    slice_spec,
)
from sarcomri.runs.kinds import ClassificationRun, SegmentationRun, TransferRun
from sarcomri.runs.study import StudyRun

__all__ = [
    "AI_READS", "CACHE", "COHORT_JSON", "CONFIG", "DONE", "FIGURES", "INPUTS", "JOB_PREDICTIONS", "MODELS",
    "PREDICTIONS", "READERS", "READERS_DIR", "REPORT", "REPORT_HTML", "SEEDS", "SPLITS", "TABLES", "VERSIONS",
    "ClassificationRun", "DecisionRule", "NotARunError", "Run", "SegmentationRun", "StudyRun", "TransferRun",
    "negative_label", "open_run", "resolve_positive_label", "run_kind", "slice_spec",
]

KINDS: tuple[type[Run], ...] = (ClassificationRun, SegmentationRun, TransferRun, StudyRun)


def run_kind(path: str | Path) -> type[Run] | None:
    """The kind of run folder ``path`` is (see the module docstring), None when it is none."""
    path = Path(path)
    if not path.is_dir():
        return None
    study = StudyRun(path)
    if study.stages_path.is_file() or study.classification.path.is_dir():
        return StudyRun
    raw = Run(path).raw_config()
    for kind in KINDS if raw is not None else ():
        try:
            kind.config_model.model_validate(raw)
        except ValidationError:
            continue
        return kind
    return None


def open_run(path: str | Path, expect: type[Run] | None = None) -> Any:
    """The run folder at ``path`` as its typed object (:class:`StudyRun`, :class:`ClassificationRun`, ...).

    With ``expect``, a run of that kind: a study folder given for one of its parts opens that part. A folder
    that is not a run (of that kind) raises :class:`NotARunError`, saying the command that makes one."""
    path = Path(path)
    kind = run_kind(path)
    want = expect or Run
    if kind is StudyRun and expect not in (None, StudyRun):
        part = {ClassificationRun: "classification", SegmentationRun: "segmentation", TransferRun: "transfer"}
        sub = getattr(StudyRun(path), part[expect])
        return open_run(sub.path, expect) if sub.path.is_dir() else _refuse(want, path, f"the study has no {sub.kind}")
    if kind is None:
        why = "no such folder" if not path.is_dir() else ("no config.yaml" if not (path / CONFIG).is_file()
                                                          else "its config.yaml is not a run's config")
        return _refuse(want, path, why)
    if expect is not None and kind is not expect:
        return _refuse(want, path, f"it is a {kind.kind} run folder")
    return kind(path)


def _refuse(kind: type[Run], path: Path, why: str) -> NoReturn:
    """Raise the :class:`NotARunError` of ``kind`` (any kind: every command that makes a run)."""
    if kind is Run:
        raise NotARunError(path, f"not a run folder ({why}); make one with `sarcomri classify run`, `sarcomri "
                                 "segment train` or `sarcomri study run` (CONFIG --run-dir FOLDER)")
    raise kind(path).not_a_run(why)

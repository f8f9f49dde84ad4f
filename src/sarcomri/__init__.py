"""sarcomri: deep learning on MRI of rare tumours (uterine sarcoma, carcinosarcoma, soft-tissue sarcoma).

The Python API mirrors the command line (``docs/api.md``); each name is imported on first use, so that
``import sarcomri`` stays fast and loads neither torch nor the imaging libraries::

    sarcomri ingest / synth / cohort validate   ingest, synthesise_cohort, Cohort.load, validate_cohort
    sarcomri study run                          load_study_config, run_study
    sarcomri classify run / ensemble / combine  load_config, classify, ensemble_tables, combine_tables
    sarcomri segment train / predict / evaluate run_crossval, segment_patient, evaluate_folder
    sarcomri predict                            predict_patient
    sarcomri report                             build_report
    any run folder                              open_run (a StudyRun, ClassificationRun, ...)
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# timm < 1.0.23 (the version nnU-Net's dynamic-network-architectures allows) warns on import that torch.jit.interface
# is deprecated: nothing a user can act on, so it is not shown.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning)

#: Public name -> (module, attribute): what ``sarcomri.<name>`` imports on first use.
_API: dict[str, tuple[str, str]] = {
    "ingest": ("sarcomri.io.ingest", "ingest"),
    "synthesise_cohort": ("sarcomri.synth.cohort", "synthesise_cohort"),
    "Cohort": ("sarcomri.cohort.manifest", "Cohort"),
    "validate_cohort": ("sarcomri.cohort.validate", "validate_cohort"),
    "load_config": ("sarcomri.config", "load_config"),
    "load_study_config": ("sarcomri.study_config", "load_study_config"),
    "ClassificationConfig": ("sarcomri.config", "ClassificationConfig"),
    "StudyConfig": ("sarcomri.study_config", "StudyConfig"),
    "demo_config": ("sarcomri.demo", "demo_config"),
    "run_study": ("sarcomri.study", "run_study"),
    "classify": ("sarcomri.classification", "classify"),
    "run_classification": ("sarcomri.classification", "run_classification"),
    "ensemble_tables": ("sarcomri.classification", "ensemble_tables"),
    "combine_tables": ("sarcomri.classification", "combine_tables"),
    "run_crossval": ("sarcomri.seg3d.crossval", "run_crossval"),
    "segment_patient": ("sarcomri.seg3d.predict", "segment_patient"),
    "evaluate_folder": ("sarcomri.seg3d.evaluate", "evaluate_folder"),
    "predict_patient": ("sarcomri.predict", "predict_patient"),
    "build_report": ("sarcomri.report.html", "build_report"),
    "open_run": ("sarcomri.runs", "open_run"),
    "StudyRun": ("sarcomri.runs", "StudyRun"),
    "ClassificationRun": ("sarcomri.runs", "ClassificationRun"),
    "SegmentationRun": ("sarcomri.runs", "SegmentationRun"),
    "TransferRun": ("sarcomri.runs", "TransferRun"),
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    """Import a public name of the API (see :data:`_API`) on first use and keep it in the module."""
    if name not in _API:
        raise AttributeError(f"module 'sarcomri' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names with the lazily imported API (so tab completion and ``dir()`` show it)."""
    return sorted(set(globals()) | set(_API))

"""The study config: one YAML that runs a published study end to end (its classification, segmentation and
transfer sections, the hospital's source, the readers, the paper's tables), validated at its scale and with its
seeds filled into every section (:func:`load_study_config`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_serializer,
    model_validator,
)

from sarcomri.config import ClassificationConfig, SynthSource
from sarcomri.configfile import read_yaml
from sarcomri.errors import InputError, SarcomriError
from sarcomri.seg2d.config import TransferStudyConfig
from sarcomri.seg3d.config import Seg3DConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadersSection(_Strict):
    """Radiologists' reads: ``reads`` (a readers.csv: patient_id, reader, group, sequence, session, confidence),
    else the cohort's ``readers.csv``; for a synthetic cohort, optionally simulated again with the study's trained
    model as the AI of the AI-assisted second read."""

    reads: str | None = None
    simulate_with_model: bool = True
    cut: float = Field(0.4, ge=0, le=1)  # confidence <= cut reads as the positive class (6-point scale, 0 = positive)


class SourceSection(_Strict):
    """A hospital's export ingested as the study's first stage, as ``sarcomri ingest`` would: ``folder`` (DICOM in
    any layout, or NIfTI), ``labels`` (CSV patient_id,label plus clinical columns), the ``positive`` class. The
    pseudonymisation key is never in a config file: it comes from ``$SARCOMRI_DEID_KEY`` (else a random key, and
    then the pseudonyms differ from run to run)."""

    folder: str
    labels: str | None = None
    positive: str | None = None
    sequence_map: str | None = None
    compute_adc: bool | None = None
    sequence: str | None = None  # the NIfTI sts-t1 layout's sequence name


class NnunetSection(_Strict):
    """The segmentation run's cohort exported as nnU-Net v2 raw datasets (one per model) whose
    ``splits_final.json`` holds the run's own folds: nnU-Net trained beside the study on the same patients
    (``<run>/nnunet/``; :func:`sarcomri.io.nnunet.export_run_folds`)."""

    dataset_id: int = Field(601, ge=1, le=999)
    name: str = Field("STS", pattern=r"^[A-Za-z0-9_]+$")


class PublishedValue(_Strict):
    """One number of a paper's protocol as a preset reproduces it: what it is (``item``), the paper's value, and
    where the study's value is in ``sarcomri study plan`` (``key``: ``protocol.<section>...`` for a config value,
    ``design.<section>...`` for a derived one, e.g. the models per sequence). docs/protocols.md lists them."""

    item: str
    paper: Any
    key: str
    note: str = ""


class PaperSection(_Strict):
    """Which published paper's tables the study writes (``paper/``, shown in the report as published).

    ``printed_positive``: the class the paper's tables print as positive (the carcinosarcoma paper printed
    endometrial carcinoma as positive); None: the study's positive class. ``characteristics``: the patients.csv
    columns of the patients' characteristics table."""

    name: Literal["carcinosarcoma", "sarcoma", "dwi-transfer", "sts-segmentation"]
    printed_positive: str | None = None
    characteristics: list[str] = []


#: The seeds of each study section (dotted paths in it). The study's ``seed`` fills every one the section leaves
#: out; a seed inside an optional sub-section (``synth``) only where the section has that sub-section.
SECTION_SEEDS: dict[str, tuple[str, ...]] = {
    "classification": ("splits.seed", "train.seed"),
    "segmentation": ("seed", "train.seed"),
    "transfer": ("split_seed", "train.seed", "synth.seed"),
}
_OPTIONAL_SUBSECTIONS = {"synth"}
#: The default of every seed in :data:`SECTION_SEEDS` (and of the study's): a study seed equal to it changes no
#: section, so the sections, and the keys of stages run before the study seed reached them, stay as written.
DEFAULT_SEED = 0


class _AsWritten(BaseModel):
    """A study section that remembers the mapping it was validated from: the study fills the seeds that mapping
    leaves out (:meth:`StudyConfig.seeded`), keys its stages by it and writes it back into ``config.yaml``, so the
    defaults stay unwritten and the keys of existing runs stay as they were."""

    _written: dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        section = handler(data)
        if isinstance(data, Mapping) and section is not data:
            section._written = copy.deepcopy(dict(data))
        return section

    def as_written(self) -> dict[str, Any]:
        """The section as written (a copy); for one built in Python, its fields set explicitly."""
        if self._written is not None:
            return copy.deepcopy(self._written)
        return self.model_dump(mode="json", exclude_unset=True)


class ClassificationSection(_AsWritten, ClassificationConfig):
    """The ``classification`` section of a study: a :class:`ClassificationConfig` whose ``name`` defaults to
    ``<study>-classification`` and whose ``cohort`` is the study's."""

    name: str | None = None


class SegmentationSection(_AsWritten, Seg3DConfig):
    """The ``segmentation`` section of a study: a :class:`~sarcomri.seg3d.config.Seg3DConfig` whose ``name``
    defaults to ``<study>-segmentation`` and whose ``cohort`` is the study's."""

    name: str | None = None
    cohort: str | None = None


class TransferSection(_AsWritten, TransferStudyConfig):
    """The ``transfer`` section of a study: a :class:`~sarcomri.seg2d.config.TransferStudyConfig` (with its own
    cohorts) whose ``name`` defaults to ``<study>-transfer``."""

    name: str | None = None


class StudyConfig(_Strict):
    """A whole study (``sarcomri study run``): the cohort, then any of classification, segmentation and
    transfer learning, then the report. Each section is the config of its own command, less the cohort.

    ``seed`` is the study's seed: every seed of the sections (:data:`SECTION_SEEDS`: the splits and the
    training of each stage) that a section does not set itself. The synthetic cohort has its own
    (``synth.seed``). A section is validated with the study and dumped as written (:class:`_AsWritten`)."""

    name: str
    cohort: str | None = None
    source: SourceSection | None = None
    synth: SynthSource | None = None
    dicom_roundtrip: bool = False  # write the synthetic cohort as DICOM and ingest it back, as real data would come
    patients: int | None = Field(None, ge=4)  # a stratified sample of the cohort's (not a synthetic one's)
    scale: Literal["full", "smoke"] = "full"  # the file's ``smoke:`` overrides applied (:mod:`sarcomri.scale`)
    paper: PaperSection | None = None
    published: list[PublishedValue] = []
    seed: int = 0
    classification: ClassificationSection | None = None
    readers: ReadersSection = ReadersSection()
    segmentation: SegmentationSection | None = None
    transfer: TransferSection | None = None
    nnunet: NnunetSection | None = None  # export the segmentation's folds for nnU-Net
    report: bool = True

    @field_serializer("classification", "segmentation", "transfer")
    def _section_as_written(self, section: _AsWritten | None) -> dict[str, Any] | None:
        return None if section is None else section.as_written()

    @model_validator(mode="after")
    def _one_cohort(self) -> StudyConfig:
        given = [k for k in ("cohort", "source", "synth") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of cohort, source and synth, not {' and '.join(given)}")
        return self

    def samples(self) -> bool:
        """Whether the study runs on a stratified sample (``patients``) of its cohort folder or ingested source (a
        synthetic cohort is made at its own size, ``synth.patients``)."""
        return bool(self.patients) and self.synth is None

    def has_cohort(self) -> bool:
        """Whether the study makes or reads a cohort of its own (a folder, a source to ingest, or a synthetic one)."""
        return any(getattr(self, k) is not None for k in ("cohort", "source", "synth"))

    def missing_cohort(self) -> str | None:
        """Why the study cannot run for want of a cohort (None when it can): the classification and segmentation
        sections read the study's cohort; a transfer section has its own unless it names none."""
        if self.has_cohort():
            return None
        own = self.transfer is not None and (self.transfer.cohort or self.transfer.synth is not None)
        if self.classification is None and self.segmentation is None and (self.transfer is None or own):
            return None
        return ("no cohort: give --cohort COHORT (a folder made by `sarcomri ingest`), a 'source:' to ingest, or "
                "--smoke to try a preset on its synthetic cohort")

    def seeded(self, name: str) -> dict[str, Any] | None:
        """The section ``name`` as written, with every seed it leaves out set to the study's ``seed``; None
        when the study has no such section. Stages are keyed by it, so a new study seed reruns them."""
        section = getattr(self, name)
        if section is None:
            return None
        out = section.as_written()
        if self.seed == DEFAULT_SEED:  # what every seed left out is anyway
            return out
        for dotted in SECTION_SEEDS[name]:
            *parents, leaf = dotted.split(".")
            node: Any = out
            for key in parents:
                if key not in node and key not in _OPTIONAL_SUBSECTIONS:
                    node[key] = {}
                node = node.get(key)
                if not isinstance(node, dict):  # an absent optional sub-section
                    break
            else:
                node.setdefault(leaf, self.seed)
        return out

    def classification_config(self, cohort: str) -> ClassificationConfig:
        """The classification section as a :class:`ClassificationConfig` on ``cohort``."""
        return ClassificationConfig.model_validate({"name": f"{self.name}-classification",
                                                    **(self.seeded("classification") or {}), "cohort": cohort})

    def segmentation_config(self, cohort: str) -> Seg3DConfig:
        """The segmentation section as a :class:`~sarcomri.seg3d.config.Seg3DConfig` on ``cohort``."""
        return Seg3DConfig.model_validate({"name": f"{self.name}-segmentation", **(self.seeded("segmentation") or {}),
                                           "cohort": cohort})

    def transfer_config(self, cohort: str | None = None) -> TransferStudyConfig:
        """The transfer section as a :class:`~sarcomri.seg2d.config.TransferStudyConfig`: its own cohorts, else
        ``cohort`` (the study's, split by ``domain``)."""
        section = self.seeded("transfer") or {}
        if cohort is not None and not section.get("cohort") and section.get("synth") is None:
            section["cohort"] = cohort
        return TransferStudyConfig.model_validate({"name": f"{self.name}-transfer", **section})


def load_study_config(path: str | Path, smoke: bool | None = None, cohort: str | Path | None = None,
                      reads: str | Path | None = None) -> StudyConfig:
    """Read a study YAML at its scale (``smoke`` True: the preset's smoke scale, :mod:`sarcomri.scale`); every
    section is validated with it, so a typo fails before hours of training. ``cohort``: the user's cohort folder
    instead of the file's cohort, source or synthetic cohort; ``reads``: a readers.csv of the radiologists' reads.
    Relative paths in the file are resolved against its folder. A preset may name no cohort (its user gives one):
    :meth:`StudyConfig.missing_cohort` says so before a run."""
    from pydantic import ValidationError

    from sarcomri.configfile import first_error_field
    from sarcomri.scale import SMOKE, apply_scale

    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(path, "a config must be a YAML mapping")
    try:
        raw = apply_scale(raw, smoke)
    except SarcomriError as exc:
        raise InputError(path, str(exc)) from None
    raw.pop(SMOKE, None)  # applied, or not asked for: not part of the study's settings
    if cohort is not None:
        raw.update(cohort=str(Path(cohort).resolve()), synth=None, source=None)
    if reads is not None:
        raw["readers"] = {**(raw.get("readers") or {}), "reads": str(Path(reads).resolve())}
    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise InputError(path, f"field {first_error_field(exc)}") from None
    _resolve_study_paths(cfg, path.parent)
    return cfg


def _resolve_study_paths(cfg: StudyConfig, folder: Path) -> None:
    """Make the file's relative paths (cohort, source, reads) absolute against its folder, in place."""
    def absolute(value: str | None) -> str | None:
        return None if value is None or Path(value).is_absolute() else str((folder / value).resolve())

    cfg.cohort = absolute(cfg.cohort) or cfg.cohort
    if cfg.source is not None:
        for key in ("folder", "labels", "sequence_map"):
            setattr(cfg.source, key, absolute(getattr(cfg.source, key)) or getattr(cfg.source, key))
    cfg.readers.reads = absolute(cfg.readers.reads) or cfg.readers.reads

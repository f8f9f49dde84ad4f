"""The training section of every task's config: one pydantic model of what every fit loop shares, extended by
each task (classification here; 2D and 3D segmentation in :mod:`sarcomri.seg2d.config` and
:mod:`sarcomri.seg3d.config`).

Each subclass keeps its task's YAML field names, defaults and bounds: a subclass re-declares a shared field only
to give it the task's default or a tighter bound.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainSection(BaseModel):
    """What every training shares: ``epochs`` (the maximum), the learning rate ``lr`` and ``weight_decay`` of the
    optimiser, the ``seed`` of initialisation and sampling, and PyTorch's intra-op ``threads`` (None: leave them)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-4, ge=0)
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = None


class TrainConfig(TrainSection):
    """Optimisation settings of one classifier training (the ``train`` section of a classification config).

    ``lr`` 1e-4 with Adam (or AMSGrad) as in both classification studies; ``epochs`` is the maximum and
    the epoch with the best validation ``monitor`` is kept (``select: best``), or the last epoch's model after a
    fixed number of epochs (``select: last``, the carcinosarcoma study; no early stopping then); ``patience``
    stops early after that many epochs without improvement (0 = never). ``sampling`` and ``class_weighting``
    handle rare classes (training fold only). ``slices_per_epoch`` draws a fixed number of random slices per
    epoch (the sarcoma study). ``betas`` and ``eps`` are the Adam-family optimisers' constants.
    """

    batch_size: int = Field(32, ge=2)
    optimizer: Literal["adam", "amsgrad", "adamw", "sgd"] = "adam"
    patience: int = 0
    monitor: Literal["val_loss", "val_auc"] = "val_loss"
    select: Literal["best", "last"] = "best"
    augmentation: str = "none"
    sampling: Literal["shuffle", "balanced", "oversample"] = "shuffle"
    class_weighting: bool = False
    slices_per_epoch: int | None = None
    channels_last: bool = True
    # Adam-family constants (adam, amsgrad, adamw): the moment decay rates and the denominator's epsilon. The
    # defaults are PyTorch's; Keras' Adam (the carcinosarcoma study) has eps 1e-7.
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must lie in [0, 1), got {list(v)}")
        return v


class DeviceTrainSection(TrainSection):
    """The shared settings of the segmentation trainings (2D and 3D): a positive learning rate, a non-negative
    weight decay, at least one thread, and the ``device`` (``auto`` trains on the GPU when PyTorch sees one)."""

    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    threads: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

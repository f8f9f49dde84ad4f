"""What one training run needs to know, as a plain dataclass (validated by the study config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one classifier training.

    ``lr`` 1e-4 with Adam (or AMSGrad) as in both classification studies; ``epochs`` is the maximum and
    the epoch with the best validation ``monitor`` is kept; ``patience`` stops early after that many epochs
    without improvement (0 = never). ``sampling`` and ``class_weighting`` handle rare classes (training fold
    only). ``slices_per_epoch`` draws a fixed number of random slices per epoch (the sarcoma study).
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    optimizer: Literal["adam", "amsgrad", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0
    patience: int = 0
    monitor: Literal["val_loss", "val_auc"] = "val_loss"
    augmentation: str = "none"
    sampling: Literal["shuffle", "balanced", "oversample"] = "shuffle"
    class_weighting: bool = False
    slices_per_epoch: int | None = None
    channels_last: bool = True
    seed: int = 0
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**known)

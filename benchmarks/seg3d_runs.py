"""What the 3D segmentation benchmarks share: a summary line of per-patient metrics, and a run's ``infer:``
settings with changes from the command line (``--infer mirror=false``), to measure an inference choice on a
finished run's models without training again."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import yaml

from sarcomri.seg3d.config import InferSettings

TARGET = "target: mean Dice >= 0.75, HD95 median <= 12 mm, none below 0.3"


def summary(name: str, table: pd.DataFrame, key: str = "run") -> dict:
    """One line of a printed table: the Dice and HD95 summaries over the patients of ``table``."""
    dice = table["dice"]
    return {key: name, "n": len(table), "mean Dice": dice.mean(), "median Dice": dice.median(),
            "min Dice": dice.min(), "below 0.3": int((dice < 0.3).sum()),
            "HD95 median": table["hd95_mm"].median(), "HD95 mean": table["hd95_mm"].mean()}


def with_changes(settings: InferSettings, changes: Sequence[str]) -> InferSettings:
    """``settings`` with each ``KEY=VALUE`` of ``changes`` applied (the value read as YAML), validated."""
    update = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or not key:
            raise SystemExit(f"--infer takes KEY=VALUE, not {change!r}")
        update[key.strip()] = yaml.safe_load(value)
    return InferSettings.model_validate({**settings.model_dump(), **update})

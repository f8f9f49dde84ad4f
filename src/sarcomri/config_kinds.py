"""Every kind of config file the commands read (classification, segmentation, transfer, study): its JSON Schema,
its kind guessed from its keys, and the file read as its command reads it (``sarcomri config``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sarcomri.config import ClassificationConfig, load_config
from sarcomri.configfile import read_yaml
from sarcomri.errors import InputError
from sarcomri.seg2d.config import TransferStudyConfig, load_transfer_config
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.study_config import StudyConfig, load_study_config

#: Every kind of config file, by the name ``sarcomri config`` gives it, in the order a file's kind is guessed.
CONFIG_KINDS: dict[str, type[BaseModel]] = {"classification": ClassificationConfig, "segmentation": Seg3DConfig,
                                            "transfer": TransferStudyConfig, "study": StudyConfig}


def config_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a config file of ``kind`` (one of :data:`CONFIG_KINDS`); a study file may also hold
    its smoke scale (``smoke:``, :mod:`sarcomri.scale`), an overlay of the study's own keys."""
    schema = CONFIG_KINDS[kind].model_json_schema()
    if kind == "study":
        from sarcomri.scale import SMOKE, SMOKE_KEYS

        schema["properties"][SMOKE] = {
            "type": "object", "title": "Smoke", "description": "The smoke scale: overrides of the study's own keys, "
            f"merged in by --smoke; only these keys (at any depth): {', '.join(sorted(SMOKE_KEYS))}."}
    return schema


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
    if kind == "study":
        return kind, load_study_config(path)
    return kind, load_config(path, CONFIG_KINDS[kind])

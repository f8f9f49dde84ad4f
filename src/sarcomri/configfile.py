"""Reading a config YAML into a pydantic model: the one reader every config goes through.

Generic over the model, so that the task configs (:mod:`sarcomri.config`, :mod:`sarcomri.seg2d.config`,
:mod:`sarcomri.seg3d.config`) can all use it without importing one another. Errors name the file and the
offending field, and end the command with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sarcomri.errors import InputError, yaml_problem

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: str | Path) -> Any:
    """The YAML document of a config file; a file that cannot be read or parsed is an
    :class:`~sarcomri.errors.InputError` naming it."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read the config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, "not valid YAML: not UTF-8 text (a binary or corrupt file?)") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {yaml_problem(exc)}") from None


def read_config(path: str | Path, model: type[Model]) -> Model:
    """Read and validate a YAML config as ``model``; a relative ``cohort`` is resolved against the file's
    folder. A model with ``cohort`` and ``synth`` fields needs one of them."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(path, "a config must be a YAML mapping")
    try:
        cfg = model.model_validate(raw)
    except ValidationError as exc:
        raise InputError(path, f"field {first_error_field(exc)}") from None
    if getattr(cfg, "cohort", None) is None and getattr(cfg, "synth", None) is None:
        raise InputError(path, "give either 'cohort' (a folder) or 'synth' (a synthetic cohort to generate)")
    if getattr(cfg, "cohort", None) and not Path(cfg.cohort).is_absolute():
        cfg.cohort = str((path.parent / cfg.cohort).resolve())
    return cfg


def first_error_field(exc: ValidationError, *prefix: str) -> str:
    """``'a.b': message`` of the first error of a pydantic validation, its location under ``prefix``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (*prefix, *first["loc"]))
    return f"'{where}': {first['msg']}"

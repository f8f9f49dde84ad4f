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


def repeated_key(node: yaml.Node | None) -> tuple[str, yaml.Mark] | None:
    """The first key written twice in one mapping of a composed YAML document (its text and where the second one
    is), else None. YAML keeps the last value of a repeated key without a word; a config with a setting written
    twice is a mistake to point at, not to guess. Merge keys (``<<``) and the keys they bring in are not counted."""
    seen_nodes: set[int] = set()
    todo = [node] if node is not None else []
    while todo:
        current = todo.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in keys:
                        return key.value, key.start_mark
                    keys.add((key.tag, key.value))
                todo += [key, value]
        elif isinstance(current, yaml.SequenceNode):
            todo += current.value
    return None


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key written twice in one mapping (:func:`repeated_key`)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        repeated = repeated_key(node)
        if repeated is not None:
            key, mark = repeated
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is written twice in one mapping (YAML would keep the last silently)",
                mark)
        return None if node is None else self.construct_document(node)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` of a file a user writes (configs, sequence maps, reading designs, readers), with a key
    written twice in one mapping refused as a :class:`yaml.YAMLError` that says where."""
    return yaml.load(text, Loader=_StrictLoader)  # the safe loader, repeated keys refused


def read_yaml(path: str | Path) -> Any:
    """The YAML document of a config file; a file that cannot be read or parsed is an
    :class:`~sarcomri.errors.InputError` naming it."""
    path = Path(path)
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
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

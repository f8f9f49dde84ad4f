"""The design of a reader study (``sarcomri read create``): which cases, which sequences, the rating scale, the
sessions and the washout between them, and each reader's own case order.

Two designs follow the papers (:data:`PRESETS`):

* ``carcinosarcoma``: one unaided session; each sequence of each case rated apart on the 6-point confidence scale
  (0 = definitely the positive class ... 5 = definitely the negative class), as the paper's radiologists did;
* ``sarcoma``: an unaided session, then, after a washout, an AI-assisted session; each case called positive or
  negative with a confidence (high, medium, low), stored on the same 6-point scale (:func:`to_scale`).

Readers are blinded: a case is its pseudonym and its images; no label, histology or clinical variable is stored
with the reading plan. Each reader reads the cases in an order of their own, drawn from the design's seed and
the reader's name (:func:`case_order`), the same for both sessions' draws only by chance.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sarcomri.configfile import parse_yaml
from sarcomri.errors import InputError, yaml_problem

UNAIDED, AI_ASSISTED = "first", "ai_assisted"  # the session names of the long reads table (docs/synthetic.md)
#: The 6-point scale: 0 = definitely positive ... 5 = definitely negative (the carcinosarcoma paper's).
SCALE = range(6)
CERTAINTIES = ("high", "medium", "low")


class ReadingDesign(BaseModel):
    """What the readers read and how (see the module notes)."""

    model_config = ConfigDict(extra="forbid")

    cases: Literal["test", "all"] = "test"  # the study's test patients (repeat 0), or every patient
    sequences: list[str] | None = None  # shown side by side; None: the classification run's sequences
    scale: Literal["six_point", "call_confidence"] = "six_point"
    per_sequence: bool = False  # one rating per sequence (the carcinosarcoma paper's readers), else one per case
    sessions: list[Literal["first", "ai_assisted"]] = [UNAIDED]
    washout_days: float = Field(0.0, ge=0)  # between a reader finishing session 1 and opening session 2
    seed: int = 0

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, v: list[str]) -> list[str]:
        if not v or v[0] != UNAIDED or len(set(v)) != len(v):
            raise ValueError("sessions start with 'first' (unaided); 'ai_assisted' may follow, once")
        return v


PRESETS: dict[str, ReadingDesign] = {
    "carcinosarcoma": ReadingDesign(scale="six_point", per_sequence=True, sessions=[UNAIDED]),
    "sarcoma": ReadingDesign(scale="call_confidence", sessions=[UNAIDED, AI_ASSISTED], washout_days=14.0),
}


class Reader(BaseModel):
    """One reader of the study: a name (never a person's identifying data is needed) and a group."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    group: str = Field("reader", pattern=r"^[A-Za-z0-9_ .-]{1,40}$")


def _problem(err: Exception) -> str:
    """A YAML error on one line (what and where, :func:`~sarcomri.errors.yaml_problem`), other errors as they say."""
    return yaml_problem(err) if isinstance(err, yaml.YAMLError) else str(err)


def load_design(value: str | Path) -> ReadingDesign:
    """A preset's name (:data:`PRESETS`) or a YAML file of :class:`ReadingDesign` fields."""
    if str(value) in PRESETS:
        return PRESETS[str(value)].model_copy(deep=True)
    path = Path(value)
    if not path.is_file():
        raise InputError(path, f"neither a design preset ({', '.join(PRESETS)}) nor a design file")
    try:
        return ReadingDesign.model_validate(parse_yaml(path.read_text()) or {})
    except (yaml.YAMLError, ValidationError) as err:
        raise InputError(path, f"not a valid reading design: {_problem(err)}") from None


def load_readers(path: str | Path) -> list[Reader]:
    """The readers of a YAML file: ``readers: [{name: specialist1, group: specialist}, ...]``, names unique."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text())
        readers = [Reader.model_validate(r) for r in (data or {}).get("readers", [])]
    except OSError as err:
        raise InputError(path, f"cannot be read ({err})") from None
    except (yaml.YAMLError, ValidationError, AttributeError) as err:
        raise InputError(path, f"not a valid readers file (readers: a list of name and group): {_problem(err)}"
                         ) from None
    if not readers:
        raise InputError(path, "lists no readers")
    names = [r.name for r in readers]
    if len(set(names)) != len(names):
        raise InputError(path, f"reader names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    return readers


def case_order(cases: list[str], seed: int, reader: str, session: str) -> list[str]:
    """The reader's own order of ``cases`` in ``session``: a permutation drawn from the design's seed and the
    reader's and session's names (stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}/{reader}/{session}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return [cases[i] for i in rng.permutation(len(cases))]


def to_scale(call_positive: bool, certainty: str) -> int:
    """A call with its certainty on the 6-point scale: positive high 0, medium 1, low 2; negative low 3, medium
    4, high 5."""
    if certainty not in CERTAINTIES:
        raise InputError(None, f"certainty must be one of {', '.join(CERTAINTIES)}, not {certainty!r}")
    step = CERTAINTIES.index(certainty)
    return step if call_positive else 5 - step

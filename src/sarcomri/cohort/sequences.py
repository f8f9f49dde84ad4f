"""The canonical sequence vocabulary and the mapping from DICOM series descriptions to it.

Canonical names follow the sarcoma study's seeds (T2axi, T2sag, ..., DWI per b-value, ADC) and the
soft-tissue sarcoma study's (T1, T2FS, T1CEFS). The acquisition plane is derived from
ImageOrientationPatient, never from the description. The mapping is a YAML file the user can edit
(``sequence_map.yaml`` in this package is the default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sarcomri.configfile import parse_yaml
from sarcomri.errors import InputError, yaml_problem

#: Planar sequences of the uterine studies (plane suffix from ImageOrientationPatient).
PLANAR_SEQUENCES: tuple[str, ...] = (
    "T2axi", "T2sag", "T2cor", "fsT2axi", "T1axi", "T1sag", "fsT1axi", "fsT1sag",
    "fsT1CEaxi", "fsT1CEsag", "fsT1CEcor", "dynamicaxi", "dynamicsag",
)
#: Diffusion sequences: the scanner's ADC map, the ADC fitted from the DWI (``ADC_computed`` when the scanner's
#: is also present), and DWI volumes named by b-value (``DWI_b1000``).
DIFFUSION_SEQUENCES: tuple[str, ...] = ("ADC", "ADC_computed")
#: Soft-tissue sarcoma study sequences.
STS_SEQUENCES: tuple[str, ...] = ("T1", "T2FS", "T1CEFS")

_DWI_RE = re.compile(r"^DWI_b(\d+)$")
PLANES = ("axi", "sag", "cor")
#: What joins the sequences of a channel group (the inputs of one model): ``"DWI_b0+DWI_b1000+ADC"``.
GROUP_SEPARATOR = "+"
_NOT_IN_NAME = re.compile(r"[\s/\\+]")  # a sequence name is a file and folder name: no space, slash or '+'


def parse_group(text: str) -> tuple[str, ...]:
    """The sequences of a channel group written as text: ``"T1+T2"`` -> ``("T1", "T2")``; ``"T2axi"`` is a
    group of one. The one parser of the ``+`` notation (configs, model folders, tables, options).

    Raises :class:`InputError` for an empty group or name (``"T1++T2"``), a name with a space or a slash, or
    a sequence listed twice.
    """
    names = tuple(part.strip() for part in str(text).split(GROUP_SEPARATOR))
    for name in names:
        if not name:
            raise InputError(None, f"sequence group {text!r}: an empty sequence name (write e.g. T1 or T1+T2)")
        if _NOT_IN_NAME.search(name):
            raise InputError(None, f"sequence group {text!r}: {name!r} is not a sequence name (no spaces or "
                                   "slashes)")
    if len(set(names)) != len(names):
        raise InputError(None, f"sequence group {text!r} lists a sequence twice")
    return names


def group_name(sequences: Iterable[str]) -> str:
    """The text of a channel group, the inverse of :func:`parse_group`: ``("T1", "T2")`` -> ``"T1+T2"``."""
    names = tuple(str(s) for s in sequences)
    if not names or any(not n or GROUP_SEPARATOR in n for n in names):
        raise InputError(None, f"not a sequence group: {list(names)} (non-empty names without '+')")
    return GROUP_SEPARATOR.join(names)


def dwi_name(b_value: float) -> str:
    """The canonical name of the DWI volume acquired at ``b_value`` (s/mm^2), e.g. ``DWI_b1000``."""
    return f"DWI_b{int(round(float(b_value)))}"


def b_value_of(name: str) -> int | None:
    """The b-value encoded in a DWI sequence name, or None when ``name`` is not a DWI volume."""
    m = _DWI_RE.match(name)
    return int(m.group(1)) if m else None


def is_canonical(name: str) -> bool:
    """True when ``name`` belongs to the canonical vocabulary."""
    return (
        name in PLANAR_SEQUENCES
        or name in DIFFUSION_SEQUENCES
        or name in STS_SEQUENCES
        or b_value_of(name) is not None
        or _planar_base(name) is not None
    )


def _planar_base(name: str) -> str | None:
    for plane in PLANES:
        if name.endswith(plane) and name[: -len(plane)] in {"T2", "fsT2", "T1", "fsT1", "fsT1CE", "dynamic"}:
            return name[: -len(plane)]
    return None


def plane_from_orientation(image_orientation_patient) -> str:
    """The acquisition plane (``axi``, ``sag`` or ``cor``) of a slice with the given direction cosines.

    The slice normal is the cross product of the row and column cosines (DICOM's
    ImageOrientationPatient); the plane is named by the patient axis the normal is closest to:
    x (left-right) is sagittal, y (anterior-posterior) coronal, z (head-foot) axial. Oblique slices take the
    nearest plane.
    """
    iop = np.asarray(image_orientation_patient, dtype=float).ravel()
    if iop.size != 6 or not np.all(np.isfinite(iop)):
        raise InputError(None, f"ImageOrientationPatient must hold 6 finite numbers, got {iop.tolist()}")
    normal = np.cross(iop[:3], iop[3:])
    if np.linalg.norm(normal) < 1e-6:
        raise InputError(None, "ImageOrientationPatient row and column cosines are parallel")
    return ("sag", "cor", "axi")[int(np.argmax(np.abs(normal)))]


@dataclass(frozen=True)
class Rule:
    """One mapping rule: regular expressions on the description that name a series."""

    name: str
    match: tuple[re.Pattern, ...]
    exclude: tuple[re.Pattern, ...] = ()
    planar: bool = False
    diffusion: bool = False
    skip: bool = False

    def matches(self, texts: list[str]) -> bool:
        """True when one pattern matches one text and no exclusion matches any."""
        if any(p.search(t) for p in self.exclude for t in texts):
            return False
        return any(p.search(t) for p in self.match for t in texts)


@dataclass(frozen=True)
class SeriesNaming:
    """What the mapping says about a series: its canonical name, or why it has none."""

    name: str | None
    diffusion: bool = False
    skip: bool = False
    rule: str | None = None


@dataclass
class SequenceMap:
    """An ordered list of rules mapping SeriesDescription/ProtocolName to canonical names."""

    rules: list[Rule] = field(default_factory=list)
    source: str = "<default>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> SequenceMap:
        """Load a mapping YAML file; without ``path``, the package's default mapping."""
        if path is None:
            text = resources.files("sarcomri.cohort").joinpath("sequence_map.yaml").read_text()
            source = "<default>"
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(path, f"cannot read the sequence map: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise InputError(path, "not valid YAML: not UTF-8 text (a binary or corrupt file?)") from None
            source = str(path)
        try:
            doc = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise InputError(source, f"not valid YAML: {yaml_problem(exc)}") from None
        unknown = sorted(map(str, set(doc) - {"rules"})) if isinstance(doc, dict) else []
        if unknown:
            raise InputError(source, f"unknown key(s) {unknown}: a sequence map has one key, 'rules'")
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
            raise InputError(source, "a sequence map is a YAML mapping with one key, 'rules': a non-empty list of "
                                     "{name, match, exclude, planar, diffusion, skip}")
        rules = [_rule(raw, i, source) for i, raw in enumerate(doc["rules"], start=1)]
        return cls(rules=rules, source=source)

    def name_series(
        self,
        description: str | None,
        protocol: str | None = None,
        image_orientation_patient=None,
    ) -> SeriesNaming:
        """Name a series from its SeriesDescription, ProtocolName and ImageOrientationPatient.

        Diffusion series come back with ``name='DWI'`` and ``diffusion=True``: the caller splits them by
        b-value and names each volume with :func:`dwi_name`. Unmatched series have ``name=None``.
        """
        texts = [t for t in (description, protocol) if t]
        for rule in self.rules:
            if not rule.matches(texts):
                continue
            if rule.skip:
                return SeriesNaming(None, skip=True, rule=rule.name)
            name = rule.name
            if rule.planar:
                if image_orientation_patient is None:
                    return SeriesNaming(None, rule=rule.name)
                name += plane_from_orientation(image_orientation_patient)
            return SeriesNaming(name, diffusion=rule.diffusion, rule=rule.name)
        return SeriesNaming(None)


_RULE_KEYS = {"name", "match", "exclude", "planar", "diffusion", "skip"}


def _rule(raw: Any, i: int, source: str) -> Rule:
    """Rule ``i`` (1-based) of a sequence map; InputError naming it when a key is missing, unknown or mistyped."""
    if not isinstance(raw, dict) or "name" not in raw or "match" not in raw:
        raise InputError(source, f"rule {i} needs 'name' and 'match'")
    unknown = sorted(map(str, set(raw) - _RULE_KEYS))
    if unknown:
        raise InputError(source, f"rule {i}: unknown key(s) {unknown} (known: {sorted(_RULE_KEYS)})")
    flags = {k: raw.get(k, False) for k in ("planar", "diffusion", "skip")}
    wrong = [k for k, v in flags.items() if not isinstance(v, bool)]
    if wrong or not isinstance(raw["name"], str) or not raw["name"]:
        what = f"'{wrong[0]}' must be true or false" if wrong else "'name' must be a non-empty text"
        raise InputError(source, f"rule {i}: {what}")
    try:
        return Rule(name=raw["name"], match=_patterns(raw["match"]), exclude=_patterns(raw.get("exclude", [])),
                    **flags)
    except re.error as exc:
        raise InputError(source, f"rule {i} ('{raw['name']}'): bad regular expression: {exc}") from None
    except TypeError:
        raise InputError(source, f"rule {i} ('{raw['name']}'): 'match' and 'exclude' are texts or lists of "
                                 "texts") from None


def _patterns(value: Any) -> tuple[re.Pattern, ...]:
    """Case-insensitive regular expressions from one text or a list of texts (TypeError for anything else)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise TypeError("not a text or a list of texts")
    return tuple(re.compile(p, re.I) for p in items)


"""YAML config loaders on damaged files: a user error naming the file, never another exception.

A YAML prefix is itself YAML, so a config cut at a line end may load with defaults in place of what was cut:
for truncation the property is the same as for flipped bytes (no other exception). Wrong types and unknown
keys must be user errors naming the field."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcomri.cohort.sequences import SequenceMap
from sarcomri.config import ClassificationConfig, load_config
from sarcomri.seg2d.config import load_transfer_config
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.study_config import load_study_config

REPO = Path(__file__).resolve().parents[2]
#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "30")), deadline=None)
#: (config file, its loader)
CONFIGS: dict[str, tuple[Path, Callable]] = {
    "classification": (REPO / "configs" / "demo-sarcoma.yaml", load_config),
    "seg3d": (REPO / "configs" / "seg3d-cpu.yaml", lambda p: load_config(p, Seg3DConfig)),
    "transfer": (REPO / "configs" / "demo-transfer.yaml", load_transfer_config),
    "study": (REPO / "src" / "sarcomri" / "presets" / "demo-study.yaml", load_study_config),
    "sequence map": (REPO / "src" / "sarcomri" / "cohort" / "sequence_map.yaml", SequenceMap.load),
}
KINDS = st.sampled_from(sorted(CONFIGS))


def _load(faults, scratch, kind: str, text: bytes):
    source, loader = CONFIGS[kind]
    path = Path(scratch()) / source.name
    path.write_bytes(text)
    got = faults.outcome(lambda: loader(path))
    if got.error is not None:
        assert str(path) in str(got.error), got.error
    return got


def test_the_intact_configs_load(faults, scratch):
    for kind, (source, _) in CONFIGS.items():
        assert _load(faults, scratch, kind, source.read_bytes()).error is None, kind


@FAST
@given(data=st.data(), kind=KINDS)
def test_truncated_config(faults, scratch, data, kind):
    _load(faults, scratch, kind, data.draw(faults.truncations(CONFIGS[kind][0].read_bytes())))


@FAST
@given(data=st.data(), kind=KINDS)
def test_flipped_bytes(faults, scratch, data, kind):
    _load(faults, scratch, kind, data.draw(faults.flips(CONFIGS[kind][0].read_bytes())))


@FAST
@given(data=st.data(), kind=KINDS)
def test_random_bytes(faults, scratch, data, kind):
    text = data.draw(st.one_of(faults.garbage(), st.text(max_size=200).map(str.encode)))
    assert _load(faults, scratch, kind, text).error is not None


def _paths(tree, prefix=()) -> list[tuple]:
    """Every key path of a nested mapping."""
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


ODD = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                st.text(max_size=8), st.lists(st.integers(), max_size=3),
                st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@FAST
@given(data=st.data(), kind=KINDS, value=ODD)
def test_a_value_of_any_type(faults, scratch, data, kind, value):
    tree = yaml.safe_load(CONFIGS[kind][0].read_text())
    where = data.draw(st.sampled_from(_paths(tree)))
    node = tree
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    _load(faults, scratch, kind, yaml.safe_dump(tree).encode())


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_an_unknown_key_is_named(faults, scratch, kind):
    tree = yaml.safe_load(CONFIGS[kind][0].read_text())
    tree["epochz"] = 3
    got = _load(faults, scratch, kind, yaml.safe_dump(tree).encode())
    assert got.error is not None and "epochz" in str(got.error)


def test_classification_model_default_is_the_strict_one():
    assert load_config.__defaults__ == (ClassificationConfig,)

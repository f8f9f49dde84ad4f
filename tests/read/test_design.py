"""Reading designs and readers files: presets, YAML files, and clear errors for damaged or wrong ones; a
database without a reading plan is refused."""

import pytest

from sarcomri.errors import InputError
from sarcomri.read.design import PRESETS, load_design, load_readers, to_scale
from sarcomri.read.store import ReadingStore


def test_presets_and_files_load(tmp_path):
    assert load_design("sarcoma") == PRESETS["sarcoma"] and load_design("sarcoma") is not PRESETS["sarcoma"]
    (tmp_path / "d.yaml").write_text("scale: call_confidence\nsessions: [first, ai_assisted]\nwashout_days: 7\n")
    assert load_design(tmp_path / "d.yaml").washout_days == 7
    (tmp_path / "r.yaml").write_text("readers:\n  - {name: s1, group: specialist}\n  - {name: p1}\n")
    assert [(r.name, r.group) for r in load_readers(tmp_path / "r.yaml")] == [("s1", "specialist"), ("p1", "reader")]
    assert [to_scale(True, c) for c in ("high", "medium", "low")] == [0, 1, 2]
    assert [to_scale(False, c) for c in ("low", "medium", "high")] == [3, 4, 5]


@pytest.mark.parametrize(("text", "problem"), [
    ("scale: [unclosed\n", "not a valid reading design"),                    # truncated YAML
    ("sessions: [ai_assisted]\n", "not a valid reading design"),             # must start unaided
    ("washout_days: -1\n", "not a valid reading design"),
    ("colour: red\n", "not a valid reading design"),                         # an unknown field
])
def test_bad_design_files_are_refused(tmp_path, text, problem):
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(InputError, match=problem):
        load_design(tmp_path / "d.yaml")
    with pytest.raises(InputError, match="neither a design preset"):
        load_design(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("text", "problem"), [
    ("readers:\n  - {name: s1\n", "not a valid readers file"),             # truncated YAML
    ("readers:\n  - {name: 'a b/c'}\n", "not a valid readers file"),       # not a plain name
    ("readers: []\n", "lists no readers"),
    ("readers:\n  - {name: s1}\n  - {name: s1}\n", "reader names repeat"),
])
def test_bad_readers_files_are_refused(tmp_path, text, problem):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(InputError, match=problem):
        load_readers(tmp_path / "r.yaml")


def test_a_database_without_a_plan_is_refused(tmp_path):
    with pytest.raises(InputError, match="no reading plan in this database"):
        ReadingStore(f"sqlite:///{tmp_path / 'empty.sqlite'}")

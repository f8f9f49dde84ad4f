"""The stage ledger: skip current stages, rerun changed ones and what follows them, clear stale folders."""

import json

import pytest

from sarcomri.stages import Stage, run_stages, stage_key


def _stages(run, calls, sections, fail=None):
    def make(name):
        def body():
            calls.append(name)
            if fail == name:
                (run / name).mkdir(exist_ok=True)
                (run / name / "partial").write_text("x")
                raise RuntimeError("crash")
            (run / name).mkdir(exist_ok=True)
            (run / name / "out.txt").write_text(json.dumps(sections[name]))
        return body
    return [Stage("a", sections["a"], make("a"), folders=["a"], outputs=["a/out.txt"]),
            Stage("b", sections["b"], make("b"), folders=["b"], outputs=["b/out.txt"], after=["a"]),
            Stage("c", sections["c"], make("c"), folders=["c"], outputs=["c/out.txt"])]


def test_rerun_skips_then_redoes_changed_and_downstream(tmp_path):
    sections = {"a": {"x": 1}, "b": {"y": 1}, "c": {"z": 1}}
    calls = []
    assert run_stages(tmp_path, _stages(tmp_path, calls, sections), log=lambda m: None) == dict.fromkeys("abc", "ran")
    calls.clear()
    assert set(run_stages(tmp_path, _stages(tmp_path, calls, sections), log=lambda m: None).values()) == {"skipped"}
    assert calls == []
    (tmp_path / "b" / "stale.txt").write_text("old")
    sections["a"] = {"x": 2}  # a changes: a and b (after a) rerun, c does not
    status = run_stages(tmp_path, _stages(tmp_path, calls, sections), log=lambda m: None)
    assert status == {"a": "ran", "b": "ran", "c": "skipped"} and calls == ["a", "b"]
    assert not (tmp_path / "b" / "stale.txt").exists()  # the folder of a changed stage is cleared first


def test_crash_keeps_partial_work_and_missing_output_reruns(tmp_path):
    sections = {"a": {"x": 1}, "b": {"y": 1}, "c": {"z": 1}}
    calls = []
    with pytest.raises(RuntimeError):
        run_stages(tmp_path, _stages(tmp_path, calls, sections, fail="b"), log=lambda m: None)
    ledger = json.loads((tmp_path / "stages.json").read_text())
    assert ledger["a"]["finished"] and ledger["b"]["finished"] is None
    calls.clear()
    run_stages(tmp_path, _stages(tmp_path, calls, sections), log=lambda m: None)
    assert calls == ["b", "c"] and (tmp_path / "b" / "partial").exists()  # same key: resumed, not wiped
    (tmp_path / "c" / "out.txt").unlink()
    calls.clear()
    run_stages(tmp_path, _stages(tmp_path, calls, sections), log=lambda m: None)
    assert calls == ["c"]


def test_stage_key_depends_on_section_and_upstream():
    assert stage_key({"a": 1}) == stage_key({"a": 1})
    assert stage_key({"a": 1}) != stage_key({"a": 2})
    assert stage_key({"a": 1}, ["k1"]) != stage_key({"a": 1}, ["k2"])


def test_stage_that_does_not_write_its_outputs_fails(tmp_path):
    st = Stage("a", {}, lambda: None, folders=["a"], outputs=["a/out.txt"])
    with pytest.raises(RuntimeError, match="did not write"):
        run_stages(tmp_path, [st], log=lambda m: None)

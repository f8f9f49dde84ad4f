"""`--json` of the commands that print a result: stdout is one JSON object with the documented keys (and
nothing else: no progress bar, no table). The training commands' --json is tested where they are trained
(tests/e2e/test_classify_cli.py, tests/seg3d/test_cli_segment.py, tests/seg2d/test_seg2d_transfer.py)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return json.loads(res.stdout)


def test_splits_make_json(tiny_cohort, tmp_path):
    out = _json(["splits", "make", tiny_cohort, "-o", tmp_path / "splits.csv", "--folds", "3", "--json"])
    assert set(out) == {"out", "scheme", "seed", "patients", "folds", "counts", "leakage_check"}
    assert out["patients"] == 12 and out["folds"] == 3 and out["leakage_check"] == "passed"
    counts = pd.DataFrame(out["counts"])
    assert set(counts.columns) == {"repeat", "fold", "role", "label", "patients"}
    assert counts[counts["role"] == "test"]["patients"].sum() == 12  # each patient tested once
    assert (tmp_path / "splits.csv").is_file()


def test_segment_evaluate_json(tiny_cohort, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for pid in ("P000", "P001", "P002"):
        shutil.copy(tiny_cohort / "masks" / pid / "T2axi.nii.gz", pred / f"{pid}.nii.gz")
    out = _json(["segment", "evaluate", pred, tiny_cohort, "--by", "center", "-o", tmp_path / "per_case.csv",
                 "--json"])
    assert set(out) == {"per_case", "summary", "out", "summary_out"}
    assert [r["case"] for r in out["per_case"]] == ["P000", "P001", "P002"]
    assert all(r["dice"] == 1.0 for r in out["per_case"])
    assert {r["stratum"] for r in out["summary"]} == {"sequence", "center"}
    assert out["out"] == str(tmp_path / "per_case.csv") and out["summary_out"] is None


def test_study_run_json_gives_each_stage_and_its_outputs(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump({"name": "tiny", "report": False,
                                   "synth": {"patients": 4, "size": 16, "slices": 4, "sequences": ["T2axi"]}}))
    out = _json(["study", "run", cfg, "--run-dir", tmp_path / "run", "--json"])
    assert set(out) == {"name", "run_dir", "seconds", "ran", "stages", "cohort", "report"}
    assert out["ran"] == ["cohort"] and out["report"] is None
    (stage,) = out["stages"]
    assert stage["name"] == "cohort" and stage["status"] == "ran" and stage["seconds"] >= 0
    assert stage["outputs"] == [str((tmp_path / "run" / "synthetic" / "cohort.json").resolve())]
    again = _json(["study", "run", cfg, "--run-dir", tmp_path / "run", "--json", "-q"])
    assert again["ran"] == [] and again["stages"][0]["status"] == "skipped"


def test_synth_json(tmp_path):
    out = _json(["synth", "-n", "4", "--size", "16", "--slices", "4", "--sequences", "T2axi,ADC", "-o",
                 tmp_path / "c", "--json"])
    assert out["patients"] == 4 and sum(out["labels"].values()) == 4 and out["dicom"] is None
    assert [s["sequence"] for s in out["series"]] == ["T2axi", "ADC"]
    assert 0.5 < out["ideal_observer_auc"] <= 1

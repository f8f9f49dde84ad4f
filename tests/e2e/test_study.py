"""`sarcomri study run` end to end on a tiny synthetic cohort: DICOM round trip, classification, readers;
a rerun skips every stage; a changed section reruns that stage and what follows it only."""

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort

runner = CliRunner()


def _write(path, cfg):
    path.write_text(yaml.safe_dump(cfg))
    return path


def _config(**over):
    return {
        "name": "tiny-study",
        "synth": {"task": "sarcoma", "patients": 20, "seed": 5, "sequences": ["T2axi", "ADC"], "size": 40,
                  "slices": 8},
        "dicom_roundtrip": True,
        "classification": {
            "positive_label": "sarcoma", "sequences": ["T2axi", "ADC"],
            "splits": {"scheme": "kfold", "folds": 2, "repeats": 2, "val_ratio": 0.0, "seed": 1},
            "slices": {"mode": "tumour", "size": 32}, "model": {"name": "mobilenetv2_050"},
            "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "sampling": "balanced", "threads": 1},
        },
        "report": False,
        **over,
    }


def test_study_run_rerun_and_change(tmp_path):
    run = tmp_path / "run"
    cfg = _write(tmp_path / "study.yaml", _config())
    res = runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output + repr(res.exception)
    for name in ("config.yaml", "versions.json", "seeds.json", "stages.json", "study.json", "id_map.csv",
                 "classification/predictions.parquet", "readers/readers.csv", "readers/tables/accuracy.csv",
                 "readers/tables/tests.csv"):
        assert (run / name).is_file(), name
    seeds = json.loads((run / "seeds.json").read_text())
    assert seeds["synthetic_cohort"] == 5 and seeds["classification"]["splits"] == 1
    # the study's cohort is the de-identified ingest: no synthetic id reaches the classification or the reads
    cohort = Cohort.load(run / "cohort")
    ids = set(pd.read_csv(run / "id_map.csv", dtype=str)["synthetic_id"])
    assert not ids & set(cohort.patients["patient_id"])
    reads = pd.read_csv(run / "readers" / "readers.csv", dtype={"patient_id": str})
    scored = set(pd.read_csv(run / "classification" / "tables" / "likelihood.csv", dtype=str)["patient_id"])
    assert set(reads["patient_id"]) == scored and scored <= set(cohort.patients["patient_id"])
    assert {"first", "ai_assisted"} == set(reads["session"])
    acc = pd.read_csv(run / "readers" / "tables" / "accuracy.csv")
    assert {"CNN"} < set(acc["interpreter"]) and set(acc["sequence"]) == {"T2axi", "ADC"}
    summary = json.loads((run / "study.json").read_text())
    assert 0 < summary["ideal_observer_auc"] <= 1 and set(summary["per_sequence_auc"]) == {"T2axi", "ADC"}

    res = runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(run)])
    assert res.exit_code == 0 and "0 stage(s) ran" in res.output, res.output

    weights = {p: p.stat().st_mtime for p in run.glob("classification/models/*/*/weights.pt")}
    changed = _config()
    changed["readers"] = {"cut": 0.2}
    res = runner.invoke(app, ["study", "run", str(_write(tmp_path / "study.yaml", changed)), "--run-dir", str(run)])
    assert res.exit_code == 0 and "1 stage(s) ran (readers)" in res.output, res.output
    assert {p: p.stat().st_mtime for p in weights} == weights


def test_study_config_errors_name_the_section(tmp_path):
    bad = _config()
    bad["classification"]["train"]["epochs"] = 0
    res = runner.invoke(app, ["study", "run", str(_write(tmp_path / "s.yaml", bad)), "--run-dir", str(tmp_path / "r")])
    assert res.exit_code != 0
    assert "classification.train.epochs" in str(res.exception)

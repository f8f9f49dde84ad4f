"""`sarcomri classify run|ensemble|combine` end to end on a small synthetic cohort (tiny images, 1 epoch)."""

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.splits import check_predictions_against_splits
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import synthesise_cohort

runner = CliRunner()


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls") / "cohort"
    synthesise_cohort(root, task="sarcoma", n_patients=30, seed=3, sequences=["T2axi", "DWI_b0", "DWI_b1000", "ADC"],
                      protocol=Protocol(fov_mm=240.0, size=40, slices=8))
    return root


def _config(tmp_path, cohort, **over):
    cfg = {
        "name": "tiny", "cohort": str(cohort), "positive_label": "sarcoma", "sequences": ["T2axi", "ADC"],
        "splits": {"scheme": "kfold", "folds": 2, "repeats": 2, "val_ratio": 0.0, "seed": 1},
        "slices": {"mode": "tumour", "size": 32},
        "model": {"name": "mobilenetv2_050"},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "augmentation": "sarcoma", "sampling": "balanced"},
        "clinical_columns": ["age"],
        **over,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_classify_run_ensemble_combine(small_cohort, tmp_path):
    cfg = _config(tmp_path, small_cohort)
    run = tmp_path / "run"
    res = runner.invoke(app, ["classify", "run", str(cfg), "--run-dir", str(run), "--quiet"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "ideal-observer AUC" in res.output and "image + clinical" in res.output
    preds = pd.read_parquet(run / "predictions.parquet")
    check_predictions_against_splits(preds, pd.read_csv(run / "splits.csv", dtype={"patient_id": str}))
    assert preds["model"].nunique() == 2 * 2 * 2
    per_seq = pd.read_csv(run / "tables" / "per_sequence.csv")
    assert list(per_seq["sequence"]) == ["T2axi", "ADC"] and per_seq["auc"].between(0, 1).all()
    ens = pd.read_csv(run / "tables" / "ensembles.csv")
    assert set(ens["n_models"]) == {1}  # 2 repeats: each leave-one-out ensemble holds the other repeat's model
    mtimes = {p: p.stat().st_mtime for p in run.glob("models/*/*/weights.pt")}
    res = runner.invoke(app, ["classify", "run", str(cfg), "--run-dir", str(run), "--json"])
    assert res.exit_code == 0 and {p: p.stat().st_mtime for p in mtimes} == mtimes  # finished jobs skipped
    out = json.loads(res.stdout)  # --json: the JSON only, no progress bar
    assert out["models"] == 8 and [r["sequence"] for r in out["per_sequence"]] == ["T2axi", "ADC"]
    assert out["per_sequence"][0]["auc"] == pytest.approx(per_seq["auc"][0]) and out["clinical"]
    assert {"name", "run_dir", "slice_predictions", "predictions", "combined", "ideal_observer_auc"} <= set(out)
    ens = json.loads(runner.invoke(app, ["classify", "ensemble", str(run), "--json"]).stdout)
    assert ens["per_sequence"] == out["per_sequence"] and ens["aggregation"] == "mean"
    comb = json.loads(runner.invoke(app, ["classify", "combine", str(run), "--top", "2", "--json"]).stdout)
    assert [r["sequences"] for r in comb["combinations"]][2:] == ["average of top 2"]  # the top 2, their mean
    assert {"threshold", "ss_avg"} <= set(comb["summed_threshold"])

    res = runner.invoke(app, ["classify", "combine", str(run), "--top", "3"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    combos = pd.read_csv(run / "tables" / "combinations.csv")
    assert sorted(combos["sequences"]) == ["ADC", "T2axi", "T2axi+ADC"]
    assert "Top 3 sequence combinations" in res.output

    changed = _config(tmp_path, small_cohort, train={"epochs": 2})
    res = runner.invoke(app, ["classify", "run", str(changed), "--run-dir", str(run), "--quiet"])
    assert res.exit_code != 0 and "another config" in str(res.exception) and "train.epochs" in str(res.exception)

"""Each paper preset at its smoke scale (``study run --smoke``) on its synthetic cohort, end to end: the paper's
tables come out, in the report's "As published" section, with the published design kept (CI runs these)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.report.papertables import read_paper_tables
from sarcomri.runs import StudyRun

REPO = Path(__file__).resolve().parents[1]


def run_smoke(name: str, run_dir: Path) -> dict:
    """``sarcomri study run configs/<name>.yaml --smoke --json``: the result, after checking it succeeded."""
    result = CliRunner().invoke(app, ["study", "run", str(REPO / "configs" / f"{name}.yaml"), "--smoke",
                                      "--run-dir", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    return json.loads(result.stdout)


def paper_names(folder: Path) -> set[str]:
    return {entry.name for entry, _ in read_paper_tables(folder)}


def report_text(run_dir: Path) -> str:
    html = StudyRun(run_dir).report_html.read_text()
    assert 'id="published"' in html and "As published" in html
    return html


def test_carcinosarcoma_preset_smoke(tmp_path):
    out = run_smoke("s0-carcinosarcoma", tmp_path / "s0")
    study = StudyRun(tmp_path / "s0")
    assert out["ran"] == ["cohort", "classification", "readers", "paper", "report"]
    assert paper_names(study.paper_dir) == {"carcinosarcoma_table1_patients", "carcinosarcoma_table3_confusion",
                                            "carcinosarcoma_table4_performance", "carcinosarcoma_table5_kappa"}
    table4 = dict(read_paper_tables(study.paper_dir))
    (entry,) = [e for e in table4 if e.name == "carcinosarcoma_table4_performance"]
    assert "endometrial_carcinoma" in entry.note  # printed in the paper's orientation
    # the design kept at the smoke scale: whole image, hold-out with per-sequence validation, central slice
    cfg = study.config.classification_config("c")
    assert cfg.slices.crop == "none" and cfg.splits.scheme == "holdout" and cfg.splits.test_ratio == 0.2
    cls = study.classification
    for seq, ratio in (("T2axi", 0.2), ("ADC", 0.1)):
        splits = pd.read_csv(cls.sequence_splits_path(seq)) if cls.sequence_splits_path(seq).is_file() \
            else pd.read_csv(cls.splits_path)
        train_val = splits[splits["role"] != "test"]
        assert abs((train_val["role"] == "val").mean() - ratio) < 0.06
    likelihood = pd.read_csv(cls.table_path("likelihood"))
    assert likelihood.groupby("sequence")["patient_id"].nunique().max() <= 20  # one central slice per test patient
    report_text(tmp_path / "s0")


def test_sarcoma_preset_smoke(tmp_path):
    out = run_smoke("s1-sarcoma", tmp_path / "s1")
    study = StudyRun(tmp_path / "s1")
    assert "paper" in out["ran"]
    assert {"sarcoma_table1_combinations", "sarcoma_readers_sessions", "sarcoma_model_vs_readers",
            "sarcoma_figure2_error_overlap", "sarcoma_misdiagnosed"} <= paper_names(study.paper_dir)
    assert paper_names(study.classification.paper_dir) == {"single_vs_ensemble"}
    cls = study.classification
    trained = cls.trained_sequences()
    left = pd.read_csv(cls.left_out_path)
    assert len(trained) + len(left) == 15 and len(trained) >= 10  # rare sequences may lack a class in a fold
    ensembles = pd.read_csv(cls.table_path("ensembles"))
    assert ensembles["ensemble"].nunique() == 3 and ensembles["n_models"].max() == 2  # leave one repeat out
    splits = pd.read_csv(cls.splits_path)
    assert splits["fold"].nunique() == 3 and splits["repeat"].nunique() == 3 and not (splits["role"] == "val").any()
    html = report_text(tmp_path / "s1")
    assert "Single models vs ensembles" in html


def test_dwi_transfer_preset_smoke(tmp_path):
    out = run_smoke("s2-dwi-transfer", tmp_path / "s2")
    study = StudyRun(tmp_path / "s2")
    assert out["ran"] == ["transfer", "report"]
    assert paper_names(study.transfer.paper_dir) == {"transfer_dice", "transfer_levels", "transfer_cv_stability",
                                                     "transfer_adc_icc"}
    dice = dict((e.name, f) for e, f in read_paper_tables(study.transfer.paper_dir))["transfer_dice"]
    assert dice.filter(like="ci").shape[1] >= 2
    report_text(tmp_path / "s2")


def test_sts_segmentation_preset_smoke(tmp_path):
    out = run_smoke("s3-sts-segmentation", tmp_path / "s3")
    study = StudyRun(tmp_path / "s3")
    assert out["ran"] == ["cohort", "segmentation", "nnunet", "report"]
    tables = dict((e.name, f) for e, f in read_paper_tables(study.segmentation.paper_dir))
    assert set(tables) == {"segmentation_overall", "segmentation_by_site", "segmentation_by_histology"}
    assert list(tables["segmentation_overall"]["model"]) == ["T1", "T2FS", "T1CEFS", "T1+T2FS", "T1+T1CEFS",
                                                             "T2FS+T1CEFS", "T1+T2FS+T1CEFS"]
    datasets = sorted(p.name for p in study.nnunet_dir.iterdir())
    assert len(datasets) == 7 and datasets[0] == "Dataset601_STS_T1"
    folds = json.loads((study.nnunet_dir / datasets[0] / "splits_final.json").read_text())
    splits = pd.read_csv(study.segmentation.splits_path, dtype={"patient_id": str})
    assert [sorted(f["val"]) for f in folds] == [
        sorted(g.loc[g["role"] == "test", "patient_id"]) for _, g in splits.groupby("fold")]
    report_text(tmp_path / "s3")


@pytest.mark.parametrize("name", ["s0-carcinosarcoma", "s3-sts-segmentation"])
def test_a_smoke_run_on_the_users_cohort_samples_it(name, tmp_path):
    """--smoke --cohort: the preset's smoke scale on a stratified sample of the user's cohort (here the cohort a
    smoke run synthesised), planned without running."""
    from sarcomri.config import load_study_config
    from sarcomri.studyplan import plan_study

    cfg = load_study_config(REPO / "configs" / f"{name}.yaml", smoke=True, cohort=tmp_path / "mine")
    assert cfg.samples() and cfg.patients and cfg.synth is None
    plan = plan_study(cfg, tmp_path / "run")
    assert plan["stages"][0]["name"] == "cohort" and "sample" in plan["stages"][0]["folders"]

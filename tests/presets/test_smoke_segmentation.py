"""The DWI transfer and soft-tissue sarcoma presets at their smoke scale, end to end (CI runs them), and the smoke
scale on a user's cohort (a stratified sample)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from presets.smoke import REPO, paper_names, report_text, run_smoke
from sarcomri.report.papertables import read_paper_tables
from sarcomri.runs import StudyRun


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
    from sarcomri.study_config import load_study_config
    from sarcomri.studyplan import plan_study

    cfg = load_study_config(REPO / "configs" / f"{name}.yaml", smoke=True, cohort=tmp_path / "mine")
    assert cfg.samples() and cfg.patients and cfg.synth is None
    plan = plan_study(cfg, tmp_path / "run")
    assert plan["stages"][0]["name"] == "cohort" and "sample" in plan["stages"][0]["folders"]

"""The carcinosarcoma preset at its smoke scale, end to end (CI runs it): the paper's tables in the paper's
orientation, the design kept."""

from __future__ import annotations

import pandas as pd

from presets.smoke import paper_names, report_text, run_smoke
from sarcomri.report.papertables import read_paper_tables
from sarcomri.runs import StudyRun


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

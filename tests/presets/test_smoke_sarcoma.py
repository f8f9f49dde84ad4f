"""The sarcoma preset at its smoke scale, end to end (CI runs it): reader groups, error overlap, single models vs
ensembles, the leave-one-repeat-out design kept."""

from __future__ import annotations

import pandas as pd

from presets.smoke import paper_names, report_text, run_smoke
from sarcomri.runs import StudyRun


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

"""`study run`: every stage that reads the cohort has the cohort's content in its key, so a changed label reruns
those stages (their folders cleared first) and an unchanged cohort skips them. The stages' bodies are stubs here:
what is tested is the ledger's decision."""

import pandas as pd

from sarcomri import study
from sarcomri.config import StudyConfig
from sarcomri.stages import run_stages


def _stubbed(cfg, run, calls):
    out = study.stages(cfg, run, log=lambda m: None)
    for st in out:
        def body(st=st):
            calls.append(st.name)
            for o in st.outputs:
                (run / o).parent.mkdir(parents=True, exist_ok=True)
                (run / o).write_text("x")
        st.run = body
    return out


def test_a_changed_cohort_reruns_the_stages_that_read_it(tiny_cohort, tmp_path):
    cfg = StudyConfig(name="s", cohort=str(tiny_cohort), classification={"sequences": ["T2axi"]},
                      segmentation={"sequences": ["T2axi"]}, report=True)
    run = tmp_path / "run"
    calls = []
    assert set(run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None).values()) == {"ran"}
    calls.clear()
    assert set(run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None).values()) == {"skipped"}
    (run / "classification" / "stale.txt").write_text("made from the old labels")

    table = pd.read_csv(tiny_cohort / "patients.csv", dtype=str)
    table.loc[table["patient_id"] == "P006", "label"] = "sarcoma"
    table.to_csv(tiny_cohort / "patients.csv", index=False)
    status = run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None)
    assert status == {"cohort": "skipped", "classification": "ran", "segmentation": "ran", "report": "ran"}
    assert not (run / "classification" / "stale.txt").exists()

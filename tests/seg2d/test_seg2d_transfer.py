"""The transfer study end to end on a tiny two-site cohort: tables and their shapes, nested fractions, no
patient in training and test, resumption that skips finished models, and the presets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.splits import LeakageError
from sarcomri.seg2d.config import FineTuneSettings, RadiomicsSettings, TransferStudyConfig, load_transfer_config
from sarcomri.seg2d.train import load_network
from sarcomri.seg2d.transfer import Job, predict_job, run_transfer_study

from .conftest import TINY_DATA, TINY_NET, TINY_TRAIN

REPO = Path(__file__).resolve().parents[2]
FRACTIONS = [0.02, 0.05, 0.5, 1.0]
LABELS = ["source", "target", "transfer-L1", "transfer-L3", "aggregated"]


def _config(cohort: Path) -> TransferStudyConfig:
    return TransferStudyConfig(
        name="tiny-transfer", cohort=str(cohort), test_ratio=0.25, fractions=FRACTIONS, levels=["L1", "L3"],
        network=TINY_NET, data=TINY_DATA, train=TINY_TRAIN, finetune=FineTuneSettings(epochs=1, lr=1e-3),
        radiomics=RadiomicsSettings(sequence="ADC", scale=0.001, bin_width=0.1))


@pytest.mark.slow
def test_transfer_study_end_to_end_then_resume(pair_cohort, tmp_path):
    cfg = _config(pair_cohort)
    cfg_file = tmp_path / "study.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["segment", "transfer-study", str(cfg_file), "--run-dir", str(run)])
    assert res.exit_code == 0, res.output
    assert "Mean DSC, target test set" in res.output and "paper.csv" in res.output
    res = CliRunner().invoke(app, ["segment", "transfer-study", str(cfg_file), "--run-dir", str(run), "--json"])
    assert res.exit_code == 0, res.output  # a rerun: every model done already, the tables again, as JSON only
    out = json.loads(res.stdout)
    assert {"run_dir", "tables", "figure", "summary", "anova", "reliability"} <= set(out)
    assert {r["test_set"] for r in out["summary"]} == {"source", "target", "combined"}

    # splits: a hold-out per domain, nobody in both roles, source = cervix and target = corpus
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    assert not splits.duplicated(["domain", "patient_id"]).any()
    assert splits.groupby(["domain", "role"]).size().to_dict() == {
        ("source", "test"): 2, ("source", "train"): 4, ("target", "test"): 2, ("target", "train"): 6}
    sites = pd.read_csv(pair_cohort / "patients.csv").set_index("patient_id")["site"]
    assert set(sites[splits.loc[splits["domain"] == "source", "patient_id"]]) == {"cervix"}
    test = set(splits.loc[splits["role"] == "test", "patient_id"])

    # nested fractions: each subset inside the next, ceil(f x 6) patients, at least one
    subsets = pd.read_csv(run / "subsets.csv", dtype={"patient_id": str})
    sets = [set(subsets.loc[np.isclose(subsets["fraction"], f), "patient_id"]) for f in FRACTIONS]
    assert [len(s) for s in sets] == [1, 1, 3, 6]
    assert all(a <= b for a, b in zip(sets, sets[1:], strict=False))
    assert sets[-1] == set(splits.loc[(splits["domain"] == "target") & (splits["role"] == "train"), "patient_id"])

    # no model saw a test patient; 2% and 5% (the same patient) share one model
    models = pd.read_csv(run / "tables" / "models.csv")
    assert len(models) == 1 + 4 * 3  # source + (target, 2 transfer levels, aggregated) x 3 distinct subsets
    for folder in models["folder"]:
        _, _, meta = load_network(run / folder)
        assert not {p.split("/", 1)[1] for p in meta["train"]} & test, folder
    assert "0.02 0.05" in set(models["fractions"])

    per_case = pd.read_csv(run / "tables" / "per_case.csv", dtype={"patient_id": str}, keep_default_na=False)
    assert len(per_case) == (1 + 4 * len(FRACTIONS)) * 4  # models x fractions x 4 test patients
    assert list(per_case.columns[:8]) == ["model", "kind", "level", "fraction", "n_target_train", "n_source_train",
                                          "test_set", "patient_id"]
    assert set(per_case["patient_id"]) == test and per_case["dice"].between(0, 1).all()
    agg = per_case[per_case["model"] == "aggregated"]
    assert set(agg["n_source_train"]) == {4} and set(agg["n_target_train"]) == {1, 3, 6}
    d2 = per_case[np.isclose(per_case["fraction"], 0.02)].set_index(["model", "patient_id"])["dice"]
    d5 = per_case[np.isclose(per_case["fraction"], 0.05)].set_index(["model", "patient_id"])["dice"]
    pd.testing.assert_series_equal(d2.sort_index(), d5.sort_index())
    for model in LABELS:
        assert (run / "predictions" / model).is_dir()

    paper = pd.read_csv(run / "tables" / "paper.csv")
    assert len(paper) == 3 * len(LABELS) and paper.shape[1] == 2 + 1 + len(FRACTIONS)
    assert list(paper["test_set"].unique()) == ["source", "target", "combined"]
    summary = pd.read_csv(run / "tables" / "summary.csv")
    assert set(summary.loc[summary["test_set"] == "combined", "n"]) == {4}
    anova = pd.read_csv(run / "tables" / "anova.csv")
    assert len(anova) == 3 * len(FRACTIONS) and set(anova["models"]) == {4}
    rel = pd.read_csv(run / "tables" / "reliability.csv")
    assert set(rel["model"]) == set(LABELS) and set(rel["test_set"]) == {"source", "target", "combined"}
    assert (rel["icc_form"] == "ICC(2,1)").all()
    assert (run / "figures" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"

    # resume: nothing is retrained; a removed model (and only it) is trained again
    events: list[dict] = []
    tables = run_transfer_study(cfg, run, progress=events.append)
    assert not [e for e in events if e["event"] == "model_start"]
    assert len([e for e in events if e["event"] == "model_skipped"]) == len(models)
    pd.testing.assert_frame_equal(tables["per_case"], per_case, check_dtype=False)
    shutil.rmtree(run / "models" / "target" / "n003")
    shutil.rmtree(run / "predictions" / "target" / "n003")
    shutil.rmtree(run / "tables")
    events.clear()
    tables = run_transfer_study(cfg, run, progress=events.append)
    started = [(e["model"], e["n_target"]) for e in events if e["event"] == "model_start"]
    assert started == [("target", 3)]
    keep = per_case["model"] != "target"
    pd.testing.assert_frame_equal(tables["per_case"][keep.to_numpy()].reset_index(drop=True),
                                  per_case[keep].reset_index(drop=True), check_dtype=False)

    # a model trained on a test patient is refused before it predicts
    bad = Job("target", "target", "", 1, [("target", sorted(test)[0])], "models/target/n001", 0)
    with pytest.raises(LeakageError):
        predict_job(cfg, bad, None, [("target", sorted(test)[0])], tmp_path / "elsewhere")


def test_presets_load():
    demo = load_transfer_config(REPO / "configs" / "demo-transfer.yaml")
    assert demo.synth is not None and demo.cohort is None
    paper = load_transfer_config(REPO / "configs" / "transfer-dwi.yaml")
    assert paper.network.encoder == "tu-xception41" and paper.fractions == [0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    assert paper.data.sequences == ["DWI_b0", "DWI_b1000", "ADC"] and paper.levels == ["L1", "L2", "L3"]


def test_the_learning_curve_names_the_source_and_target_patients():
    from sarcomri.seg2d.config import TransferStudyConfig
    from sarcomri.seg2d.tables import _domain_note

    one = TransferStudyConfig.model_validate({"name": "t", "cohort": "data/pelvis",
                                             "domain": {"column": "site", "source": "cervix", "target": "corpus"}})
    two = TransferStudyConfig.model_validate({"name": "t", "cohort": "data/cervical", "target_cohort": "x/uterine"})
    assert one.domain_names() == {"source": "cervix", "target": "corpus"}
    assert two.domain_names() == {"source": "cervical", "target": "uterine"}
    names = one.domain_names()
    assert [_domain_note(t, names) for t in ("source", "target", "combined")] == [
        " (cervix)", " (corpus)", " (cervix + corpus)"]
    assert _domain_note("source", None) == ""

"""`sarcomri study plan` and the scales of a study preset: the published numbers, the split counts on a cohort
of the paper's size, the checks against a cohort, and the smoke scale's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.errors import InputError
from sarcomri.scale import ScaleError, apply_scale, check_smoke, deep_merge, scale_changes
from sarcomri.study_config import load_study_config
from sarcomri.studyplan import lookup, plan_study, same_value

REPO = Path(__file__).resolve().parents[1]
PRESETS = {name: REPO / "configs" / f"{name}.yaml"
           for name in ("s0-carcinosarcoma", "s1-sarcoma", "s2-dwi-transfer", "s3-sts-segmentation")}


def tables_only_cohort(folder: Path, counts: dict[str, int], sequences: list[str], positive: str,
                       masks: bool = True, extra: dict[str, list] | None = None) -> Path:
    """A cohort folder of tables only (no images: the plan reads tables unless --check-files)."""
    folder.mkdir(parents=True)
    ids, labels = [], []
    for label, n in counts.items():
        for i in range(n):
            ids.append(f"{label[:2].upper()}{i:04d}")
            labels.append(label)
    patients = pd.DataFrame({"patient_id": ids, "label": labels, **(extra or {})})
    rows = [{"patient_id": p, "sequence": s, "image": f"images/{p}/{s}.nii.gz",
             "mask": f"masks/{p}/{s}.nii.gz" if masks else None, "spacing_x": 1.0, "spacing_y": 1.0,
             "spacing_z": 4.0, "size_x": 64, "size_y": 64, "size_z": 12} for p in ids for s in sequences]
    patients.to_csv(folder / "patients.csv", index=False)
    pd.DataFrame(rows).to_csv(folder / "series.csv", index=False)
    meta = {"schema_version": 1, "labels": list(counts), "positive_label": positive,
            "rows": {"patients.csv": len(patients), "series.csv": len(rows)}}
    (folder / "cohort.json").write_text(json.dumps(meta))
    return folder


def published_rows(plan: dict) -> dict[str, dict]:
    return {row["item"]: row for row in plan["published"]}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_published_value_of_a_preset_is_what_the_study_uses(name, tmp_path):
    cfg = load_study_config(PRESETS[name], smoke=True)  # loads without a cohort at the smoke scale
    assert cfg.scale == "smoke" and cfg.published
    full = load_study_config(PRESETS[name], cohort=tmp_path / "any")  # the full scale on a user's cohort
    plan = plan_study(full, tmp_path / "run", raw=yaml.safe_load(PRESETS[name].read_text()))
    differ = [(r["item"], r["paper"], r["preset"]) for r in plan["published"] if r["match"] is not True]
    assert not differ, f"{name}: values that differ from the paper: {differ}"
    assert plan["scale"] == "full"


def test_s0_plan_prints_the_published_carcinosarcoma_protocol(tmp_path):
    cohort = tables_only_cohort(tmp_path / "cs", {"carcinosarcoma": 52, "endometrial_carcinoma": 279},
                                ["T2axi", "ADC", "fsT1CEaxi"], "carcinosarcoma")
    result = CliRunner().invoke(app, ["study", "plan", str(PRESETS["s0-carcinosarcoma"]), "--cohort", str(cohort),
                                      "--run-dir", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    c = plan["protocol"]["classification"]
    assert c["splits"]["scheme"] == "holdout" and c["splits"]["test_ratio"] == 0.2
    assert c["slices"]["crop"] == "none" and c["slices"]["size"] == 240
    assert c["train"]["lr"] == 1e-4 and c["train"]["eps"] == 1e-7 and c["train"]["betas"] == [0.9, 0.999]
    assert plan["design"]["classification"]["per_sequence"] == {
        "T2axi": {"epochs": 100, "val_ratio": 0.2}, "ADC": {"epochs": 100, "val_ratio": 0.1},
        "fsT1CEaxi": {"epochs": 200, "val_ratio": 0.2}}
    (fold,) = plan["splits"]  # the paper's counts: 265 training (42 CS, 223 EC), 66 test (10 CS, 56 EC)
    train = {k: fold["train"][k] + fold["val"][k] for k in fold["train"]}
    assert train == {"carcinosarcoma": 42, "endometrial_carcinoma": 223}
    assert fold["test"] == {"carcinosarcoma": 10, "endometrial_carcinoma": 56}
    assert plan["cohort"]["patients"] == 331 and plan["ok"] is True
    assert [s["name"] for s in plan["stages"]][:2] == ["cohort", "classification"]


def test_s1_plan_prints_the_published_sarcoma_design(tmp_path):
    cfg = load_study_config(PRESETS["s1-sarcoma"], cohort=tmp_path / "none")
    plan = plan_study(cfg, tmp_path / "run")
    d = plan["design"]["classification"]
    assert (d["sequences"], d["models_per_sequence"], d["models"]) == (15, 144, 15 * 144)
    assert (d["ensembles_per_sequence"], d["ensemble_size"], d["combinations"]) == (24, 23, 32767)
    assert d["slices_per_model"]["T2axi"] == 1_750_000 and d["validation"].startswith("none")
    assert plan["checks"][0]["level"] == "error"  # the cohort folder does not exist: said, not a traceback
    assert plan["ok"] is False


def test_s2_plan_gives_the_published_training_sizes(tmp_path):
    cfg = load_study_config(PRESETS["s2-dwi-transfer"], cohort=tmp_path / "none")
    t = plan_study(cfg, tmp_path / "run")["design"]["transfer"]
    assert t["training_sizes_at_256"] == [5, 13, 26, 51, 128, 256]
    assert t["levels"] == ["L1", "L2", "L3"]


def test_plan_checks_sequences_masks_and_labels_against_the_cohort(tmp_path):
    cohort = tables_only_cohort(tmp_path / "c", {"carcinosarcoma": 10, "endometrial_carcinoma": 30},
                                ["T2axi", "ADC"], "carcinosarcoma", masks=False)
    result = CliRunner().invoke(app, ["study", "plan", str(PRESETS["s0-carcinosarcoma"]), "--cohort", str(cohort),
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no patient has fsT1CEaxi" in text and "no patient has a tumour mask on T2axi" in text
    assert "not ready" in text


def test_plan_flags_a_fold_without_a_class(tmp_path):
    centers = ["A", "B", "A"] + ["A", "B", "C"] * 13 + ["C"]  # hospital C has no sarcoma
    cohort = tables_only_cohort(tmp_path / "c", {"sarcoma": 3, "leiomyoma": 40},
                                ["T2axi"], "sarcoma", extra={"center": centers})
    config = tmp_path / "study.yaml"
    config.write_text("name: t\nclassification: {sequences: [T2axi], splits: {scheme: kfold, folds: 6}}\n")
    plan = plan_study(load_study_config(config, cohort=cohort), tmp_path / "run")
    assert [c["message"] for c in plan["checks"]] == [
        "classification splits: the rarest class has 3 patients: too few for 6 stratified folds"]
    config.write_text("name: t\nclassification: {sequences: [T2axi], splits: {scheme: groups, group: center}}\n")
    plan = plan_study(load_study_config(config, cohort=cohort), tmp_path / "run")
    assert [row["test"]["sarcoma"] for row in plan["splits"]] == [2, 1, 0]
    assert [c["message"] for c in plan["checks"]] == ["fold 2: the test set has no sarcoma patient"]
    assert not plan["ok"]


def test_a_preset_without_a_cohort_says_how_to_give_one(tmp_path):
    from sarcomri.study import run_study

    cfg = load_study_config(PRESETS["s0-carcinosarcoma"])  # a preset is valid without a cohort: its user gives one
    with pytest.raises(InputError, match=r"no cohort: give --cohort COHORT.*--smoke"):
        run_study(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    plan = plan_study(cfg, tmp_path / "run")
    assert not plan["ok"] and plan["checks"][0]["message"].startswith("no cohort")
    smoke = load_study_config(PRESETS["s0-carcinosarcoma"], smoke=True)
    assert smoke.synth is not None and smoke.synth.task == "carcinosarcoma"
    assert smoke.classification_config("c").slices.size == 64  # shrunk
    assert smoke.classification_config("c").slices.crop == "none"  # the design kept
    on_mine = load_study_config(PRESETS["s0-carcinosarcoma"], smoke=True, cohort=tmp_path / "mine")
    assert on_mine.synth is None and on_mine.cohort == str((tmp_path / "mine").resolve())


def test_smoke_scale_changes_only_the_size_of_the_work():
    check_smoke({"classification": {"train": {"epochs": 1}, "splits": {"repeats": 2}}, "synth": {"patients": 9}})
    with pytest.raises(ScaleError, match="classification.splits.test_ratio"):
        check_smoke({"classification": {"splits": {"test_ratio": 0.5}}})
    with pytest.raises(ScaleError, match="classification.sequences"):
        check_smoke({"classification": {"sequences": ["T2axi"]}})
    with pytest.raises(ScaleError, match="classification.slices.crop"):  # a section named like a size key
        check_smoke({"classification": {"slices": {"size": 32, "crop": "tumour"}}})
    with pytest.raises(ScaleError, match="transfer.finetune.lr"):
        check_smoke({"transfer": {"finetune": {"epochs": 1, "lr": 0.1}}})
    with pytest.raises(ScaleError, match="no smoke scale"):
        apply_scale({"name": "x"}, smoke=True)
    raw = {"name": "x", "a": {"epochs": 100, "lr": 1.0}, "smoke": {"a": {"epochs": 2}}}
    assert apply_scale(raw)["a"]["epochs"] == 100
    smoke = apply_scale({**raw, "scale": "smoke"})
    assert smoke["a"] == {"epochs": 2, "lr": 1.0} and smoke["scale"] == "smoke"
    assert scale_changes(raw) == [{"key": "a.epochs", "full": 100, "smoke": 2}]
    assert deep_merge({"synth": {"task": "a", "size": 9}}, {"synth": {"task": "b"}}) == {"synth": {"task": "b"}}


def test_lookup_and_comparison():
    tree = {"a": {"b": [1, {"c": 0.2}]}}
    assert lookup(tree, "a.b.1.c") == 0.2
    with pytest.raises(KeyError, match="a.x"):
        lookup(tree, "a.x")
    assert same_value(0.2, 0.2000000000001) and not same_value(0.2, 0.21)
    assert same_value([0.9, 0.999], [0.9, 0.999]) and not same_value(True, 1)


@pytest.mark.parametrize("name", list(PRESETS))
def test_docs_protocols_lists_every_published_value_of_each_preset(name, tmp_path):
    from sarcomri.studyplan import published_markdown

    doc = (REPO / "docs" / "protocols.md").read_text()
    plan = plan_study(load_study_config(PRESETS[name]), tmp_path / "run")
    assert published_markdown(plan) in doc, f"docs/protocols.md is out of date for {name}"
    assert f"`configs/{name}.yaml`" in doc

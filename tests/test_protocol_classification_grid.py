"""The papers' classification protocols on a real (tiny) grid: a sequence's own epochs and validation patients,
the ablation that chooses them on validation data, slice-balanced splits, whole-image caches, and the single
models vs ensembles tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sarcomri.classification import ensemble_tables, run_classification
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage
from sarcomri.config import ClassificationConfig
from sarcomri.fingerprint import cohort_fingerprint
from sarcomri.runs import ClassificationRun
from sarcomri.train.grid import artifact_keys, prepare_run, run_grid

TEST = ["repeat", "fold", "patient_id"]


def _config(**extra) -> ClassificationConfig:
    return ClassificationConfig.model_validate({
        "name": "protocol", "cohort": "unused", "sequences": ["T2axi"],
        "splits": {"scheme": "kfold", "folds": 3, "repeats": 1, "val_ratio": 0.25, "seed": 0},
        "slices": {"size": 32},
        "train": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "seed": 3},
        **extra,
    })


def _history(run: ClassificationRun, fold: int) -> dict:
    return json.loads((run.model_folder("T2axi", fold, 0) / "history.json").read_text())


def test_a_sequences_own_epochs_and_validation_patients(tiny_cohort, tmp_path):
    cohort = Cohort.load(tiny_cohort)
    cfg = _config(per_sequence={"T2axi": {"epochs": 1, "val_ratio": 0.4}})
    prepare_run(tmp_path, cohort, cfg, progress=False)
    preds = run_grid(tmp_path, cfg, progress=False)
    run = ClassificationRun(tmp_path, cfg)
    base = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    own = pd.read_csv(run.sequence_splits_path("T2axi"), dtype={"patient_id": str})
    check_no_leakage(own)
    pd.testing.assert_frame_equal(own[own.role == "test"][TEST].reset_index(drop=True),
                                  base[base.role == "test"][TEST].reset_index(drop=True))
    assert (base[base.role == "val"].groupby("fold").size() == 2).all()  # round(0.25 * 8)
    assert (own[own.role == "val"].groupby("fold").size() == 3).all()  # round(0.4 * 8)
    for fold in range(3):
        history = _history(run, fold)
        assert len(history["history"]) == 1 and history["val_patients"] == 3  # epochs 1, not train.epochs 2
        val = set(preds[(preds.fold == fold) & (preds.split == "val")].patient_id)
        assert val == set(own[(own.fold == fold) & (own.role == "val")].patient_id)


def test_keys_follow_the_protocol_the_crop_and_the_balance(tiny_cohort):
    cohort = Cohort.load(tiny_cohort)
    fp = cohort_fingerprint(cohort)
    rel = ClassificationRun(".", _config())
    plain = artifact_keys(cohort, fp, _config())
    own = artifact_keys(cohort, fp, _config(per_sequence={"T2axi": {"epochs": 1}}))
    model, cache, splits = str(rel.model_dir("T2axi")), str(rel.cache_path("T2axi")), str(rel.splits_path)
    assert own[model] != plain[model] and own[cache] == plain[cache] and own[splits] == plain[splits]
    whole = artifact_keys(cohort, fp, _config(slices={"size": 32, "crop": "none"}))
    assert whole[cache] != plain[cache] and whole[model] != plain[model]
    balanced = artifact_keys(cohort, fp, _config(splits={"scheme": "kfold", "folds": 3, "val_ratio": 0.25,
                                                         "balance": "slices"}))
    assert balanced[splits] != plain[splits] and balanced[model] != plain[model]
    ablation = artifact_keys(cohort, fp, _config(ablation={"epochs": [1, 2]}))
    other = artifact_keys(cohort, fp, _config(ablation={"epochs": [1, 3]}))
    folder = str(rel.ablation_folder("T2axi"))
    assert folder not in plain and ablation[folder] != other[folder] and ablation[model] != other[model]


def test_slice_balanced_splits_and_whole_image_cache(tiny_cohort, tmp_path):
    cohort = Cohort.load(tiny_cohort)
    cfg = _config(splits={"scheme": "kfold", "folds": 3, "val_ratio": 0.25, "balance": "slices"},
                  slices={"size": 24, "crop": "none", "test_aggregation": "central"})
    prepare_run(tmp_path, cohort, cfg, progress=False)
    run = ClassificationRun(tmp_path, cfg)
    splits = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    check_no_leakage(splits)
    assert (splits[splits.role == "test"].groupby("fold").size() == 4).all()  # 2 slices each: 8 slices a fold
    assert pd.read_csv(run.skipped_path("T2axi")).empty  # no patient left out
    from sarcomri.data.sliceset import SliceSet

    slices = SliceSet.load(run.cache_path("T2axi"))
    assert slices.images.shape[1:] == (3, 24, 24) and len(slices) == 24  # 12 patients x 2 tumour slices
    assert slices.central.sum() == 12
    # the tiny cohort's images are noise all over: the whole 16 x 16 field of view, its mask 5 x 5 of 16 x 16
    assert slices.masks.mean() == pytest.approx(25 / 256, abs=0.02)


def test_ablation_chooses_on_validation_data_then_the_grid_uses_its_choice(tiny_cohort, tmp_path, monkeypatch):
    cohort = Cohort.load(tiny_cohort)
    cfg = _config(train={"epochs": 5, "batch_size": 16, "lr": 1e-3, "seed": 3},
                  ablation={"epochs": [1, 2], "val_ratios": [0.25, 0.4], "metric": "val_loss"})
    run_classification(cfg, tmp_path, cohort, progress=False)
    run = ClassificationRun(tmp_path, cfg)
    table = pd.read_csv(run.table_path("ablation"))
    assert list(table.columns) == ["sequence", "val_ratio", "epochs", "val_loss", "val_auc", "chosen"]
    assert len(table) == 4 and table.chosen.sum() == 1
    best = table.loc[table.val_loss.idxmin()]
    chosen = table[table.chosen].iloc[0]
    assert (chosen.epochs, chosen.val_ratio) == (best.epochs, best.val_ratio)
    # each ratio's model ran 2 epochs; its rows are its history's validation scores after epoch 1 and 2
    base = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    tested = set(base[(base.fold == 0) & (base.role == "test")].patient_id)
    for ratio, n_val in ((0.25, 2), (0.4, 3)):
        record = json.loads((run.ablation_folder("T2axi", ratio) / "history.json").read_text())
        assert len(record["history"]) == 2 and len(record["val_patients"]) == n_val
        assert not tested & (set(record["val_patients"]) | set(record["train_patients"]))  # test never scored
        rows = table[table.val_ratio == ratio].sort_values("epochs")
        assert rows.val_loss.tolist() == pytest.approx([h["val_loss"] for h in record["history"]])
    own = pd.read_csv(run.sequence_splits_path("T2axi"), dtype={"patient_id": str})
    n_val = {0.25: 2, 0.4: 3}[float(chosen.val_ratio)]
    for fold in range(3):
        history = _history(run, fold)
        assert len(history["history"]) == chosen.epochs and history["val_patients"] == n_val
    assert (own[own.role == "val"].groupby("fold").size() == n_val).all()

    # a rerun trains nothing: the ablation models and the grid's jobs are done
    import sarcomri.train.classifier as classifier

    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(classifier, "fit_classifier", refuse)
    again = run_classification(cfg, tmp_path, cohort, progress=False)
    assert pd.read_csv(run.table_path("ablation")).equals(table) and len(again)


def _predictions() -> pd.DataFrame:
    """A grid's predictions without training: 2 repeats x 2 folds, patients A-D (A, C positive), 2 slices each."""
    p = {"A": [0.9, 0.4], "B": [0.2, 0.7], "C": [0.8, 0.9], "D": [0.6, 0.2]}
    rows = []
    for pid, probs in p.items():
        fold = 0 if pid in "AB" else 1
        for r, pr in enumerate(probs):
            for z in (4, 5):
                rows.append(dict(model=f"T2axi/fold{fold}-rep{r}", sequence="T2axi", repeat=r, fold=fold, split="test",
                                 patient_id=pid, slice_index=z, central=z == 5, label=int(pid in "AC"),
                                 p_positive=pr))
    return pd.DataFrame(rows)


def test_ensemble_tables_write_single_vs_ensemble_and_its_paper_table(tmp_path):
    from sarcomri.classification import open_run
    from sarcomri.io.atomic import write_parquet
    from sarcomri.report.papertables import read_paper_tables

    cfg = _config(ensemble={"likelihood": "vote_share"})
    folder = open_run(cfg, tmp_path / "run")
    run = ClassificationRun(folder)
    write_parquet(run.predictions_path, _predictions())
    tables = ensemble_tables(folder)
    ens = tables["ensembles"].set_index(["ensemble", "patient_id"]).likelihood
    assert ens[(0, "A")] == 0.0 and ens[(1, "A")] == 1.0 and ens[(0, "B")] == 1.0  # one model each: its vote
    table = pd.read_csv(run.table_path("single_vs_ensemble"))
    assert table.kind.tolist() == ["single model", "ensemble"] and table.n.tolist() == [4, 2]
    # singles: rep0 f0 A.9 B.2 -> 1, rep1 f0 A.4 B.7 -> 0, rep0 f1 C.8 D.6 -> .5, rep1 f1 C.9 D.2 -> 1
    # ensembles: e0 is repeat 1 (A .4, B .7 wrong) -> .5, e1 is repeat 0 (D .6 wrong) -> .75
    assert table.accuracy_min.tolist() == [0.0, 0.5] and table.accuracy_max.tolist() == [1.0, 0.75]
    assert table.accuracy_median.tolist() == [0.75, 0.625]
    (entry, frame), = read_paper_tables(run.paper_dir)
    assert entry.name == "single_vs_ensemble" and entry.order == 20 and "vote share" in entry.note
    assert frame.n.tolist() == [4, 2] and frame.accuracy_median.tolist() == [0.75, 0.625]
    mean = ensemble_tables(folder, likelihood="mean_probability")["ensembles"]
    assert mean.set_index(["ensemble", "patient_id"]).likelihood[(1, "D")] == pytest.approx(0.6)


def test_a_cohort_with_several_examinations_per_subject_splits_by_subject(tmp_path):
    import numpy as np
    import SimpleITK as sitk

    from sarcomri.cohort.manifest import CohortWriter

    rng = np.random.default_rng(0)
    root = tmp_path / "exams"
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
        for i in range(18):  # 9 subjects, 2 examinations each; subjects 0-2 sarcoma
            subject = i // 2
            w.add_patient(f"P{i:03d}", "sarcoma" if subject < 3 else "leiomyoma", subject_id=f"S{subject}")
            img = sitk.GetImageFromArray(rng.normal(100, 10, (4, 16, 16)).astype(np.float32))
            m = np.zeros((4, 16, 16), np.uint8)
            m[1:3, 5:10, 6:11] = 1
            mask = sitk.GetImageFromArray(m)
            mask.CopyInformation(img)
            w.add_series(f"P{i:03d}", "T2axi", img, mask)
    cohort = Cohort.load(root)
    cfg = _config(per_sequence={"T2axi": {"val_ratio": 0.3}})
    prepare_run(tmp_path / "run", cohort, cfg, progress=False)
    run = ClassificationRun(tmp_path / "run", cfg)
    for path in (run.splits_path, run.sequence_splits_path("T2axi")):
        table = pd.read_csv(path, dtype={"patient_id": str})
        check_no_leakage(table)
        assert (table.subject_id == "S" + (table.patient_id.str[1:].astype(int) // 2).astype(str)).all()
        assert (table.groupby(["fold", "subject_id"]).role.nunique() == 1).all()
        assert (table[table.role == "test"].groupby("fold").subject_id.nunique() == 3).all()  # 9 subjects / 3
    fp = cohort_fingerprint(cohort)
    alone = Cohort(cohort.patients.drop(columns="subject_id"), cohort.series, cohort.meta, cohort.root)
    assert artifact_keys(cohort, fp, cfg)[str(run.splits_path.relative_to(run.path))] != artifact_keys(
        alone, fp, cfg)[str(run.splits_path.relative_to(run.path))]

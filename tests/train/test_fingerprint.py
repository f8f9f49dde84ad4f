"""Cached work is keyed by what it was made from: the cohort fingerprint, the run record, and a classification
run folder after a label or a series file changed (stop and say what changed, or recompute only what depends
on it; never the old label in the predictions)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri import fingerprint as fpr
from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.config import ClassificationConfig
from sarcomri.fingerprint import cohort_fingerprint, describe_changes, key
from sarcomri.runrecord import InputsChangedError, RunRecord
from sarcomri.train.grid import prepare_run, run_grid


def _set_label(root, pid, label):
    """Edit patients.csv in place, as a user fixing a label would."""
    table = pd.read_csv(root / "patients.csv", dtype=str)
    table.loc[table["patient_id"] == pid, "label"] = label
    table.to_csv(root / "patients.csv", index=False)


def _rewrite_image(root, rel, scale=1.5):
    """Replace one image file's voxels (same size on disk is not required; the grid stays)."""
    img = sitk.ReadImage(str(root / rel))
    new = sitk.GetImageFromArray(sitk.GetArrayFromImage(img) * scale)
    new.CopyInformation(img)
    sitk.WriteImage(new, str(root / rel), useCompression=True)


def test_key_is_stable_and_order_free_for_dicts():
    assert key({"a": 1, "b": [1, 2]}) == key({"b": [1, 2], "a": 1})
    assert key({"a": 1}) != key({"a": 2}) and key([1, 2]) != key([2, 1])
    assert key(np.int64(3), np.float32(0.5)) == key(3, 0.5)


def test_fingerprint_follows_content_not_location(tiny_cohort, tmp_path):
    a = cohort_fingerprint(Cohort.load(tiny_cohort))
    copy = tmp_path / "copy"
    shutil.copytree(tiny_cohort, copy)  # new inodes and times, same bytes
    b = cohort_fingerprint(Cohort.load(copy))
    assert a.key() == b.key() and describe_changes(a, b) == []

    _set_label(copy, "P005", "sarcoma")
    _rewrite_image(copy, "images/P002/ADC.nii.gz")
    c = cohort_fingerprint(Cohort.load(copy), previous=b)
    assert c.key() != b.key()
    said = " | ".join(describe_changes(b, c))
    assert "1 label(s) changed (P005: leiomyoma -> sarcoma)" in said
    assert "1 image file(s) changed (P002/ADC)" in said and "mask" not in said
    assert fpr.key(c.series_key(["P000", "P001"], ["T2axi"])) == fpr.key(b.series_key(["P000", "P001"], ["T2axi"]))
    assert c.series_key(["P002"], ["ADC"]) != b.series_key(["P002"], ["ADC"])


def test_unchanged_files_are_not_read_again(tiny_cohort, monkeypatch):
    first = cohort_fingerprint(Cohort.load(tiny_cohort))
    reads = []
    monkeypatch.setattr(fpr, "_SEEN", {})  # a fresh process: only the previous fingerprint helps
    monkeypatch.setattr(fpr, "file_digest", lambda p: reads.append(p) or "x")
    again = cohort_fingerprint(Cohort.load(tiny_cohort), previous=first)
    assert reads == [] and again.key() == first.key()
    _rewrite_image(tiny_cohort, "images/P001/T2axi.nii.gz")
    cohort_fingerprint(Cohort.load(tiny_cohort), previous=first)
    assert [p.name for p in reads] == ["T2axi.nii.gz"] and reads[0].parent.name == "P001"


def test_run_record_stops_then_removes_only_stale_artifacts(tiny_cohort, tmp_path):
    run = tmp_path / "run"
    fp = cohort_fingerprint(Cohort.load(tiny_cohort))
    record = RunRecord.load(run)
    run.mkdir()
    for name in ("a.csv", "b.csv", "gone.csv"):
        (run / name).write_text(name)
    with pytest.raises(InputsChangedError, match="no record of the inputs"):  # a folder made before records
        record.reconcile(fp, {"a.csv": "k1", "b.csv": "k2"})
    assert record.reconcile(fp, {"a.csv": "k1", "b.csv": "k2", "gone.csv": "k3"}, rerun_changed=True) == [
        "a.csv", "b.csv", "gone.csv"]
    for name in ("a.csv", "b.csv", "gone.csv"):  # recorded first, then made: a rerun trusts them
        (run / name).write_text(name)
    assert RunRecord.load(run).reconcile(fp, {"a.csv": "k1", "b.csv": "k2", "gone.csv": "k3"}) == []
    _set_label(tiny_cohort, "P001", "leiomyoma")  # same label: no change
    _set_label(tiny_cohort, "P002", "leiomyoma")
    changed = cohort_fingerprint(Cohort.load(tiny_cohort))
    record = RunRecord.load(run)
    with pytest.raises(InputsChangedError) as err:
        record.reconcile(changed, {"a.csv": "k1", "b.csv": "k2-new"})
    msg = str(err.value)
    assert "P002: sarcoma -> leiomyoma" in msg and "Out of date: b.csv, gone.csv" in msg and "--rerun-changed" in msg
    assert all((run / n).exists() for n in ("a.csv", "b.csv", "gone.csv"))  # stopping touches nothing
    assert record.reconcile(changed, {"a.csv": "k1", "b.csv": "k2-new"}, rerun_changed=True) == ["b.csv", "gone.csv"]
    assert (run / "a.csv").exists() and RunRecord.load(run).artifacts == {"a.csv": "k1", "b.csv": "k2-new"}


# ----------------------------------------------------------------------------------- classification run folder
def _config():
    return ClassificationConfig.model_validate({
        "name": "fingerprint", "cohort": "unused",
        "sequences": ["T2axi", "ADC"],
        "splits": {"scheme": "kfold", "folds": 3, "repeats": 1, "test_ratio": 0.2, "val_ratio": 0.0,
                   "stratify_by": ["label"], "group": "center", "seed": 0},
        "slices": {"mode": "tumour", "size": 32, "margin": 0.25, "normalisation": "zscore"},
        "model": {"name": "mobilenetv2_050", "weights": None, "allow_download": False, "drop_rate": 0.0},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "patience": 0,
                  "monitor": "val_loss", "augmentation": "none", "sampling": "balanced", "class_weighting": False,
                  "slices_per_epoch": None, "channels_last": True, "seed": 3, "threads": 1},
        "executor": {"kind": "local", "workers": 1},
    })


@pytest.fixture()
def two_sequence_cohort(tmp_path):
    """12 patients (4 sarcoma), T2axi and ADC for everyone, each with its tumour mask; 6 x 16 x 16 voxels."""
    rng = np.random.default_rng(1)
    root = tmp_path / "cohort"
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
        for i in range(12):
            pid = f"P{i:03d}"
            w.add_patient(pid, "sarcoma" if i < 4 else "leiomyoma", center="AB"[i % 2])
            m = np.zeros((6, 16, 16), np.uint8)
            m[2:4, 5:10, 6:11] = 1
            for seq in ("T2axi", "ADC"):
                img = sitk.GetImageFromArray((rng.normal(100, 10, (6, 16, 16)) + 30 * m * (i < 4)).astype(np.float32))
                mask = sitk.GetImageFromArray(m)
                mask.CopyInformation(img)
                w.add_series(pid, seq, img, mask)
    return root


def _stamps(run):
    return {p.relative_to(run).as_posix(): p.stat().st_mtime_ns
            for p in [*run.glob("models/*/*/weights.pt"), *run.glob("cache/*.npz"), run / "splits.csv"]}


def _run(run, root, **kw):
    cfg = _config()
    prepare_run(run, Cohort.load(root), cfg, progress=False, **kw)
    return run_grid(run, cfg, progress=False)


@pytest.mark.slow
def test_classification_reuses_stops_and_recomputes_what_changed(two_sequence_cohort, tmp_path):
    run, root = tmp_path / "run", two_sequence_cohort
    first = _run(run, root)
    stamps = _stamps(run)
    assert len(stamps) == 2 * 3 + 2 + 1
    # unchanged: everything reused, nothing retrained, the same predictions
    pd.testing.assert_frame_equal(_run(run, root), first)
    assert _stamps(run) == stamps

    # a label fixed in patients.csv: the run stops, says what changed, and leaves the folder as it was
    _set_label(root, "P005", "sarcoma")
    with pytest.raises(InputsChangedError) as err:
        _run(run, root)
    msg = str(err.value)
    assert "P005: leiomyoma -> sarcoma" in msg and "splits.csv" in msg and "models/T2axi" in msg
    assert _stamps(run) == stamps
    # --rerun-changed: splits, caches and every model are made again; the new label everywhere
    preds = _run(run, root, rerun_changed=True)
    assert set(preds.loc[preds["patient_id"] == "P005", "label"]) == {1}
    assert not set(_stamps(run).items()) & set(stamps.items())
    stamps = _stamps(run)

    # one ADC file changed: only the ADC cache and the ADC models are recomputed
    _rewrite_image(root, "images/P007/ADC.nii.gz", scale=3.0)
    with pytest.raises(InputsChangedError, match=r"1 image file\(s\) changed \(P007/ADC\)"):
        _run(run, root)
    again = _run(run, root, rerun_changed=True)
    now = _stamps(run)
    redone = sorted(k for k in now if now[k] != stamps[k])
    assert redone == ["cache/ADC.npz", *(f"models/ADC/fold{k}-rep0/weights.pt" for k in range(3))]
    t2 = again["sequence"] == "T2axi"
    pd.testing.assert_frame_equal(again[t2].reset_index(drop=True), preds[preds["sequence"] == "T2axi"]
                                  .reset_index(drop=True))


def test_merged_fingerprints_name_their_part(tiny_cohort):
    one = cohort_fingerprint(Cohort.load(tiny_cohort))
    merged = fpr.merge_fingerprints({"source": one, "target": one})
    assert fpr.part_of(merged, "target").series == one.series and fpr.part_of(merged, "target").files == one.files
    other = fpr.merge_fingerprints({"source": one, "target": fpr.CohortFingerprint(one.meta, {}, one.series)})
    assert describe_changes(merged, other)[0].startswith("patients.csv: 12 patient(s) removed (target/P000")

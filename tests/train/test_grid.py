"""The classification grid: jobs, predictions table, leakage proof, kill-and-resume, Ray executor."""

import numpy as np
import pandas as pd
import pytest

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage
from sarcomri.config import ClassificationConfig
from sarcomri.data.sliceset import SliceSet
from sarcomri.infer.pool import cached_classifier
from sarcomri.train import jobs as jobs_module
from sarcomri.train.grid import plan_jobs, prepare_run, run_grid
from sarcomri.train.jobs import PREDICTION_COLUMNS, cache_path, run_job


def _config(**executor):
    return ClassificationConfig.model_validate({
        "name": "grid", "cohort": "unused",
        "sequences": ["T2axi"],
        "splits": {"scheme": "kfold", "folds": 3, "repeats": 2, "test_ratio": 0.2, "val_ratio": 0.25,
                   "stratify_by": ["label"], "group": "center", "seed": 0},
        "slices": {"mode": "tumour", "size": 32, "margin": 0.25, "normalisation": "zscore"},
        "model": {"name": "mobilenetv2_050", "weights": None, "allow_download": False, "drop_rate": 0.0},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "patience": 0,
                  "monitor": "val_loss", "augmentation": "sarcoma", "sampling": "balanced", "class_weighting": False,
                  "slices_per_epoch": None, "channels_last": True, "seed": 3, "threads": None},
        "executor": executor or {"kind": "local", "workers": 1},
    })


class _Killed(Exception):
    pass


def _kill_at_epoch_1(epoch, logs):
    if epoch == 1:
        raise _Killed


def test_grid_writes_predictions_without_leakage_and_resumes_identically(tiny_cohort, tmp_path):
    cohort = Cohort.load(tiny_cohort)
    cfg = _config()
    full = tmp_path / "full"
    prepare_run(full, cohort, cfg, progress=False)
    preds = run_grid(full, cfg, progress=False)
    splits = pd.read_csv(full / "splits.csv")
    check_no_leakage(splits)
    assert list(preds.columns) == PREDICTION_COLUMNS
    assert preds["model"].nunique() == 6
    test = preds[preds.split == "test"]
    # each patient tested once per repeat, by the model of the fold that held it out
    assert (test.groupby(["repeat", "patient_id"])["model"].nunique() == 1).all()
    assert test.groupby("repeat")["patient_id"].nunique().tolist() == [12, 12]
    assert test.groupby(["model", "patient_id"])["central"].sum().eq(1).all()
    assert preds["p_positive"].between(0, 1).all()
    _assert_exported_as_trained(full, preds)

    # kill the second job during its second epoch, then rerun the whole grid
    part = tmp_path / "part"
    prepare_run(part, cohort, cfg, progress=False)
    jobs = plan_jobs(part, cfg.sequences)
    run_job(jobs[0], str(part), cfg)
    with pytest.raises(_Killed):
        run_job(jobs[1], str(part), cfg, progress=_kill_at_epoch_1)
    assert (jobs[1].folder(part) / "checkpoint.pt").is_file() and not jobs[1].is_done(part)
    resumed = run_grid(part, cfg, progress=False)
    pd.testing.assert_frame_equal(resumed, preds)


def _assert_exported_as_trained(run, preds):
    """Every finished model folder holds a current ``model.onnx`` (used without exporting again) whose
    likelihoods on the model's test slices are the ones training predicted with PyTorch."""
    slices = SliceSet.load(cache_path(run, "T2axi"))
    for name, own in preds[preds.split == "test"].groupby("model"):
        clf = cached_classifier(run / "models" / name)
        assert clf is not None, f"{name}: no current model.onnx after training"
        part = slices.subset(own["patient_id"].unique().tolist())
        got = dict(zip(zip(part.index_frame()["patient_id"], part.index_frame()["slice_index"], strict=True),
                       clf.predict_proba(part.images)[:, 1], strict=True))
        want = own.set_index(["patient_id", "slice_index"])["p_positive"]
        np.testing.assert_allclose([got[k] for k in want.index], want.to_numpy(), atol=2e-5)


def test_a_model_that_cannot_be_exported_still_finishes_training(tiny_cohort, tmp_path, monkeypatch, caplog):
    """The ONNX export after training is a convenience: when it fails the job still finishes, says so, and
    leaves no model.onnx (``sarcomri predict`` exports on demand)."""
    import sarcomri.infer.export as export

    def broken(folder, path=None, opset=None):
        raise RuntimeError("an operator ONNX lacks")

    monkeypatch.setattr(export, "export_saved_model", broken)
    cfg = _config()
    cfg.splits.repeats = 1
    cfg.train.epochs = 1
    prepare_run(tmp_path, Cohort.load(tiny_cohort), cfg, progress=False)
    job = plan_jobs(tmp_path, cfg.sequences)[0]
    with caplog.at_level("WARNING", logger=jobs_module.__name__):
        run_job(job, str(tmp_path), cfg)
    assert job.is_done(tmp_path)
    assert not (job.folder(tmp_path) / "model.onnx").exists()
    assert f"{job.name}: not exported to ONNX (an operator ONNX lacks)" in caplog.text


def test_ray_executor_runs_a_tiny_grid(tiny_cohort, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor needs the optional extra sarcomri[cluster]")
    cohort = Cohort.load(tiny_cohort)
    cfg = _config(kind="ray", workers=1, ray_address=None)
    cfg.splits.repeats = 1
    cfg.train.epochs = 1
    prepare_run(tmp_path, cohort, cfg, progress=False)
    try:
        preds = run_grid(tmp_path, cfg, progress=False)
    finally:
        ray.shutdown()
    assert preds["model"].nunique() == 3
    assert np.isfinite(preds["p_positive"]).all()

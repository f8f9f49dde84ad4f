"""`segment train --final`: one more model trained on every patient, with a seed of its own, reused on a rerun;
and the model that new patients get from a run's sequence folder."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.crossval import run_crossval
from sarcomri.seg3d.data import read_channels
from sarcomri.seg3d.infer import Model, predict_images

TINY = {
    "name": "tiny", "sequences": ["T1"], "folds": 2,
    "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
    "train": {"epochs": 1, "iterations": 2, "lr": 0.01, "threads": 1},
    "infer": {"mirror": False},
}


@pytest.mark.slow
def test_final_model_is_trained_on_every_patient(blob_cohort, tmp_path, monkeypatch):
    cfg = Seg3DConfig(**{**TINY, "final": True, "cohort": str(blob_cohort)})
    run = tmp_path / "run"
    table = run_crossval(cfg, run)
    assert len(table) == 8  # the out-of-fold table is the folds' only
    final = Model.load(run / "models" / "T1" / "final")
    assert final.meta["fold"] == "final"
    assert sorted(final.meta["train_patients"]) == sorted(f"S{i:02d}" for i in range(8))
    folds = [Model.load(run / "models" / "T1" / f"fold{k}-rep0") for k in range(2)]
    assert len({final.meta["seed"], *(m.meta["seed"] for m in folds)}) == 3  # a seed of its own
    stamp = (run / "models" / "T1" / "final" / "weights.pt").stat().st_mtime_ns
    run_crossval(cfg, run)
    assert (run / "models" / "T1" / "final" / "weights.pt").stat().st_mtime_ns == stamp  # reused

    # new patients: the choice of NEW_PATIENTS below the sequence folder, either model when named
    from sarcomri.seg3d import infer

    for choice, expected in (("final", ["final"]), ("folds", ["fold0-rep0", "fold1-rep0"])):
        monkeypatch.setattr(infer, "NEW_PATIENTS", choice)
        assert sorted(m.folder.name for m in infer.find_models(run / "models" / "T1")) == expected
        assert [m.folder.name for m in infer.find_models(run / "models" / "T1" / "final")] == ["final"]


@pytest.mark.slow
def test_members_are_a_folds_ensemble_with_seeds_of_their_own(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "members": 2, "cohort": str(blob_cohort)})
    run = tmp_path / "run"
    table = run_crossval(cfg, run)
    assert len(table) == 8
    names = sorted(p.name for p in (run / "models" / "T1").iterdir())
    assert names == ["fold0-rep0", "fold0-rep1", "fold1-rep0", "fold1-rep1"]
    seeds = {Model.load(run / "models" / "T1" / n).meta["seed"] for n in names}
    assert len(seeds) == 4
    # a fold's test patients get the mean of its two models
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    pid = splits.loc[(splits["fold"] == 1) & (splits["role"] == "test"), "patient_id"].iloc[0]
    images, _ = read_channels(Cohort.load(blob_cohort), pid, ("T1",))
    pair = [Model.load(run / "models" / "T1" / f"fold1-rep{r}") for r in range(2)]
    mask, _ = predict_images(pair, images, cfg.infer)
    saved = sitk.ReadImage(str(run / "predictions" / "T1" / f"{pid}.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(saved), sitk.GetArrayFromImage(mask))
    # a rerun trains nothing again
    stamp = (run / "models" / "T1" / "fold1-rep1" / "weights.pt").stat().st_mtime_ns
    run_crossval(cfg, run)
    assert (run / "models" / "T1" / "fold1-rep1" / "weights.pt").stat().st_mtime_ns == stamp

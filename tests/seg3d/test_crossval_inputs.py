"""`segment train` keys its splits, fold models and masks by the cohort content: unchanged -> all reused; a changed
mask stops the run (saying which), or with rerun_changed retrains only the fold that trained on it; a removed
patient's stale mask never reaches the tables."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.runrecord import InputsChangedError
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.crossval import run_crossval

TINY = {
    "name": "tiny", "sequences": ["T1"], "folds": 2,
    "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
    "train": {"epochs": 1, "iterations": 2, "lr": 0.01, "threads": 1},
    "infer": {"mirror": False},
}


def _stamps(run):
    return {p.relative_to(run).as_posix(): p.stat().st_mtime_ns
            for p in [*run.glob("models/T1/*/weights.pt"), *run.glob("predictions/T1/*.nii.gz")]}


@pytest.mark.slow
def test_segment_train_reuses_stops_and_recomputes_what_changed(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "cohort": str(blob_cohort)})
    run = tmp_path / "run"
    first = run_crossval(cfg, run)
    stamps = _stamps(run)
    pd.testing.assert_frame_equal(run_crossval(cfg, run), first)
    assert _stamps(run) == stamps  # nothing retrained or predicted again

    # S03's reference mask is redrawn (one voxel layer less)
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    test_fold = int(splits.loc[(splits["patient_id"] == "S03") & (splits["role"] == "test"), "fold"].iloc[0])
    path = blob_cohort / "masks" / "S03" / "T1.nii.gz"
    mask = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(mask)
    arr[np.nonzero(arr.any(axis=(1, 2)))[0][0]] = 0
    new = sitk.GetImageFromArray(arr)
    new.CopyInformation(mask)
    sitk.WriteImage(new, str(path), useCompression=True)
    with pytest.raises(InputsChangedError, match=r"1 mask file\(s\) changed \(S03/T1\)") as err:
        run_crossval(cfg, run)
    assert f"models/T1/fold{1 - test_fold}-rep0" in str(err.value) and _stamps(run) == stamps

    again = run_crossval(cfg, run, rerun_changed=True)
    now = _stamps(run)
    redone = sorted(k for k in now if now[k] != stamps[k])
    other = splits[(splits["fold"] == 1 - test_fold) & (splits["role"] == "test")]["patient_id"]
    # the fold that trained on S03 and its test patients' masks; S03's own mask is kept (its image is the same)
    assert redone == sorted([f"models/T1/fold{1 - test_fold}-rep0/weights.pt",
                             *(f"predictions/T1/{p}.nii.gz" for p in other)])
    s03 = again.set_index("patient_id").loc["S03", "ref_volume_mm3"]
    assert s03 < first.set_index("patient_id").loc["S03", "ref_volume_mm3"]  # evaluated on the new mask

    # a patient removed from the cohort: new splits, and its old mask is removed, not evaluated
    meta = json.loads((blob_cohort / "cohort.json").read_text())
    for name in ("patients.csv", "series.csv"):
        table = pd.read_csv(blob_cohort / name, dtype={"patient_id": str})
        table = table[table["patient_id"] != "S07"]
        table.to_csv(blob_cohort / name, index=False)
        meta.get("rows", {})[name] = len(table)
    (blob_cohort / "cohort.json").write_text(json.dumps(meta))
    with pytest.raises(InputsChangedError, match=r"1 patient\(s\) removed \(S07\)"):
        run_crossval(cfg, run)
    final = run_crossval(cfg, run, rerun_changed=True)
    assert "S07" not in set(final["patient_id"]) and not (run / "predictions" / "T1" / "S07.nii.gz").exists()

"""`sarcomri segment train / predict / plan` end to end on a tiny synthetic cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from sarcomri.cli.segment import app
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage
from sarcomri.io.images import same_grid
from sarcomri.seg3d.plan import Plan

TINY = {
    "name": "tiny",
    "sequences": ["T1"],
    "folds": 4,
    "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
    "train": {"epochs": 2, "iterations": 3, "lr": 0.01, "threads": 1},
    "infer": {"mirror": False},
}


def test_train_predict_evaluate(blob_cohort, tmp_path):
    cfg = tmp_path / "seg.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "cohort": str(blob_cohort)}))
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg), "--run-dir", str(run), "--quiet"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Median (IQR) per sequence" in res.output
    per_case = pd.read_csv(run / "tables" / "per_case.csv")
    cohort = Cohort.load(blob_cohort)
    assert sorted(per_case["patient_id"]) == cohort.patient_ids
    splits = pd.read_csv(run / "splits.csv")
    check_no_leakage(splits)
    test_fold = splits[splits["role"] == "test"].set_index("patient_id")["fold"]
    assert (per_case.set_index("patient_id")["fold"] == test_fold.loc[per_case["patient_id"]]).all()
    for fold in range(4):
        folder = run / "models" / "T1" / f"fold{fold}-rep0"
        assert (folder / "model.json").is_file() and (folder / "plan.json").is_file()
        assert not (folder / "checkpoint.pt").exists()
    for pid in cohort.patient_ids:
        pred = sitk.ReadImage(str(run / "predictions" / "T1" / f"{pid}.nii.gz"))
        assert same_grid(pred, cohort.read_image(pid, "T1"))
    # a rerun finds every model and prediction and only re-evaluates
    stamp = (run / "models" / "T1" / "fold0-rep0" / "weights.pt").stat().st_mtime_ns
    res = runner.invoke(app, ["train", str(cfg), "--run-dir", str(run), "--json"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert (run / "models" / "T1" / "fold0-rep0" / "weights.pt").stat().st_mtime_ns == stamp
    out = json.loads(res.stdout)  # --json: the JSON only
    assert sorted(r["patient_id"] for r in out["per_case"]) == cohort.patient_ids
    assert {"run_dir", "per_case_table", "per_sequence", "per_fold"} <= set(out)
    assert [r["fold"] for r in out["per_fold"]] == [0, 1, 2, 3, "all"]

    # predict: one NIfTI with one fold, and a whole cohort with the 4-fold ensemble
    image = blob_cohort / "images" / "S02" / "T1.nii.gz"
    res = runner.invoke(app, ["predict", str(run / "models" / "T1" / "fold0-rep0"), str(image), "--out",
                              str(tmp_path / "one"), "--no-mirror", "--probabilities"])
    assert res.exit_code == 0, res.output
    out = sitk.ReadImage(str(tmp_path / "one" / "T1.nii.gz"))
    assert same_grid(out, sitk.ReadImage(str(image)))
    assert (tmp_path / "one" / "T1_prob.nii.gz").is_file()
    res = runner.invoke(app, ["predict", str(run / "models"), str(blob_cohort), "--out", str(tmp_path / "all"),
                              "--no-mirror"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "all").glob("*.nii.gz"))) == 8
    # without flags, predict infers as the model's config did (no mirroring here): the out-of-fold mask again
    fold = int(test_fold.loc["S02"])
    res = runner.invoke(app, ["predict", str(run / "models" / "T1" / f"fold{fold}-rep0"), str(image), "--out",
                              str(tmp_path / "defaults")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "defaults" / "T1.nii.gz"))),
        sitk.GetArrayFromImage(sitk.ReadImage(str(run / "predictions" / "T1" / "S02.nii.gz"))))

    # predict on a DICOM series: the NIfTI mask on the series grid and a DICOM-SEG that reads back to it
    from sarcomri.cohort.manifest import CohortWriter
    from sarcomri.io.dicomseg import load_series, seg_to_mask
    from sarcomri.synth.dicom import write_dicom

    with CohortWriter(tmp_path / "c2", labels=["sarcoma"]) as w:
        w.add_patient("S02", "sarcoma")
        w.add_series("S02", "T1axi", sitk.ReadImage(str(image)))
    write_dicom(Cohort.load(tmp_path / "c2"), tmp_path / "dicom")
    series = tmp_path / "dicom" / "S02" / "01_T1axi"
    res = runner.invoke(app, ["predict", str(run / "models" / "T1" / "fold0-rep0"), str(series), "--out",
                              str(tmp_path / "dcm-out"), "--no-mirror"])
    assert res.exit_code == 0, res.output
    nifti = sitk.ReadImage(str(tmp_path / "dcm-out" / "01_T1axi.nii.gz"))
    source = load_series(series)
    assert same_grid(nifti, source.image)
    back, table = seg_to_mask(tmp_path / "dcm-out" / "01_T1axi_seg.dcm", source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(nifti))
    assert table[0]["name"] == "tumour"
    # the SEG goes back beside its series: the source's own patient attributes, and nothing identifying besides
    import pydicom

    from sarcomri.io.deid import IDENTIFYING_KEYWORDS, identifiers_of

    seg = pydicom.dcmread(tmp_path / "dcm-out" / "01_T1axi_seg.dcm")
    assert identifiers_of(seg) <= identifiers_of(source.datasets[0])
    for keyword in IDENTIFYING_KEYWORDS:
        if str(seg.get(keyword, "") or ""):
            assert str(seg.get(keyword)) == str(source.datasets[0].get(keyword)), keyword
    res = runner.invoke(app, ["predict", str(run / "models" / "T1" / "fold0-rep0"), str(series), "-o",
                              str(tmp_path / "dcm-out"), "--no-mirror", "--overwrite", "-q"])
    assert res.exit_code == 0 and res.output == "", res.output


def test_predict_refuses_a_wrong_number_of_images(blob_cohort, tmp_path):
    from sarcomri.errors import InputError
    from sarcomri.models import save_model
    from sarcomri.seg3d.model import build_network
    from sarcomri.seg3d.plan import Plan

    plan = Plan(sequences=["T1", "T2"], target_spacing=[3.0, 1.2, 1.2], median_shape=[12, 32, 32],
                patch_size=[8, 16, 16], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernels=[[3, 3, 3]] * 3,
                filters=[4, 8, 16], batch_size=2)
    save_model(build_network(plan), plan, tmp_path / "m")
    image = blob_cohort / "images" / "S02" / "T1.nii.gz"
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "m"), str(image), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError) and "give one image per sequence" in str(res.exception)


def test_plan_command(blob_cohort):
    res = CliRunner().invoke(app, ["plan", str(blob_cohort), "--sequences", "T1", "--preset", "gpu"])
    assert res.exit_code == 0, res.output
    plan = yaml.safe_load(res.output)  # JSON is YAML
    assert plan["target_spacing"] == [3.0, 1.2, 1.2] and plan["sequences"] == ["T1"]


def test_folds_in_worker_processes_match_one_process(blob_cohort, tmp_path, monkeypatch):
    """workers: 2 trains the folds in two worker processes; with the same thread count the masks are the same
    as in one process, and per_fold.csv and timing.csv are written. (Forked here rather than spawned: a spawned
    worker spends about 12 CPU-seconds importing torch and MONAI.)"""
    import sarcomri.seg3d.crossval as crossval
    from sarcomri.seg3d.config import Seg3DConfig
    from sarcomri.seg3d.crossval import run_crossval

    monkeypatch.setattr(crossval, "MP_CONTEXT", "fork")

    # one single-sequence model and one with T1 and T2 as channels
    base = {**TINY, "cohort": str(blob_cohort), "sequences": ["T1", "T1+T2"], "folds": 2,
            "train": {**TINY["train"], "epochs": 1}}
    one = run_crossval(Seg3DConfig(**{**base, "name": "one"}), tmp_path / "one")
    two = run_crossval(Seg3DConfig(**{**base, "name": "two", "workers": 2}), tmp_path / "two")
    pd.testing.assert_frame_equal(one, two)
    assert one.groupby("sequence").size().to_dict() == {"T1": 8, "T1+T2": 8}
    assert Plan.load(tmp_path / "two" / "models" / "T1+T2" / "fold0-rep0").sequences == ["T1", "T2"]
    for seq in ("T1", "T1+T2"):
        for pid in Cohort.load(blob_cohort).patient_ids:
            a = sitk.ReadImage(str(tmp_path / "one" / "predictions" / seq / f"{pid}.nii.gz"))
            b = sitk.ReadImage(str(tmp_path / "two" / "predictions" / seq / f"{pid}.nii.gz"))
            assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    folds = pd.read_csv(tmp_path / "two" / "tables" / "per_fold.csv")
    assert folds["fold"].astype(str).tolist() == ["0", "1", "0", "1", "all", "all"]
    overall = folds[folds["fold"].astype(str) == "all"].set_index("sequence")["dice_mean"]
    assert overall.to_dict() == pytest.approx(two.groupby("sequence")["dice"].mean().to_dict())
    assert len(pd.read_csv(tmp_path / "two" / "tables" / "paper.csv")) == 2
    timing = pd.read_csv(tmp_path / "two" / "tables" / "timing.csv")
    assert len(timing) == 4 and (timing["train_threads"] == 1).all() and (timing["train_cpu_s"] > 0).all()
    assert (timing["predict_cases"] == 4).all()

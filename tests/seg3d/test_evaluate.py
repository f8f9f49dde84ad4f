"""The per-case evaluation table and its summaries, against sarcomri.stats.segmentation called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.seg3d.evaluate import evaluate_folder, paper_table, summarise_by
from sarcomri.stats.segmentation import segmentation_metrics, summarise_segmentation


def _write_predictions(cohort: Cohort, folder, suffix: str = "") -> dict[str, np.ndarray]:
    """Reference masks shifted by i voxels along x (patient i), patient S07 empty; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    preds = {}
    for i, pid in enumerate(cohort.patient_ids):
        ref = cohort.read_mask(pid, "T1")
        arr = np.roll(sitk.GetArrayFromImage(ref), i, axis=2) if pid != "S07" else np.zeros_like(
            sitk.GetArrayFromImage(ref))
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(ref)
        sitk.WriteImage(img, str(folder / f"{pid}{suffix}.nii.gz"))
        preds[pid] = arr
    (folder / "plans.json").write_text("{}")  # nnU-Net leaves such files beside its predictions
    return preds


def test_table_matches_stats_segmentation(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    preds = _write_predictions(cohort, tmp_path / "pred")
    with pytest.raises(InputError, match="name the reference sequence"):  # T1 and T2 both have masks
        evaluate_folder(tmp_path / "pred", cohort)
    table = evaluate_folder(tmp_path / "pred", cohort, "T1")
    assert table["case"].tolist() == cohort.patient_ids
    assert (table["sequence"] == "T1").all()
    for row in table.to_dict("records"):
        ref = cohort.read_mask(row["patient_id"], "T1")
        expected = segmentation_metrics(preds[row["patient_id"]], sitk.GetArrayFromImage(ref), (3.0, 1.2, 1.2))
        for key in ("dice", "f2", "assd_mm", "hd95_mm", "empty_pred", "empty_ref"):
            assert row[key] == pytest.approx(expected[key]), key
    assert table.loc[0, "dice"] == 1.0 and table.loc[0, "hd95_mm"] == 0.0
    assert bool(table.loc[7, "empty_pred"]) and table.loc[7, "dice"] == 0.0


def test_summaries_by_stratum(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    _write_predictions(cohort, tmp_path / "pred")
    table = evaluate_folder(tmp_path / "pred", cohort, "T1")
    by_center = summarise_by(table, ["center"], cohort.patients)
    centers = cohort.patients.set_index("patient_id")["center"]
    for center in ("A", "B"):
        sub = table[table["patient_id"].map(centers) == center]
        expected = summarise_segmentation(sub)
        got = by_center[by_center["center"] == center].set_index("metric")
        for metric in ("dice", "hd95_mm"):
            assert got.loc[metric, "median"] == pytest.approx(expected.loc[metric, "median"])
            assert got.loc[metric, "q1"] == pytest.approx(expected.loc[metric, "q1"])
            assert got.loc[metric, "n"] == expected.loc[metric, "n"]
    # S07 (center B) has an empty prediction: its distances are left out of the distance summary
    assert by_center.set_index(["center", "metric"]).loc[("B", "hd95_mm"), "n"] == 3
    paper = paper_table(table)
    med, q1, q3 = np.percentile(table["dice"], [50, 25, 75])
    assert paper.loc[0, "Dice"] == f"{med:.2f} ({q1:.2f}-{q3:.2f})"
    assert paper.loc[0, "n"] == 8
    with pytest.raises(InputError, match="histology"):
        summarise_by(table, ["histology"], cohort.patients)


def test_nnunet_case_names_and_unknown_files(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    _write_predictions(cohort, tmp_path / "pred", suffix="_T2")
    table = evaluate_folder(tmp_path / "pred", cohort)
    assert table["case"].tolist() == [f"{p}_T2" for p in cohort.patient_ids]
    assert (table["sequence"] == "T2").all() and table["patient_id"].tolist() == cohort.patient_ids
    (tmp_path / "pred" / "stranger.nii.gz").write_bytes((tmp_path / "pred" / "S00_T2.nii.gz").read_bytes())
    with pytest.raises(InputError, match="stranger"):
        evaluate_folder(tmp_path / "pred", cohort)


def test_prediction_on_another_grid_is_refused(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    (tmp_path / "pred").mkdir()
    img = sitk.Image(10, 10, 5, sitk.sitkUInt8)
    sitk.WriteImage(img, str(tmp_path / "pred" / "S00.nii.gz"))
    with pytest.raises(InputError, match="not on the grid"):
        evaluate_folder(tmp_path / "pred", cohort, "T1")


def test_evaluate_command(blob_cohort, tmp_path):
    from sarcomri.cli.segment import app

    cohort = Cohort.load(blob_cohort)
    _write_predictions(cohort, tmp_path / "pred")
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred"), str(blob_cohort), "--sequence", "T1",
                                   "--by", "site", "--out", str(tmp_path / "t.csv")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "By site" in res.output and "thigh" in res.output
    assert len(pd.read_csv(tmp_path / "t.csv")) == 8


def test_nnunet_predictions_of_a_numbered_export(blob_cohort, tmp_path):
    """nnU-Net names cases after the export (STS_0001...); its prediction folder holds a copy of dataset.json,
    a cross-validation fold's validation folder does not (then --dataset names the export)."""
    import json
    import shutil

    from sarcomri.cli.segment import app
    from sarcomri.io.nnunet import export_nnunet

    cohort = Cohort.load(blob_cohort)
    res = export_nnunet(cohort, tmp_path / "raw", 506, "STS", ["T1"], case_names="numbered", n_folds=4)
    cases = pd.read_csv(res.folder / "cases.csv")
    (tmp_path / "val").mkdir()
    expected = {}
    for i, (case, pid) in enumerate(zip(cases["case"], cases["patient_id"], strict=True)):
        label = sitk.ReadImage(str(res.folder / "labelsTr" / f"{case}.nii.gz"))
        arr = np.roll(sitk.GetArrayFromImage(label), i % 3, axis=1)
        pred = sitk.GetImageFromArray(arr)
        pred.CopyInformation(label)
        sitk.WriteImage(pred, str(tmp_path / "val" / f"{case}.nii.gz"))
        ref = cohort.read_mask(pid, "T1")
        expected[case] = segmentation_metrics(arr, sitk.GetArrayFromImage(ref), ref.GetSpacing()[::-1])["dice"]
    (tmp_path / "val" / "summary.json").write_text("{}")
    with pytest.raises(InputError, match="--dataset"):
        evaluate_folder(tmp_path / "val", cohort)
    table = evaluate_folder(tmp_path / "val", cohort, cases=res.folder)
    assert table["case"].tolist() == cases["case"].tolist()
    assert table["patient_id"].tolist() == cases["patient_id"].tolist() and (table["sequence"] == "T1").all()
    assert table.set_index("case")["dice"].to_dict() == pytest.approx(expected)
    # nnUNetv2_predict copies dataset.json beside its predictions: found without --dataset
    shutil.copytree(tmp_path / "val", tmp_path / "pred")
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps(json.loads((res.folder / "dataset.json").read_text())))
    again = evaluate_folder(tmp_path / "pred", cohort)
    pd.testing.assert_frame_equal(again, table)
    res_cli = CliRunner().invoke(app, ["evaluate", str(tmp_path / "val"), str(blob_cohort), "--dataset",
                                       str(res.folder), "--by", "center", "--summary", str(tmp_path / "s.csv")],
                                 terminal_width=200)
    assert res_cli.exit_code == 0, res_cli.output
    summary = pd.read_csv(tmp_path / "s.csv")
    assert set(summary["stratum"]) == {"sequence", "center"}
    row = summary[(summary["stratum"] == "center") & (summary["value"] == "A") & (summary["metric"] == "dice")]
    centers = cohort.patients.set_index("patient_id")["center"]
    sub = table[table["patient_id"].map(centers) == "A"]
    assert row["median"].item() == pytest.approx(sub["dice"].median())
    assert row["sequence"].item() == "T1"


def test_both_empty_column(blob_cohort, tmp_path):
    from sarcomri.seg3d.evaluate import case_metrics

    cohort = Cohort.load(blob_cohort)
    _write_predictions(cohort, tmp_path / "pred")
    table = evaluate_folder(tmp_path / "pred", cohort, "T1")
    assert "both_empty" in table.columns
    assert table["both_empty"].tolist() == (table["empty_pred"] & table["empty_ref"]).tolist()
    assert not table["both_empty"].any()  # S07's prediction is empty, its reference is not: Dice 0
    empty = sitk.Image(8, 8, 4, sitk.sitkUInt8)
    m = case_metrics(empty, empty)
    assert m["both_empty"] and m["dice"] == 1.0  # two empty masks agree, and the table says why

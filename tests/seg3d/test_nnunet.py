"""nnU-Net v2 raw dataset export: layout, dataset.json, geometry, and patient-grouped splits."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import LeakageError
from sarcomri.errors import SarcomriError
from sarcomri.io.images import same_grid
from sarcomri.io.nnunet import check_splits_grouped, dataset_folder_name, export_nnunet

# nnU-Net v2 names channels <case>_XXXX<file_ending> and labels <case><file_ending>
CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii\.gz$")


def _check_nnunet_layout(folder, n_channels: int) -> list[str]:
    ds = json.loads((folder / "dataset.json").read_text())
    assert ds["labels"] == {"background": 0, "tumour": 1}
    assert ds["file_ending"] == ".nii.gz"
    assert sorted(ds["channel_names"]) == [str(i) for i in range(n_channels)]
    labels = sorted(p.name[: -len(".nii.gz")] for p in (folder / "labelsTr").iterdir())
    assert ds["numTraining"] == len(labels)
    channels: dict[str, set[int]] = {}
    for p in (folder / "imagesTr").iterdir():
        m = CHANNEL_RE.match(p.name)
        assert m, p.name
        channels.setdefault(m["case"], set()).add(int(m["channel"]))
    assert sorted(channels) == labels
    assert all(ch == set(range(n_channels)) for ch in channels.values())
    for case in labels:
        lab = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
        assert lab.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayViewFromImage(lab)).tolist()) <= {0, 1}
        for c in range(n_channels):
            img = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_{c:04d}.nii.gz"))
            assert same_grid(img, lab), (case, c)
    return labels


def test_export_channels_layout(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    res = export_nnunet(cohort, tmp_path / "raw", 501, "Blobs", ["T1", "T2"], n_folds=4, seed=1)
    assert res.folder == tmp_path / "raw" / "Dataset501_Blobs"
    cases = _check_nnunet_layout(res.folder, 2)
    assert cases == cohort.patient_ids
    ds = json.loads((res.folder / "dataset.json").read_text())
    assert ds["channel_names"] == {"0": "T1", "1": "T2"}
    # the label is the cohort's mask, the channels are the cohort's images
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(res.folder / "labelsTr" / "S03.nii.gz")))
    assert np.array_equal(lab, sitk.GetArrayFromImage(cohort.read_mask("S03", "T1")))
    t2 = sitk.GetArrayFromImage(sitk.ReadImage(str(res.folder / "imagesTr" / "S03_0001.nii.gz")))
    assert np.array_equal(t2, sitk.GetArrayFromImage(cohort.read_image("S03", "T2")))
    splits = json.loads((res.folder / "splits_final.json").read_text())
    assert len(splits) == 4 and all(set(f) == {"train", "val"} for f in splits)
    assert sorted(c for f in splits for c in f["val"]) == cases
    for f in splits:
        assert sorted(f["train"] + f["val"]) == cases and not set(f["train"]) & set(f["val"])


def test_export_cases_layout_keeps_each_patient_on_one_side(blob_cohort, tmp_path):
    cohort = Cohort.load(blob_cohort)
    res = export_nnunet(cohort, tmp_path, 502, "BlobsSeq", ["T1", "T2"], layout="cases", n_folds=4)
    cases = _check_nnunet_layout(res.folder, 1)
    assert len(cases) == 16 and "S00_T1" in cases and "S00_T2" in cases
    table = pd.read_csv(res.folder / "cases.csv")
    patient = dict(zip(table["case"], table["patient_id"], strict=True))
    splits = json.loads((res.folder / "splits_final.json").read_text())
    for f in splits:
        assert not {patient[c] for c in f["train"]} & {patient[c] for c in f["val"]}
        assert len(f["val"]) == 4  # both sequences of 2 patients
    check_splits_grouped(splits, table)


def test_a_case_level_split_is_caught_as_leakage():
    cases = pd.DataFrame({"case": ["A_T1", "A_T2", "B_T1", "B_T2"], "patient_id": ["A", "A", "B", "B"]})
    leaky = [{"train": ["A_T1", "B_T2"], "val": ["A_T2", "B_T1"]}, {"train": ["A_T2", "B_T1"], "val": ["A_T1", "B_T2"]}]
    with pytest.raises(LeakageError, match="both train and val"):
        check_splits_grouped(leaky, cases)
    twice = [{"train": ["B_T1", "B_T2"], "val": ["A_T1", "A_T2"]}, {"train": ["B_T1", "B_T2"], "val": ["A_T1", "A_T2"]}]
    with pytest.raises(LeakageError, match="validated"):
        check_splits_grouped(twice, cases)


def test_names_and_refusals(blob_cohort, tmp_path):
    assert dataset_folder_name(7, "STS") == "Dataset007_STS"
    with pytest.raises(SarcomriError):
        dataset_folder_name(1000, "STS")
    with pytest.raises(SarcomriError):
        dataset_folder_name(5, "bad name")
    cohort = Cohort.load(blob_cohort)
    with pytest.raises(SarcomriError, match="no sequence 'ADC'"):
        export_nnunet(cohort, tmp_path, 503, "X", ["ADC"])
    export_nnunet(cohort, tmp_path, 503, "X", ["T1"], n_folds=2)
    with pytest.raises(FileExistsError):
        export_nnunet(cohort, tmp_path, 503, "X", ["T1"], n_folds=2)


def test_export_command(blob_cohort, tmp_path):
    import typer

    from sarcomri.cli.export import export_nnunet as command

    app = typer.Typer()
    app.command("nnunet")(command)
    app.command("other")(lambda: None)  # two commands, so the sub-command name is parsed as in `sarcomri export`
    res = CliRunner().invoke(app, ["nnunet", str(blob_cohort), "--out", str(tmp_path), "--id", "504", "--name",
                                   "Blobs", "--sequences", "T1", "--folds", "4"])
    assert res.exit_code == 0, res.output
    assert "4 patient-grouped folds" in res.output
    _check_nnunet_layout(tmp_path / "Dataset504_Blobs", 1)


def test_numbered_case_names_map_back_to_patients(blob_cohort, tmp_path):
    from sarcomri.io.nnunet import CASES_KEY, read_case_map

    cohort = Cohort.load(blob_cohort)
    res = export_nnunet(cohort, tmp_path, 505, "STS", ["T1", "T2"], layout="cases", case_names="numbered", n_folds=4)
    cases = _check_nnunet_layout(res.folder, 1)
    assert cases == [f"STS_{i:04d}" for i in range(1, 17)]
    table = pd.read_csv(res.folder / "cases.csv")
    assert table["case"].tolist() == cases
    assert table[["patient_id", "sequence"]].iloc[:2].values.tolist() == [["S00", "T1"], ["S00", "T2"]]
    ds = json.loads((res.folder / "dataset.json").read_text())
    assert ds[CASES_KEY]["STS_0002"] == ["S00", "T2"]
    check_splits_grouped(json.loads((res.folder / "splits_final.json").read_text()), table)
    for source in (res.folder, res.folder / "cases.csv", res.folder / "dataset.json"):
        assert read_case_map(source).astype(str).values.tolist() == table.astype(str).values.tolist()
    assert read_case_map(tmp_path) is None

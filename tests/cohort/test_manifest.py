"""The cohort folder contract: write atomically, load, validate with file/row/field in the message."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.errors import InputError, ValidationError


def _img(shape=(4, 8, 8), spacing=(0.8, 0.8, 4.0), value=1.0):
    im = sitk.GetImageFromArray(np.full(shape, value, np.float32))
    im.SetSpacing(spacing)
    return im


def _write(root, **kw):
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma", **kw) as w:
        w.add_patient("P001", "sarcoma", age=51, hba1c="5.4%")
        w.add_patient("P002", "leiomyoma", age=44, hba1c=None)
        m = sitk.Cast(_img(value=0) > -1, sitk.sitkUInt8)
        w.add_series("P001", "T2axi", _img(), m)
        w.add_series("P001", "ADC", _img(value=1.2))
        w.add_series("P002", "T2axi", _img())
    return root


def test_round_trip_keeps_extra_columns_and_paths(tmp_path):
    c = Cohort.load(_write(tmp_path / "c"))
    assert c.patient_ids == ["P001", "P002"]
    assert list(c.patients.columns) == ["patient_id", "label", "age", "hba1c"]
    assert c.patients.loc[0, "hba1c"] == "5.4%"
    assert c.sequences == ["T2axi", "ADC"]
    av = c.availability()
    assert av.loc["P001"].tolist() == [True, True] and av.loc["P002"].tolist() == [True, False]
    assert c.labels_binary().to_dict() == {"P001": 1, "P002": 0}
    assert c.read_image("P001", "ADC").GetSpacing() == pytest.approx((0.8, 0.8, 4.0))
    assert c.read_mask("P002", "T2axi") is None
    assert sitk.GetArrayFromImage(c.read_mask("P001", "T2axi")).sum() == 4 * 8 * 8
    meta = json.loads((tmp_path / "c" / "cohort.json").read_text())
    assert meta["schema_version"] == 1 and meta["sequences"] == ["T2axi", "ADC"]


def test_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with CohortWriter(tmp_path / "c", labels=["a"]) as w:
            w.add_patient("P1", "a")
            w.add_series("P1", "T2axi", _img())
            raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_label_outside_allowed_set_and_leaves_nothing(tmp_path):
    with pytest.raises(ValidationError, match=r"patients.csv, row 3, field 'label': label 'benign'"):
        with CohortWriter(tmp_path / "c", labels=["leiomyoma", "sarcoma"]) as w:
            w.add_patient("P1", "sarcoma")
            w.add_patient("P2", "benign")
            w.add_series("P1", "T2axi", _img())
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_nan_image_and_mask_on_other_grid(tmp_path):
    with pytest.raises(InputError, match="P1/T2axi: 1 voxels are NaN"):
        with CohortWriter(tmp_path / "c", labels=["a"]) as w:
            w.add_patient("P1", "a")
            arr = np.ones((4, 8, 8), np.float32)
            arr[0, 0, 0] = np.nan
            w.add_series("P1", "T2axi", sitk.GetImageFromArray(arr))
    with pytest.raises(InputError, match="its mask is on a different grid"):
        with CohortWriter(tmp_path / "d", labels=["a"]) as w:
            w.add_patient("P1", "a")
            w.add_series("P1", "T2axi", _img(), sitk.Cast(_img(spacing=(1, 1, 4)) > 0, sitk.sitkUInt8))
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_overwritten_without_permission(tmp_path):
    _write(tmp_path / "c")
    with pytest.raises(FileExistsError):
        _write(tmp_path / "c")
    _write(tmp_path / "c", overwrite=True)
    assert Cohort.load(tmp_path / "c").patient_ids == ["P001", "P002"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p, s: (p.assign(patient_id=["P001", "P001"]), s), r"patients.csv, row 3, field 'patient_id'.*twice"),
        (lambda p, s: (p.assign(patient_id=["P001", "Jane Doe"]), s), r"row 3, field 'patient_id'"),
        (lambda p, s: (p.drop(columns="label"), s), r"patients.csv, field 'label': missing column"),
        (lambda p, s: (p, s.assign(spacing_z=[4.0, -1.0, 4.0])), r"series.csv, row 3, field 'spacing_z'"),
        (lambda p, s: (p, s.assign(image=["images/x.nii.gz"] * 3)), r"row 2, field 'image'.*does not exist"),
        (lambda p, s: (p.iloc[:1], s), r"series.csv, row 4, field 'patient_id'.*not in patients.csv"),
    ],
)
def test_load_names_file_row_and_field(tmp_path, edit, message):
    root = _write(tmp_path / "c")
    p, s = pd.read_csv(root / "patients.csv"), pd.read_csv(root / "series.csv")
    p, s = edit(p, s)
    p.to_csv(root / "patients.csv", index=False)
    s.to_csv(root / "series.csv", index=False)
    with pytest.raises(ValidationError, match=message):
        Cohort.load(root)


def test_load_rejects_unknown_schema_and_missing_files(tmp_path):
    root = _write(tmp_path / "c")
    meta = json.loads((root / "cohort.json").read_text())
    (root / "cohort.json").write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(ValidationError, match="schema_version 99 is not supported"):
        Cohort.load(root)
    (root / "cohort.json").unlink()
    with pytest.raises(InputError, match="cohort.json: missing"):
        Cohort.load(root)
    with pytest.raises(InputError, match="no such directory"):
        Cohort.load(tmp_path / "nowhere")

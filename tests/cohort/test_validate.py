"""Cohort validation: every problem kind is reported with its file, row, field and severity, all at once."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.cohort.problems import CohortInvalid, Problem
from sarcomri.cohort.validate import require_two_labels, validate_cohort
from sarcomri.errors import InputError, ValidationError
from sarcomri.io.nnunet import export_nnunet

runner = CliRunner()
SPACING = (0.8, 0.8, 4.0)
# series.csv rows of the cohort _write builds (the header is line 1)
ROW = {("P001", "T2axi"): 2, ("P001", "ADC"): 3, ("P002", "T2axi"): 4, ("P003", "T2axi"): 5, ("P004", "T2axi"): 6}


def _img(values: np.ndarray, origin=(0.0, 0.0, 0.0), spacing=SPACING) -> sitk.Image:
    im = sitk.GetImageFromArray(values)
    im.SetSpacing(spacing)
    im.SetOrigin(origin)
    return im


def _mask_array(shape=(4, 8, 8)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[1:3, 2:6, 2:6] = 1
    return m


def _write(root, labels=("leiomyoma", "sarcoma"), positive="sarcoma", patient_labels=None, meta=None):
    """Four patients with T2axi and its mask; P001 also has an ADC map without mask."""
    patient_labels = patient_labels or ["sarcoma", "leiomyoma", "sarcoma", "leiomyoma"]
    rng = np.random.default_rng(0)
    with CohortWriter(root, labels=list(labels), positive_label=positive, meta=meta) as w:
        for i, label in enumerate(patient_labels, start=1):
            pid = f"P{i:03d}"
            w.add_patient(pid, label)
            image = _img(rng.normal(100, 10, (4, 8, 8)).astype(np.float32))
            w.add_series(pid, "T2axi", image, _img(_mask_array()))
            if i == 1:
                w.add_series(pid, "ADC", _img(np.full((4, 8, 8), 1.2, np.float32)))
    return root


def _report(root, level="content"):
    return validate_cohort(Cohort.read(root), level=level)


def _only(problems: list[Problem], **where) -> Problem:
    hits = [p for p in problems if all(getattr(p, k) == v for k, v in where.items())]
    assert len(hits) == 1, (where, [str(p) for p in problems])
    return hits[0]


def _edit_series(root, **columns):
    s = pd.read_csv(root / "series.csv")
    for col, (row, value) in columns.items():
        s[col] = s[col].astype(object)
        s.loc[row - 2, col] = value
    s.to_csv(root / "series.csv", index=False)


def _rewrite(path, image: sitk.Image) -> None:
    sitk.WriteImage(image, str(path), useCompression=True)


def test_a_clean_cohort_has_no_problem_at_any_level(tmp_path):
    root = _write(tmp_path / "c")
    for level in ("tables", "headers", "content"):
        assert _report(root, level).problems == []
    assert Cohort.load(root).patient_ids == ["P001", "P002", "P003", "P004"]


@pytest.mark.parametrize("change, expected", [
    (lambda a: _img(a[:, :, :6]), "size (6, 8, 4) vs (8, 8, 4)"),
    (lambda a: _img(a, origin=(0.0, 0.0, 30.0)), "origin (0.0, 0.0, 30.0) vs (0.0, 0.0, 0.0)"),
    (lambda a: _img(a, spacing=(1.0, 1.0, 4.0)), "spacing (1.0, 1.0, 4.0) vs (0.8, 0.8, 4.0)"),
])
def test_mask_on_another_grid_is_an_error_at_load(tmp_path, change, expected):
    root = _write(tmp_path / "c")
    _rewrite(root / "masks/P002/T2axi.nii.gz", change(_mask_array()))
    p = _only(_report(root, "headers").problems, row=ROW["P002", "T2axi"], field="mask")
    assert p.severity == "error" and p.file.endswith("series.csv")
    assert "masks/P002/T2axi.nii.gz: not on its image's grid" in p.problem and expected in p.problem
    with pytest.raises(ValidationError, match=r"series.csv, row 4, field 'mask': .*not on its image's grid"):
        Cohort.load(root)


def test_mask_with_other_labels_is_an_error_unless_recorded(tmp_path):
    root = _write(tmp_path / "c")
    labels = _mask_array()
    labels[0, 0, 0] = 2
    _rewrite(root / "masks/P003/T2axi.nii.gz", _img(labels))
    assert _report(root, "headers").problems == []  # voxel values are a content check
    p = _only(_report(root).problems, row=ROW["P003", "T2axi"], field="mask")
    assert p.severity == "error" and "holds label(s) [2]" in p.problem
    meta = json.loads((root / "cohort.json").read_text())
    meta["mask_labels"] = [{"patient_id": "P003", "sequence": "T2axi", "source": "NIfTI",
                            "labels": [{"label": 1, "name": ""}, {"label": 2, "name": ""}]}]
    (root / "cohort.json").write_text(json.dumps(meta))
    assert _report(root).problems == []


def test_float_mask_with_fractions_is_an_error(tmp_path):
    root = _write(tmp_path / "c")
    soft = _mask_array().astype(np.float32)
    soft[1, 2, 2] = 0.5
    _rewrite(root / "masks/P001/T2axi.nii.gz", _img(soft))
    p = _only(_report(root).problems, row=ROW["P001", "T2axi"], field="mask")
    assert p.severity == "error" and "1 voxels are not labels" in p.problem and "0.5" in p.problem
    whole = _mask_array().astype(np.float32)  # a float mask of whole labels is fine
    _rewrite(root / "masks/P001/T2axi.nii.gz", _img(whole))
    assert _report(root).problems == []


def test_nan_and_infinite_voxels_are_found_with_nibabel(tmp_path):
    root = _write(tmp_path / "c")
    path = root / "images/P002/T2axi.nii.gz"
    nii = nib.load(str(path))
    data = np.asanyarray(nii.dataobj).astype(np.float32)
    data[0, 0, 0], data[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(data, nii.affine, nii.header), str(path))
    assert not np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).any()  # why nibabel is needed
    assert _report(root, "headers").problems == []
    p = _only(_report(root).problems, row=ROW["P002", "T2axi"], field="image")
    assert p.severity == "error" and "2 voxels are NaN or infinite" in p.problem


@pytest.mark.parametrize("path, expected", [
    ("../outside.nii.gz", "leads out of the cohort folder"),
    ("images/../../outside.nii.gz", "leads out of the cohort folder"),
    ("/etc/outside.nii.gz", "an absolute path"),
])
def test_paths_outside_the_cohort_folder_are_errors_even_without_file_checks(tmp_path, path, expected):
    root = _write(tmp_path / "c")
    _edit_series(root, image=(ROW["P004", "T2axi"], path))
    p = _only(_report(root, "tables").problems, row=ROW["P004", "T2axi"], field="image")
    assert p.severity == "error" and expected in p.problem and path in p.problem
    with pytest.raises(ValidationError, match="row 6, field 'image'"):
        Cohort.load(root, check_files=False)


def test_a_link_leading_out_of_the_cohort_folder_is_an_error(tmp_path):
    root = _write(tmp_path / "c")
    target = root / "masks/P001/T2axi.nii.gz"
    shutil.copy(target, tmp_path / "elsewhere.nii.gz")
    target.unlink()
    target.symlink_to(tmp_path / "elsewhere.nii.gz")
    p = _only(_report(root, "headers").problems, row=ROW["P001", "T2axi"], field="mask")
    assert "a link that leads out of the cohort folder" in p.problem


def test_series_table_spacing_and_size_must_match_the_header(tmp_path):
    root = _write(tmp_path / "c")
    _edit_series(root, spacing_x=(ROW["P003", "T2axi"], 0.9), size_y=(ROW["P001", "ADC"], 9))
    problems = _report(root, "headers").problems
    sp = _only(problems, row=ROW["P003", "T2axi"], field="spacing_x")
    assert "0.9 mm, but the header of images/P003/T2axi.nii.gz says 0.8 mm" in sp.problem
    sz = _only(problems, row=ROW["P001", "ADC"], field="size_y")
    assert "9 voxels, but the header of images/P001/ADC.nii.gz says 8" in sz.problem
    _edit_series(root, spacing_x=(ROW["P003", "T2axi"], 0.8004), size_y=(ROW["P001", "ADC"], 8))
    assert _report(root, "headers").problems == []  # spacing within 1e-3 relative


def test_unreadable_missing_and_non_3d_files(tmp_path):
    root = _write(tmp_path / "c")
    raw = (root / "images/P001/T2axi.nii.gz").read_bytes()
    (root / "images/P001/T2axi.nii.gz").write_bytes(raw[: len(raw) // 2])
    (root / "masks/P002/T2axi.nii.gz").unlink()
    vol = sitk.JoinSeries([_img(np.ones((4, 8, 8), np.float32))] * 2)
    _rewrite(root / "images/P003/T2axi.nii.gz", vol)
    problems = _report(root, "headers").problems
    assert "truncated" in _only(problems, row=ROW["P001", "T2axi"], field="image").problem
    assert "does not exist" in _only(problems, row=ROW["P002", "T2axi"], field="mask").problem
    assert "a 4D image" in _only(problems, row=ROW["P003", "T2axi"], field="image").problem


def test_empty_mask_is_a_warning_that_does_not_stop_loading(tmp_path):
    root = _write(tmp_path / "c")
    _rewrite(root / "masks/P004/T2axi.nii.gz", _img(np.zeros((4, 8, 8), np.uint8)))
    p = _only(_report(root).problems, row=ROW["P004", "T2axi"], field="mask")
    assert p.severity == "warning" and "empty" in p.problem
    Cohort.load(root, level="content")


def test_one_label_is_a_warning_for_a_classification_cohort_and_fine_for_segmentation(tmp_path):
    root = _write(tmp_path / "cls", patient_labels=["sarcoma"] * 4)
    p = _only(_report(root, "tables").problems, field="label")
    assert p.severity == "warning" and p.file.endswith("patients.csv") and "'sarcoma'" in p.problem
    cohort = Cohort.load(root)  # a one-patient cohort to predict on is fine ...
    with pytest.raises(ValidationError, match=r"patients.csv, field 'label': only \['sarcoma'\]"):
        require_two_labels(cohort)  # ... training a classifier on it is not
    seg = _write(tmp_path / "seg", labels=["tumour"], positive=None, patient_labels=["tumour"] * 4)
    assert _report(seg).problems == []


def test_every_problem_is_listed_at_once(tmp_path):
    root = _write(tmp_path / "c")
    p = pd.read_csv(root / "patients.csv")
    p.loc[1, "label"] = "benign"
    p.to_csv(root / "patients.csv", index=False)
    _edit_series(root, image=(ROW["P004", "T2axi"], "../x.nii.gz"), spacing_z=(ROW["P001", "T2axi"], 5.0))
    _rewrite(root / "masks/P003/T2axi.nii.gz", _img(_mask_array(), origin=(0.0, 0.0, 30.0)))
    (root / "images/P001/ADC.nii.gz").unlink()
    found = {(p.row, p.field) for p in _report(root, "headers").errors}
    assert found == {(3, "label"), (ROW["P004", "T2axi"], "image"), (ROW["P001", "T2axi"], "spacing_z"),
                     (ROW["P003", "T2axi"], "mask"), (ROW["P001", "ADC"], "image")}
    with pytest.raises(CohortInvalid, match=r"1 of 5 errors; also: .*series.csv, row 6, field 'image'") as err:
        Cohort.load(root)
    assert len(err.value.problems) == 5 and isinstance(err.value, ValidationError)


def test_cli_validate_prints_every_problem_and_exits_1_on_errors(tmp_path):
    root = _write(tmp_path / "c")
    _rewrite(root / "masks/P002/T2axi.nii.gz", _img(_mask_array(), origin=(0.0, 0.0, 30.0)))
    _rewrite(root / "masks/P004/T2axi.nii.gz", _img(np.zeros((4, 8, 8), np.uint8)))
    res = runner.invoke(app, ["cohort", "validate", str(root)], env={"COLUMNS": "250"})
    assert res.exit_code == 1, res.output
    for text in ("file", "row", "field", "problem", "severity", "series.csv", "not on its image's grid", "error",
                 "empty", "warning", "not valid", "1 error(s), 1 warning(s)"):
        assert text in res.output, (text, res.output)
    res = runner.invoke(app, ["cohort", "validate", str(root), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["level"] == "content" and out["errors"] == 1 and out["warnings"] == 1
    assert {(p["row"], p["field"], p["severity"]) for p in out["problems"]} == {(4, "mask", "error"),
                                                                                (6, "mask", "warning")}
    res = runner.invoke(app, ["cohort", "validate", str(root), "--level", "headers", "--json"])
    assert json.loads(res.output)["warnings"] == 0  # the empty mask is found by reading voxels only
    _rewrite(root / "masks/P002/T2axi.nii.gz", _img(_mask_array()))
    res = runner.invoke(app, ["cohort", "validate", str(root)], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "valid" in res.output and "warning" in res.output, res.output


def test_export_nnunet_refuses_a_mask_with_another_origin_and_writes_nothing(tmp_path):
    root = _write(tmp_path / "c")
    _rewrite(root / "masks/P003/T2axi.nii.gz", _img(_mask_array(), origin=(0.0, 0.0, 30.0)))
    raw = tmp_path / "raw"
    res = runner.invoke(app, ["export", "nnunet", str(root), "--out", str(raw), "--id", "501", "--name", "X",
                              "--sequences", "T2axi", "--folds", "2"])
    assert isinstance(res.exception, ValidationError) and "not on its image's grid" in str(res.exception)
    cohort = Cohort.load(root, check_files=False)  # no file checks: the export's own check still refuses
    with pytest.raises(InputError, match=r"masks/P003/T2axi.nii.gz: not on its image's grid \(origin"):
        export_nnunet(cohort, raw, 501, "X", ["T2axi"], n_folds=2)
    assert not raw.exists() or not any(raw.iterdir())


def test_a_table_cut_at_a_line_end_is_found_by_its_row_count(tmp_path):
    root = _write(tmp_path / "c")
    lines = (root / "series.csv").read_text().splitlines(keepends=True)
    (root / "series.csv").write_text("".join(lines[:-1]))  # P004 lost, still a well-formed table
    problem = _only(_report(root, "tables").errors, file=str(root / "series.csv"))
    assert "holds 4 row(s) but cohort.json records 5" in problem.problem
    res = runner.invoke(app, ["cohort", "validate", str(root), "--level", "headers", "--json"])
    assert res.exit_code == 1
    assert [p["field"] for p in json.loads(res.output)["problems"] if "records 5" in p["problem"]] == [None]
    with pytest.raises(ValidationError, match="records 5"):
        Cohort.load(root)

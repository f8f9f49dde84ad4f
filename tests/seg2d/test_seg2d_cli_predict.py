"""`sarcomri segment predict` with a 2D model of a transfer study: NIfTI inputs, and a DICOM series whose
mask is also written as a DICOM-SEG that reads back to the same mask."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
from typer.testing import CliRunner

from sarcomri.cli.segment import app
from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.io.images import same_grid
from sarcomri.models import save_model
from sarcomri.seg2d.config import InferSettings2D
from sarcomri.seg2d.infer import Segmenter, is_2d_model, predict_images
from sarcomri.seg2d.model import build_network
from sarcomri.seg2d.train import model_spec

from .conftest import TINY_DATA, TINY_NET

SEQS = ("DWI_b0", "DWI_b1000", "ADC")


def _model(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "models" / "target" / "n8"
    save_model(build_network(TINY_NET, 3), model_spec(TINY_NET, TINY_DATA), folder)
    return folder


def test_a_2d_model_is_told_apart_from_a_3d_one(tmp_path):
    from sarcomri.seg3d.model import build_network as build_3d
    from sarcomri.seg3d.plan import Plan

    plan = Plan(sequences=["T1"], target_spacing=[3.0, 1.2, 1.2], median_shape=[12, 32, 32],
                patch_size=[8, 16, 16], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernels=[[3, 3, 3]] * 3,
                filters=[4, 8, 16], batch_size=2)
    save_model(build_3d(plan), plan, tmp_path / "m3")
    assert is_2d_model(_model(tmp_path)) and not is_2d_model(tmp_path / "m3")
    assert not is_2d_model(tmp_path / "nothing-here")


def test_segment_predict_with_a_2d_model_on_nifti_and_on_a_dicom_series(pair_cohort, tmp_path):
    from sarcomri.io.dicomseg import load_series, seg_to_mask
    from sarcomri.synth.dicom import write_dicom

    model = _model(tmp_path)
    files = [pair_cohort / "images" / "T004" / f"{s}.nii.gz" for s in SEQS]
    images = [sitk.ReadImage(str(f)) for f in files]
    expected_mask, expected_prob = predict_images(Segmenter.load(model), images,
                                                  InferSettings2D(largest_component=False))
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(model), *map(str, files), "--out", str(tmp_path / "nii"),
                              "--probabilities", "--no-largest-component"])
    assert res.exit_code == 0, res.output
    mask = sitk.ReadImage(str(tmp_path / "nii" / "DWI_b0.nii.gz"))
    prob = sitk.ReadImage(str(tmp_path / "nii" / "DWI_b0_prob.nii.gz"))
    assert same_grid(mask, images[0]) and same_grid(prob, images[0])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(expected_mask))
    np.testing.assert_allclose(sitk.GetArrayFromImage(prob), sitk.GetArrayFromImage(expected_prob), atol=1e-6)

    # the first sequence as a DICOM series: NIfTI on the series grid and a DICOM-SEG that reads back to it
    with CohortWriter(tmp_path / "c2", labels=["tumour"], positive_label=None) as w:
        w.add_patient("T004", "tumour")
        w.add_series("T004", "T2axi", images[0])
    write_dicom(Cohort.load(tmp_path / "c2"), tmp_path / "dicom")
    [series] = [d for d in (tmp_path / "dicom" / "T004").iterdir() if "SEG" not in d.name]
    res = runner.invoke(app, ["predict", str(model), str(series), *map(str, files[1:]), "--out",
                              str(tmp_path / "dcm")])
    assert res.exit_code == 0, res.output
    source = load_series(series)
    nifti = sitk.ReadImage(str(tmp_path / "dcm" / f"{series.name}.nii.gz"))
    assert same_grid(nifti, source.image)
    back, table = seg_to_mask(tmp_path / "dcm" / f"{series.name}_seg.dcm", source.image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(nifti))
    assert table[0]["name"] == "tumour"


def test_segment_predict_with_a_2d_model_wants_one_image_per_sequence(pair_cohort, tmp_path):
    from sarcomri.errors import InputError

    res = CliRunner().invoke(app, ["predict", str(_model(tmp_path)), str(pair_cohort / "images" / "T004" /
                                                                        "ADC.nii.gz"), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError) and "give one image per sequence" in str(res.exception)

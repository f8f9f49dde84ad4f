"""`sarcomri radiomics firstorder` on the IBSI digital phantom and on small written volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sarcomri.cli.radiomics import app
from sarcomri.errors import InputError


def _write(path, arr, spacing_xyz=(1.5, 1.5, 4.0), origin=(0.0, 0.0, 0.0)):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing_xyz)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return path


def test_phantom_through_the_command(shared_data):
    folder = shared_data / "radiomics" / "ibsi-digital-phantom"
    res = CliRunner().invoke(app, ["firstorder", "--image", str(folder / "image" / "phantom.nii.gz"),
                                   "--mask", str(folder / "mask" / "mask.nii.gz"), "--bin-width", "1",
                                   "--histogram", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["mean"] == pytest.approx(2.15, abs=0.005)
    assert out["kurtosis_excess"] == pytest.approx(-0.355, abs=0.0005)
    assert out["energy"] == pytest.approx(567)
    assert out["root_mean_square"] == pytest.approx(2.77, abs=0.005)
    assert out["histogram_min_gradient"] == pytest.approx(-50)
    assert out["settings"]["spacing_zyx_mm"] == [2.0, 2.0, 2.0]
    table = CliRunner().invoke(app, ["firstorder", "--image", str(folder / "image" / "phantom.nii.gz"),
                                     "--mask", str(folder / "mask" / "mask.nii.gz"), "--bin-width", "1"])
    assert table.exit_code == 0 and "kurtosis_excess" in table.output and "IPH6" in table.output


def test_adc_unit_and_bin_count(tmp_path):
    rng = np.random.default_rng(4)
    adc = rng.normal(1.2e-3, 3e-4, (5, 10, 10)).clip(1e-4).astype(np.float32)  # stored in mm2/s
    mask = np.zeros(adc.shape, np.uint8)
    mask[1:4, 2:8, 2:8] = 1
    img, msk = _write(tmp_path / "adc.nii.gz", adc), _write(tmp_path / "mask.nii.gz", mask)
    res = CliRunner().invoke(app, ["firstorder", "--image", str(img), "--mask", str(msk), "--adc-unit", "mm2/s",
                                   "--bin-width", "0.05", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    roi = adc[mask == 1].astype(float) * 1000.0
    assert out["mean"] == pytest.approx(roi.mean(), rel=1e-6)
    assert out["settings"]["scale"] == 1000.0
    counted = CliRunner().invoke(app, ["firstorder", "--image", str(img), "--mask", str(msk), "--bin-count",
                                       "16", "--json"])
    assert json.loads(counted.output)["n_bins"] == 16
    # the same map in mm2/s with pyradiomics' default bin width: one bin, a warning on stderr
    warned = CliRunner().invoke(app, ["firstorder", "--image", str(img), "--mask", str(msk), "--json"])
    assert warned.exit_code == 0 and "warning" in warned.output


def test_mask_on_another_grid_is_refused_naming_both_files(tmp_path):
    arr = np.ones((3, 4, 4), np.float32)
    img = _write(tmp_path / "t2.nii.gz", arr)
    msk = _write(tmp_path / "mask.nii.gz", np.ones((3, 4, 4), np.uint8), spacing_xyz=(1.0, 1.0, 4.0))
    res = CliRunner().invoke(app, ["firstorder", "--image", str(img), "--mask", str(msk)])
    assert isinstance(res.exception, InputError)
    msg = str(res.exception)
    assert "t2.nii.gz" in msg and "mask.nii.gz" in msg and "spacing" in msg

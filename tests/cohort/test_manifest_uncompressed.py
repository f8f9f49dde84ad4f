"""A throw-away cohort (predict's one patient) is written uncompressed: ``.nii`` files that read back to the
same images and masks as the compressed default, and a cohort that validates."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort, CohortWriter


def test_an_uncompressed_cohort_holds_the_same_images(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(100, 10, (4, 12, 12)).astype(np.float32))
    image.SetSpacing((0.8, 0.8, 4.0))
    mask = sitk.GetImageFromArray((np.arange(4 * 12 * 12).reshape(4, 12, 12) % 7 == 0).astype(np.uint8))
    mask.CopyInformation(image)
    for name, compress in (("gz", True), ("raw", False)):
        with CohortWriter(tmp_path / name, labels=["sarcoma"], compress=compress) as w:
            w.add_patient("P1", "sarcoma")
            w.add_series("P1", "T2axi", image, mask)
    raw, gz = Cohort.load(tmp_path / "raw"), Cohort.load(tmp_path / "gz")
    raw.validate(check_files=True)
    assert raw.series["image"].iloc[0].endswith("T2axi.nii") and gz.series["image"].iloc[0].endswith(".nii.gz")
    for read in ("read_image", "read_mask"):
        a, b = getattr(raw, read)("P1", "T2axi"), getattr(gz, read)("P1", "T2axi")
        assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
        assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()

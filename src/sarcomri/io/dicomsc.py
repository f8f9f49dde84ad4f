"""An RGB image as a DICOM Secondary Capture (highdicom) in the patient's study: the prediction's summary
(:mod:`sarcomri.report.summary_figure`) for viewers that show neither DICOM SR nor HTML. The patient and study
modules are copied from a source image of the study (de-identified, as for the SEG and the SR). Its
PatientOrientation is that of the slice it shows (in the source's row and column order); the image also holds
text, so it says ``BurnedInAnnotation`` YES."""

from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom

from sarcomri import __version__
from sarcomri.io.dicomseg import with_type2_attributes

SC_SERIES_NUMBER = 902


def summary_sc(rgb: np.ndarray, ref: pydicom.Dataset) -> hd.sc.SCImage:
    """The secondary capture of ``rgb`` (height, width, 3; uint8) in the study of ``ref``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"an RGB uint8 image (height, width, 3), not {rgb.shape} {rgb.dtype}")
    with warnings.catch_warnings():  # about values copied from the source (a pseudonym is a bare name)
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum length")
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=with_type2_attributes(ref), pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
            coordinate_system="PATIENT", patient_orientation=orientation_of(ref),
            series_instance_uid=hd.UID(), series_number=SC_SERIES_NUMBER,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="sarcomri",
            series_description="sarcomri summary (decision support)", software_versions=__version__)
    sc.BurnedInAnnotation = "YES"
    return sc


def orientation_of(ref: pydicom.Dataset) -> tuple[str, str]:
    """PatientOrientation of an image shown in ``ref``'s own row and column order: the patient direction (L/R,
    P/A, H/F) each of its rows and columns runs in, from ImageOrientationPatient (its dominant axis)."""
    cosines = [float(v) for v in (ref.get("ImageOrientationPatient") or (1, 0, 0, 0, 1, 0))]
    letters = (("R", "L"), ("A", "P"), ("F", "H"))
    out = []
    for vector in (cosines[:3], cosines[3:]):
        axis = int(np.argmax(np.abs(vector)))
        out.append(letters[axis][vector[axis] > 0])
    return out[0], out[1]


def write_summary_sc(rgb: np.ndarray, ref: pydicom.Dataset, out_path: str | Path) -> Path:
    """Write :func:`summary_sc` to ``out_path`` (atomically)."""
    from sarcomri.io.atomic import atomic_path

    sc = summary_sc(rgb, ref)
    with atomic_path(out_path, overwrite=True) as tmp:
        sc.save_as(tmp)
    return Path(out_path)

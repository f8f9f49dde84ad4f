"""Small DICOM series written with pydicom, for ingestion tests with known geometry and known headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

IDENTITY_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_series(
    folder: Path,
    n_slices: int = 4,
    *,
    rows: int = 8,
    columns: int = 6,
    pixel_spacing=(0.8, 0.7),
    slice_spacing: float = 2.5,
    origin=(-10.0, -20.0, 30.0),
    iop=IDENTITY_IOP,
    description: str = "T2axi",
    series_number: int = 1,
    patient_id: str = "SRC-PATIENT-0001",
    patient_name: str = "Doe^Jane",
    birth_date: str = "19600102",
    accession: str = "ACC99887766",
    b_values=None,
    b_tag: str = "standard",
    series_uid: str | None = None,
    study_uid: str | None = None,
    values=None,
    suffix: str = ".dcm",
) -> list[Path]:
    """Write one MR series (one file per slice, or per slice and b-value) and return the file paths.

    ``values(k, b)`` gives the pixel array of slice ``k`` at b-value ``b`` (default: a ramp). ``b_tag`` picks
    where the b-value goes: 'standard' (0018,9087), 'siemens', 'ge', 'philips'.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or "1.2.826.0.1.3680043.8.498.1"
    row_cos, col_cos = np.array(iop[:3], float), np.array(iop[3:], float)
    normal = np.cross(row_cos, col_cos)
    paths = []
    for bi, b in enumerate(b_values if b_values is not None else [None]):
        for k in range(n_slices):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = folder / f"im{series_number}-{bi}-{k:03d}{suffix}"
            ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.Modality = "MR"
            ds.Manufacturer = "SIEMENS" if b_tag == "siemens" else "TEST"
            ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, patient_name, birth_date
            ds.AccessionNumber = accession
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.StudyDate = "20200101"
            ds.SeriesNumber, ds.InstanceNumber = series_number, bi * n_slices + k + 1
            ds.SeriesDescription = description
            ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
            ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
            ds.ImagePositionPatient = [f"{v:.4f}" for v in np.asarray(origin) + k * slice_spacing * normal]
            ds.PixelSpacing = [str(pixel_spacing[0]), str(pixel_spacing[1])]
            ds.SliceThickness = str(slice_spacing)
            ds.Rows, ds.Columns = rows, columns
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            if b is not None:
                _set_b(ds, b, b_tag)
            arr = values(k, b) if values is not None else (np.arange(rows * columns).reshape(rows, columns) + 10 * k)
            ds.PixelData = np.asarray(arr, dtype=np.uint16).tobytes()
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def _set_b(ds: pydicom.Dataset, b: float, tag: str) -> None:
    if tag == "standard":
        ds.add_new((0x0018, 0x9087), "FD", float(b))
    elif tag == "siemens":
        ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
        ds.add_new((0x0019, 0x100C), "IS", str(int(b)))
    elif tag == "ge":
        ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
        ds.add_new((0x0043, 0x1039), "IS", [str(int(b) + 1_000_000_000), "8", "0", "0"])
    elif tag == "philips":
        ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
        ds.add_new((0x2001, 0x1003), "FL", float(b))
    else:
        raise ValueError(tag)


@pytest.fixture
def make_series():
    """The :func:`write_series` helper."""
    return write_series

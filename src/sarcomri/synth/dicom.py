"""Write a cohort's volumes as DICOM MR series (one file per slice) and its masks as DICOM-SEG.

Layout::

    DIR/labels.csv                                  patient_id,label,+clinical columns (for ``sarcomri ingest``)
    DIR/<patient>/<nn>_<sequence>/IM_<kkkk>.dcm      one MR Image Storage object per slice
    DIR/<patient>/<nn>_DWI/IM_<kkkk>.dcm             both b-values in ONE series (DiffusionBValue (0018,9087))
    DIR/<patient>/<nn>_SEG_<sequence>/SEG.dcm        the tumour mask as a binary DICOM-SEG (highdicom)

Each image carries the geometry of its SimpleITK volume (ImageOrientationPatient from the direction
cosines, ImagePositionPatient of each slice, PixelSpacing as row then column spacing, SliceThickness from the
synthetic protocol, SpacingBetweenSlices), PatientID = the cohort's pseudonym, SeriesDescription = the
canonical sequence name ('T2axi', 'ADC', 'DWI' for the diffusion series) and a vendor-like ProtocolName.
Float intensities are stored as uint16 with RescaleSlope/RescaleIntercept (slope = max / 65000; the ADC map
keeps slope 1, integer 10^-6 mm^2/s as scanners store it). Every UID is derived from the cohort's seed, task,
patient and series (``pydicom.uid.generate_uid`` with entropy sources), so the same cohort gets the same UIDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from sarcomri import __version__
from sarcomri.cohort.manifest import Cohort
from sarcomri.io import atomic
from sarcomri.synth.acquisition import Protocol, family_of, grid_for

DWI_SERIES = ("DWI_b0", "DWI_b1000")
MAX_STORED = 65000.0
#: Vendor-like protocol names the default sequence map (sarcomri/cohort/sequence_map.yaml) recognises.
PROTOCOL_NAMES = {"T2": "t2_tse", "fsT2": "t2_tse_fs", "T1": "t1_tse", "fsT1": "t1_fs", "fsT1CE": "t1_vibe_fs_post",
                  "dynamic": "t1_vibe_fs_dyn", "DWI": "ep2d_diff", "ADC": "ep2d_diff_ADC",
                  # the soft-tissue sarcoma study's sequences (by name: T1CEFS must not read as fsT1CE<plane>)
                  "T2FS": "t2_stir", "T1CEFS": "t1_ce_fs"}
STUDY_DATE = "20240101"


@dataclass
class DicomExport:
    """What :func:`write_dicom` wrote."""

    root: Path
    patients: int
    series: int
    files: int


def _uid(*parts) -> str:
    return generate_uid(entropy_srcs=["sarcomri.synth", *[str(p) for p in parts]])


def rescale(array: np.ndarray, integer: bool = False) -> tuple[np.ndarray, float]:
    """uint16 stored values and the slope such that ``stored * slope`` restores ``array`` (>= 0)."""
    if np.min(array) < 0:
        raise ValueError("negative intensities cannot be stored as uint16 with intercept 0")
    top = float(np.max(array))
    slope = 1.0 if integer and top <= 65535 else max(top / MAX_STORED, 1e-6)
    slope = float(f"{slope:.10g}")  # what DS can hold exactly
    return np.round(array / slope).astype(np.uint16), slope


def _base(pid: str, study_uid: str, series_uid: str, frame_uid: str, number: int, description: str,
          protocol: str) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = f"{pid}^", pid, "", "F"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, STUDY_DATE, "090000", "1"
    ds.ReferringPhysicianName, ds.AccessionNumber, ds.StudyDescription = "", "", "synthetic pelvis MRI"
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "MR", series_uid, number
    ds.SeriesDescription, ds.ProtocolName = description, protocol
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
    ds.Manufacturer, ds.ManufacturerModelName = "sarcomri", "synthetic phantom"
    ds.SoftwareVersions, ds.DeviceSerialNumber = __version__, "0"
    ds.BodyPartExamined = "PELVIS"
    return ds


def _slices(image: sitk.Image, base: pydicom.Dataset, thickness: float, sop_uid, first_number: int,
            integer: bool, extra: dict | None = None, family: str = "T2") -> list[pydicom.Dataset]:
    """One MR Image Storage dataset per slice of ``image``."""
    array = sitk.GetArrayFromImage(image)
    stored, slope = rescale(array, integer)
    d = np.asarray(image.GetDirection(), float).reshape(3, 3)
    sx, sy, sz = image.GetSpacing()
    out = []
    for k in range(array.shape[0]):
        ds = pydicom.Dataset()
        ds.update(base)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid(k)
        ds.InstanceNumber = first_number + k
        ds.ImageType = ["DERIVED", "PRIMARY", "ADC"] if family == "ADC" else ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.ScanningSequence = "EP" if family in ("DWI", "ADC") else ("GR" if family in ("fsT1CE", "dynamic") else "SE")
        ds.SequenceVariant, ds.ScanOptions = "SK", ("FS" if family.startswith("fs") else "")
        ds.MRAcquisitionType = "3D" if family in ("fsT1CE", "dynamic") else "2D"
        ds.ImageOrientationPatient = [float(f"{v:.6f}") for v in (*d[:, 0], *d[:, 1])]
        ds.ImagePositionPatient = [float(f"{v:.4f}") for v in image.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.PixelSpacing = [float(f"{sy:.6f}"), float(f"{sx:.6f}")]  # row spacing, column spacing
        ds.SliceThickness, ds.SpacingBetweenSlices = float(f"{thickness:.4f}"), float(f"{sz:.4f}")
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = int(array.shape[1]), int(array.shape[2])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, 0.0, "US"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = stored[k].tobytes()
        out.append(ds)
    return out


def _save(ds: pydicom.Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _seg(sources: list[pydicom.Dataset], mask: np.ndarray, uid_parts: tuple, number: int, label: str):
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="tumour",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="sarcomri synthetic ground truth", family=codes.cid7162.ArtificialIntelligence,
            version=__version__),
    )
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=mask.astype(np.uint8), segmentation_type="BINARY",
        segment_descriptions=[desc], series_instance_uid=_uid(*uid_parts, "series"), series_number=number,
        sop_instance_uid=_uid(*uid_parts, "sop"), instance_number=1, manufacturer="sarcomri",
        manufacturer_model_name="synthetic phantom", software_versions=__version__, device_serial_number="0",
        series_description=f"SEG {label}", content_label="TUMOUR", omit_empty_frames=False,
    )


def _thickness(cohort: Cohort, sequence: str, spacing_z: float) -> float:
    proto = cohort.meta.get("provenance", {}).get("protocol")
    try:
        return grid_for(sequence, Protocol(**proto)).thickness if proto else spacing_z
    except (TypeError, ValueError):
        return spacing_z


def patient_series(cohort: Cohort, pid: str, seed: int) -> list[tuple[str, list[pydicom.Dataset], pydicom.Dataset]]:
    """The DICOM objects of one patient: (folder name, slice datasets, SEG dataset) per series."""
    task = cohort.meta.get("task", "cohort")
    study_uid, frame_uid = _uid(seed, task, pid, "study"), _uid(seed, task, pid, "frame")
    have = [s for s in cohort.series[cohort.series.patient_id == pid].sequence]
    groups: list[tuple[str, list[str]]] = []
    for seq in have:
        if seq in DWI_SERIES:
            if not any(name == "DWI" for name, _ in groups):
                groups.append(("DWI", [s for s in DWI_SERIES if s in have]))
        else:
            groups.append((seq, [seq]))
    out = []
    for number, (name, members) in enumerate(groups, start=1):
        parts = (seed, task, pid, name)
        family = "DWI" if name == "DWI" else family_of(name)
        base = _base(pid, study_uid, _uid(*parts, "series"), frame_uid, number, name,
                     PROTOCOL_NAMES.get(name, PROTOCOL_NAMES.get(family, name)))
        slices: list[pydicom.Dataset] = []
        for seq in members:
            image = cohort.read_image(pid, seq)
            extra = None
            if name == "DWI":
                b = float(seq.split("_b")[1])
                extra = {"DiffusionBValue": b, "SequenceName": f"ep_b{int(b)}t"}
            slices += _slices(image, base, _thickness(cohort, seq, image.GetSpacing()[2]),
                              lambda k, seq=seq, parts=parts: _uid(*parts, seq, k), len(slices) + 1,
                              name == "ADC", extra, family)
        mask = cohort.read_mask(pid, members[0])
        seg = None
        if mask is not None:
            n = mask.GetSize()[2]
            seg = _seg(slices[:n], sitk.GetArrayFromImage(mask) > 0, (*parts, "seg"), 100 + number, name)
        out.append((f"{number:02d}_{name}", slices, seg))
    return out


def labels_table(cohort: Cohort) -> pd.DataFrame:
    """labels.csv for ``sarcomri ingest --labels``: patient_id (= DICOM PatientID), label, clinical columns."""
    return cohort.patients.copy()


def write_dicom(cohort: Cohort, out: str | Path, overwrite: bool = False) -> DicomExport:
    """Write every series of ``cohort`` under ``out`` (atomically: the folder appears when complete)."""
    seed = int(cohort.meta.get("provenance", {}).get("seed", 0))
    n_series = n_files = 0
    with atomic.atomic_directory(out, overwrite=overwrite, replaceable=lambda d: (d / "labels.csv").is_file(),
                                 protect=[cohort.root] if cohort.root else []) as tmp:
        for pid in cohort.patient_ids:
            for folder, slices, seg in patient_series(cohort, pid, seed):
                for k, ds in enumerate(slices, start=1):
                    _save(ds, tmp / pid / folder / f"IM_{k:04d}.dcm")
                n_series += 1
                n_files += len(slices)
                if seg is not None:
                    seg_folder = tmp / pid / f"{folder[:2]}_SEG_{folder[3:]}"
                    seg_folder.mkdir(parents=True, exist_ok=True)
                    seg.save_as(seg_folder / "SEG.dcm")
                    n_files += 1
        atomic.write_csv(tmp / "labels.csv", labels_table(cohort))
    return DicomExport(Path(out), len(cohort.patient_ids), n_series, n_files)

"""DICOM study discovery: walk a folder, read every header once, group instances into series.

Files are recognised by content, not by name (with or without ``.dcm``): a DICOM Part 10 file carries
``DICM`` at byte 128. Files without it are skipped and counted (``paths.csv``, ``.DS_Store``); a file that
claims to be DICOM but cannot be parsed, is cut short, or is an image without pixel data is an error
naming the file. Headers are read with pydicom, deferring large values, so pixel data is read once,
later, by SimpleITK (:mod:`sarcomri.io.volume`), or by pydicom for multi-frame files (kind ``multiframe``: more
than one frame, an enhanced SOP class or functional groups; read frame by frame by :mod:`sarcomri.io.multiframe`).

Instances are grouped by patient (PatientID), study (StudyInstanceUID) and series (SeriesInstanceUID).
"""

from __future__ import annotations

import os
import struct
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import BytesLengthException, InvalidDicomError

from sarcomri.errors import InputError
from sarcomri.io.bvalues import b_value, first_number, private_element
from sarcomri.io.deid import identifiers_of

MEDIA_DIRECTORY_CLASS = "1.2.840.10008.1.3.10"  # DICOMDIR
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_CLASSES = {"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"}  # binary/fractional, label map
#: Enhanced MR, Enhanced MR Color, Legacy Converted Enhanced MR: multi-frame even with one frame.
ENHANCED_MR_CLASSES = {"1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.3", "1.2.840.10008.5.1.4.1.1.4.4"}
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
#: What pydicom raises on a damaged file, when it reads the file or later when it converts a value.
_PARSE_ERRORS = (InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, KeyError, TypeError,
                 AttributeError, IndexError, NotImplementedError, OverflowError, struct.error)


@dataclass(frozen=True)
class Instance:
    """What ingestion needs from one DICOM file's header (identifiers kept only to scrub text)."""

    path: Path
    patient_id: str
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int | None
    description: str
    protocol: str
    kind: str  # 'image', 'multiframe', 'rtstruct', 'seg' or 'other'
    sop_uid: str
    sop_class_name: str = ""
    iop: tuple[float, ...] | None = None
    ipp: tuple[float, ...] | None = None
    pixel_spacing: tuple[float, ...] | None = None
    rows: int | None = None
    columns: int | None = None
    b_value: float | None = None
    image_type: tuple[str, ...] = ()
    trace: bool = False  # a diffusion trace (isotropic) image rather than one direction
    identifiers: frozenset[str] = frozenset()


@dataclass
class DicomSeries:
    """The instances of one SeriesInstanceUID of one patient, in file-name order."""

    patient_id: str
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int | None
    description: str
    protocol: str
    kind: str
    instances: list[Instance] = field(default_factory=list)

    @property
    def identifiers(self) -> set[str]:
        """Identifying header values of this series' patient (to scrub free text)."""
        return set().union(*(i.identifiers for i in self.instances))

    @property
    def folder(self) -> Path:
        """The folder of the first file (for messages)."""
        return self.instances[0].path.parent


@dataclass
class DicomScan:
    """Every DICOM instance under a folder, and the files that were not DICOM."""

    root: Path
    instances: list[Instance]
    skipped: list[Path]  # not DICOM, a DICOMDIR, or a non-image object that names no patient

    def series_by_patient(self) -> dict[str, list[DicomSeries]]:
        """Series grouped by PatientID, each patient's series ordered by study date, study, series number."""
        groups: dict[tuple[str, str], DicomSeries] = {}
        for inst in self.instances:
            key = (inst.patient_id, inst.series_uid)
            if key not in groups:
                groups[key] = DicomSeries(inst.patient_id, inst.study_uid, inst.study_date, inst.series_uid,
                                          inst.series_number, inst.description, inst.protocol, inst.kind)
            groups[key].instances.append(inst)
        patients: dict[str, list[DicomSeries]] = defaultdict(list)
        for series in groups.values():
            patients[series.patient_id].append(series)
        for lst in patients.values():
            lst.sort(key=lambda s: (s.study_date, s.study_uid, s.series_number or 0, s.series_uid))
        return dict(patients)


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root``, in sorted order (symbolic links followed)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` is a DICOM Part 10 file (``DICM`` at byte 128)."""
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def scan_dicom(files: list[Path], root: str | Path) -> DicomScan:
    """Read the header of every DICOM file in ``files`` (found under ``root``); raise on a corrupt one.

    Files that are not DICOM (no ``DICM`` marker), DICOMDIR files and non-image objects without a
    PatientID are returned in ``skipped``.
    """
    instances, skipped = [], []
    for path in files:
        inst = read_header(path) if is_dicom_file(path) else None
        if inst is None:
            skipped.append(path)
        else:
            instances.append(inst)
    return DicomScan(root=Path(root), instances=instances, skipped=skipped)


def read_header(path: Path) -> Instance | None:
    """The header of one DICOM file as an :class:`Instance`, None for a file to skip (DICOMDIR, or a
    non-image object that names no patient); raises :class:`InputError` when the file is unusable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, defer_size=1024)
            hint = f" ({caught[0].message})" if caught else ""
            return _instance(ds, path, hint)
        except _PARSE_ERRORS as exc:  # pydicom parses element values when they are read: anywhere in here
            raise InputError(path, f"corrupt DICOM file: {type(exc).__name__}: {exc}") from None


def _instance(ds: pydicom.Dataset, path: Path, hint: str) -> Instance | None:
    """The :class:`Instance` of a dataset read from ``path`` (see :func:`read_header`)."""
    sop_class = str(ds.get("SOPClassUID", "") or getattr(ds.file_meta, "MediaStorageSOPClassUID", ""))
    try:
        sop_class_name = pydicom.uid.UID(sop_class).name if sop_class else ""
    except Exception:  # noqa: BLE001 - an unknown class has no name
        sop_class_name = sop_class
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if sop_class == MEDIA_DIRECTORY_CLASS:
        return None
    series_uid = str(ds.get("SeriesInstanceUID", "") or "")
    if not len(ds):  # pydicom keeps nothing of a data set whose last element (pixel data) is cut short
        raise InputError(path, f"corrupt DICOM file: nothing in it could be read (cut short?){hint}")
    if not series_uid:
        raise InputError(path, f"corrupt DICOM file: no SeriesInstanceUID{hint}")
    if sop_class == RTSTRUCT_CLASS:
        kind = "rtstruct"
    elif sop_class in SEG_CLASSES:
        kind = "seg"
    elif "Image Storage" in sop_class_name or "PixelData" in ds or "Rows" in ds:
        multiframe = (int(ds.get("NumberOfFrames", 1) or 1) > 1 or sop_class in ENHANCED_MR_CLASSES
                      or "PerFrameFunctionalGroupsSequence" in ds)
        kind = "multiframe" if multiframe else "image"
    else:
        kind = "other"
    if not patient_id and kind == "other":
        return None
    if not patient_id:
        raise InputError(path, f"no PatientID: cannot tell whose image this is{hint}")
    if kind in ("image", "multiframe", "seg"):
        _check_pixel_data(ds, path)
    if kind == "image":
        for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns"):
            if ds.get(keyword) in (None, ""):
                raise InputError(path, f"an image without {keyword}: its geometry is unknown")
    series_number = ds.get("SeriesNumber")
    return Instance(
        path=path,
        patient_id=patient_id,
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        study_date=str(ds.get("StudyDate", "") or ""),
        series_uid=series_uid,
        series_number=int(series_number) if series_number not in (None, "") else None,
        description=str(ds.get("SeriesDescription", "") or "").strip(),
        protocol=str(ds.get("ProtocolName", "") or "").strip(),
        kind=kind,
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
        sop_class_name=sop_class_name,
        iop=_floats(ds.get("ImageOrientationPatient"), path, "ImageOrientationPatient", 6),
        ipp=_floats(ds.get("ImagePositionPatient"), path, "ImagePositionPatient", 3),
        pixel_spacing=_floats(ds.get("PixelSpacing"), path, "PixelSpacing", 2),
        rows=_int_or_none(ds.get("Rows")),
        columns=_int_or_none(ds.get("Columns")),
        b_value=b_value(ds) if kind == "image" else None,
        image_type=tuple(str(v) for v in (ds.get("ImageType") or ())),
        trace=_is_trace(ds),
        identifiers=frozenset(identifiers_of(ds)),
    )


def _is_trace(ds: pydicom.Dataset) -> bool:
    """True for a diffusion trace (isotropic) image: one of these markers says so.

    - standard: ImageType holds TRACEW, TRACE or ISOTROPIC, or DiffusionDirectionality (0018,9075) is ISOTROPIC;
    - Siemens: (0019,xx0D) DiffusionDirectionality is ``ISOTROPIC`` (creator ``SIEMENS MR HEADER``); the trace
      image of an ORIGINAL series, whose ImageType says ``...\\DIFFUSION\\NONE`` like its directional images;
    - Philips: (2001,xx04) diffusion direction is ``I`` (creator ``Philips Imaging DD 001``; ``O`` or an axis
      letter on a directional image);
    - GE: (0019,xxE0) number of diffusion directions is 0 **and** the gradient (0019,xxBB/BC/BD) is present and
      all zero **and** the b-value is above 0 (creator ``GEMS_ACQU_01``). GE writes no trace label, so all three
      are needed: an anonymiser may zero the gradient of a directional image (dcm2niix issue 542), whose direction
      count is then still above 0; a b = 0 image has no gradient either.

    A vendor's element counts only in the block its creator reserved, or in block 0x10 when no creator is recorded
    there, never in another creator's block (:func:`sarcomri.io.bvalues.private_element`). An image whose
    ImageType names a computed map (a value holding ADC, as ADC or EADC, or FA) is never trace, whatever else its
    header says (Siemens writes (0019,100D) ISOTROPIC on its ADC map too). Vendor values read as raw bytes (UN,
    after anonymisers) are decoded. docs/dicom_bvalues.md compares these rules with dcm2niix.
    """
    image_type = ds.get("ImageType") or ()
    types = {str(v).strip().upper() for v in ([image_type] if isinstance(image_type, str) else image_type)}
    if any("ADC" in v for v in types) or "FA" in types:
        return False
    if types & {"TRACEW", "TRACE", "ISOTROPIC"} or str(ds.get("DiffusionDirectionality", "")) == "ISOTROPIC":
        return True

    def text(group: int, offset: int, creator: str) -> str | None:
        elem = private_element(ds, group, offset, creator)
        if elem is None or elem.value is None:
            return None
        value = elem.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, list | tuple | pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        return str(value).replace("\x00", "").strip().upper()

    def number(offset: int) -> float | None:
        elem = private_element(ds, 0x0019, offset, "GEMS_ACQU_01")
        return None if elem is None else first_number(elem.value)

    if text(0x0019, 0x0D, "SIEMENS MR HEADER") == "ISOTROPIC":
        return True
    if text(0x2001, 0x04, "Philips Imaging DD 001") == "I":
        return True
    if number(0xE0) != 0 or [number(offset) for offset in (0xBB, 0xBC, 0xBD)] != [0.0, 0.0, 0.0]:
        return False
    b = b_value(ds)
    return b is not None and b > 0


def _check_pixel_data(ds: pydicom.Dataset, path: Path) -> None:
    """Raise when an image has no pixel data or its pixel data runs past the end of the file."""
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    if raw is None:
        raise InputError(path, "missing pixel data (header-only or truncated file)")
    length = getattr(raw, "length", None)
    tell = getattr(raw, "value_tell", None)
    if length is not None and tell is not None and length != 0xFFFFFFFF:
        if tell + length > path.stat().st_size:
            raise InputError(path, f"truncated: pixel data needs {length} bytes, the file holds "
                             f"{max(path.stat().st_size - tell, 0)}")
        syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", ""))
        if syntax in _UNCOMPRESSED and all(k in ds for k in ("Rows", "Columns", "BitsAllocated")):
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            expected = ds.Rows * ds.Columns * int(ds.get("SamplesPerPixel", 1)) * frames * ds.BitsAllocated // 8
            if length < expected:
                raise InputError(path, f"pixel data holds {length} bytes, {ds.Rows}x{ds.Columns} pixels need "
                                 f"{expected}")


def _floats(value, path: Path, keyword: str, n: int) -> tuple[float, ...] | None:
    if value in (None, ""):
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(path, f"{keyword} is not a list of numbers: {value!r}") from None
    if len(out) != n:
        raise InputError(path, f"{keyword} must hold {n} numbers, got {len(out)}")
    return out


def _int_or_none(value) -> int | None:
    return None if value in (None, "") else int(value)

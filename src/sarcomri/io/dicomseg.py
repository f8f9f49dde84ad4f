"""DICOM-SEG objects: read into a label mask on the grid of the image they segment, and written from one.

highdicom reads the segmentation as a volume (``Segmentation.get_volume``, one channel per segment) and
``Volume.match_geometry`` places it on the referenced image's grid by permuting, flipping, padding and
cropping only, never resampling: a segmentation on another grid (other spacing, orientation or a
non-integer offset) is an error. The label of each segment is its SegmentNumber; overlapping segments are
painted largest first (:mod:`sarcomri.io.labelmap`). Fractional segments count where the value is at
least 0.5.

Writing (:func:`write_dicom_seg`): a mask on the grid of a single-frame DICOM image series (as
:func:`load_series` or ingestion reads it) becomes a BINARY DICOM-SEG, one segment per label (1 = tumour by
default), one frame per source slice, referencing the source instances. The patient and study modules
are copied from the source by highdicom and nothing else about the patient is added: the SEG carries no
identifier the (de-identified) source does not already carry. A mask on any other grid is refused.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from sarcomri import __version__
from sarcomri.errors import InputError
from sarcomri.io.labelmap import MAX_LABEL, paint_largest_first

GRID_TOL = 1e-3  # relative tolerance on directions, spacing ratios and offsets (in voxels)


def referenced_series_uid(ds: pydicom.Dataset) -> str | None:
    """The SeriesInstanceUID of the segmented image series, when the header names it."""
    for ref in ds.get("ReferencedSeriesSequence", []):
        uid = ref.get("SeriesInstanceUID")
        if uid:
            return str(uid)
    return None


def referenced_sop_uids(ds: pydicom.Dataset) -> set[str]:
    """SOPInstanceUIDs of the source images named in the segmentation."""
    uids = set()
    for ref in ds.get("ReferencedSeriesSequence", []):
        for inst in ref.get("ReferencedInstanceSequence", []):
            uids.add(str(inst.ReferencedSOPInstanceUID))
    return uids


def image_geometry(image: sitk.Image) -> hd.VolumeGeometry:
    """The highdicom geometry of a SimpleITK image, axes in ``GetArrayFromImage`` order (z, y, x)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    affine = np.eye(4)
    for axis_out, axis_in in enumerate((2, 1, 0)):
        affine[:3, axis_out] = direction[:, axis_in] * spacing[axis_in]
    affine[:3, 3] = image.GetOrigin()
    return hd.VolumeGeometry(affine, tuple(image.GetSize()[::-1]), coordinate_system="PATIENT")


def seg_to_mask(path: str | Path, image: sitk.Image) -> tuple[sitk.Image, list[dict]]:
    """The label mask (label = SegmentNumber) of a DICOM-SEG file on ``image``'s grid, and one row per segment.

    Table rows hold ``label``, ``name`` (SegmentLabel), ``description``, ``property`` (the segmented
    property type's code meaning), ``voxels`` and ``voxels_shown`` (after overlap).
    """
    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001 - highdicom raises many types on malformed objects
        raise InputError(path, f"not a readable DICOM-SEG object: {exc}") from None
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    if not numbers:
        raise InputError(path, "the segmentation holds no segment")
    if max(numbers) > MAX_LABEL:
        raise InputError(path, f"segment number {max(numbers)}: a label mask holds at most {MAX_LABEL}")
    try:
        volume = seg.get_volume(combine_segments=False, segment_numbers=numbers, rescale_fractional=True)
        target = image_geometry(image)
        _check_spacing(volume, target, path)
        matched = volume.match_geometry(target, tol=GRID_TOL)
    except InputError:
        raise
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"the segmentation and its image are on different grids ({exc})") from None
    array = np.asarray(matched.array)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    threshold = 0.5 if np.issubdtype(array.dtype, np.floating) else 1
    masks = {n: array[..., i] >= threshold for i, n in enumerate(numbers)}
    labelmap, counts = paint_largest_first(masks)
    out = sitk.GetImageFromArray(labelmap)
    out.CopyInformation(image)
    table = []
    for item in seg.SegmentSequence:
        n = int(item.SegmentNumber)
        prop = item.get("SegmentedPropertyTypeCodeSequence")
        table.append({
            "label": n,
            "name": str(item.get("SegmentLabel", "")),
            "description": str(item.get("SegmentDescription", "") or ""),
            "property": str(prop[0].CodeMeaning) if prop else "",
            "voxels": counts[n][0],
            "voxels_shown": counts[n][1],
        })
    return out, table


def _check_spacing(volume: hd.Volume, target: hd.VolumeGeometry, path: Path) -> None:
    """Refuse a segmentation whose voxel size differs from the image's (match_geometry would subsample)."""
    ours, theirs = sorted(volume.spacing), sorted(target.spacing)
    if volume.spatial_shape[0] == 1:  # one frame: its slice spacing is not defined
        ours, theirs = sorted(volume.spacing[1:]), sorted(target.spacing[1:])
    if not np.allclose(ours, theirs, rtol=GRID_TOL, atol=1e-4):
        raise InputError(path, f"the segmentation's voxel size {tuple(round(s, 4) for s in volume.spacing)} mm "
                         f"differs from its image's {tuple(round(s, 4) for s in target.spacing)} mm "
                         "(mask and image on different grids)")


# ------------------------------------------------------------------------------------------------- writing
GEOMETRY_TOL_MM = 1e-2  # slice positions and in-plane spacing of mask vs source series


@dataclass
class SourceSeries:
    """A single-frame DICOM image series: its volume (as ingestion reads it) and its headers in slice order
    (the order of the volume's z axis, pixel data not loaded)."""

    image: sitk.Image
    datasets: list[pydicom.Dataset]

    @property
    def series_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)


def load_series(folder: str | Path, series_uid: str | None = None) -> SourceSeries:
    """Read the DICOM image series under ``folder`` (the only one there, or ``series_uid``) with the checks
    of ingestion (:func:`sarcomri.io.volume.read_volume`); SEG, RTSTRUCT and other objects are ignored."""
    from sarcomri.io.dicom import is_dicom_file, scan_dicom, walk_files
    from sarcomri.io.volume import read_volume

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder of DICOM files")
    scan = scan_dicom([f for f in walk_files(folder) if is_dicom_file(f)], root=folder)
    series: dict[str, list] = {}
    for inst in scan.instances:
        if inst.kind == "image":
            series.setdefault(inst.series_uid, []).append(inst)
    if series_uid is not None:
        series = {k: v for k, v in series.items() if k == series_uid}
    if not series:
        raise InputError(folder, "holds no single-frame DICOM image series" +
                         (f" with SeriesInstanceUID {series_uid}" if series_uid else ""))
    if len(series) > 1:
        names = ", ".join(f"{v[0].series_number} {v[0].description!r}" for v in series.values())
        raise InputError(folder, f"holds {len(series)} image series ({names}): give one series per folder, or "
                                 "ingest the study first (sarcomri ingest) and predict on the cohort")
    (instances,) = series.values()
    image, sop_uids = read_volume(instances, f"series {instances[0].series_number} in {folder.name}")
    path_of = {inst.sop_uid: inst.path for inst in instances}
    datasets = [pydicom.dcmread(path_of[uid], stop_before_pixels=True) for uid in sop_uids]
    return SourceSeries(image, datasets)


def _sorted_datasets(datasets: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """Single-frame image headers sorted along the slice normal (the z order of the volume)."""
    from sarcomri.io.volume import slice_normal

    if not datasets:
        raise InputError(None, "no source image to reference")
    for ds in datasets:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1 or "ImagePositionPatient" not in ds:
            raise InputError(None, "the source must be single-frame images with ImagePositionPatient "
                                   f"(SOPInstanceUID {ds.get('SOPInstanceUID', '?')})")
    if len({str(ds.SeriesInstanceUID) for ds in datasets}) > 1:
        raise InputError(None, "the source images belong to several series")
    normal = slice_normal([float(v) for v in datasets[0].ImageOrientationPatient])
    return sorted(datasets, key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))


#: Type 2 attributes of the patient and study modules that highdicom copies from the source: a de-identified
#: source may lack them, and they are then written empty (never filled in).
TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber")


def with_type2_attributes(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds``, or a copy of it with the missing :data:`TYPE2_COPIED` attributes present and empty."""
    missing = [k for k in TYPE2_COPIED if k not in ds]
    if not missing:
        return ds
    out = copy.deepcopy(ds)
    for keyword in missing:
        setattr(out, keyword, "")
    return out


def _check_on_series_grid(mask: sitk.Image, datasets: Sequence[pydicom.Dataset]) -> None:
    """Raise unless ``mask`` lies on the grid of the (sorted) single-frame ``datasets``."""
    first = datasets[0]
    want_size = (int(first.Columns), int(first.Rows), len(datasets))
    problem = None
    if mask.GetSize() != want_size:
        problem = f"size {mask.GetSize()} vs {want_size} (columns, rows, slices)"
    else:
        direction = np.asarray(mask.GetDirection(), float).reshape(3, 3)
        iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
        row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
        if not (np.allclose(direction[:, 0], iop[:3], atol=1e-4) and np.allclose(direction[:, 1], iop[3:], atol=1e-4)):
            problem = "orientation differs"
        elif not np.allclose(mask.GetSpacing()[:2], (col_spacing, row_spacing), atol=GEOMETRY_TOL_MM):
            problem = f"pixel spacing {mask.GetSpacing()[:2]} vs {(col_spacing, row_spacing)}"
        else:
            for k, ds in enumerate(datasets):
                point = mask.TransformIndexToPhysicalPoint((0, 0, k))
                if not np.allclose(point, [float(v) for v in ds.ImagePositionPatient], atol=GEOMETRY_TOL_MM):
                    problem = f"slice {k} lies at {tuple(round(p, 2) for p in point)}, the source slice at " \
                              f"{tuple(round(float(v), 2) for v in ds.ImagePositionPatient)}"
                    break
    if problem:
        raise InputError(None, f"the mask is not on the grid of its source series ({problem}); predict on the "
                               "series as read (sarcomri.io.dicomseg.load_series)")


def write_dicom_seg(
    mask: sitk.Image | np.ndarray,
    source: str | Path | SourceSeries | Sequence[pydicom.Dataset],
    out_path: str | Path,
    *,
    segments: Mapping[int, str] | None = None,
    series_description: str = "sarcomri tumour segmentation",
    series_number: int = 900,
    algorithm_name: str = "sarcomri seg3d",
    overwrite: bool = False,
    algorithm_version: str = __version__,
    content_label: str = "TUMOUR",
) -> Path:
    """Write ``mask`` as a BINARY DICOM-SEG of the single-frame series ``source`` to ``out_path`` (atomically).

    ``mask``: a SimpleITK label image on the series grid (as :func:`load_series` reads it; checked), or an array
    (z, y, x) in the series' slice order. ``source``: the series folder, a :class:`SourceSeries`, or its
    headers (any order). ``segments`` maps label values 1..n to segment labels (default ``{1: 'tumour'}``,
    with every non-zero voxel as tumour); segment numbers are the label values, so
    :func:`seg_to_mask` gives back the same label mask. Frames of empty slices are kept. An existing
    ``out_path`` is replaced only with ``overwrite``.
    """
    from sarcomri.io.atomic import atomic_path

    if isinstance(source, str | Path):
        source = load_series(source)
    datasets = _sorted_datasets(source.datasets if isinstance(source, SourceSeries) else list(source))
    datasets = [with_type2_attributes(ds) for ds in datasets]
    if isinstance(mask, sitk.Image):
        _check_on_series_grid(mask, datasets)
        array = sitk.GetArrayFromImage(mask)
    else:
        array = np.asarray(mask)
        want = (len(datasets), int(datasets[0].Rows), int(datasets[0].Columns))
        if array.shape != want:
            raise InputError(None, f"mask array of shape {array.shape}; the series is {want} (slices, rows, columns)")
    if segments is None:
        segments, array = {1: "tumour"}, (array != 0)
    numbers = sorted(int(n) for n in segments)
    if numbers != list(range(1, len(numbers) + 1)):
        raise InputError(None, f"segment numbers must be 1..n, got {numbers}")
    extra = sorted(set(np.unique(array).tolist()) - {0, *numbers})
    if extra:
        raise InputError(None, f"the mask holds label(s) {extra} that no segment names")
    algorithm = hd.AlgorithmIdentificationSequence(name=algorithm_name, family=codes.cid7162.ArtificialIntelligence,
                                                   version=algorithm_version)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=segments[n],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm)
        for n in numbers
    ]
    pixels = np.stack([array == n for n in numbers], axis=-1).astype(np.uint8)
    with warnings.catch_warnings():  # about values copied from the source (an over-long StudyID, a bare name)
        warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum length")
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(datasets, pixels, descriptions, series_number, algorithm_name, algorithm_version,
                            series_description, content_label)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        seg.save_as(tmp)
    return out_path


def _segmentation(datasets, pixels, descriptions, series_number, algorithm_name, algorithm_version,
                  series_description, content_label) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="sarcomri",
        manufacturer_model_name=algorithm_name, software_versions=algorithm_version, device_serial_number="0",
        series_description=series_description, content_label=content_label, omit_empty_frames=False,
    )

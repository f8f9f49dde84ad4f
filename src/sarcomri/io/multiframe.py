"""Multi-frame (Enhanced) DICOM images read as the slices of a classic series.

Enhanced MR Image Storage (1.2.840.10008.5.1.4.1.1.4.1), Legacy Converted Enhanced MR (…4.4) and any other
image whose frames carry functional groups hold a whole series in one file. Each frame becomes a
:class:`Frame`, an :class:`~sarcomri.io.dicom.Instance` like a classic slice, so that naming, b-value
splitting and the trace-over-directional choice (:mod:`sarcomri.io.series_plan`) and the geometry checks
and sorting of slices along their normal (:func:`sarcomri.io.volume.sort_slices`) are the classic ones.

Per frame, each attribute is taken from the frame's item of PerFrameFunctionalGroupsSequence, else from
SharedFunctionalGroupsSequence:

=====================================  ===========================================================
functional group                       gives
=====================================  ===========================================================
PlanePositionSequence                  ImagePositionPatient (required)
PlaneOrientationSequence               ImageOrientationPatient (required)
PixelMeasuresSequence                  PixelSpacing (required)
PixelValueTransformationSequence       RescaleSlope, RescaleIntercept (else the top-level ones, else 1, 0)
MRDiffusionSequence                    DiffusionBValue; DiffusionDirectionality ISOTROPIC = a trace image
MRImageFrameTypeSequence               FrameType (TRACEW, TRACE, ISOTROPIC: a trace image, as ImageType)
FrameContentSequence                   StackID, TemporalPositionIndex
MREchoSequence                         EffectiveEchoTime
UnassignedPerFrameConverted…Sequence   the b-value of a legacy converted frame (standard or vendor tag)
=====================================  ===========================================================

A multi-frame series is **kept aside** (:class:`KeepAside`, its message the reason) when its frames' geometry
is unknown, its pixel data is compressed in a transfer syntax no installed pydicom decoder reads, its pixels are
not grey levels, or a planned volume's frames cannot form one 3D volume (several orientations or stacks, or
several frames at one position: time points, echoes; :func:`volume_problem`). Corrupt files raise
:class:`InputError` naming the file.

Pixels are decoded by pydicom (native, RLE, JPEG 2000, JPEG-LS, … through whichever handler is installed)
and rescaled per frame. The volume's pixel type and geometry follow what SimpleITK's ImageSeriesReader gives a
classic series, so an enhanced series and its classic export ingest to the same volume: the stored type when
no frame is rescaled; when slopes and intercepts are integers, the smallest integer type holding the rescaled
range of BitsStored (GDCM's rule); else float64. Origin = the first frame's position along the normal, spacing
= (column spacing, row spacing, distance from the first to the last frame / (frames - 1)), directions = row
cosines, column cosines, their cross product (a single frame gets a slice spacing of 1, as in SimpleITK).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.pixels import get_decoder, iter_pixels

from sarcomri.errors import InputError, few
from sarcomri.io.bvalues import b_value
from sarcomri.io.dicom import DicomSeries, Instance
from sarcomri.io.volume import slice_normal, sort_slices

_TRACE_TYPES = {"TRACEW", "TRACE", "ISOTROPIC"}
_SAME_ORIENTATION = 1e-4
_SAME_POSITION_MM = 1e-3


class KeepAside(Exception):  # noqa: N818 - an outcome, not a failure: the message is the reason
    """A multi-frame series (or volume) that cannot enter the cohort; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class Frame(Instance):
    """One frame of a multi-frame file, standing for a slice (``path`` is the file, ``frame`` 0-based)."""

    frame: int = 0
    stack: str = ""
    temporal: int | None = None
    echo: float | None = None
    slope: float = 1.0
    intercept: float = 0.0
    bits_stored: int = 16


def is_frames(instances: Sequence[Instance]) -> bool:
    """True when ``instances`` are frames of multi-frame files (read with :func:`read_frames`)."""
    return bool(instances) and isinstance(instances[0], Frame)


def expand_series(series: DicomSeries) -> DicomSeries:
    """The series with each multi-frame file replaced by its frames (in file and frame order).

    Raises :class:`KeepAside` when a file's frames cannot be read as slices, :class:`InputError` when a file
    is corrupt.
    """
    if any(inst.kind != "multiframe" for inst in series.instances):
        raise KeepAside("the series mixes single-frame and multi-frame files")
    frames: list[Instance] = []
    for inst in series.instances:
        frames.extend(frames_of(inst))
    return dataclasses.replace(series, kind="image", instances=frames)


def frames_of(inst: Instance) -> list[Frame]:
    """The frames of one multi-frame file, with their geometry, rescale and diffusion attributes."""
    try:
        ds = pydicom.dcmread(inst.path, stop_before_pixels=True)
        return _frames(ds, inst)
    except (KeepAside, InputError):
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged values
        raise InputError(inst.path, f"corrupt multi-frame header: {type(exc).__name__}: {exc}") from None


def _frames(ds: pydicom.Dataset, inst: Instance) -> list[Frame]:
    problem = decoder_problem(ds)
    if problem:
        raise KeepAside(problem)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise KeepAside(f"colour multi-frame images ({ds.SamplesPerPixel} samples per pixel), not grey levels")
    n = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    shared_seq = ds.get("SharedFunctionalGroupsSequence") or []
    shared = shared_seq[0] if len(shared_seq) else pydicom.Dataset()
    if not per_frame and not len(shared_seq):
        raise KeepAside("no functional groups: the frames' positions, orientation and pixel spacing are unknown")
    if per_frame and len(per_frame) != n:
        raise InputError(inst.path, f"PerFrameFunctionalGroupsSequence holds {len(per_frame)} items for "
                         f"{n} frames")
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    out = []
    for k in range(n):
        groups = _Groups(per_frame[k] if per_frame else pydicom.Dataset(), shared, inst.path, k)
        slope, intercept = groups.rescale(ds)
        stack, temporal = groups.content()
        out.append(Frame(
            **{f.name: getattr(inst, f.name) for f in dataclasses.fields(Instance)}
            | {"kind": "image", "iop": groups.numbers("PlaneOrientationSequence", "ImageOrientationPatient", 6),
               "ipp": groups.numbers("PlanePositionSequence", "ImagePositionPatient", 3),
               "pixel_spacing": groups.numbers("PixelMeasuresSequence", "PixelSpacing", 2),
               "b_value": groups.b_value(ds), "image_type": groups.frame_type(), "trace": groups.trace()},
            frame=k, stack=stack, temporal=temporal, echo=groups.echo(), slope=slope, intercept=intercept,
            bits_stored=bits,
        ))
    return out


class _Groups:
    """The functional groups of one frame: its per-frame item first, then the shared item."""

    def __init__(self, own: pydicom.Dataset, shared: pydicom.Dataset, path: Path, k: int):
        self.own, self.shared, self.path, self.k = own, shared, path, k

    def item(self, keyword: str) -> pydicom.Dataset | None:
        """The first item of the functional group macro ``keyword`` for this frame, or None."""
        for holder in (self.own, self.shared):
            seq = holder.get(keyword)
            if seq is not None and len(seq):
                return seq[0]
        return None

    def value(self, keyword: str, attribute: str):
        item = self.item(keyword)
        return None if item is None else item.get(attribute)

    def numbers(self, keyword: str, attribute: str, n: int) -> tuple[float, ...]:
        """A required geometry attribute: :class:`KeepAside` when absent, :class:`InputError` when malformed."""
        value = self.value(keyword, attribute)
        if value in (None, ""):
            raise KeepAside(f"frame {self.k + 1} has no {keyword} ({attribute}): the frames' geometry is unknown")
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise InputError(self.path, f"frame {self.k + 1}: {attribute} is not a list of numbers: "
                             f"{value!r}") from None
        if len(out) != n or not all(np.isfinite(out)):
            raise InputError(self.path, f"frame {self.k + 1}: {attribute} must hold {n} finite numbers, "
                             f"got {value!r}")
        return out

    def rescale(self, ds: pydicom.Dataset) -> tuple[float, float]:
        item = self.item("PixelValueTransformationSequence")
        source = item if item is not None and "RescaleSlope" in item else ds
        return float(source.get("RescaleSlope", 1.0) or 1.0), float(source.get("RescaleIntercept", 0.0) or 0.0)

    def content(self) -> tuple[str, int | None]:
        stack, temporal = self.value("FrameContentSequence", "StackID"), self.value(
            "FrameContentSequence", "TemporalPositionIndex")
        return str(stack or ""), (int(temporal) if temporal not in (None, "") else None)

    def echo(self) -> float | None:
        value = self.value("MREchoSequence", "EffectiveEchoTime")
        return float(value) if value not in (None, "") else None

    def b_value(self, ds: pydicom.Dataset) -> float | None:
        """DiffusionBValue of MRDiffusionSequence, else a b-value tag of the legacy converted attributes or of
        the file (:func:`sarcomri.io.bvalues.b_value`: standard and vendor tags)."""
        value = self.value("MRDiffusionSequence", "DiffusionBValue")
        if value not in (None, ""):
            return float(value)
        for keyword in ("UnassignedPerFrameConvertedAttributesSequence",
                        "UnassignedSharedConvertedAttributesSequence"):
            item = self.item(keyword)
            if item is not None and (found := b_value(item)) is not None:
                return found
        return b_value(ds)

    def frame_type(self) -> tuple[str, ...]:
        return tuple(str(v) for v in (self.value("MRImageFrameTypeSequence", "FrameType") or ()))

    def trace(self) -> bool:
        """A diffusion trace image: DiffusionDirectionality ISOTROPIC, or FrameType TRACEW/TRACE/ISOTROPIC."""
        directionality = str(self.value("MRDiffusionSequence", "DiffusionDirectionality") or "").upper()
        return directionality == "ISOTROPIC" or bool(_TRACE_TYPES & {t.upper() for t in self.frame_type()})


def decoder_problem(ds: pydicom.Dataset) -> str | None:
    """Why pydicom cannot decode this file's pixel data here (no handler installed for its transfer syntax),
    or None when it can."""
    syntax = pydicom.uid.UID(str(getattr(ds.file_meta, "TransferSyntaxUID", "") or pydicom.uid.ExplicitVRLittleEndian))
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        return f"pixel data in transfer syntax {syntax.name}, which pydicom cannot decode"
    if not decoder.is_available:
        missing = "; ".join(m.split(" - requires ")[-1] for m in decoder.missing_dependencies) or "a decoder plugin"
        return f"pixel data compressed as {syntax.name}, and no installed decoder reads it (install one of: {missing})"
    return None


def volume_problem(frames: Sequence[Instance]) -> str | None:
    """Why the frames of one planned volume cannot be one 3D volume, or None when they can: several orientations
    or stacks (StackID), or two frames at one position (time points, echoes, ...). Spacing is checked on reading."""
    iops = np.array([f.iop for f in frames], dtype=float)
    if np.any(np.abs(iops - iops[0]).max(axis=1) > _SAME_ORIENTATION):
        n = max(2, len({tuple(np.round(row, 3)) for row in iops}))
        return f"frames in {n} orientations (several stacks, e.g. a localiser), not one 3D volume"
    stacks = {f.stack for f in frames if isinstance(f, Frame)} - {""}
    if len(stacks) > 1:
        return f"frames in {len(stacks)} stacks (StackID {few(sorted(stacks))}), not one 3D volume"
    depth = np.array([f.ipp for f in frames], dtype=float) @ slice_normal(frames[0].iop)
    positions = len(np.unique(np.round(depth / _SAME_POSITION_MM)))
    if positions < len(frames):
        what = []
        for attribute, label in (("temporal", "temporal positions"), ("echo", "echo times")):
            values = {getattr(f, attribute) for f in frames if isinstance(f, Frame)} - {None}
            if len(values) > 1:
                what.append(f"{len(values)} {label}")
        detail = ", ".join(what) or "time points, echoes or diffusion directions without a trace image"
        return f"{len(frames)} frames at {positions} positions: several volumes ({detail}), not one 3D volume"
    return None


def read_frames(frames: Sequence[Instance], what: str) -> tuple[sitk.Image, list[str]]:
    """The 3D image of ``frames`` (one volume, checked and sorted like classic slices) and the SOPInstanceUIDs
    of its frames' files in z order."""
    ordered, _ = sort_slices(frames, f"the frames of {what}")
    stored = _decode(ordered)
    rescales = {(f.slope, f.intercept) for f in ordered}
    dtype = rescaled_dtype(stored.dtype, ordered[0].bits_stored, rescales)
    if rescales == {(1.0, 0.0)}:
        array = stored.astype(dtype)
    else:
        array = np.empty(stored.shape, dtype=dtype)
        for k, f in enumerate(ordered):
            array[k] = stored[k].astype(np.float64) * f.slope + f.intercept
    image = sitk.GetImageFromArray(array)
    first = ordered[0]
    row, col = np.asarray(first.iop[:3], float), np.asarray(first.iop[3:], float)
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = slice_normal(first.iop)
    gap = 1.0
    if len(ordered) > 1:
        gap = float(np.linalg.norm(np.subtract(ordered[-1].ipp, first.ipp))) / (len(ordered) - 1)
    image.SetOrigin(tuple(float(v) for v in first.ipp))
    image.SetSpacing((first.pixel_spacing[1], first.pixel_spacing[0], gap))
    image.SetDirection(tuple(float(v) for v in np.column_stack([row, col, normal]).ravel()))
    return image, [f.sop_uid for f in ordered]


def rescaled_dtype(stored: np.dtype, bits_stored: int, rescales: set[tuple[float, float]]) -> np.dtype:
    """The pixel type SimpleITK (GDCM) gives stored values of ``stored`` type after rescaling (module docstring)."""
    native = np.dtype(stored).newbyteorder("=")
    if rescales <= {(1.0, 0.0)}:
        return native
    if not all(float(s).is_integer() and float(i).is_integer() for s, i in rescales):
        return np.dtype(np.float64)
    signed = native.kind == "i"
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    ends = [s * v + i for s, i in rescales for v in (lo, hi)]
    low, high = min(ends), max(ends)
    for candidate in ((np.uint8, np.uint16, np.uint32, np.uint64) if low >= 0 else
                      (np.int8, np.int16, np.int32, np.int64)):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float64)


def _first_decoder(path: Path) -> dict:
    """The decoding options for ``path``: only the first installed plugin of its transfer syntax. pydicom would
    otherwise try the next plugin when one fails, and a more tolerant one (pylibjpeg's libjpeg for JPEG-LS) decodes
    a damaged codestream into wrong pixels without an error."""
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if not syntax.is_compressed:
        return {}
    plugins = get_decoder(syntax).available_plugins
    return {"decoding_plugin": plugins[0]} if plugins else {}


def _decode(ordered: Sequence[Instance]) -> np.ndarray:
    """The stored values of ``ordered`` frames (frames, rows, columns), decoded file by file, in native byte order."""
    wanted: dict[Path, list[int]] = defaultdict(list)
    for f in ordered:
        wanted[f.path].append(f.frame)
    decoded: dict[tuple[Path, int], np.ndarray] = {}
    for path, indices in wanted.items():
        indices = sorted(set(indices))
        try:
            options = _first_decoder(path)
            for index, array in zip(indices, iter_pixels(path, indices=indices, **options), strict=True):
                decoded[path, index] = array
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on damaged pixel data
            raise InputError(path, f"cannot decode the multi-frame pixel data: {type(exc).__name__}: {exc}") from None
    shape = (ordered[0].rows, ordered[0].columns)
    for f in ordered:
        if decoded[f.path, f.frame].shape != shape:
            raise InputError(f.path, f"frame {f.frame + 1} decodes to {decoded[f.path, f.frame].shape} pixels, the "
                             f"header says {shape[0]}x{shape[1]}")
    stack = np.stack([decoded[f.path, f.frame] for f in ordered])
    return stack.astype(stack.dtype.newbyteorder("="))

"""Strict reading of NIfTI files: a truncated or corrupt file is an error, never a partly-zero volume.

SimpleITK (ITK's NIfTI reader) and nibabel both accept a ``.nii.gz`` cut short and fill the missing voxels
with zeros, so every NIfTI read in sarcomri goes through :func:`read_image` (or :func:`read_grid` for the
header only). The checks:

- the header is a NIfTI-1 or NIfTI-2 header with a known data type and positive dimensions;
- ``.nii``: the file holds at least ``vox_offset + voxels * bytes per voxel`` bytes;
- ``.nii.gz``: the whole gzip stream decompresses with a correct CRC and end marker, and its length is at
  least that size. For the header-only read (:func:`read_grid`) a gzip trailer whose uncompressed size
  (ISIZE, modulo 2**32) equals the size the header implies is taken as intact without decompressing (a cut
  file ends in compressed data, whose last four bytes match that size with probability 2**-32).
"""

from __future__ import annotations

import gzip
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError

_CHUNK = 1 << 20
# (real path, size, mtime_ns) of .nii.gz files whose whole stream was verified in this process: a file is
# decompressed for checking once, not at every read; any change of the file changes its stamp.
_VERIFIED: set[tuple[str, int, int]] = set()
# NIfTI datatype code -> bytes per voxel (nifti1.h)
_DTYPE_BYTES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8,
                1536: 16, 1792: 16, 2048: 32, 2304: 4}

#: One SimpleITK header read at a time: ITK's reader aborted the whole process (``Fatal Python error: Aborted`` in
#: ``ReadImageInformation``) when two threads of ``cohort.seriesfiles`` read NIfTI headers at once, once in the
#: test suite. A header read takes about a millisecond; the checks around it (gzip integrity, voxels) stay parallel.
_HEADER_LOCK = threading.Lock()


@dataclass(frozen=True)
class NiftiHeader:
    """What the header says about the data: voxels per dimension, bytes per voxel, where the data starts."""

    shape: tuple[int, ...]
    bytes_per_voxel: int
    vox_offset: int

    @property
    def expected_bytes(self) -> int:
        """The smallest file (uncompressed) that holds all the voxels."""
        return self.vox_offset + int(np.prod(self.shape, dtype=np.int64)) * self.bytes_per_voxel


@dataclass(frozen=True)
class Grid:
    """The voxel grid of an image as SimpleITK sees it (x, y, z order)."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    pixel_type: str
    components: int


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def parse_header(raw: bytes, path: Path) -> NiftiHeader:
    """The data layout from the first bytes of a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header."""
    for order in ("<", ">"):
        if len(raw) >= 348 and struct.unpack(order + "i", raw[:4])[0] == 348:
            dims = struct.unpack(order + "8h", raw[40:56])
            datatype, bitpix = struct.unpack(order + "2h", raw[70:74])
            offset = int(struct.unpack(order + "f", raw[108:112])[0])
            return _layout(path, dims, datatype, bitpix, max(offset, 352))
        if len(raw) >= 540 and struct.unpack(order + "i", raw[:4])[0] == 540:
            datatype, bitpix = struct.unpack(order + "2h", raw[12:16])
            dims = struct.unpack(order + "8q", raw[16:80])
            offset = int(struct.unpack(order + "q", raw[168:176])[0])
            return _layout(path, dims, datatype, bitpix, max(offset, 544))
    raise InputError(path, "not a NIfTI image (no NIfTI-1 or NIfTI-2 header)")


def _layout(path: Path, dims, datatype: int, bitpix: int, offset: int) -> NiftiHeader:
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        raise InputError(path, f"corrupt NIfTI header (dim[0] = {ndim})")
    shape = tuple(int(d) for d in dims[1: ndim + 1])
    if any(d < 1 for d in shape):
        raise InputError(path, f"corrupt NIfTI header (dimensions {shape})")
    nbytes = _DTYPE_BYTES.get(int(datatype))
    if nbytes is None or (bitpix and bitpix != 8 * nbytes):
        raise InputError(path, f"corrupt NIfTI header (data type {datatype}, {bitpix} bits per voxel)")
    return NiftiHeader(shape=shape, bytes_per_voxel=nbytes, vox_offset=offset)


def _read_head(path: Path, gz: bool) -> bytes:
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            return fh.read(544)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a readable NIfTI image ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated: the compressed stream ends early"
    return f"corrupt: {exc}".rstrip(": ")


def check_nifti_file(path: str | Path, full: bool = True) -> NiftiHeader:
    """Raise :class:`InputError` when a NIfTI file is truncated or corrupt; return its header layout.

    ``full`` decompresses the whole gzip stream (CRC and length checked); without it only the header and the
    gzip trailer are read (cheap, for validating many files).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "missing: no such file")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    gz = is_gzip(path)
    header = parse_header(_read_head(path, gz), path)
    need = header.expected_bytes
    if not gz:
        have = path.stat().st_size
        if have < need:
            raise InputError(path, f"truncated: {have} bytes, the header needs {need}")
        return header
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        isize = struct.unpack("<I", fh.read(4))[0]
    if not full and isize == need % 2**32:
        return header  # the usual case; anything else (padding, several gzip members, damage) is decompressed
    stat = path.stat()
    stamp = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if stamp in _VERIFIED:
        return header
    have = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                have += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a readable NIfTI image ({_reason(exc)})") from None
    if have < need:
        raise InputError(path, f"truncated: {have} bytes of data, the header needs {need}")
    if len(_VERIFIED) > 100_000:
        _VERIFIED.clear()
    _VERIFIED.add(stamp)
    return header


def read_image(path: str | Path) -> sitk.Image:
    """A NIfTI (or other ITK-readable) image, after :func:`check_nifti_file` for NIfTI files.

    Raises :class:`InputError` on a missing, truncated, corrupt or unreadable file.
    """
    path = Path(path)
    if _is_nifti_name(path):
        check_nifti_file(path, full=True)
    elif not path.is_file():
        raise InputError(path, "missing: no such file")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(path, "not a readable image (corrupt or truncated)") from None


def read_voxels(path: str | Path) -> np.ndarray:
    """Every voxel of a NIfTI file as stored, read with nibabel after :func:`check_nifti_file` (SimpleITK turns
    NaN and infinity into 0; nibabel keeps them). Raises :class:`InputError` on a damaged file."""
    import nibabel as nib

    path = Path(path)
    check_nifti_file(path, full=True)
    try:
        return np.asanyarray(nib.load(str(path)).dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on damaged files
        raise InputError(path, f"not a readable NIfTI image ({exc})") from None


def read_grid(path: str | Path) -> Grid:
    """The grid of an image from its header only (cheap), after the cheap integrity checks."""
    path = Path(path)
    if _is_nifti_name(path):
        check_nifti_file(path, full=False)
    elif not path.is_file():
        raise InputError(path, "missing: no such file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _HEADER_LOCK:  # see _HEADER_LOCK
            reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(path, "not a readable image header (corrupt or truncated)") from None
    return Grid(size=tuple(reader.GetSize()), spacing=tuple(reader.GetSpacing()), origin=tuple(reader.GetOrigin()),
                direction=tuple(reader.GetDirection()),
                pixel_type=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
                components=int(reader.GetNumberOfComponents()))


def _is_nifti_name(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))

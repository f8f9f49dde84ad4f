"""Acquisition geometry of the synthetic sequences: one voxel grid per sequence, in patient coordinates.

Coordinates are DICOM/ITK patient coordinates (LPS, mm): x toward the patient's left, y posterior, z head.
The phantom is centred near the origin. Each sequence has its own grid (plane, matrix, slice spacing and
thickness), following SYNTHETIC.md scaled down so the default stays fast:

* 2D turbo spin echo (T2, fsT2, T1, fsT1; axial, sagittal or coronal): ``size`` x ``size`` pixels over the
  field of view, ``slices`` slices, 4.5 mm thick with a 0.5 mm gap (published: 3 to 5 mm, gap 0.3 to 0.5 mm).
* 3D gradient echo (fsT1CE, dynamic): the same matrix, 4/3 as many slices at 3 mm, no gap (published: 2 to
  3.3 mm).
* Diffusion EPI (DWI_b0, DWI_b1000, ADC, axial): a 3/4 matrix (published: 224 to 256 against 512 to 704 for
  T2), 4 mm slices with a 1 mm gap as in the cervical/uterine DWI study.
* The soft-tissue sarcoma study's T1, T2FS and T1CEFS: one shared axial grid (co-registered, as the study's
  sequences were registered to each other), ``size`` x ``size`` pixels over the field of view, ``slices``
  contiguous slices spaced ``max(3.3, fov / slices)`` mm (the sts task's default 160 mm, 164 pixels and 48 slices
  give the published 0.98 x 0.98 x 3.3 mm; a smaller protocol keeps the field of view in z).

Sagittal and coronal grids are truly oriented in their plane: their direction cosines (SimpleITK direction
matrix; DICOM ImageOrientationPatient) are those of a sagittal or coronal acquisition, and the phantom is
sampled on them, never relabelled axial data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

#: Direction cosines (columns: row direction, column direction, slice normal) per acquisition plane.
DIRECTIONS = {
    "axi": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float),
    # rows run anterior->posterior, columns head->foot; slice normal = row x col = -x (toward the right)
    "sag": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], dtype=float),
    # rows run right->left, columns head->foot; slice normal = row x col = +y (posterior)
    "cor": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float),
}
FAMILIES = ("T2", "fsT2", "T1", "fsT1", "fsT1CE", "dynamic")
#: The soft-tissue sarcoma study's sequences (no plane in the name) and their contrast families.
STS_FAMILIES = {"T1": "T1", "T2FS": "fsT2", "T1CEFS": "fsT1CE"}
STS_SLICE_MM = 3.3


@dataclass(frozen=True)
class Protocol:
    """The scale of a synthetic acquisition: field of view, in-plane matrix and slice count of 2D series."""

    fov_mm: float = 281.6
    size: int = 128
    slices: int = 24


@dataclass(frozen=True)
class Grid:
    """One sequence's voxel grid: ``size`` is (x, y, z) in SimpleITK order, z being the slice axis."""

    plane: str
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    thickness: float
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def direction(self) -> np.ndarray:
        """3 x 3 direction matrix; its columns are the row, column and slice directions."""
        return DIRECTIONS[self.plane]

    @property
    def origin(self) -> np.ndarray:
        """Position of the first voxel's centre (mm)."""
        half = (np.asarray(self.size, float) - 1) / 2 * np.asarray(self.spacing, float)
        return np.asarray(self.centre, float) - self.direction @ half

    def reference(self) -> sitk.Image:
        """An empty float32 SimpleITK image on this grid (for resampling onto it)."""
        img = sitk.Image([int(s) for s in self.size], sitk.sitkFloat32)
        img.SetSpacing([float(s) for s in self.spacing])
        img.SetOrigin([float(o) for o in self.origin])
        img.SetDirection([float(v) for v in self.direction.ravel()])
        return img

    def corners(self) -> np.ndarray:
        """World coordinates of the 8 corner voxel centres, shape (8, 3)."""
        n = np.asarray(self.size, float) - 1
        idx = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
        return self.origin + (idx * np.asarray(self.spacing)) @ self.direction.T

    def world(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World x, y, z of every voxel as arrays in numpy order (slice, row, column)."""
        k, j, i = np.meshgrid(*(np.arange(n, dtype=float) for n in self.size[::-1]), indexing="ij")
        idx = np.stack([i * self.spacing[0], j * self.spacing[1], k * self.spacing[2]])
        pts = np.tensordot(self.direction, idx, axes=(1, 0)) + self.origin[:, None, None, None]
        return pts[0], pts[1], pts[2]


def plane_of(sequence: str) -> str:
    """The acquisition plane of a canonical sequence name (diffusion is axial)."""
    for plane in ("axi", "sag", "cor"):
        if sequence.endswith(plane):
            return plane
    return "axi"


def family_of(sequence: str) -> str:
    """The contrast family: T2, fsT2, T1, fsT1, fsT1CE, dynamic, DWI_b0, DWI_b1000 or ADC."""
    if sequence in ("ADC",) or sequence.startswith("DWI_b"):
        return sequence
    if sequence in STS_FAMILIES:
        return STS_FAMILIES[sequence]
    for fam in sorted(FAMILIES, key=len, reverse=True):
        if sequence.startswith(fam) and sequence[len(fam):] in ("axi", "sag", "cor"):
            return fam
    raise ValueError(f"no synthetic model for sequence {sequence!r}")


def grid_for(sequence: str, protocol: Protocol = Protocol()) -> Grid:
    """The voxel grid of ``sequence`` under ``protocol`` (see the module docstring)."""
    fam, plane = family_of(sequence), plane_of(sequence)
    pixel = protocol.fov_mm / protocol.size
    if sequence in STS_FAMILIES:
        dz = max(STS_SLICE_MM, protocol.fov_mm / protocol.slices)
        return Grid("axi", (protocol.size, protocol.size, protocol.slices), (pixel, pixel, dz), dz)
    if fam in ("ADC",) or fam.startswith("DWI_b"):
        n = int(round(protocol.size * 3 / 4))
        s = protocol.fov_mm / n
        return Grid("axi", (n, n, protocol.slices), (s, s, 5.0), 4.0)
    if fam in ("fsT1CE", "dynamic"):
        nz = int(round(protocol.slices * 4 / 3))
        return Grid(plane, (protocol.size, protocol.size, nz), (pixel, pixel, 3.0), 3.0)
    return Grid(plane, (protocol.size, protocol.size, protocol.slices), (pixel, pixel, 5.0), 4.5)


@dataclass(frozen=True)
class Lattice:
    """An axis-aligned isotropic grid covering every sequence grid: the phantom is painted here once.

    Its points are the integer multiples of ``spacing`` (world = spacing * integer index, computed exactly
    that way), so lattices made for different sets of sequences share their points bit for bit.
    """

    start: tuple[int, int, int]  # integer world index (x, y, z) of voxel (0, 0, 0)
    spacing: float
    shape: tuple[int, int, int]  # numpy order (z, y, x)

    @classmethod
    def covering(cls, grids: list[Grid], spacing: float, pad_mm: float | None = None) -> Lattice:
        """The lattice symmetric about 0 covering ``grids`` plus ``pad_mm`` (default: wider than any blur)."""
        pad = 6.0 + 3.0 * spacing if pad_mm is None else pad_mm
        pts = np.concatenate([g.corners() for g in grids])
        n = np.ceil((np.max(np.abs(pts), axis=0) + pad) / spacing).astype(int)
        return cls(start=tuple(int(-v) for v in n), spacing=float(spacing),
                   shape=tuple(int(v) for v in (2 * n[::-1] + 1)))

    @property
    def origin(self) -> np.ndarray:
        return np.asarray(self.start, float) * self.spacing

    def axis(self, k: int) -> np.ndarray:
        """World coordinates along world axis ``k`` (0 = x, 1 = y, 2 = z)."""
        n = self.shape[2 - k]
        return (self.start[k] + np.arange(n)).astype(float) * self.spacing

    def index_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
        """Numpy slices (z, y, x) of the lattice voxels within the world box [lo, hi] (clipped)."""
        a = np.floor(np.asarray(lo) / self.spacing).astype(int) - np.asarray(self.start)
        b = np.ceil(np.asarray(hi) / self.spacing).astype(int) - np.asarray(self.start) + 1
        sl = []
        for k in (2, 1, 0):
            n = self.shape[2 - k]
            sl.append(slice(int(np.clip(a[k], 0, n)), int(np.clip(b[k], 0, n))))
        return tuple(sl)

    def overlap(self, first: np.ndarray, shape: tuple[int, int, int]) -> tuple[tuple, tuple]:
        """Where a block of ``shape`` (z, y, x) whose first voxel has world index ``first`` (x, y, z) meets
        the lattice: (slices into the lattice, slices into the block)."""
        lat, blk = [], []
        for k in (2, 1, 0):
            a = int(first[k]) - self.start[k]
            lo, hi = max(a, 0), min(a + shape[2 - k], self.shape[2 - k])
            hi = max(hi, lo)
            lat.append(slice(lo, hi))
            blk.append(slice(lo - a, hi - a))
        return tuple(lat), tuple(blk)

    def coords(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable world x, y, z (open grids) of the voxels in ``box``."""
        z = self.axis(2)[box[0]][:, None, None]
        y = self.axis(1)[box[1]][None, :, None]
        x = self.axis(0)[box[2]][None, None, :]
        return x, y, z

    def image(self, array: np.ndarray, box: tuple[slice, slice, slice]) -> sitk.Image:
        """A SimpleITK image of ``array`` (the lattice cropped to ``box``) with its world geometry."""
        img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
        img.SetSpacing((self.spacing,) * 3)
        first = (self.start[0] + box[2].start, self.start[1] + box[1].start, self.start[2] + box[0].start)
        img.SetOrigin([float(v) * self.spacing for v in first])
        return img

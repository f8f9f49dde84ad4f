"""Checks of the image and mask files that series.csv names: where they lie, their headers, their voxels.

Used by :mod:`sarcomri.cohort.validate`; every problem is reported against its series.csv row and field
(``image``, ``mask``, ``spacing_x`` ...) with the file's relative path in the text.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from sarcomri.cohort.problems import ERROR, WARNING, Problem, Severity
from sarcomri.errors import InputError
from sarcomri.io.images import grid_differences
from sarcomri.io.labelmap import MAX_LABEL
from sarcomri.io.niftifile import Grid, read_grid, read_image, read_voxels

SPACING_RTOL = 1e-3  # series.csv spacing vs the image header
HEADER_THREADS = 8  # a header read costs a few ms of file opening and gzip start-up, mostly outside the GIL
CONTENT_THREADS = 4  # each holds one volume in memory


def path_problem(rel: str) -> str | None:
    """Why a series.csv path is not a path inside the cohort folder (absolute, or with ``..``), or None."""
    if "\x00" in rel:
        return "holds a NUL character: not a file name (a damaged table?)"
    posix = PurePosixPath(rel.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(rel).drive or rel.startswith("~"):
        return "an absolute path: paths in series.csv are relative to the cohort folder"
    if ".." in posix.parts:
        return "leads out of the cohort folder ('..'): paths in series.csv stay inside it"
    return None


def as_number(value: Any) -> float:
    """``value`` as a finite float, or NaN (which compares False with anything)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def check_series_files(root: Path, rows: list[dict[str, Any]], sfile: str,
                       mask_labels: dict[tuple[str, str], set[int]], content: bool) -> list[Problem]:
    """The problems of the files of ``rows`` (series.csv records with their line number in ``row``; a path
    set to None is skipped), in row order. ``content`` also reads every voxel; ``mask_labels`` lists the labels
    besides 0 and 1 that a (patient, sequence) mask may hold. Rows are checked in a few threads (SimpleITK,
    zlib and NumPy release the GIL)."""
    inside = root.resolve()

    def one(rec: dict[str, Any]) -> list[Problem]:
        allowed = {0, 1} | mask_labels.get((str(rec["patient_id"]), str(rec["sequence"])), set())
        return _check_row(root, inside, rec, sfile, allowed, content)

    workers = min(HEADER_THREADS if not content else CONTENT_THREADS, os.cpu_count() or 1, max(len(rows), 1))
    if workers == 1:
        return [p for rec in rows for p in one(rec)]
    with ThreadPoolExecutor(workers) as pool:
        return [p for found in pool.map(one, rows) for p in found]


def _check_row(root: Path, inside: Path, rec: dict[str, Any], sfile: str, allowed: set[int],
               content: bool) -> list[Problem]:
    """The problems of one series.csv row's image and mask."""
    row = rec["row"]
    out: list[Problem] = []
    grids: dict[str, Grid] = {}
    for col in ("image", "mask"):
        rel = rec.get(col)
        if not isinstance(rel, str) or not rel:
            continue
        found = _header(root, inside, rel)
        if isinstance(found, str):
            out.append(Problem(sfile, found, row=row, field=col))
            continue
        grids[col] = found
        if content:
            out += [Problem(sfile, text, row=row, field=col, severity=sev)
                    for text, sev in _content(root / rel, rel, col, allowed)]
    if "image" in grids:
        out += _against_table(rec, grids["image"], sfile)
    if "image" in grids and "mask" in grids:
        diffs = grid_differences(grids["image"], grids["mask"])
        if diffs:
            out.append(Problem(sfile, f"{rec['mask']}: not on its image's grid ({'; '.join(diffs)}, mask vs "
                                      "image)", row=row, field="mask"))
    return out


def _header(root: Path, inside: Path, rel: str) -> Grid | str:
    """The grid of one file, or why it cannot be used."""
    path = root / rel
    try:
        if not path.resolve().is_relative_to(inside):
            return f"{rel}: a link that leads out of the cohort folder"
        if not path.is_file():
            return f"file {rel} does not exist"
        grid = read_grid(path)
    except InputError as exc:
        return f"{rel}: {exc.problem}"
    except (OSError, RuntimeError) as exc:  # permission denied, a loop of links
        return f"{rel}: not readable ({getattr(exc, 'strerror', None) or exc})"
    if len(grid.size) != 3 or grid.components != 1:
        return (f"{rel}: a {len(grid.size)}D image with {grid.components} component(s) per voxel; one 3D scalar "
                "volume per file is needed")
    return grid


def _against_table(rec: dict[str, Any], grid: Grid, sfile: str) -> list[Problem]:
    """series.csv's spacing (relative tolerance 1e-3) and size (exact) against the image header."""
    out = []
    for i, axis in enumerate("xyz"):
        spacing, size = as_number(rec.get(f"spacing_{axis}")), as_number(rec.get(f"size_{axis}"))
        if spacing > 0 and not math.isclose(spacing, grid.spacing[i], rel_tol=SPACING_RTOL):
            out.append(Problem(sfile, f"{spacing:g} mm, but the header of {rec['image']} says {grid.spacing[i]:g} "
                                      "mm", row=rec["row"], field=f"spacing_{axis}"))
        if size >= 1 and size != grid.size[i]:
            out.append(Problem(sfile, f"{size:g} voxels, but the header of {rec['image']} says {grid.size[i]}",
                               row=rec["row"], field=f"size_{axis}"))
    return out


def _voxels(path: Path) -> np.ndarray:
    """Every voxel of a file, read strictly; NIfTI through nibabel (SimpleITK turns NaN into 0)."""
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        import SimpleITK as sitk

        return sitk.GetArrayFromImage(read_image(path))
    return read_voxels(path)


def _content(path: Path, rel: str, col: str, allowed: set[int]) -> list[tuple[str, Severity]]:
    """(problem, severity) pairs from the voxels of an image (``col`` 'image') or a mask."""
    try:
        data = _voxels(path)
    except InputError as exc:
        return [(f"{rel}: {exc.problem}", ERROR)]
    finite = np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else np.ones(data.shape, bool)
    n_bad = data.size - int(np.count_nonzero(finite))
    if col == "image":
        return [(f"{rel}: {n_bad} voxels are NaN or infinite", ERROR)] if n_bad else []
    values = data[finite]
    not_label = (values != np.round(values)) | (values < 0) | (values > MAX_LABEL)
    if n_bad or not_label.any():
        example = values[not_label][0] if not_label.any() else data[~finite].ravel()[0]
        return [(f"{rel}: {n_bad + int(np.count_nonzero(not_label))} voxels are not labels (whole numbers "
                 f"0..{MAX_LABEL}), e.g. {example:g}", ERROR)]
    counts = np.bincount(values.astype(np.uint8).ravel(), minlength=MAX_LABEL + 1)
    extra = sorted(set(np.flatnonzero(counts).tolist()) - allowed)
    out: list[tuple[str, Severity]] = []
    if extra:
        out.append((f"{rel}: holds label(s) {extra}; a tumour mask holds 0 and 1 (more labels need their entry in "
                    "cohort.json mask_labels, as ingestion writes for multi-label masks)", ERROR))
    if not counts[1:].any():
        out.append((f"{rel}: empty (no voxel is labelled)", WARNING))
    return out

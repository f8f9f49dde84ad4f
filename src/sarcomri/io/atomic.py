"""Atomic writes: an interrupted run never leaves a half-written artifact that a later stage would trust.

Every writer here writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on POSIX within one file system). This module is also the one place of the
no-overwrite rule:

- a writer refuses to replace an existing file or folder unless its caller says ``overwrite=True``
  (:class:`OverwriteError`, a user error naming the path);
- nothing but ingestion (``into_cohort=True``) writes a cohort's own files (cohort.json, patients.csv,
  series.csv, images/, masks/ of a folder that holds cohort.json).

Temporaries are named ``.<name>.<random>.tmp<suffix>`` (files) and ``.<name>.<random>.partial`` (folders);
:func:`clean_temporaries` removes those a killed run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sarcomri.errors import SarcomriError

COHORT_FILES = ("cohort.json", "patients.csv", "series.csv", "images", "masks")
_TMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp(\..*)?$")
_TMP_DIR = re.compile(r"^\..+\.([A-Za-z0-9_]{6,}\.partial|old)$")


class OverwriteError(SarcomriError, FileExistsError):
    """A write would replace an existing file or folder, or a cohort's own files, without being told to."""


def cohort_owning(dest: str | Path) -> Path | None:
    """The cohort folder whose own files ``dest`` is (or lies in), else None.

    A cohort's own files are cohort.json, patients.csv, series.csv and everything under images/ and masks/
    of a folder that holds a cohort.json.
    """
    dest = Path(os.path.abspath(dest))
    for parent in dest.parents:
        rel = dest.relative_to(parent)
        if rel.parts and rel.parts[0] in COHORT_FILES and (parent / "cohort.json").is_file():
            return parent
    return None


def check_writable(dest: str | Path, overwrite: bool = False, into_cohort: bool = False) -> Path:
    """Raise :class:`OverwriteError` unless ``dest`` may be written under the no-overwrite rule."""
    dest = Path(dest)
    if not into_cohort:
        owner = cohort_owning(dest)
        if owner is not None:
            raise OverwriteError(f"{dest} is one of the files of the cohort {owner}; only `sarcomri ingest` "
                                 "writes a cohort's files: write elsewhere")
    if not overwrite and (dest.exists() or dest.is_symlink()):
        raise OverwriteError(f"{dest} exists already; choose another path or allow overwriting (--overwrite)")
    return dest


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None, *, overwrite: bool = False,
                into_cohort: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is renamed to ``dest``, on error removed.

    ``suffix`` defaults to the destination's full suffix (``.nii.gz`` stays ``.nii.gz``) so that writers
    that choose a format from the file name keep working. An existing ``dest`` is replaced only with
    ``overwrite=True``; a cohort's own files only with ``into_cohort=True`` (see :func:`check_writable`).
    """
    dest = check_writable(dest, overwrite=overwrite, into_cohort=into_cohort)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(dest: str | Path, text: str, *, overwrite: bool = False, into_cohort: bool = False) -> Path:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest, overwrite=overwrite, into_cohort=into_cohort) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json(dest: str | Path, obj: Any, *, overwrite: bool = False, into_cohort: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(dest, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n",
                      overwrite=overwrite, into_cohort=into_cohort)


def write_csv(dest: str | Path, frame, *, overwrite: bool = False, into_cohort: bool = False) -> Path:
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_path(dest, overwrite=overwrite, into_cohort=into_cohort) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(dest)


def write_parquet(dest: str | Path, frame, *, overwrite: bool = False, into_cohort: bool = False) -> Path:
    """Write a pandas DataFrame as Parquet (no index) atomically."""
    with atomic_path(dest, overwrite=overwrite, into_cohort=into_cohort) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(dest)


def check_folder_replaceable(dest: str | Path, overwrite: bool = False,
                             replaceable: Callable[[Path], bool] | None = None,
                             protect: Iterable[str | Path] = ()) -> Path:
    """Raise :class:`OverwriteError` unless a whole folder may be written at ``dest``.

    ``dest`` must neither contain nor lie inside any ``protect`` folder (a source being read). An existing empty
    folder may always be filled. An existing non-empty one is replaced only with ``overwrite`` and only when
    ``replaceable(dest)`` says it is a folder of the kind being written (e.g. a cohort); without a predicate
    ``overwrite`` alone allows it.
    """
    dest = check_writable(dest, overwrite=True)
    here = Path(os.path.realpath(dest))
    for folder in protect:
        other = Path(os.path.realpath(folder))
        if here == other or here.is_relative_to(other) or other.is_relative_to(here):
            raise OverwriteError(f"{dest} would {'contain' if other.is_relative_to(here) else 'lie inside'} the "
                                 f"source {folder}; write the output elsewhere")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise OverwriteError(f"{dest} exists and is not a folder; choose another path")
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite:
            raise OverwriteError(f"{dest} exists already; choose another folder or allow overwriting (--overwrite)")
        if replaceable is not None and not replaceable(dest):
            raise OverwriteError(f"{dest} is a non-empty folder of another kind; --overwrite replaces only a "
                                 "folder this command made: choose another folder")
    return dest


@contextlib.contextmanager
def atomic_directory(dest: str | Path, overwrite: bool = False, into_cohort: bool = False,
                     replaceable: Callable[[Path], bool] | None = None,
                     protect: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Build a whole folder under a temporary name beside ``dest`` and move it there only when complete.

    The rules on an existing ``dest`` are :func:`check_folder_replaceable`'s, checked on entry and again
    before the swap; the old folder is replaced only after the new one is complete.
    """
    dest = Path(dest)
    if not into_cohort:
        check_writable(dest, overwrite=True)
    check_folder_replaceable(dest, overwrite, replaceable, protect)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
        check_folder_replaceable(dest, overwrite, replaceable, protect)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_temporary(name: str) -> bool:
    """True for the name of a temporary file or folder made by this module."""
    return bool(_TMP_FILE.match(name) or _TMP_DIR.match(name))


def remove_stale_siblings(dest: str | Path) -> list[Path]:
    """Remove the temporaries that an earlier, killed write of ``dest`` left beside it (a rerun's clean-up)."""
    dest = Path(dest)
    mine = re.compile(rf"^\.{re.escape(dest.name)}\.([A-Za-z0-9_]{{6,}}\.partial|old)$")
    removed = []
    if dest.parent.is_dir():
        for other in dest.parent.iterdir():
            if mine.match(other.name) and other.is_dir() and not other.is_symlink():
                shutil.rmtree(other, ignore_errors=True)
                removed.append(other)
    return removed


def clean_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries a killed run left under ``folder`` (recursively); returns what was removed.

    Only names made by this module are touched: ``.<name>.<random>.tmp<suffix>`` files and
    ``.<name>.<random>.partial`` / ``.<name>.old`` folders. Call it only where no other process is writing.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for root, dirs, files in os.walk(folder):
        for name in list(dirs):
            if _TMP_DIR.match(name):
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                removed.append(Path(root) / name)
                dirs.remove(name)
        for name in files:
            if _TMP_FILE.match(name):
                (Path(root) / name).unlink(missing_ok=True)
                removed.append(Path(root) / name)
    return sorted(removed)


def _json_default(obj: Any) -> Any:
    """Make numpy scalars, arrays and paths JSON-serialisable."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

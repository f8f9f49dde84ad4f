"""Atomic writes: an interrupted run never leaves a half-written artifact that a later stage would trust.

Every writer here writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is renamed to ``dest``, on error removed.

    ``suffix`` defaults to the destination's full suffix (``.nii.gz`` stays ``.nii.gz``) so that writers
    that choose a format from the file name keep working.
    """
    dest = Path(dest)
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


def write_text(dest: str | Path, text: str) -> Path:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json(dest: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(dest, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(dest: str | Path, frame) -> Path:
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_path(dest) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(dest)


def write_parquet(dest: str | Path, frame) -> Path:
    """Write a pandas DataFrame as Parquet (no index) atomically."""
    with atomic_path(dest) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(dest)


@contextlib.contextmanager
def atomic_directory(dest: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a whole folder under a temporary name and move it to ``dest`` only when complete.

    Raises ``FileExistsError`` when ``dest`` exists and ``overwrite`` is false. With ``overwrite`` the old
    folder is replaced only after the new one is complete.
    """
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists; choose another folder or allow overwriting")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
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

"""Fault injection for every reader of external data: damaged copies of intact files, made by Hypothesis.

A reader passes when, given a damaged file, it either raises :class:`sarcomri.errors.SarcomriError` (a user
error naming the file) or returns exactly what it returns for the intact file: never another exception type,
never a different answer. Formats without a checksum (plain CSV, YAML, JSON, .nii, DICOM) cannot tell a flipped
digit from a real one; for those the byte-flip properties only require the first half (no other exception).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from sarcomri.errors import SarcomriError


def truncations(raw: bytes) -> st.SearchStrategy[bytes]:
    """The file cut short anywhere, from nothing to all but its last byte."""
    return st.integers(0, len(raw) - 1).map(lambda n: raw[:n])


def flips(raw: bytes, start: int = 0, max_flips: int = 3) -> st.SearchStrategy[bytes]:
    """The file with 1..max_flips bytes at or after ``start`` changed (XOR with a non-zero byte)."""
    change = st.tuples(st.integers(start, len(raw) - 1), st.integers(1, 255))

    def apply(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(raw)
        for at, mask in changes:
            out[at] ^= mask
        return bytes(out)

    return st.lists(change, min_size=1, max_size=max_flips).map(apply)


def garbage(max_size: int = 400) -> st.SearchStrategy[bytes]:
    """Random bytes in place of the file."""
    return st.binary(min_size=0, max_size=max_size)


@dataclass
class Outcome:
    """What a reader did with a file: returned ``value`` or raised the user error ``error``."""

    value: Any = None
    error: SarcomriError | None = None


def outcome(read: Callable[[], Any]) -> Outcome:
    """Run ``read``; a user error is an outcome, any other exception fails the test (it propagates)."""
    try:
        return Outcome(value=read())
    except SarcomriError as err:
        return Outcome(error=err)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Callable[[], Path]:
    """A fresh empty folder per call (one per Hypothesis example), under a session temporary folder."""
    base = tmp_path_factory.mktemp("faults")
    return lambda: Path(tempfile.mkdtemp(dir=base))


@pytest.fixture(scope="session")
def faults():
    """The damage strategies and :func:`outcome`, for tests (which cannot import this conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(truncations=truncations, flips=flips, garbage=garbage, outcome=outcome)

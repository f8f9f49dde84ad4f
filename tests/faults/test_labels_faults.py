"""The labels file of an ingestion (:func:`sarcomri.io.labels.read_labels`) on damaged input: a user error
naming the file, or exactly the intact labels; never another exception."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcomri.io.labels import read_labels

#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "40")), deadline=None)
INTACT = (b"patient_id,label,site,age\n"
          b"SRC-0001,sarcoma,thigh,61\n"
          b"SRC-0002,leiomyoma,uterus,47\n"
          b"SRC-0003,sarcoma,arm,55\n")
ALLOWED = st.sampled_from([None, ["leiomyoma", "sarcoma"]])


def _key(labels) -> tuple:
    return labels.table.to_csv(), labels.allowed, labels.positive


def _read(faults, scratch, raw: bytes, allowed):
    path = _write(scratch, raw)
    got = faults.outcome(lambda: read_labels(path, allowed=allowed, positive="sarcoma"))
    if got.error is not None:
        assert str(path) in str(got.error), got.error
    return got


@FAST
@given(data=st.data(), allowed=ALLOWED)
def test_truncated_labels_file(faults, scratch, data, allowed):
    """Cut mid-line, the last value may still be a label or a number: refused. Cut at a line end, whole rows are
    missing and read_labels cannot know; ingestion then names each patient without a row (tests/io)."""
    got = _read(faults, scratch, data.draw(faults.truncations(INTACT)), allowed)
    if got.error is None:
        whole_rows = _write(scratch, b"".join(INTACT.splitlines(keepends=True)[: len(got.value.table) + 1]))
        want = read_labels(whole_rows, allowed=allowed, positive="sarcoma")
        assert _key(got.value) == _key(want), "a cut labels file read as other values"


@FAST
@given(data=st.data(), allowed=ALLOWED)
def test_random_bytes_and_flips(faults, scratch, data, allowed):
    raw = data.draw(st.one_of(faults.garbage(), faults.flips(INTACT)))
    _read(faults, scratch, raw, allowed)


@FAST
@given(value=st.text(max_size=10), row=st.integers(1, 3), col=st.integers(0, 3))
def test_any_value_in_any_cell(faults, scratch, value, row, col):
    lines = [line.split(",") for line in INTACT.decode().splitlines()]
    lines[row][col] = '"' + value.replace('"', '""') + '"'
    _read(faults, scratch, ("\n".join(",".join(cells) for cells in lines) + "\n").encode(), None)


def _write(scratch, raw: bytes) -> Path:
    path = Path(scratch()) / "labels.csv"
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("column", ["patient_id", "label"])
def test_a_missing_column(faults, scratch, column):
    lines = [line.split(",") for line in INTACT.decode().splitlines()]
    k = lines[0].index(column)
    raw = "\n".join(",".join(c for i, c in enumerate(cells) if i != k) for cells in lines) + "\n"
    got = _read(faults, scratch, raw.encode(), None)
    assert got.error is not None and column in str(got.error)


def test_a_cut_row_and_a_missing_line_end_are_named(faults, scratch):
    got = _read(faults, scratch, INTACT[:-4], None)  # "SRC-0003,sarcoma,arm,55" cut to "...,ar"
    assert got.error is not None and "no line end" in str(got.error)
    got = _read(faults, scratch, INTACT.replace(b",uterus,47", b""), None)
    assert got.error is not None and "row 3" in str(got.error) and "2 fields, the header has 4" in str(got.error)

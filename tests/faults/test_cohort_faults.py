"""The cohort loader on damaged tables: ``Cohort.load`` raises a user error naming the file, or loads exactly
the intact cohort (truncated, random, mistyped or incomplete patients.csv, series.csv, cohort.json)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcomri.cohort.manifest import Cohort, CohortWriter

#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "40")), deadline=None)
TABLES = ("patients.csv", "series.csv", "cohort.json")


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> Path:
    """Three patients (one without a mask, one with two sequences), 2 x 3 x 4 voxels."""
    root = tmp_path_factory.mktemp("cohorts") / "intact"
    img = sitk.GetImageFromArray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    img.SetSpacing((0.8, 0.9, 5.0))
    mask = sitk.Cast(img > 11, sitk.sitkUInt8)
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
        w.add_patient("P01", "sarcoma", age=61, site="thigh")
        w.add_patient("P02", "leiomyoma", age=47, site="uterus")
        w.add_patient("P03", "sarcoma", age=55, site="arm")
        w.add_series("P01", "T2axi", img, mask)
        w.add_series("P01", "ADC", img)
        w.add_series("P02", "T2axi", img, mask)
        w.add_series("P03", "T2axi", img)
    return root


def _key(cohort: Cohort) -> tuple:
    """What a loaded cohort says: its tables as text and its meta."""
    return (cohort.patients.to_csv(index=False), cohort.series.to_csv(index=False),
            json.dumps(cohort.meta, sort_keys=True))


def _copy(intact: Path, scratch) -> Path:
    root = Path(scratch()) / "c"
    shutil.copytree(intact, root)
    return root


def _load_same_or_refused(faults, root: Path, want: tuple, damaged_file: str) -> None:
    got = faults.outcome(lambda: Cohort.load(root))
    if got.error is not None:
        assert str(root) in str(got.error), f"the error does not name the cohort: {got.error}"
    else:
        assert _key(got.value) == want, f"{damaged_file} was damaged, yet a different cohort loaded"


@FAST
@given(data=st.data(), name=st.sampled_from(TABLES))
def test_truncated_tables(intact, faults, scratch, data, name):
    root = _copy(intact, scratch)
    raw = (root / name).read_bytes()
    (root / name).write_bytes(data.draw(faults.truncations(raw)))
    _load_same_or_refused(faults, root, _key(Cohort.load(intact)), name)


@FAST
@given(data=st.data(), name=st.sampled_from(TABLES))
def test_random_bytes_for_a_table(intact, faults, scratch, data, name):
    root = _copy(intact, scratch)
    (root / name).write_bytes(data.draw(faults.garbage()))
    _load_same_or_refused(faults, root, _key(Cohort.load(intact)), name)


@FAST
@given(data=st.data(), name=st.sampled_from(TABLES))
def test_flipped_bytes_never_crash(intact, faults, scratch, data, name):
    """Text tables carry no checksum: a flipped digit may load as another value; no other exception."""
    root = _copy(intact, scratch)
    raw = (root / name).read_bytes()
    (root / name).write_bytes(data.draw(faults.flips(raw)))
    faults.outcome(lambda: Cohort.load(root))


ODD_VALUES = st.one_of(
    st.sampled_from(["", "nan", "NaN", "inf", "-1", "0", "1e309", "abc", "3.5", "[1, 2]", "{}", "None", "true",
                     "../x.nii.gz", "/etc/passwd", "images/P01", "P01", "T2axi", "\x00", "é"]),
    st.text(max_size=12),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FAST
@given(data=st.data(), name=st.sampled_from(["patients.csv", "series.csv"]), value=ODD_VALUES)
def test_a_cell_of_the_wrong_type(intact, faults, scratch, data, name, value):
    """Any value in any cell: a user error, or a cohort whose cell holds that value (no silent coercion)."""
    root = _copy(intact, scratch)
    table = pd.read_csv(root / name, dtype=str, keep_default_na=False)
    row = data.draw(st.integers(0, len(table) - 1))
    col = data.draw(st.sampled_from(list(table.columns)))
    table.loc[row, col] = value
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    (root / name).write_text(buf.getvalue(), encoding="utf-8")
    faults.outcome(lambda: Cohort.load(root))


@FAST
@given(data=st.data(), value=st.one_of(ODD_VALUES, st.integers(), st.lists(st.integers(), max_size=2),
                                       st.none(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_a_cohort_json_field_of_the_wrong_type(intact, faults, scratch, data, value):
    root = _copy(intact, scratch)
    meta = json.loads((root / "cohort.json").read_text())
    meta[data.draw(st.sampled_from(sorted(meta)))] = value
    (root / "cohort.json").write_text(json.dumps(meta))
    faults.outcome(lambda: Cohort.load(root))


@pytest.mark.parametrize("name, column", [("patients.csv", "patient_id"), ("patients.csv", "label"),
                                          ("series.csv", "patient_id"), ("series.csv", "sequence"),
                                          ("series.csv", "image")])
def test_a_missing_required_column(intact, faults, scratch, name, column):
    root = _copy(intact, scratch)
    table = pd.read_csv(root / name, dtype=str, keep_default_na=False)
    table.drop(columns=column).to_csv(root / name, index=False)
    got = faults.outcome(lambda: Cohort.load(root))
    assert got.error is not None and name in str(got.error) and column in str(got.error)


@pytest.mark.parametrize("text", ["1", "[]", "null", '"cohort"', "true", "{}"])
def test_cohort_json_that_is_not_an_object(intact, faults, scratch, text):
    root = _copy(intact, scratch)
    (root / "cohort.json").write_text(text)
    got = faults.outcome(lambda: Cohort.load(root))
    assert got.error is not None and "cohort.json" in str(got.error)


@pytest.mark.parametrize("name", ["patients.csv", "series.csv"])
def test_a_table_cut_at_a_line_end_is_refused(intact, faults, scratch, name):
    """The cut that leaves a well-formed table: the row count cohort.json records catches it."""
    root = _copy(intact, scratch)
    lines = (root / name).read_bytes().splitlines(keepends=True)
    (root / name).write_bytes(b"".join(lines[:-1]))
    got = faults.outcome(lambda: Cohort.load(root))
    assert got.error is not None and name in str(got.error)
    if name == "series.csv":
        assert "cohort.json records" in str(got.error)


def test_a_nul_character_in_a_path(intact, faults, scratch):
    root = _copy(intact, scratch)
    raw = (root / "series.csv").read_bytes()
    (root / "series.csv").write_bytes(raw.replace(b"images/P02", b"images/P\x002", 1))
    got = faults.outcome(lambda: Cohort.load(root))
    assert got.error is not None and "series.csv" in str(got.error)

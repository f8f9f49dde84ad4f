"""b-values from the standard tag and the Siemens, GE and Philips private tags."""

from __future__ import annotations

import struct
from collections import Counter

import pydicom
import pytest

from sarcomri.io.bvalues import b_value, b_value_from_description
from sarcomri.io.dicom import walk_files


def test_standard_tag_wins_over_private():
    ds = pydicom.Dataset()
    ds.add_new((0x0018, 0x9087), "FD", 800.0)
    ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
    ds.add_new((0x0019, 0x100C), "IS", "50")
    assert b_value(ds) == 800.0


def test_siemens_private_tag_as_raw_bytes():
    ds = pydicom.Dataset()
    ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
    ds.add_new((0x0019, 0x100C), "UN", b"400 ")
    assert b_value(ds) == 400.0


def test_ge_first_value_modulo_1e9():
    ds = pydicom.Dataset()
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    ds.add_new((0x0043, 0x1039), "IS", ["1000001000", "8", "0", "0"])
    assert b_value(ds) == 1000.0
    ds[0x0043, 0x1039].value = ["1400", "8", "0", "0"]
    assert b_value(ds) == 1400.0


def test_philips_float_and_raw_bytes():
    ds = pydicom.Dataset()
    ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
    ds.add_new((0x2001, 0x1003), "FL", 600.0)
    assert b_value(ds) == 600.0
    ds[0x2001, 0x1003] = pydicom.DataElement((0x2001, 0x1003), "UN", struct.pack("<f", 150.0))
    assert b_value(ds) == 150.0


def test_private_tag_of_another_creator_is_ignored():
    ds = pydicom.Dataset()
    ds.add_new((0x0019, 0x0010), "LO", "SOME OTHER VENDOR")
    ds.add_new((0x0019, 0x100C), "IS", "400")
    assert b_value(ds) is None


def test_no_tag_gives_none():
    assert b_value(pydicom.Dataset()) is None


@pytest.mark.parametrize("text, expected", [("DWI b800", 800.0), ("diff_b=1000_tra", 1000.0), ("DWI_b50", 50.0),
                                            ("t2_tse_tra", None), ("ep2d_diff_tra", None), (None, None)])
def test_b_value_from_description(text, expected):
    assert b_value_from_description(text) == expected


def test_real_siemens_and_ge_headers(shared_data):
    prostatex = shared_data / "dicom" / "prostatex-0000"
    counts = Counter()
    for path in walk_files(prostatex):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if str(ds.SeriesDescription) == "ep2d_diff_tra_DYNDIST":
            counts[b_value(ds)] += 1
    assert counts == {50.0: 19, 400.0: 19, 800.0: 19}
    ge = next(walk_files(shared_data / "dicom" / "qin-prostate-001" / "ADC"))
    assert b_value(pydicom.dcmread(ge, stop_before_pixels=True)) == 1400.0

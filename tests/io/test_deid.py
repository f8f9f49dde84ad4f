"""Pseudonyms (keyed hash or mapping), scrubbing of free text, refusal of identifying label columns."""

from __future__ import annotations

import hashlib
import hmac

import pydicom
import pytest

from sarcomri.cohort.manifest import PATIENT_ID_RE
from sarcomri.errors import InputError
from sarcomri.io.deid import KEY_ENV, Pseudonymizer, check_clinical_columns, identifiers_of, scrub


def test_keyed_hash_pseudonym_is_hmac_sha256_truncated():
    expected = "P" + hmac.new(b"secret", b"ProstateX-0000", hashlib.sha256).hexdigest()[:10]
    pseudo = Pseudonymizer.from_key("secret")
    assert pseudo("ProstateX-0000") == expected
    assert PATIENT_ID_RE.match(expected)
    assert Pseudonymizer.from_key("secret")("ProstateX-0000") == expected  # reproducible
    assert Pseudonymizer.from_key("other")("ProstateX-0000") != expected


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "envkey")
    assert Pseudonymizer.from_key(None)("A") == Pseudonymizer.from_key("envkey")("A")


def test_random_key_is_flagged_not_reproducible(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    a, b = Pseudonymizer.from_key(None), Pseudonymizer.from_key(None)
    assert not a.reproducible and a("X") != b("X")
    assert a.key.hex() not in str(a.provenance()) and str(a.key) not in str(a.provenance())


def test_mapping_file(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("original_id,pseudonym\nProstateX-0000,case01\nSTS_001,case02\n")
    pseudo = Pseudonymizer.from_mapping(path)
    assert pseudo("ProstateX-0000") == "case01"
    with pytest.raises(InputError, match="no row in the pseudonym mapping") as err:
        pseudo("PCAMPMRI-00001", where="qin/ADC/1-01.dcm")
    assert "PCAMPMRI-00001" not in str(err.value)


@pytest.mark.parametrize("text, problem", [
    ("original_id,pseudonym\nA,p1\nB,p1\n", "appears twice"),
    ("original_id,pseudonym\nA,p1\nA,p2\n", "appears twice"),
    ("original_id,pseudonym\nA,bad id\n", "must be 1-64"),
    ("id,name\nA,p1\n", "needs the columns"),
])
def test_bad_mapping_files(tmp_path, text, problem):
    path = tmp_path / "map.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        Pseudonymizer.from_mapping(path)


def test_identifiers_and_scrub():
    ds = pydicom.Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.AccessionNumber = "Doe^Jane", "AB-123", "19600102", "ACC9"
    ids = identifiers_of(ds)
    assert {"Doe^Jane", "Doe", "Jane", "AB-123", "19600102", "ACC9"} <= ids
    assert scrub("T2 tra DOE jane ab-123", ids) == "T2 tra [removed] [removed] [removed]"
    assert scrub("t2_tse_tra", ids) == "t2_tse_tra"


@pytest.mark.parametrize("column", ["PatientName", "birth_date", "DOB", "MRN", "accession number"])
def test_identifying_label_columns_are_refused(column):
    with pytest.raises(InputError, match="direct patient identifier"):
        check_clinical_columns(["histology", column], "labels.csv")
    check_clinical_columns(["histology", "age", "site", "center"], "labels.csv")

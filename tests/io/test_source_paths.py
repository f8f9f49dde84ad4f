"""Messages name source files relative to the source root, with folder names (often the patient's name or ID)
hidden unless --verbose; no output of an ingestion holds a source path."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cli.main import main
from sarcomri.errors import InputError
from sarcomri.io.deid import HIDDEN_HINT, redact_error, redact_path

FOLDER = "Doe^Jane_MRN0042"
IDENTIFYING = ("Doe", "Jane", "MRN0042")


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sarcomri", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out + captured.err


def test_redact_path_hides_folders_keeps_the_file_name():
    path = f"in/{FOLDER}/20200101 MRI/{FOLDER}_T2.dcm"
    assert redact_path(path, "in") == "<source>/\u2026/\u2026/\u2026_T2.dcm"
    assert redact_path(path, "in", verbose=True) == f"<source>/{FOLDER}/20200101 MRI/{FOLDER}_T2.dcm"
    assert redact_path("in/MRN0042/T2axi.nii.gz", "in", pseudonyms={"MRN0042": "P1"}) == "<source>/P1/T2axi.nii.gz"
    assert redact_path("in", "in") == "in" and redact_path("/elsewhere/labels.csv", "in") == "/elsewhere/labels.csv"


def test_redact_error_rewrites_paths_inside_the_message_too(tmp_path):
    (tmp_path / "in" / FOLDER / "a b").mkdir(parents=True)
    (tmp_path / "in" / FOLDER / "a b" / "x.nii").write_text("")
    root = tmp_path / "in"
    err = InputError(root / FOLDER / "a b" / "x.nii", f"cannot read {root / FOLDER / 'a b' / 'x.nii'}: bad")
    text = str(redact_error(err, root))
    assert text == f"<source>/\u2026/\u2026/x.nii: cannot read <source>/\u2026/\u2026/x.nii: bad ({HIDDEN_HINT})"
    assert str(redact_error(err, root, verbose=True)).count(f"<source>/{FOLDER}/a b/x.nii") == 2


def _corrupt_dicom(root, make_series):
    paths = make_series(root / FOLDER / "study", 3, patient_id="MRN0042", patient_name="Doe^Jane")
    data = bytearray(paths[1].read_bytes())
    data[132:200] = b"\xff" * 68
    paths[1].write_bytes(bytes(data))
    return paths[1]


def test_corrupt_dicom_in_a_named_folder(tmp_path, make_series, monkeypatch, capsys):
    bad = _corrupt_dicom(tmp_path / "in", make_series)
    code, text = _cli(monkeypatch, capsys, "ingest", tmp_path / "in", "--out", tmp_path / "c", "--deid-key", "k")
    assert code == 1 and "corrupt DICOM file" in text and f"<source>/\u2026/\u2026/{bad.name}" in text
    assert not any(word in text for word in IDENTIFYING) and str(tmp_path) not in text
    assert "--verbose shows them" in text
    for args in (["ingest", "--verbose"], ["--verbose", "ingest"]):
        code, text = _cli(monkeypatch, capsys, *args, tmp_path / "in", "--out", tmp_path / "c", "--deid-key", "k")
        assert code == 1 and f"<source>/{FOLDER}/study/{bad.name}" in text, text


def test_corrupt_nifti_in_a_named_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "in" / FOLDER
    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(np.ones((3, 4, 5), np.float32))
    sitk.WriteImage(image, str(folder / "ADC.nii.gz"))
    (folder / "T2axi.nii.gz").write_bytes(b"\x1f\x8b" + b"not a nifti" * 20)
    code, text = _cli(monkeypatch, capsys, "ingest", tmp_path / "in", "--out", tmp_path / "c", "--deid-key", "k")
    assert code == 1 and "T2axi.nii.gz" in text, text
    assert not any(word in text for word in IDENTIFYING) and str(tmp_path) not in text
    assert "(patient P" in text  # the patient is named by pseudonym


def test_a_clean_ingestion_prints_and_stores_no_identifying_path(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "in" / FOLDER / "study", 3, patient_id="MRN0042", patient_name="Doe^Jane")
    make_series(tmp_path / "in" / FOLDER / "loc", 1, description="survey", series_number=2,
                patient_id="MRN0042", patient_name="Doe^Jane")
    code, text = _cli(monkeypatch, capsys, "ingest", tmp_path / "in", "--out", tmp_path / "c", "--deid-key", "k")
    assert code in (0, None) and "cohort written" in text
    assert not any(word in text for word in IDENTIFYING)
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv"):
            stored = path.read_text()
            assert not any(word in stored for word in (*IDENTIFYING, str(tmp_path))), path.name

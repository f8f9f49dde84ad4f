"""Ingestion never succeeds silently on something it could not use: a mask whose image series is missing is
an error when nothing else was ingested and a warning (by pseudonym) otherwise; a pseudonym mapping that
keeps a source ID is accepted with a warning naming the row, never the ID."""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from sarcomri.cli.main import main
from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.dicom import RTSTRUCT_CLASS
from sarcomri.io.ingest import ingest

PATIENT = "SRC-PATIENT-0001"


def write_rtstruct(path: Path, referenced_series: str, patient_id: str = PATIENT,
                   patient_name: str = "Doe^Jane") -> Path:
    """A one-ROI RTSTRUCT drawn on the series ``referenced_series`` (which the test may leave out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_CLASS, meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientID, ds.PatientName = patient_id, patient_name
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1", generate_uid()
    ds.SeriesNumber, ds.SeriesDescription = 7, "tumour contours"
    series = pydicom.Dataset()
    series.SeriesInstanceUID = referenced_series
    study = pydicom.Dataset()
    study.RTReferencedSeriesSequence = [series]
    frame = pydicom.Dataset()
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    roi = pydicom.Dataset()
    roi.ROINumber, roi.ROIName = 1, "GTV"
    ds.StructureSetROISequence = [roi]
    contour = pydicom.Dataset()
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.ContourData = [0.0, 0.0, 30.0, 2.0, 0.0, 30.0, 2.0, 2.0, 30.0]
    rc = pydicom.Dataset()
    rc.ReferencedROINumber, rc.ContourSequence = 1, [contour]
    ds.ROIContourSequence = [rc]
    ds.save_as(path, enforce_file_format=True)
    return path


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["sarcomri", "ingest", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_rtstruct_of_a_missing_series_alone_is_an_error(tmp_path, monkeypatch, capsys):
    write_rtstruct(tmp_path / "src" / "Doe^Jane" / "RS.dcm", referenced_series="1.2.3.999")
    with pytest.raises(InputError, match="RTSTRUCT of series 7 references an image series that is not in the "
                       "source, and no image series was ingested") as err:
        ingest(tmp_path / "src", tmp_path / "cohort", pseudonymizer=Pseudonymizer.from_key("k"))
    assert not (tmp_path / "cohort").exists()
    assert "Doe" not in str(err.value) and PATIENT not in str(err.value)
    assert err.value.path.endswith("/RS.dcm")
    code, out, errors = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / "c", "--deid-key", "k")
    assert code == 1 and "no image series was ingested" in errors and not (tmp_path / "c").exists()
    assert "Doe" not in out + errors


def test_rtstruct_of_a_missing_series_beside_others_is_a_warning(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "src" / "Doe^Jane" / "t2", 3)
    write_rtstruct(tmp_path / "src" / "Doe^Jane" / "rs" / "RS.dcm", referenced_series="1.2.3.999")
    warnings: list[str] = []
    report = ingest(tmp_path / "src", tmp_path / "cohort", pseudonymizer=Pseudonymizer.from_key("k"),
                    warn=warnings.append)
    pid = Cohort.load(tmp_path / "cohort").patient_ids[0]
    assert report.volumes == 1 and report.masks == 0
    assert warnings == report.warnings and len(warnings) == 1
    assert warnings[0].startswith(f"{pid}: the RTSTRUCT of series 7 (<source>/\u2026/\u2026/RS.dcm) references")
    assert "Doe" not in warnings[0] and PATIENT not in warnings[0]
    aside = Cohort.load(tmp_path / "cohort").meta["unmapped_series"]
    assert [r["reason"] for r in aside] == ["RTSTRUCT whose referenced image series is not in the source"]
    code, out, errors = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / "c", "--deid-key", "k")
    assert code in (0, None) and f"warning: {pid}: the RTSTRUCT of series 7" in errors
    assert "Doe" not in out + errors and PATIENT not in out + errors


def test_a_mapping_that_keeps_an_id_warns_by_row(tmp_path, make_series, monkeypatch, capsys):
    mapping = tmp_path / "ids.csv"
    mapping.write_text(f"original_id,pseudonym\nOTHER,P2\n{PATIENT},{PATIENT}\n")
    pseudo = Pseudonymizer.from_mapping(mapping)
    assert len(pseudo.warnings) == 1 and "ids.csv: row 3 maps an original_id to itself" in pseudo.warnings[0]
    assert PATIENT not in pseudo.warnings[0]
    assert Pseudonymizer.from_mapping(_write(tmp_path / "ok.csv", "original_id,pseudonym\nA,P1\n")).warnings == []
    make_series(tmp_path / "src" / "a", 2)
    warnings: list[str] = []
    ingest(tmp_path / "src", tmp_path / "cohort", pseudonymizer=pseudo, warn=warnings.append)
    assert warnings == pseudo.warnings
    code, out, errors = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / "c", "--pseudonyms", mapping)
    assert code in (0, None) and "warning: ids.csv: row 3 maps an original_id to itself" in errors
    assert PATIENT not in errors  # the warning names the row (the listing on stdout shows the kept ID itself)


def test_many_kept_ids_make_one_warning(tmp_path):
    rows = "".join(f"S{i},S{i}\n" for i in range(8))
    warnings = Pseudonymizer.from_mapping(_write(tmp_path / "ids.csv", "original_id,pseudonym\n" + rows)).warnings
    assert warnings == ["ids.csv: rows 2, 3, 4, 5, 6 and 3 more map an original_id to itself: those patients keep "
                        "their source ID, which is then not pseudonymised"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path

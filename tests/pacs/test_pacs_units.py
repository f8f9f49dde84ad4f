"""The parts of a pull that need no server: PACS addresses, study queries and pseudonym lists, retries with
back-off, and the de-identification of each staged instance."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset

from sarcomri.errors import InputError
from sarcomri.io.deid import IDENTIFYING_KEYWORDS
from sarcomri.pacs.address import is_pacs_address, parse_address
from sarcomri.pacs.model import StudyRef
from sarcomri.pacs.query import StudyQuery, check_dates, read_pseudonyms
from sarcomri.pacs.retry import Backoff, PacsError, TransientError, with_retries
from sarcomri.pacs.staging import KEPT_PRIVATE_CREATORS, STAFF_AND_PLACE, Staging, deidentify, keyed


def test_addresses_are_parsed_or_refused_with_the_reason():
    web = parse_address("dicomweb+https://pacs.local:8443/dicom-web/")
    assert (web.kind, web.url, str(web)) == ("dicomweb", "https://pacs.local:8443/dicom-web",
                                            "dicomweb+https://pacs.local:8443/dicom-web")
    node = parse_address("dimse://ORTHANC@10.0.0.5:4242?calling=MYAE")
    assert (node.kind, node.host, node.port, node.called_aet, node.calling_aet) == ("dimse", "10.0.0.5", 4242,
                                                                                   "ORTHANC", "MYAE")
    assert parse_address("dimse://PACS@host:104").calling_aet == "SARCOMRI"
    assert is_pacs_address("dimse://A@b:1") and not is_pacs_address("/data/dicom")
    for bad, reason in [("dicomweb+http://user:pw@host/dw", "must not hold a user name or password"),
                        ("dimse://host:4242", "dimse://CALLED_AET@HOST:PORT"),
                        ("dimse://PACS@host", "needs its port"),
                        ("dimse://PACS@host:99999", "port is not a number"),
                        ("dimse://A_VERY_LONG_AE_TITLE_X@host:104", "is not an AE title"),
                        ("dimse://PACS@host:104?tls=1", "unknown option 'tls'"),
                        ("http://host/dicom-web", "not a PACS address")]:
        with pytest.raises(InputError, match=reason):
            parse_address(bad)


def test_queries_say_which_searches_they_send():
    q = StudyQuery(study_uids=("1.2.3", "1.2.4"), dates="20230101-")
    assert q.searches() == [("--study #1", {"StudyDate": "20230101-", "StudyInstanceUID": "1.2.3"}),
                            ("--study #2", {"StudyDate": "20230101-", "StudyInstanceUID": "1.2.4"})]
    assert StudyQuery(dates="-20231231").searches() == [("--dates", {"StudyDate": "-20231231",
                                                                      "ModalitiesInStudy": "MR"})]
    pseudo = StudyQuery(pseudonyms=("Pa",))
    assert pseudo.searches() == [("every study", {"ModalitiesInStudy": "MR"})]
    assert pseudo.keep(StudyRef("1", "MRN1"), {"MRN1": "Pa"}.get) and not pseudo.keep(StudyRef("2", "MRN2"),
                                                                                      {"MRN2": "Pb"}.get)
    with pytest.raises(InputError, match="say which studies"):
        StudyQuery()
    for bad, reason in [("2023", "YYYYMMDD-YYYYMMDD"), ("20231340-", "is not a date"),
                        ("20231231-20230101", "ends before it starts"), ("-", "YYYYMMDD")]:
        with pytest.raises(InputError, match=reason):
            check_dates(bad)


def test_pseudonym_lists(tmp_path):
    (tmp_path / "a.txt").write_text("pseudonym\nPa1\n\nPb2\nPa1\n")
    assert read_pseudonyms(tmp_path / "a.txt") == ["Pa1", "Pb2"]
    (tmp_path / "b.csv").write_text("patient_id,label\nPc3,sarcoma\nPd4,leiomyoma\n")
    assert read_pseudonyms(tmp_path / "b.csv") == ["Pc3", "Pd4"]
    for name, text, reason in [("c.csv", "name,label\nx,y\n", "needs a 'pseudonym'"), ("d.txt", "\n", "lists no"),
                               ("e.txt", "Pa1\nDoe^Jane\n", "entry 2 is not a pseudonym")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=reason):
            read_pseudonyms(tmp_path / name)


def test_retries_wait_longer_each_time_then_say_what_failed():
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("the PACS answered 503")
        return "ok"

    assert with_retries(flaky, "a search", "dicomweb+http://h", Backoff(attempts=4, first=0.5), waits.append) == "ok"
    assert waits == [0.5, 1.0]
    assert Backoff(attempts=6, first=10, longest=30).waits() == [10, 20, 30, 30, 30]
    with pytest.raises(PacsError, match=r"dicomweb\+http://h: a search failed \(tried 2 times\): down"):
        with_retries(lambda: (_ for _ in ()).throw(TransientError("down")), "a search", "dicomweb+http://h",
                     Backoff(attempts=2, first=0), waits.append)
    with pytest.raises(PacsError, match="refused"):  # not transient: no retry
        with_retries(lambda: (_ for _ in ()).throw(PacsError("refused")), "x", "y", Backoff(), waits.append)


def _instance() -> Dataset:
    ds = Dataset()
    for k, keyword in enumerate(IDENTIFYING_KEYWORDS):
        ds.__setattr__(keyword, "19600101" if "Date" in keyword else "101500" if "Time" in keyword
                       else f"Ident{k:02d}^Zz")
    for k, keyword in enumerate(STAFF_AND_PLACE):
        if pydicom.datadict.dictionary_VR(keyword) in ("PN", "LO", "SH", "LT", "ST"):
            ds.__setattr__(keyword, f"Staff{k:02d}")
    ds.PatientID, ds.PatientName = "MRN0042", "Doe^Jane"
    ds.SeriesDescription = "T2 tra MRN0042 Doe"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.4", "1.2.3.4.5"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    item = Dataset()
    item.CodeMeaning = "lesion of Doe"
    ds.ConceptNameCodeSequence = [item]
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", "800")
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "LO", "Doe^Jane")
    return ds


def test_a_staged_instance_keeps_no_identifier_but_its_b_value_and_uids(tmp_path):
    ds = deidentify(_instance(), "Pabc1234567")
    assert (ds.PatientID, str(ds.PatientName)) == ("Pabc1234567", "Pabc1234567")
    assert ds.SeriesDescription == "T2 tra [removed] [removed]" and ds.ConceptNameCodeSequence[0].CodeMeaning == (
        "lesion of [removed]")
    text = str(ds)
    assert "Ident" not in text and "Staff" not in text and "MRN0042" not in text and "Doe" not in text
    assert ds.get("PatientBirthDate") == "" and ds.get("AccessionNumber") == ""  # Type 2: present and empty
    creators = {str(e.value) for e in ds if e.tag.is_private_creator}
    assert creators == {"SIEMENS MR HEADER"} and "SIEMENS MR HEADER" in KEPT_PRIVATE_CREATORS
    from sarcomri.io.bvalues import b_value

    assert b_value(ds) == 800 and ds.SOPInstanceUID == "1.2.3.4.5"
    staging = Staging(tmp_path / "s", b"key")
    path = staging.write(_instance(), "Pabc1234567")
    assert "1.2.3" not in str(path.relative_to(tmp_path)) and path.name == f"{keyed(b'key', 'sop', '1.2.3.4.5')}.dcm"
    assert staging.has("1.2.3", "1.2.3.4", "1.2.3.4.5") and not list(path.parent.glob(".*"))
    assert b"MRN0042" not in path.read_bytes() and b"Doe" not in path.read_bytes()


def test_a_damaged_study_record_counts_as_not_staged(tmp_path):
    staging = Staging(tmp_path / "s", b"key")
    staging.write(_instance(), "Pabc1234567")
    staging.mark_complete("1.2.3", "Pabc1234567", series=1, instances=1)
    assert staging.completed("1.2.3")["instances"] == 1 and staging.pseudonyms() == ["Pabc1234567"]
    record = next((tmp_path / "s" / "records").glob("S*.json"))
    for damaged in (b'{"pseudonym": "Pabc12', b"\xff\xfe", b"[1, 2]",
                    b'{"complete": true, "pseudonym": 3, "series": 1, "instances": 1}',
                    b'{"complete": true, "pseudonym": "Pabc1234567", "series": 1}'):
        record.write_bytes(damaged)
        assert staging.completed("1.2.3") is None and staging.pseudonyms() == []
    staging.mark_complete("1.2.3", "Pabc1234567", series=1, instances=1)  # the rerun writes it again
    assert staging.completed("1.2.3")["pseudonym"] == "Pabc1234567"

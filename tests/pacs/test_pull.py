"""Pulling a cohort from a real Orthanc PACS over DICOMweb (QIDO-RS, WADO-RS) and DIMSE (C-FIND, C-GET): the
cohort equals the folder ingestion of the same DICOM under the same key, holds no identifying value, and the
queries (study UIDs, accession numbers, pseudonyms, dates) pull what they name. A PACS that is down, slow, fails
or cuts an instance short, a study with a series that cannot be had, a wrong UID: each is one clear error, no
cohort is left, and the rerun of the same command completes, fetching only what is missing."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import ingest
from sarcomri.io.labels import read_labels
from sarcomri.pacs.address import parse_address
from sarcomri.pacs.pull import pull_cohort
from sarcomri.pacs.query import StudyQuery
from sarcomri.pacs.retry import Backoff, PacsError

from .faults import FaultProxy, Rule

KEY = "hospital-key"
FAST = Backoff(attempts=3, first=0.01)


def _pull(address: str, query: StudyQuery, out, lines=None, **kwargs):
    return pull_cohort(parse_address(address), query, out, pseudonymizer=Pseudonymizer.from_key(KEY),
                       log=(lines.append if lines is not None else None), progress=False,
                       backoff=kwargs.pop("backoff", FAST), **kwargs)


@pytest.fixture(scope="module")
def folder_cohort(hospital, tmp_path_factory):
    """The folder ingestion of the hospital's DICOM under the same key (the reference)."""
    out = tmp_path_factory.mktemp("folder") / "cohort"
    ingest(hospital.dicom, out, pseudonymizer=Pseudonymizer.from_key(KEY), labels=read_labels(hospital.labels))
    return Cohort.load(out)


def assert_same_cohort(pulled: Cohort, reference: Cohort, patients: list[str] | None = None) -> None:
    """Same patients (pseudonyms, labels), same series, voxel-equal images and masks on the same grids."""
    ref_series = reference.series if patients is None else reference.series[
        reference.series["patient_id"].isin(patients)]
    assert sorted(pulled.patient_ids) == sorted(ref_series["patient_id"].unique())
    cols = ["patient_id", "sequence"]
    assert (pulled.series[cols].sort_values(cols).to_numpy().tolist()
            == ref_series[cols].sort_values(cols).to_numpy().tolist())
    labels = dict(zip(reference.patients["patient_id"], reference.patients["label"], strict=True))
    assert dict(zip(pulled.patients["patient_id"], pulled.patients["label"], strict=True)) == {
        p: labels[p] for p in pulled.patient_ids}
    for row in pulled.series.itertuples():
        a, b = pulled.read_image(row.patient_id, row.sequence), reference.read_image(row.patient_id, row.sequence)
        assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
        assert a.GetOrigin() == b.GetOrigin() and a.GetSpacing() == b.GetSpacing()
        ma, mb = pulled.read_mask(row.patient_id, row.sequence), reference.read_mask(row.patient_id, row.sequence)
        assert (ma is None) == (mb is None)
        if ma is not None:
            assert np.array_equal(sitk.GetArrayViewFromImage(ma), sitk.GetArrayViewFromImage(mb))


def identifying_hits(folder, identifiers: set[str]) -> list[str]:
    """Files under ``folder`` (gzip read through) holding any identifying value."""
    hits = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("latin-1").lower()
        hits += [f"{path.name}: {v}" for v in identifiers if v.lower() in text]
    return hits


def test_a_dicomweb_pull_equals_the_folder_ingestion_and_identifies_no_one(orthanc, hospital, folder_cohort,
                                                                           tmp_path):
    lines: list[str] = []
    out = tmp_path / "cohort"
    pulled, report = _pull(orthanc.dicomweb, StudyQuery(dates="20230101-"), out, lines,
                           labels=read_labels(hospital.labels))
    assert (pulled.studies, pulled.instances, pulled.retrieved) == (4, orthanc.instances, orthanc.instances)
    assert_same_cohort(Cohort.load(out), folder_cohort)
    assert identifying_hits(out, hospital.identifiers) == []
    assert not any(v.lower() in " ".join(lines).lower() for v in hospital.identifiers)
    assert not (tmp_path / ".cohort.pull").exists()  # the staging folder is gone once the cohort is written
    provenance = json.loads((out / "cohort.json").read_text())["provenance"]
    assert "hmac-sha256" in provenance["pseudonyms"]["method"]


def test_a_dimse_pull_by_c_get_equals_the_folder_ingestion(orthanc, hospital, folder_cohort, tmp_path):
    chosen = hospital.patients[1:3]
    pulled, _ = _pull(orthanc.dimse, StudyQuery(study_uids=tuple(p.study_uid for p in chosen)), tmp_path / "c",
                      labels=read_labels(hospital.labels))
    assert pulled.studies == 2
    key = Pseudonymizer.from_key(KEY)
    assert_same_cohort(Cohort.load(tmp_path / "c"), folder_cohort, [key(p.mrn) for p in chosen])
    assert identifying_hits(tmp_path / "c", hospital.identifiers) == []


def test_queries_pull_what_they_name(orthanc, hospital, tmp_path):
    key = Pseudonymizer.from_key(KEY)
    p = hospital.patients
    cases = {
        "accessions": (StudyQuery(accessions=(p[0].accession, p[3].accession)), [p[0], p[3]]),
        "pseudonyms": (StudyQuery(pseudonyms=(key(p[2].mrn),)), [p[2]]),
        "dates": (StudyQuery(dates=f"{p[1].date}-{p[2].date}"), [p[1], p[2]]),
    }
    for name, (query, wanted) in cases.items():
        _pull(orthanc.dicomweb, query, tmp_path / name)
        assert sorted(Cohort.load(tmp_path / name).patient_ids) == sorted(key(w.mrn) for w in wanted), name


def test_a_pull_stopped_midway_continues_and_fetches_only_what_is_missing(orthanc, hospital, folder_cohort,
                                                                          tmp_path):
    out = tmp_path / "cohort"
    key = Pseudonymizer.from_key(KEY)
    in_order = sorted(hospital.patients, key=lambda p: key(p.mrn))  # studies are pulled in pseudonym order
    broken, before = in_order[2], in_order[:2]
    with FaultProxy(orthanc.base) as proxy:
        address = f"dicomweb+{proxy.base}/dicom-web"
        proxy.rules.append(Rule(f"/studies/{broken.study_uid}/series/", "truncate", 0.5))  # its answers cut short
        with pytest.raises(PacsError, match=r"failed \(tried 3 times\).*(cut short|truncated|unreadable)"):
            _pull(address, StudyQuery(dates="20230101-"), out)
        assert not out.exists()  # nothing partial in the cohort
        proxy.rules.clear()
        proxy.seen.clear()
        pulled, _ = _pull(address, StudyQuery(dates="20230101-"), out, labels=read_labels(hospital.labels))
    assert pulled.already_staged == len(before) and pulled.instances == orthanc.instances
    assert pulled.retrieved == orthanc.instances - sum(len(list((hospital.dicom / p.synthetic_id).rglob("*.dcm")))
                                                       for p in before)
    for p in before:  # a study staged whole is not asked for again
        assert not [s for s in proxy.seen if f"/studies/{p.study_uid}/" in s]
    assert_same_cohort(Cohort.load(out), folder_cohort)


def test_transient_failures_are_retried_with_back_off(orthanc, hospital, tmp_path):
    with FaultProxy(orthanc.base) as proxy:
        proxy.rules += [Rule("/dicom-web/studies", "status", 503, times=2),
                        Rule(f"/studies/{hospital.patients[0].study_uid}/series/", "status", 500, times=1)]
        pulled, _ = pull_cohort(parse_address(f"dicomweb+{proxy.base}/dicom-web"),
                                StudyQuery(study_uids=(hospital.patients[0].study_uid,)), tmp_path / "c",
                                pseudonymizer=Pseudonymizer.from_key(KEY), progress=False,
                                backoff=Backoff(attempts=3, first=0.01, factor=3))
    assert pulled.studies == 1 and all(r.times == 0 for r in proxy.rules)
    assert Cohort.load(tmp_path / "c").patient_ids


@pytest.mark.parametrize("case, rule, pattern", [
    ("always 500", Rule("/dicom-web/studies", "status", 500), r"study search of --study #1 failed \(tried 3 "
     r"times\): the PACS answered 500"),
    ("too slow", Rule("/dicom-web/studies", "delay", 2.0), r"no answer within 0.5 s"),
    ("a series lists no instance", Rule("/instances", "empty", query=""), r"series \d+ of P[0-9a-f]{10} lists no "
     "instance"),
    ("a series that cannot be retrieved", Rule("/series/", "status", 404), r"nothing found \(the PACS answered 404"),
])
def test_a_failing_pacs_is_one_clear_error_and_a_rerun_completes(orthanc, hospital, tmp_path, case, rule, pattern):
    out = tmp_path / "cohort"
    query = StudyQuery(study_uids=(hospital.patients[0].study_uid,))
    with FaultProxy(orthanc.base) as proxy:
        address = f"dicomweb+{proxy.base}/dicom-web"
        if rule.action == "status" and rule.value == 404:  # retrievals only, not the searches
            rule.match = f"/studies/{hospital.patients[0].study_uid}/series/"
        proxy.rules.append(rule)
        with pytest.raises(PacsError, match=pattern) as err:
            _pull(address, query, out, timeout=0.5 if case == "too slow" else 30.0)
        assert not out.exists()
        assert not any(v.lower() in str(err.value).lower() for v in hospital.identifiers)
        proxy.rules.clear()
        pulled, _ = _pull(address, query, out)
    assert pulled.studies == 1 and Cohort.load(out).patient_ids


def test_a_pacs_that_is_down_or_a_wrong_uid_says_so(orthanc, hospital, tmp_path):
    from sarcomri.pacs.orthanc import free_port

    closed = free_port()
    with pytest.raises(PacsError, match=r"cannot connect \(Connection refused\)"):
        _pull(f"dicomweb+http://127.0.0.1:{closed}/dicom-web", StudyQuery(study_uids=("1.2.3",)), tmp_path / "a")
    with pytest.raises(PacsError, match=r"cannot connect"):
        _pull(f"dimse://ORTHANC@127.0.0.1:{closed}", StudyQuery(study_uids=("1.2.3",)), tmp_path / "b")
    for address in (orthanc.dicomweb, orthanc.dimse):
        with pytest.raises(PacsError, match=r"no study matches --study #2"):
            _pull(address, StudyQuery(study_uids=(hospital.patients[0].study_uid, "1.2.826.0.1.3680043.99")),
                  tmp_path / "c")
    assert not any((tmp_path / n).exists() for n in "abc")


def test_a_pull_without_a_key_is_refused(orthanc, tmp_path):
    from sarcomri.errors import InputError

    with pytest.raises(InputError, match="needs a de-identification key"):
        pull_cohort(parse_address(orthanc.dicomweb), StudyQuery(dates="20230101-"), tmp_path / "c",
                    pseudonymizer=Pseudonymizer.from_key(None), progress=False)


def test_the_command_pulls_by_accession_with_labels(orthanc, hospital, tmp_path, monkeypatch):
    monkeypatch.delenv("SARCOMRI_DEID_KEY", raising=False)
    p = hospital.patients
    res = CliRunner().invoke(app, ["ingest", orthanc.dicomweb, "--accession", p[0].accession, "--accession",
                                   p[2].accession, "--labels", str(hospital.labels), "--positive", "sarcoma",
                                   "--deid-key", KEY, "-o", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    done = json.loads(res.output)
    assert done["patients"] == 2 and done["source_type"] == "dicom"
    key = Pseudonymizer.from_key(KEY)
    cohort = Cohort.load(tmp_path / "c")
    assert dict(zip(cohort.patients["patient_id"], cohort.patients["label"], strict=True)) == {
        key(p[0].mrn): p[0].label, key(p[2].mrn): p[2].label}
    assert not any(v.lower() in res.output.lower() for v in hospital.identifiers)
    res = CliRunner().invoke(app, ["ingest", str(tmp_path), "--study", "1.2.3", "-o", str(tmp_path / "d")])
    assert res.exit_code == 1 and "--study is for a PACS source" in str(res.exception)

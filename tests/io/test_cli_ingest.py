"""The `sarcomri ingest` command: options, warnings and errors as a user sees them."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cli.main import main
from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import KEY_ENV


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["sarcomri", "ingest", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_random_key_warns_and_listing(tmp_path, make_series, monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    make_series(tmp_path / "src" / "a", description="T2axi")
    make_series(tmp_path / "src" / "b", description="survey", series_number=2)
    code, out, err = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / "c")
    assert code == 0
    assert "warning:" in err and "random" in err
    assert "1 series kept aside" in out and "survey" in out and "cohort written" in out
    cohort = Cohort.load(tmp_path / "c")
    assert cohort.meta["provenance"]["pseudonyms"] == {"method": "hmac-sha256 (random key)", "reproducible": False}
    assert cohort.meta["unmapped_series"][0]["reason"] == "skipped by the sequence map rule 'localizer'"


def test_key_from_environment_is_reproducible(tmp_path, make_series, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "site-secret")
    make_series(tmp_path / "src" / "a")
    ids = []
    for name in ("c1", "c2"):
        code, _, err = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / name, "-q")
        assert code == 0 and "warning" not in err
        ids.append(Cohort.load(tmp_path / name).patient_ids)
    assert ids[0] == ids[1]


@pytest.mark.parametrize("extra, problem", [
    (["--deid-key", "k", "--pseudonyms", "map.csv"], "either --deid-key or --pseudonyms"),
    (["--positive", "sarcoma"], "--positive needs --labels"),
])
def test_conflicting_options(tmp_path, make_series, monkeypatch, capsys, extra, problem):
    make_series(tmp_path / "src" / "a")
    code, _, err = _cli(monkeypatch, capsys, tmp_path / "src", "--out", tmp_path / "c", *extra)
    assert code == 1 and problem in err and not (tmp_path / "c").exists()


def test_existing_cohort_needs_overwrite(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "src" / "a")
    args = [tmp_path / "src", "--out", tmp_path / "c", "--deid-key", "k", "-q"]
    assert _cli(monkeypatch, capsys, *args)[0] == 0
    code, _, err = _cli(monkeypatch, capsys, *args)
    assert code == 1 and "--overwrite" in err
    assert _cli(monkeypatch, capsys, *args, "--overwrite")[0] == 0


def test_custom_sequence_map_names_the_sts_t1(tmp_path, shared_data, monkeypatch, capsys):
    rules = tmp_path / "sts.yaml"
    rules.write_text("rules:\n  - name: T1\n    match: ['t1']\n")
    code, out, _ = _cli(monkeypatch, capsys, shared_data / "dicom" / "sts-001-t1", "--out", tmp_path / "c",
                        "--sequence-map", rules, "--deid-key", "k")
    assert code == 0, out
    cohort = Cohort.load(tmp_path / "c")
    assert cohort.sequences == ["T1"] and cohort.series["mask"].notna().all()
    assert cohort.meta["provenance"]["sequence_map"]["file"] == "sts.yaml"
    ref = sitk.ReadImage(str(shared_data / "sts-t1" / "STS_001" / "mask.nii.gz"))
    pid = cohort.patient_ids[0]
    assert np.array_equal(sitk.GetArrayFromImage(cohort.read_mask(pid, "T1")), sitk.GetArrayFromImage(ref))


def test_json_prints_the_summary_only(tmp_path, make_series, monkeypatch, capsys):
    import json

    make_series(tmp_path / "src" / "a", description="T2axi")
    make_series(tmp_path / "src" / "b", description="survey", series_number=2)
    code, out, err = _cli(monkeypatch, capsys, tmp_path / "src", "-o", tmp_path / "c", "--deid-key", "k", "--json")
    assert code == 0 and "warning" not in err
    summary = json.loads(out)
    assert set(summary) == {"cohort", "source_type", "patients", "volumes", "masks", "notes", "unmapped"}
    assert (summary["patients"], summary["volumes"], summary["source_type"]) == (1, 1, "dicom")
    assert [row["description"] for row in summary["unmapped"]] == ["survey"]
    assert "SRC-PATIENT-0001" not in out and "Doe" not in out  # pseudonyms only

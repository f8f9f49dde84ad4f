"""`sarcomri synth` end to end at a small grid."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort


def test_synth_writes_cohort_and_dicom(tmp_path):
    out, dcm = tmp_path / "cohort", tmp_path / "dicom"
    res = CliRunner().invoke(app, ["synth", "--task", "carcinosarcoma", "--patients", "3", "--seed", "2", "--out",
                                   str(out), "--size", "32", "--slices", "6", "--sequences", "T2axi,ADC",
                                   "--dicom", str(dcm), "--quiet"])
    assert res.exit_code == 0, res.output
    c = Cohort.load(out)
    assert c.meta["task"] == "carcinosarcoma" and len(c.patients) == 3
    assert set(c.sequences) <= {"T2axi", "ADC"}
    assert c.read_image(c.patient_ids[0], "T2axi").GetSize() == (32, 32, 6)
    assert "ideal-observer AUC" in res.output
    assert (dcm / "labels.csv").is_file() and list(dcm.rglob("SEG.dcm"))
    assert set(pd.read_csv(out / "readers.csv").session) == {"first", "ai_assisted"}


def test_synth_refuses_an_existing_folder(tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["synth", "--out", str(out), "--patients", "2", "--size", "32", "--slices", "6", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0
    assert isinstance(res.exception, FileExistsError)
    res = CliRunner().invoke(app, [*args, "--overwrite"])  # --overwrite replaces only a cohort
    assert res.exit_code != 0 and "another kind" in str(res.exception)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()  # an empty folder is filled
    assert CliRunner().invoke(app, args).exit_code == 0


@pytest.mark.parametrize("args", [["--task", "lymphoma"], ["--patients", "0"]])
def test_synth_rejects_bad_options(tmp_path, args):
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2

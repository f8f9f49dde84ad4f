"""The report's reader numbers are the study's readers tables, at the study's reader cut (not a constant)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from sarcomri.classification import read_definition, reader_report_tables
from sarcomri.report import build_report
from sarcomri.report.sources import load_run
from sarcomri.report.tables import model_vs_readers, reading_sessions

CUT = 0.6  # not the default 0.4


def _study(report_run, root, cut: float):
    """A study folder: the report run as its classification, the cohort's reads as its readers stage's reads,
    and a config whose readers.cut is ``cut``."""
    study = root / "study"
    shutil.copytree(report_run.run, study / "classification",
                    ignore=shutil.ignore_patterns("models", "cache", "report", "readers"))
    (study / "readers").mkdir()
    shutil.copy(report_run.cohort.root / "readers.csv", study / "readers" / "readers.csv")
    (study / "config.yaml").write_text(yaml.safe_dump({"name": "cut-study", "readers": {"cut": cut}}))
    return study


def _readers_stage(study, cut: float) -> dict[str, pd.DataFrame]:
    """What the study's readers stage writes (sarcomri.study.readers, after the reads)."""
    return reader_report_tables(study / "classification", study / "readers" / "readers.csv",
                                study / "readers" / "tables", "sarcoma", "leiomyoma", cut)


def test_report_renders_the_studys_reader_tables_at_its_cut(report_run, tmp_path):
    study = _study(report_run, tmp_path, CUT)
    stage = _readers_stage(study, CUT)
    html = build_report(study, gradcam=False).read_text()
    inputs = load_run(study / "classification", readers=study / "readers" / "readers.csv",
                      readers_tables=study / "readers" / "tables", reader_cut=CUT)
    section = model_vs_readers(inputs)
    acc = section.data["accuracy"]
    written = pd.concat([pd.read_csv(study / "readers" / "tables" / f"{n}.csv") for n in ("accuracy",
                                                                                          "whole_accuracy")])
    pd.testing.assert_frame_equal(acc.reset_index(drop=True), written.reset_index(drop=True))
    assert len(acc) == len(stage["accuracy"]) + len(stage["whole_accuracy"])
    # a reader's calls are confidence <= 0.6 on the 6-point scale, and the sensitivity is theirs
    reads = pd.read_csv(study / "readers" / "readers.csv", dtype={"patient_id": str})
    mine = section.data["reads"]
    one = mine[(mine["sequence"] == "T2axi") & (mine["interpreter"] == "specialist1")].set_index("case")
    raw = reads[(reads["sequence"] == "T2axi") & (reads["session"] == "first") & (reads["reader"] == "specialist1")]
    raw = raw.set_index("patient_id").loc[one.index]
    assert ((raw["confidence"] <= CUT + 1e-9) == (one["decision"] == "sarcoma")).all()
    row = acc[(acc["sequence"] == "T2axi") & (acc["interpreter"] == "specialist1")].iloc[0]
    positive = one["truth"] == "sarcoma"
    assert row["sensitivity"] == pytest.approx((one.loc[positive, "decision"] == "sarcoma").mean())
    assert f"a confidence of {CUT:g} or less" in html
    # the default cut gives other numbers: the report did not fall back to 0.4
    default = reader_report_tables(study / "classification", study / "readers" / "readers.csv", tmp_path / "at04",
                                   "sarcoma", "leiomyoma", 0.4)["accuracy"]
    assert not np.allclose(default["sensitivity"], stage["accuracy"]["sensitivity"])
    sessions = reading_sessions(inputs).data["sessions"]
    pd.testing.assert_frame_equal(sessions, pd.read_csv(study / "readers" / "tables" / "sessions.csv"))


def test_missing_or_stale_reader_tables_are_computed_at_the_studys_cut(report_run, tmp_path):
    study = _study(report_run, tmp_path, CUT)
    build_report(study, gradcam=False)  # no readers stage ran: the report runs its function once
    found = read_definition(study / "readers" / "tables")
    assert float(found["reader_cut"].iloc[0]) == CUT and "accuracy" in found["tables"].iloc[0]
    first = (study / "readers" / "tables" / "accuracy.csv").stat().st_mtime_ns
    build_report(study, gradcam=False)  # current: read, not recomputed
    assert (study / "readers" / "tables" / "accuracy.csv").stat().st_mtime_ns == first
    (study / "config.yaml").write_text(yaml.safe_dump({"name": "cut-study", "readers": {"cut": 0.2}}))
    html = build_report(study, gradcam=False).read_text()  # another cut: the tables are stale
    assert float(read_definition(study / "readers" / "tables")["reader_cut"].iloc[0]) == 0.2
    assert "a confidence of 0.2 or less" in html

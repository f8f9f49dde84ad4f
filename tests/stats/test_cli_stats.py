"""`sarcomri stats ...` through Typer's CliRunner: JSON output against the published reference values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.errors import InputError

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, ["stats", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_roc_json_matches_proc(shared_data):
    csv = str(shared_data / "stats" / "aSAH.csv")
    out = _json(["roc", csv, "--truth", "outcome_poor", "--positive", "1",
                 "--score", "wfns", "--score", "s100b", "--score", "ndka", "--cutoff", "0.205"])
    assert (out["n_cases"], out["n_controls"], out["n_dropped"]) == (41, 72, 0)
    aucs = {s["score"]: s for s in out["scores"]}
    assert [round(aucs[k]["auc"], 4) for k in ("wfns", "s100b", "ndka")] == [0.8237, 0.7314, 0.6120]
    assert (round(aucs["ndka"]["lower"], 4), round(aucs["ndka"]["upper"], 4)) == (0.5012, 0.7227)
    tests = {(c["score1"], c["score2"]): c for c in out["comparisons"]}
    assert round(tests[("wfns", "s100b")]["z"], 4) == 2.2090
    assert float(f"{tests[('wfns', 's100b')]['p']:.4g}") == 0.02718
    assert round(tests[("wfns", "ndka")]["z"], 4) == 2.7978
    assert round(tests[("s100b", "ndka")]["z"], 4) == 1.3908  # pROC's ndka vs s100b, reversed
    s100b = aucs["s100b"]["at_threshold"]
    assert (s100b["sensitivity"]["numerator"], s100b["specificity"]["numerator"]) == (26, 58)
    # pROC's "best" s100b threshold 0.205 (a midpoint) gives the same operating point
    fixed = aucs["s100b"]["at_cutoffs"][0]
    assert fixed["cutoff"] == 0.205 and fixed["metrics"]["confusion"] == s100b["confusion"]


def test_roc_prints_tables_and_names_the_file_on_errors(shared_data):
    csv = str(shared_data / "stats" / "aSAH.csv")
    result = runner.invoke(app, ["stats", "roc", csv, "--truth", "outcome_poor", "--positive", "1",
                                 "--score", "ndka"])
    assert result.exit_code == 0 and "0.6120" in result.stdout
    bad = runner.invoke(app, ["stats", "roc", csv, "--truth", "outcome", "--positive", "Poorly",
                              "--score", "ndka"])
    assert isinstance(bad.exception, InputError) and "aSAH.csv" in str(bad.exception)
    assert "'Poorly' does not occur" in str(bad.exception)
    bad = runner.invoke(app, ["stats", "roc", csv, "--truth", "outcome_poor", "--positive", "1",
                              "--score", "ndka", "--direction", "auto"])
    assert isinstance(bad.exception, InputError) and "direction" in str(bad.exception)


def test_mrmc_json_matches_published_vandyke(shared_data):
    out = _json(["mrmc", str(shared_data / "stats" / "vandyke.csv"), "--reader", "reader", "--case", "case",
                 "--modality", "treatment", "--truth", "truth", "--score", "rating"])
    rrrc = [t for t in out["tests"] if t["analysis"] == "rrrc"][0]
    assert (round(rrrc["statistic"], 3), round(rrrc["df2"], 2), round(rrrc["p"], 4)) == (4.456, 15.26, 0.0517)
    mods = {m["modality"]: m["auc"] for m in out["modalities"] if m["analysis"] == "rrrc"}
    assert (round(mods[1], 4), round(mods[2], 4)) == (0.8970, 0.9408)


def test_diagnostic_json():
    out = _json(["diagnostic", "--tp", "52", "--fp", "3", "--fn", "4", "--tn", "7"])
    assert round(out["sensitivity"]["estimate"], 2) == 0.93
    assert round(out["specificity"]["estimate"], 2) == 0.70
    assert round(out["accuracy"]["estimate"], 2) == 0.89
    assert out["ss_avg"]["numerator"] is None and out["ci_method"] == "wilson"
    exact = _json(["diagnostic", "--tp", "52", "--fp", "3", "--fn", "4", "--tn", "7",
                   "--ci-method", "clopper-pearson"])
    assert exact["sensitivity"]["lower"] < out["sensitivity"]["lower"]


@pytest.fixture()
def reads_csv(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 40)
    rows = []
    for name, p in [("CNN", 0.9), ("R1", 0.8), ("R2", 0.7)]:
        call = np.where(rng.random(40) < p, truth, 1 - truth)
        rows += [{"case": i, "rater": name, "call": int(c), "score": float(c + rng.normal(0, 0.3))}
                 for i, c in enumerate(call)]
    path = tmp_path / "reads.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_agreement_long_and_wide(reads_csv, tmp_path):
    out = _json(["agreement", str(reads_csv), "--case", "case", "--rater", "rater", "--rating", "call",
                 "--fleiss"])
    frame = pd.read_csv(reads_csv).pivot(index="case", columns="rater", values="call")
    assert out["matrix"]["CNN"]["R2"] == pytest.approx(cohen_kappa_score(frame["CNN"], frame["R2"]))
    assert out["matrix"]["R2"]["CNN"] == out["matrix"]["CNN"]["R2"]
    assert out["fleiss"]["raters"] == 3 and len(out["pairs"]) == 3
    wide_csv = tmp_path / "wide.csv"
    frame.to_csv(wide_csv)
    wide = _json(["agreement", str(wide_csv), "--column", "CNN", "--column", "R1", "--column", "R2"])
    assert wide["matrix"] == out["matrix"]
    bad = runner.invoke(app, ["stats", "agreement", str(reads_csv), "--case", "case"])
    assert isinstance(bad.exception, InputError)


def test_icc_json(reads_csv):
    import pingouin

    out = _json(["icc", str(reads_csv), "--targets", "case", "--raters", "rater", "--ratings", "score"])
    forms = {f["form"]: f for f in out["forms"]}
    ref = pingouin.intraclass_corr(pd.read_csv(reads_csv), targets="case", raters="rater", ratings="score")
    assert forms["ICC(2,1)"]["icc"] == pytest.approx(ref.set_index("Type").loc["ICC(A,1)", "ICC"])
    assert (out["n_targets"], out["n_raters"]) == (40, 3)

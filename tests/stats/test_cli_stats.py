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

    out = _json(["icc", str(reads_csv), "--case", "case", "--rater", "rater", "--rating", "score"])
    forms = {f["form"]: f for f in out["forms"]}
    ref = pingouin.intraclass_corr(pd.read_csv(reads_csv), targets="case", raters="rater", ratings="score")
    assert forms["ICC(2,1)"]["icc"] == pytest.approx(ref.set_index("Type").loc["ICC(A,1)", "ICC"])
    assert (out["n_targets"], out["n_raters"]) == (40, 3)


def test_a_score_or_column_given_twice_is_a_clear_error(reads_csv):
    wide = reads_csv.with_name("wide.csv")
    pd.read_csv(reads_csv).pivot(index="case", columns="rater", values="score").reset_index().assign(
        truth=lambda f: (f["CNN"] > 0.5).astype(int)).to_csv(wide, index=False)
    bad = runner.invoke(app, ["stats", "roc", str(wide), "--truth", "truth", "--positive", "1",
                              "--score", "R1", "--score", "R1"])
    assert isinstance(bad.exception, InputError), repr(bad.exception)
    assert "--score 'R1' is given twice" in str(bad.exception) and "wide.csv" in str(bad.exception)
    bad = runner.invoke(app, ["stats", "agreement", str(wide), "--column", "R1", "--column", "R1"])
    assert isinstance(bad.exception, InputError) and "--column 'R1' is given twice" in str(bad.exception)


@pytest.mark.parametrize(("rows", "message"), [
    ("t,r,v\na,0,1\na,0,2\nb,1,2\n", "case 'a' is rated twice by rater 0"),  # mixed column types
    ("t,r,v\n0,0.5,1\n0,0.5,2\n1,1.5,2\n", "case 0 is rated twice by rater 0.5"),  # not 0.0 from a mixed row
])
def test_icc_messages_show_plain_values(tmp_path, rows, message):
    csv = tmp_path / "icc.csv"
    csv.write_text(rows)
    bad = runner.invoke(app, ["stats", "icc", str(csv), "--case", "t", "--rater", "r", "--rating", "v"])
    assert isinstance(bad.exception, InputError) and message in str(bad.exception)
    assert "np." not in str(bad.exception)


def test_stats_messages_never_show_numpy_reprs():
    from sarcomri.stats._checks import binary_truth, shown
    from sarcomri.stats.mrmc import or_mrmc

    assert (shown(np.int64(0)), shown(np.str_("a")), shown(np.float64(0.5)), shown("a")) == ("0", "'a'", "0.5", "'a'")
    with pytest.raises(InputError, match=r"positive class 2 does not occur in truth \(classes found: 0, 1\)"):
        binary_truth(np.array([0, 1, 1]), np.int64(2))
    frame = pd.DataFrame({"reader": np.array([1, 1]), "case": ["c", "c"], "modality": np.array([0, 0]),
                          "truth": [1, 1], "score": [0.2, 0.4]})
    with pytest.raises(InputError, match=r"reader 1 rated case 'c' twice in modality 0$"):
        or_mrmc(frame, "reader", "case", "modality", "truth", "score", 1)

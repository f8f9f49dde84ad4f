"""`sarcomri cohort info|validate` and `sarcomri splits make|check` through the real CLI."""

import json
import subprocess
import sys

import pandas as pd
from typer.testing import CliRunner

from sarcomri.cli.main import app

runner = CliRunner()


def test_cohort_info_json(tiny_cohort):
    res = runner.invoke(app, ["cohort", "info", str(tiny_cohort), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["n_patients"] == 12
    assert info["labels"] == {"leiomyoma": 8, "sarcoma": 4}
    assert info["sequences"]["T2axi"]["patients"] == 12 and info["sequences"]["T2axi"]["with_mask"] == 12
    assert info["sequences"]["ADC"]["by_label"] == {"leiomyoma": 4, "sarcoma": 2}
    assert info["sequences"]["ADC"]["spacing"]["median"] == [1.5, 1.5, 5.0]
    assert info["sequences"]["T2axi"]["size"]["max"] == [16, 16, 6]
    assert info["availability_patterns"] == [
        {"sequences": "T2axi", "patients": 6}, {"sequences": "T2axi+ADC", "patients": 6}
    ] or info["availability_patterns"] == [
        {"sequences": "T2axi+ADC", "patients": 6}, {"sequences": "T2axi", "patients": 6}
    ]
    assert info["patients_with_all_sequences"] == 6


def test_cohort_info_table_and_matrix(tiny_cohort):
    res = runner.invoke(app, ["cohort", "info", str(tiny_cohort), "--matrix"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "12 patients" in res.output and "Availability matrix" in res.output and "P011" in res.output


def test_splits_make_and_check(tiny_cohort, tmp_path):
    out = tmp_path / "splits.csv"
    res = runner.invoke(app, ["splits", "make", str(tiny_cohort), "--out", str(out), "--folds", "4",
                              "--repeats", "2", "--seed", "1", "--val-ratio", "0.2"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert set(table.columns) == {"patient_id", "repeat", "fold", "role"}
    assert (table[table.role == "test"].groupby(["repeat", "patient_id"]).size() == 1).all()
    assert runner.invoke(app, ["splits", "check", str(out)]).exit_code == 0
    table.loc[len(table)] = [table.patient_id[0], 0, 0, "test"]
    table.to_csv(out, index=False)
    res = runner.invoke(app, ["splits", "check", str(out)])
    assert res.exit_code != 0 and "holds" in str(res.exception)


def test_entry_point_prints_one_clear_line_and_exits_1(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sarcomri.cli.main", "cohort", "info", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "error:" in res.stderr and "no such directory" in res.stderr and "Traceback" not in res.stderr


def test_splits_make_balances_tumour_slices(tiny_cohort, tmp_path):
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.prep.prepare2d import tumour_slice_counts

    counts = tumour_slice_counts(Cohort.load(tiny_cohort), ["T2axi"])
    spread = {}
    for name, extra in (("patients", []), ("slices", ["--balance-slices", "T2axi"])):
        out = tmp_path / f"{name}.csv"
        res = runner.invoke(app, ["splits", "make", str(tiny_cohort), "--out", str(out), "--folds", "2",
                                  "--val-ratio", "0", "--seed", "3", *extra])
        assert res.exit_code == 0, res.output
        table = pd.read_csv(out, dtype={"patient_id": str})
        totals = table[table.role == "test"].groupby("fold")["patient_id"].apply(lambda p: sum(counts[i] for i in p))
        spread[name] = totals.max() - totals.min()
    assert spread["slices"] <= spread["patients"] and spread["slices"] <= max(counts.values())
    res = runner.invoke(app, ["splits", "make", str(tiny_cohort), "--out", str(tmp_path / "x.csv"),
                              "--balance-slices", "T1"])
    assert res.exit_code == 1 and "has no sequence T1" in str(res.exception)
    res = runner.invoke(app, ["splits", "make", str(tiny_cohort), "--out", str(tmp_path / "y.csv"),
                              "--scheme", "holdout", "--balance-slices", "T2axi"])
    assert res.exit_code == 1 and "kfold only" in str(res.exception)

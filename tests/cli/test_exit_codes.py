"""Exit codes of the console script: 1 for a user error (one line naming the file, no traceback), 2 only for a
usage error (click's own: an unknown option, a missing argument, an old option name given with its new one)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import sarcomri.cli.main as cli_main
from sarcomri.cli.main import main


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``sarcomri ARGS`` through the console-script entry point: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["sarcomri", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return done.value.code or 0, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def test_splits_check_on_a_missing_file_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "splits", "check", tmp_path / "none.csv")
    assert code == 1 and "none.csv: no such file" in _one_error_line(err) and out == ""


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe\x00 not text", "not a readable CSV table"),
    (b"a,b\n1,2\n", "no column(s) 'patient_id', 'repeat', 'fold', 'role'"),
    (b"patient_id,repeat,fold,role\nP1,0,0,train\nP1,0,0,test\n", "holds 2 roles"),
])
def test_splits_check_on_a_bad_file_names_it(tmp_path, monkeypatch, capsys, content, problem):
    path = tmp_path / "splits.csv"
    path.write_bytes(content)
    code, _, err = _cli(monkeypatch, capsys, "splits", "check", path)
    line = _one_error_line(err)
    assert code == 1 and "splits.csv" in line and problem in line, line


def test_a_config_that_is_not_yaml_is_one_line(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "study.yaml"
    cfg.write_text("name: [unclosed\n")
    code, _, err = _cli(monkeypatch, capsys, "study", "run", cfg, "--run-dir", tmp_path / "run")
    line = _one_error_line(err)
    assert code == 1 and "study.yaml: not valid YAML" in line and "line 2" in line


def test_os_errors_about_a_users_path_are_user_errors(monkeypatch, capsys):
    def missing() -> None:
        raise FileNotFoundError(2, "No such file or directory", "reads.csv")

    monkeypatch.setattr(cli_main, "app", missing)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 1 and "reads.csv: No such file or directory" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("args", [
    ["splits", "check", "--no-such-option", "x.csv"],  # unknown option
    ["splits", "check"],  # missing argument
    ["stats", "icc", "x.csv", "--case", "a", "--targets", "b", "--rater", "r", "--rating", "v"],  # old + new name
    ["stats", "icc", "x.csv", "--rater", "r", "--rating", "v"],  # a required column missing
    ["segment", "transfer-study", "x.yaml", "--run-dir", "a", "--out", "b"],
])
def test_usage_errors_exit_2(monkeypatch, capsys, args):
    code, _, err = _cli(monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in err and err.strip(), err


def test_old_option_names_still_work_with_a_warning(tmp_path, monkeypatch, capsys):
    csv = tmp_path / "icc.csv"
    pd.DataFrame({"t": [1, 1, 2, 2, 3, 3], "r": ["a", "b"] * 3, "v": [1.0, 1.2, 2.0, 2.1, 3.0, 2.8]}).to_csv(
        csv, index=False)
    code, out, err = _cli(monkeypatch, capsys, "stats", "icc", csv, "--targets", "t", "--raters", "r",
                          "--ratings", "v", "--json")
    assert code == 0 and "--targets is deprecated; use --case" in err and '"n_targets": 3' in out
    code, _, err = _cli(monkeypatch, capsys, "segment", "transfer-study", tmp_path / "none.yaml", "--out",
                        tmp_path / "run")
    assert code == 1 and "--out is deprecated; use --run-dir" in err and "none.yaml" in err


def test_the_installed_entry_point_exits_1_for_a_user_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sarcomri.cli.main", "splits", "check", str(tmp_path / "x.csv")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "x.csv: no such file" in res.stderr and "Traceback" not in res.stderr

"""The no-overwrite rule: `ingest --overwrite` replaces only a cohort, never the source; nothing writes a cohort's
own files but ingestion; `splits make` never writes over a file unless told to."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from sarcomri.cli.main import main
from sarcomri.cohort.manifest import Cohort
from sarcomri.io import atomic
from sarcomri.io.deid import KEY_ENV


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setenv(KEY_ENV, "site-secret")
    monkeypatch.setattr(sys, "argv", ["sarcomri", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_never_deletes_a_source_inside_the_output(tmp_path, make_series, monkeypatch, capsys):
    site = tmp_path / "site"
    make_series(site / "dicom" / "a")
    before = _tree(site)
    code, _, err = _cli(monkeypatch, capsys, "ingest", site / "dicom", "--out", site, "--overwrite")
    assert code == 1 and "source" in err
    assert _tree(site) == before


def test_output_inside_the_source_is_refused(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "src" / "a")
    code, _, err = _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", tmp_path / "src" / "cohort")
    assert code == 1 and "source" in err
    assert not (tmp_path / "src" / "cohort").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_cohort(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "src" / "a")
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("precious")
    code, _, err = _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", other, "--overwrite")
    assert code == 1 and "another kind" in err
    assert (other / "chapter1.tex").read_text() == "precious" and len(list(other.iterdir())) == 1


def test_overwrite_replaces_a_cohort_whole_and_an_empty_folder_is_filled(tmp_path, make_series, monkeypatch,
                                                                          capsys):
    make_series(tmp_path / "src" / "a")
    out = tmp_path / "cohort"
    out.mkdir()  # an empty folder may be filled without --overwrite
    assert _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", out, "-q")[0] == 0
    (out / "stale.txt").write_text("from an old run")
    code, _, err = _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", out, "-q")
    assert code == 1 and "exists already" in err
    assert _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", out, "-q", "--overwrite")[0] == 0
    assert not (out / "stale.txt").exists()
    assert len(Cohort.load(out).patients) == 1
    assert atomic.clean_temporaries(tmp_path) == []  # no .partial or .old folder left beside it


def test_splits_never_write_a_cohort_file_nor_over_a_file(tmp_path, make_series, monkeypatch, capsys):
    make_series(tmp_path / "src" / "a")
    make_series(tmp_path / "src" / "b", patient_id="SRC-PATIENT-0002", series_number=3)
    cohort = tmp_path / "cohort"
    assert _cli(monkeypatch, capsys, "ingest", tmp_path / "src", "--out", cohort, "-q")[0] == 0
    before = _tree(cohort)
    for target in ("patients.csv", "series.csv", "cohort.json", "images/new.csv"):
        code, _, err = _cli(monkeypatch, capsys, "splits", "make", cohort, "--out", cohort / target, "--folds", 2,
                            "--stratify", "", "--overwrite")
        assert code == 1 and "only `sarcomri ingest`" in err, target
    assert _tree(cohort) == before
    out = tmp_path / "splits.csv"
    args = ("splits", "make", cohort, "--out", out, "--folds", 2, "--stratify", "", "--val-ratio", 0)
    assert _cli(monkeypatch, capsys, *args)[0] == 0
    first = out.read_bytes()
    out.write_text("mine")
    code, _, err = _cli(monkeypatch, capsys, *args)
    assert code == 1 and "exists already" in err and out.read_text() == "mine"
    assert _cli(monkeypatch, capsys, *args, "--overwrite")[0] == 0 and out.read_bytes() == first
    # a file beside the cohort's own files (a run folder inside the cohort folder) is not a cohort file
    assert _cli(monkeypatch, capsys, "splits", "make", cohort, "--out", cohort / "runs" / "splits.csv",
                "--folds", 2, "--stratify", "", "--val-ratio", 0)[0] == 0
    assert pd.read_csv(cohort / "runs" / "splits.csv")["patient_id"].nunique() == 2


def test_atomic_writer_rule(tmp_path):
    dest = tmp_path / "table.csv"
    atomic.write_text(dest, "a")
    with pytest.raises(atomic.OverwriteError, match="exists already"):
        atomic.write_text(dest, "b")
    assert dest.read_text() == "a"
    atomic.write_text(dest, "b", overwrite=True)
    assert dest.read_text() == "b"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cohort.json").write_text('{"schema_version": 1}')
    with pytest.raises(atomic.OverwriteError, match="cohort"):
        atomic.write_text(tmp_path / "c" / "masks" / "P1" / "T2.nii.gz", "x", overwrite=True)
    atomic.write_text(tmp_path / "c" / "masks" / "P1" / "T2.nii.gz", "x", into_cohort=True)
    with pytest.raises(atomic.OverwriteError):
        with atomic.atomic_directory(tmp_path / "c", overwrite=True, replaceable=lambda d: False):
            pass


def test_clean_temporaries_removes_only_ours(tmp_path):
    keep = [tmp_path / "weights.pt", tmp_path / ".hidden", tmp_path / "a.tmp", tmp_path / ".x.tmp"]
    for path in keep:
        path.write_text("keep")
    with pytest.raises(RuntimeError), atomic.atomic_path(tmp_path / "m" / "checkpoint.pt"):
        raise RuntimeError("killed")  # an error removes its temporary itself
    assert not list((tmp_path / "m").iterdir())
    left = [tmp_path / "m" / ".checkpoint.pt.k2j4_x9a.tmp.pt", tmp_path / ".cache.npz.abcdef12.tmp.npz"]
    for path in left:
        path.write_text("half")
    os.makedirs(tmp_path / ".cohort.q1w2e3r4.partial" / "images")
    os.makedirs(tmp_path / ".cohort.old")
    removed = atomic.clean_temporaries(tmp_path)
    assert {p.name for p in removed} == {p.name for p in left} | {".cohort.q1w2e3r4.partial", ".cohort.old"}
    assert all(p.exists() for p in keep)


def test_a_run_folder_is_new_empty_or_a_run(tmp_path):
    from sarcomri.errors import SarcomriError
    from sarcomri.runrecord import prepare_run_folder

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")
    (home / ".draft.abcdef12.tmp.tex").write_text("an editor's, not ours to remove")
    with pytest.raises(SarcomriError, match="not a sarcomri run folder"):
        prepare_run_folder(home)
    assert len(list(home.iterdir())) == 2
    killed = tmp_path / "run"
    killed.mkdir()
    (killed / ".config.yaml.k2j4x9ab.tmp.yaml").write_text("half")  # killed before config.yaml appeared
    assert prepare_run_folder(killed) == killed and not list(killed.iterdir())
    assert prepare_run_folder(tmp_path / "new").is_dir()

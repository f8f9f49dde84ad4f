"""The HTML report of a synthetic run: sections, numbers equal to sarcomri.stats', omission, CLI, Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarcomri.report.layout import fmt_p
from sarcomri.report.sources import load_run
from sarcomri.stats.agreement import cohen_kappa
from sarcomri.stats.roc import auc, auc_ci, delong_test
from sarcomri.stats.tables import format_ci


def _html(report_run) -> str:
    return report_run.html.read_text()


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_sections_figures_and_model_card(report_run):
    html = _html(report_run)
    for section in ("roc", "tables", "readers", "sessions", "misdiagnoses", "gradcam", "segmentation", "model-card"):
        assert f'<section id="{section}">' in html, section
    images = _images(html)
    names = {Path(i).name for i in images}
    assert {"roc_T2axi.png", "roc_ADC.png", "roc_all.png", "gradcam_T2axi.png", "gradcam_ADC.png",
            "seg0_overlays.png", "seg0_learning_curve.png"} <= names
    assert all((report_run.html.parent / i).is_file() for i in images)
    assert "Learning curve of the transfer-learning study." in html
    card = (report_run.html.parent / "model_card.md").read_text()
    assert "Decision support, not a diagnosis" in card and "SYNTHETIC" in card
    assert "summed score (all sequences)" in card and "## Versions" in card
    ids = set(report_run.cohort.patient_ids)
    found = set(re.findall(r"SARC-\d{4}", html))
    assert found and found <= ids  # pseudonyms only, all from the cohort


def test_roc_and_per_sequence_aucs_equal_stats(report_run):
    html = _html(report_run)
    lik = pd.read_csv(report_run.run / "tables" / "likelihood.csv", dtype={"patient_id": str})
    for seq, g in lik.groupby("sequence"):
        a = auc_ci(g["label"], g["likelihood"], 1)
        assert f"{seq}: ROC of the CNN ({len(g)} patients, AUC {auc(g['label'], g['likelihood'], 1):.3f})" in html
        assert format_ci(a.auc, a.lower, a.upper) in html  # the per-sequence table


def test_reader_tables_equal_stats(report_run):
    from sarcomri.report.tables import model_vs_readers

    inputs = load_run(report_run.run)
    section = model_vs_readers(inputs)
    acc, kappa = section.data["accuracy"], section.data["kappa"]
    lik = pd.read_csv(report_run.run / "tables" / "likelihood.csv", dtype={"patient_id": str})
    reads = pd.read_csv(report_run.cohort.root / "readers.csv", dtype={"patient_id": str})
    g = lik[lik["sequence"] == "T2axi"].set_index("patient_id")
    r = reads[(reads["sequence"] == "T2axi") & (reads["session"] == "first") & (reads["reader"] == "specialist1")]
    r = r.set_index("patient_id").loc[g.index]
    expected = delong_test(g["label"], 1 - r["confidence"], g["likelihood"], 1).p_value
    row = acc[(acc["sequence"] == "T2axi") & (acc["interpreter"] == "specialist1")].iloc[0]
    assert row["p_vs_model"] == pytest.approx(expected, rel=1e-12)
    assert row["auc"] == pytest.approx(auc(g["label"], 1 - r["confidence"], 1))
    assert fmt_p(expected) in _html(report_run)
    k = cohen_kappa(np.where(g["likelihood"] >= 0.5, "sarcoma", "leiomyoma"),
                    np.where(r["confidence"] <= 0.4 + 1e-9, "sarcoma", "leiomyoma")).kappa
    got = kappa[(kappa["sequence"] == "T2axi") & (kappa["interpreter"] == "CNN")]["specialist1"].iloc[0]
    assert got == pytest.approx(k)
    # the whole study: the summed score's decisions against the readers' whole-study reads
    whole = acc[(acc["sequence"] == "all") & (acc["interpreter"] == "CNN")].iloc[0]
    summed = pd.read_csv(report_run.run / "tables" / "summed_score.csv")
    tp = int((summed["call_positive"] & (summed["label"] == 1)).sum())
    assert whole["tp"] == tp and whole["n"] == len(summed)


def test_misdiagnoses_are_the_summed_scores_errors(report_run):
    from sarcomri.report.misdiagnosis import misdiagnosis_section

    section = misdiagnosis_section(load_run(report_run.run))
    table = section.data["table"]
    summed = pd.read_csv(report_run.run / "tables" / "summed_score.csv", dtype={"patient_id": str})
    fp = set(summed.loc[summed["call_positive"] & (summed["label"] == 0), "patient_id"])
    fn = set(summed.loc[~summed["call_positive"] & (summed["label"] == 1), "patient_id"])
    assert set(table.loc[table["outcome"] == "FP", "patient_id"]) == fp
    assert set(table.loc[table["outcome"] == "FN", "patient_id"]) == fn
    assert {"degenerated", "irregular_margin", "histology", "volume_mask_cm3", "volume_ellipsoid_cm3"} <= set(table)
    assert (table["volume_mask_cm3"].dropna() > 0).all()
    html = _html(report_run)
    assert all(pid in html for pid in fp | fn)


def test_sessions_gradcam_and_segmentation(report_run):
    html = _html(report_run)
    assert "Reader-averaged AUC (Obuchowski-Rockette" in html and "Accuracy per reader" in html
    explained = html.split('<section id="gradcam">')[1].split("</section>")[0]
    rows = re.findall(r"<td>(\w+)</td>\s*<td>(SARC-\d+)</td>\s*<td>(TP|TN|FP|FN)</td>\s*<td>(yes|no)</td>", explained)
    assert {r[0] for r in rows} == {"T2axi", "ADC"}  # the "patients shown" table
    assert {r[3] for r in rows} == {"yes", "no"}  # right and wrong cases explained
    per_case = pd.read_csv(report_run.seg / "tables" / "per_case.csv")
    assert f"{per_case['dice'].median():.2f} (" in html  # the paper table's median (IQR)
    # by site and by histology: one row per (model, stratum), the model kept apart (not pooled over sequences)
    assert "Segmentation per sequence by histology" in html and "Segmentation per sequence by site" in html
    from sarcomri.seg3d.evaluate import paper_numbers

    patients = report_run.cohort.patients
    by_histology = paper_numbers(per_case, "histology", patients)
    seen = per_case.merge(patients, on="patient_id")
    assert len(by_histology) == seen.groupby(["sequence", "histology"]).ngroups
    assert by_histology["n"].sum() == len(per_case)


def test_sections_are_omitted_without_their_inputs(report_run, tmp_path):
    from typer.testing import CliRunner

    from sarcomri.cli.main import app

    run = tmp_path / "bare"
    (run / "tables").mkdir(parents=True)
    for name in ("likelihood", "per_sequence"):
        shutil.copy(report_run.run / "tables" / f"{name}.csv", run / "tables")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--no-gradcam"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert '<section id="roc">' in html and '<section id="tables">' in html
    for absent in ("readers", "sessions", "gradcam", "segmentation", "transfer"):
        assert f'<section id="{absent}">' not in html
    assert "at the T2axi likelihood at 0.5" in html  # no summed score: the first sequence's errors
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "foreign")])
    assert result.exit_code != 0 and (tmp_path / "foreign" / "notes.txt").is_file()
    (tmp_path / "empty").mkdir()  # neither a run nor its tables: refused, nothing written
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code != 0 and "not a run folder" in str(result.exception)
    assert not list((tmp_path / "empty").iterdir())


def test_study_folder_layout(report_run, tmp_path):
    """A `sarcomri study run` folder: classification/, readers/readers.csv, segmentation/, transfer/."""
    from sarcomri.report import build_report

    study = tmp_path / "study"
    shutil.copytree(report_run.run, study / "classification", ignore=shutil.ignore_patterns("models", "cache",
                                                                                            "report"))
    (study / "readers").mkdir()
    reads = pd.read_csv(report_run.cohort.root / "readers.csv", dtype={"patient_id": str})
    reads[reads["reader"] != "practitioner3"].to_csv(study / "readers" / "readers.csv", index=False)
    shutil.copytree(report_run.seg / "figures", study / "transfer" / "figures")
    html = build_report(study, gradcam=False)
    assert html == study / "report" / "report.html"
    text = html.read_text()
    assert "practitioner2" in text and "practitioner3" not in text  # the study's readers, not the cohort's
    assert '<section id="transfer">' in text and "transfer_learning_curve.png" in text


def _browser() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_report_renders_in_headless_chromium(report_run, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser (chromium) on this machine: `apt-get install chromium` (.ci/run does)")
    html = report_run.html
    shot = report_run.run / "report" / "screenshot.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage",
             "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}"]
    url = html.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    sources = re.findall(r'<img src="([^"]+)"', dom.stdout)
    assert len(sources) >= 7
    assert all((html.parent / s).is_file() for s in sources)
    run = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2400", url], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.std() > 0.05  # not blank
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert dark > 0.01  # text, curves and the header are drawn

"""The HTML report of a synthetic run: sections, numbers equal to sarcomri.stats', omission, CLI, embedded or
folder figures, the PDF."""

from __future__ import annotations

import base64
import re
import shutil

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


def _figures(html: str) -> dict[str, str]:
    """Each figure's name (its anchor, figure-<name>) and its image's src."""
    pattern = r'<figure id="figure-([^"]+)"(?: class="wide")?>(?:<div class="hover-figure">)?<img src="([^"]+)"'
    return dict(re.findall(pattern, html))


FIGURES = {"roc_T2axi", "roc_ADC", "roc_all", "gradcam_T2axi", "gradcam_ADC", "seg0_overlays", "seg0_learning_curve"}


def test_sections_figures_and_model_card(report_run):
    html = _html(report_run)
    for section in ("roc", "tables", "readers", "sessions", "misdiagnoses", "gradcam", "segmentation", "model-card"):
        assert f'<section id="{section}">' in html, section
    figures = _figures(html)
    assert FIGURES <= set(figures) and len(figures) == len(_images(html))
    # one self-contained file: every figure is a PNG inside the page, at print resolution; no figures/ folder
    assert not (report_run.html.parent / "figures").exists()
    for name, src in figures.items():
        assert src.startswith("data:image/png;base64,"), name
    png = base64.b64decode(figures["roc_T2axi"].split(",", 1)[1])
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and min(width, height) >= 4.0 * 200  # a 4.6 in figure at 200 dpi
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


def test_calibration_is_the_likelihoods_brier_score_and_reliability_curve(report_run):
    from sklearn.metrics import brier_score_loss

    html = _html(report_run)
    assert '<section id="calibration">' in html and "calibration" in _figures(html)
    lik = pd.read_csv(report_run.run / "tables" / "likelihood.csv", dtype={"patient_id": str})
    section = html[html.index('<section id="calibration">'):html.index("</section>", html.index('id="calibration"'))]
    for seq, g in lik.groupby("sequence"):
        assert f"{brier_score_loss(g['label'], g['likelihood']):.3f}" in section, seq
    curve = pd.read_csv(report_run.run / "tables" / "calibration.csv")
    assert curve.groupby("sequence")["n"].sum().to_dict() == lik.groupby("sequence").size().to_dict()


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
    # the CNN's 2 x 2 grid on T2axi holds the accuracy table's TP, FN / FP, TN
    grids = section.tables[0].html().split('<h4 class="matrix-heading">T2axi</h4>')[1].split("<h4")[0]
    cnn = re.search(r"<caption>CNN</caption>.*?<tbody>(.*?)</tbody>", grids).group(1)
    cnn_row = acc[(acc["sequence"] == "T2axi") & (acc["interpreter"] == "CNN")].iloc[0]
    cells = re.findall(r'<td class="num[^"]*">(\d+)</td>', cnn)
    assert cells == [str(int(cnn_row[k])) for k in ("tp", "fn", "fp", "tn")]
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
    cell = r"<td[^>]*>({})</td>\s*"
    rows = re.findall("".join(cell.format(v) for v in (r"\w+", r"SARC-\d+", "TP|TN|FP|FN", "yes|no")), explained)
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
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--no-gradcam", "--assets", "folder"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["calibration.png", "roc_ADC.png", "roc_T2axi.png"]
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
    assert "practitioner 2" in text and "practitioner 3" not in text  # the study's readers, not the cohort's
    assert '<section id="transfer">' in text and 'id="figure-transfer_learning_curve"' in text


def test_assets_folder_keeps_the_figures_beside_the_page(report_run, tmp_path):
    from sarcomri.errors import InputError
    from sarcomri.report import build_report

    html = build_report(report_run.run, segmentation_dirs=[report_run.seg], out_dir=tmp_path / "out", gradcam=False,
                        assets="folder")
    figures = _figures(html.read_text())
    assert {"roc_T2axi", "roc_all", "seg0_overlays", "seg0_learning_curve"} <= set(figures)
    for name, src in figures.items():
        assert src == f"figures/{name}.png" and (html.parent / src).is_file(), name
    with pytest.raises(InputError, match="assets must be one of embed, folder"):
        build_report(report_run.run, out_dir=tmp_path / "other", gradcam=False, assets="zip")
    assert not (tmp_path / "other").exists()


def test_pdf_is_printed_beside_the_page(report_run, tmp_path):
    from sarcomri.report import build_report
    from sarcomri.report.pdf import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (.ci/run does)")
    html = build_report(report_run.run, segmentation_dirs=[report_run.seg], out_dir=tmp_path / "out", gradcam=False,
                        pdf=True)
    pdf = (html.parent / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages >= 4  # A4 landscape: the tables and figures of every section
    assert sorted(p.name for p in html.parent.iterdir()) == ["model_card.md", "report.html", "report.pdf"]


def test_pdf_without_chromium_is_a_clear_error(report_run, tmp_path, monkeypatch):
    from sarcomri.report import build_report
    from sarcomri.report.pdf import PdfError, print_pdf

    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(PdfError, match="no Chromium to print the PDF with .*apt-get install chromium"):
        build_report(report_run.run, out_dir=tmp_path / "out", gradcam=False, pdf=True)
    assert not (tmp_path / "out").exists()  # nothing half-written
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'it broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(PdfError, match=r"exit 3\): it broke"):
        print_pdf(report_run.html, tmp_path / "x.pdf", browser=str(fake))
    assert not list(tmp_path.glob("*x.pdf*"))  # the temporary file is removed too

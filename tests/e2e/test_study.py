"""`sarcomri study run` and `sarcomri predict` end to end on a tiny synthetic cohort: DICOM round trip,
classification, readers; a rerun skips every stage; a changed section reruns that stage only; one new
patient (NIfTI or DICOM) goes through the finished study."""

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort

runner = CliRunner()


def _write(path, cfg):
    path.write_text(yaml.safe_dump(cfg))
    return path


def _config(**over):
    return {
        "name": "tiny-study",
        "synth": {"task": "sarcoma", "patients": 20, "seed": 5, "sequences": ["T2axi", "ADC"], "size": 40,
                  "slices": 8},
        "dicom_roundtrip": True,
        "classification": {
            "positive_label": "sarcoma", "sequences": ["T2axi", "ADC"],
            "splits": {"scheme": "kfold", "folds": 2, "repeats": 2, "val_ratio": 0.0, "seed": 1},
            "slices": {"mode": "tumour", "size": 32}, "model": {"name": "mobilenetv2_050"},
            "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "sampling": "balanced", "threads": 1},
        },
        "segmentation": {"sequences": ["T2axi"], "folds": 2, "preset": "cpu",
                         "train": {"epochs": 1, "iterations": 2, "threads": 1}, "infer": {"mirror": False}},
        "report": True,
        **over,
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    run = root / "run"
    cfg = _write(root / "study.yaml", _config())
    res = runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output + repr(res.exception)
    return root, run, cfg


def test_study_outputs(study):
    _, run, _ = study
    for name in ("config.yaml", "versions.json", "seeds.json", "stages.json", "study.json", "id_map.csv",
                 "classification/predictions.parquet", "readers/readers.csv", "readers/tables/accuracy.csv",
                 "readers/tables/tests.csv", "report/report.html", "report/model_card.md",
                 "segmentation/tables/per_case.csv"):
        assert (run / name).is_file(), name
    seeds = json.loads((run / "seeds.json").read_text())
    assert seeds["synthetic_cohort"] == 5 and seeds["classification"]["splits"] == 1
    # the study's cohort is the de-identified ingest: no synthetic id reaches the classification or the reads
    cohort = Cohort.load(run / "cohort")
    ids = set(pd.read_csv(run / "id_map.csv", dtype=str)["synthetic_id"])
    assert not ids & set(cohort.patients["patient_id"])
    reads = pd.read_csv(run / "readers" / "readers.csv", dtype={"patient_id": str})
    scored = set(pd.read_csv(run / "classification" / "tables" / "likelihood.csv", dtype=str)["patient_id"])
    assert set(reads["patient_id"]) == scored and scored <= set(cohort.patients["patient_id"])
    assert {"first", "ai_assisted"} == set(reads["session"])
    acc = pd.read_csv(run / "readers" / "tables" / "accuracy.csv")
    assert {"CNN"} < set(acc["interpreter"]) and set(acc["sequence"]) == {"T2axi", "ADC"}
    html = (run / "report" / "report.html").read_text()
    assert "First vs AI-assisted" in html or "AI-assisted" in html
    assert not any(i in html for i in ids)  # only pseudonyms in the report
    summary = json.loads((run / "study.json").read_text())
    assert 0 < summary["ideal_observer_auc"] <= 1 and set(summary["per_sequence_auc"]) == {"T2axi", "ADC"}


def _nifti_patient(cohort: Cohort, pid: str, src: pathlib.Path) -> pathlib.Path:
    """A NIfTI patient folder of a cohort patient's T2axi and ADC images and masks (what `predict` takes)."""
    src.mkdir()
    for seq in ("T2axi", "ADC"):
        shutil.copy(cohort.root / cohort.series_row(pid, seq)["image"], src / f"{seq}.nii.gz")
        shutil.copy(cohort.root / cohort.series_row(pid, seq)["mask"], src / f"{seq}_mask.nii.gz")
    return src


def test_predict_nifti_and_dicom(study, tmp_path):
    _, run, _ = study
    cohort = Cohort.load(run / "synthetic")
    pid = cohort.patients["patient_id"].iloc[0]
    src = _nifti_patient(cohort, pid, tmp_path / "patient")
    out = tmp_path / "out"
    res = runner.invoke(app, ["predict", str(src), "--model", str(run / "classification"), "--out", str(out),
                              "--deid-key", "k"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output + repr(res.exception)
    result = json.loads((out / "result.json").read_text())
    assert result["patient_id"] != pid and pid not in (out / "report.html").read_text()
    seqs = {s["sequence"]: s for s in result["sequences"]}
    assert set(seqs) == {"T2axi", "ADC"} and all(s["models"] == 4 for s in seqs.values())
    assert all(0 <= s["likelihood"] <= 1 and s["vote"] in (-1, 1) for s in seqs.values())
    assert result["summed_score"] == sum(s["vote"] for s in seqs.values())
    assert result["decision"] == ("sarcoma" if result["summed_score"] >= result["threshold"] else "leiomyoma")
    assert "not a diagnosis" in (out / "report.html").read_text()
    assert (out / "gradcam_T2axi.png").stat().st_size > 1000 and result["latency_seconds"]["total"] > 0
    # the same patient as DICOM (with DICOM-SEG masks) gives the same likelihoods
    dicom_patient = next(p for p in (run / "dicom").iterdir() if p.is_dir() and pid in p.name)
    res = runner.invoke(app, ["predict", str(dicom_patient), "--model", str(run / "classification"), "--out",
                              str(tmp_path / "out2"), "--deid-key", "k", "--no-gradcam", "--segmentation-model",
                              str(run / "segmentation")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    result2 = json.loads((tmp_path / "out2" / "result.json").read_text())
    again = {s["sequence"]: s for s in result2["sequences"]}
    for seq in seqs:  # the input's own DICOM-SEG masks take precedence over the segmentation model's
        assert again[seq]["likelihood"] == pytest.approx(seqs[seq]["likelihood"], abs=0.02)
    assert result2["outputs"]["mask"] == "mask.nii.gz" and result2["outputs"]["dicom_seg"] == "mask.seg.dcm"
    seg = pydicom.dcmread(tmp_path / "out2" / "mask.seg.dcm")
    assert seg.Modality == "SEG" and seg.PatientID == result2["patient_id"] and pid not in str(seg.PatientName)


def test_predict_rejects_a_folder_that_is_not_a_run(tmp_path):
    src = tmp_path / "p"
    src.mkdir()
    res = runner.invoke(app, ["predict", str(src), "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "not a classification run folder" in str(res.exception)


def test_rerun_skips_and_a_change_reruns_only_its_stage(study):
    root, run, cfg = study
    res = runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(run)])
    assert res.exit_code == 0 and "0 stage(s) ran" in res.output, res.output
    out = json.loads(runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(run), "--json"]).stdout)
    assert out["ran"] == [] and {s["status"] for s in out["stages"]} == {"skipped"}
    assert [s["name"] for s in out["stages"]] == ["cohort", "classification", "readers", "segmentation", "report"]
    assert out["report"] and all(pathlib.Path(o).exists() for s in out["stages"] for o in s["outputs"])
    weights = {p: p.stat().st_mtime for p in run.glob("classification/models/*/*/weights.pt")}
    changed = _config()
    changed["readers"] = {"cut": 0.2}
    res = runner.invoke(app, ["study", "run", str(_write(root / "changed.yaml", changed)), "--run-dir", str(run)])
    assert res.exit_code == 0 and "2 stage(s) ran (readers, report)" in res.output, res.output
    assert {p: p.stat().st_mtime for p in weights} == weights


def test_study_config_errors_name_the_section(tmp_path):
    bad = _config()
    bad["classification"]["train"]["epochs"] = 0
    res = runner.invoke(app, ["study", "run", str(_write(tmp_path / "s.yaml", bad)), "--run-dir", str(tmp_path / "r")])
    assert res.exit_code != 0
    assert "classification.train.epochs" in str(res.exception)


def test_predict_cuts_the_slices_the_classifier_was_trained_on(study, tmp_path, monkeypatch):
    """A study patient's own series through `predict`: the slices it scores are, array for array, the ones the
    training cache (cache/<seq>.npz) holds for that patient (one slice specification, sarcomri.runs)."""
    import numpy as np

    import sarcomri.predict as predict_lib
    import sarcomri.predict_scoring as scoring_lib
    from sarcomri.cohort.sequences import group_name
    from sarcomri.data.sliceset import SliceSet
    from sarcomri.runs import ClassificationRun, open_run

    _, run, _ = study
    cls = open_run(run, expect=ClassificationRun)  # the study folder opens its classification run
    cohort = cls.cohort(check_files=False)
    caches = {seq: SliceSet.load(cls.cache_path(seq)) for seq in cls.config.sequences}
    pid = next(p for p in cohort.patient_ids if all(p in set(c.patient_ids) for c in caches.values()))
    src = tmp_path / "patient"
    src.mkdir()
    for seq in caches:
        row = cohort.series_row(pid, seq)
        shutil.copy(cohort.root / row["image"], src / f"{seq}.nii.gz")
        shutil.copy(cohort.root / row["mask"], src / f"{seq}_mask.nii.gz")
    seen, real = {}, scoring_lib.patient_slices

    def spy(*args):
        slices, choice, vol = real(*args)
        seen[group_name(args[2])] = slices
        return slices, choice, vol

    monkeypatch.setattr(scoring_lib, "patient_slices", spy)
    predict_lib.predict_patient(src, cls.path, tmp_path / "out", key="k", gradcam=False)
    for seq, cache in caches.items():
        trained = cache.subset([pid])
        assert [s.slice_index for s in seen[seq]] == trained.slice_index.tolist()
        np.testing.assert_array_equal(np.stack([s.image for s in seen[seq]]), trained.images)


def test_study_run_cohort_option_replaces_the_configs_cohort(study, tmp_path):
    """`study run --cohort` reads the user's cohort instead of synthesising the config's (a cohort stage only)."""
    root, run, _ = study
    cfg = _write(tmp_path / "cohort-only.yaml", {k: v for k, v in _config().items()
                                                 if k not in ("classification", "segmentation")} | {"report": False})
    res = runner.invoke(app, ["study", "run", str(cfg), "--run-dir", str(tmp_path / "r"), "--json",
                              "--cohort", str(run / "cohort")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    out = json.loads(res.stdout)
    assert out["cohort"] == str((run / "cohort").resolve())
    assert not (tmp_path / "r" / "synthetic").exists() and not (tmp_path / "r" / "dicom").exists()


def test_the_patient_page_passes_in_a_browser(study, tmp_path, checks):
    """A new patient's page from the finished study in headless Chromium with the network off: every figure
    loads (embedded), nothing overflows 1280 px, no raw float or code-style column name; it shows a grey-scale
    slice with the tumour's contour and the study's observed rate at the patient's score, as result.json has it."""
    import io
    import re

    from matplotlib.image import imread

    _, run, _ = study
    cohort = Cohort.load(run / "synthetic")
    pid = cohort.patients["patient_id"].iloc[1]
    src = _nifti_patient(cohort, pid, tmp_path / "patient")
    out = tmp_path / "out"
    res = runner.invoke(app, ["predict", str(src), "--model", str(run / "classification"), "--out", str(out),
                              "--deid-key", "k"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output + repr(res.exception)
    result = json.loads((out / "result.json").read_text())
    html = (out / "report.html").read_text()
    assert "<img" in html and 'src="slices_' not in html and 'src="data:image/png;base64,' in html  # self-contained
    page, failed = checks.open(out / "report.html")
    assert checks.broken_images(page) == [] and failed == []
    assert checks.horizontal_overflow(page) == 0
    assert checks.long_floats(page) == []
    assert checks.code_style_headers(page) == []
    slices = page.locator('figure[data-kind="slices"] img')
    assert slices.count() == 2  # one per scored sequence
    pixels = imread(io.BytesIO(slices.first.screenshot()), format="png")[..., :3]
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    grey = (np.abs(r - g) < 0.03) & (np.abs(g - b) < 0.03)
    amber = (r > 0.85) & (g > 0.5) & (g < 0.8) & (b < 0.3)  # the contour, #ffb000
    assert grey.mean() > 0.6 and amber.sum() > 30
    level = next(lv for lv in result["score_meaning"]["levels"] if lv["score"] == result["summed_score"])
    said = page.inner_text("#score-meaning")
    rate = f"{100 * level['rate']:.0f}%"
    want = rf"{level['positives']} of {level['patients']} patients? scoring [+-]?\d+ had sarcoma: {rate}"
    assert re.search(want, said), said
    assert page.locator("#score-levels tr").count() == len(result["score_meaning"]["levels"]) + 1
    assert all(s["tumour"]["volume_ml"] > 0 and len(s["model_likelihoods"]) == 4 for s in result["sequences"])
    assert (run / "classification" / "cache" / "T2axi.profile.csv").is_file()
    assert result["warnings"] == []  # a study patient's own series: like the study's in every way checked
    assert sorted(s["sequence"] for s in result["input_series"]) == ["ADC", "T2axi"]
    assert set(result["model_ids"]) == {"T2axi", "ADC"} and result["study"] == "tiny-study-classification"
    assert all(result["model_ids"][q][:8] in page.inner_text("header") for q in ("T2axi", "ADC"))
    figures = page.locator('figure[data-kind="gradcam"] img')
    assert figures.count() == 2
    _check_the_viewer(page)
    pdf = page.pdf(format="A4", print_background=True)  # the print layout: one page
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    checks.keep_screenshot(page, "patient-page")
    with_js_off = page.context.browser.new_context(java_script_enabled=False, offline=True,
                                                   viewport={"width": 1280, "height": 900}).new_page()
    with_js_off.goto((out / "report.html").resolve().as_uri())
    assert with_js_off.locator("div.slice-viewer").first.is_hidden()  # the static figures stand alone
    assert with_js_off.locator('figure[data-kind="slices"] img').first.is_visible()


def _check_the_viewer(page):
    """The slice viewer scrolls, sets the window by dragging, and shows Grad-CAM on its slice."""
    viewer = page.locator("div.slice-viewer").first
    assert viewer.is_visible()
    canvas = viewer.locator("canvas")
    start = int(canvas.get_attribute("data-slice"))
    canvas.hover()
    page.mouse.wheel(0, 120)
    moved = int(canvas.get_attribute("data-slice"))
    assert moved == start + 1 or (moved == start and start == int(viewer.locator("input[type=range]")
                                                                   .get_attribute("max")) - 1)
    width = float(canvas.get_attribute("data-window"))
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 140, box["y"] + 40)
    page.mouse.up()
    assert float(canvas.get_attribute("data-window")) > 1.5 * width
    before = canvas.screenshot()
    viewer.locator("input[name=gradcam]").check()
    assert canvas.screenshot() != before


def test_a_reader_study_of_the_finished_study(study, tmp_path):
    """`read create` plans the study's test cases for two readers, the readers read both sessions through the
    store, `read progress` and `read export` report them, and the export goes unchanged into `stats mrmc`,
    `stats agreement` (one session) and the study's reader stage."""
    from sarcomri.read.store import ReadingStore
    from sarcomri.study import read_reads

    _, run, _ = study
    (tmp_path / "readers.yaml").write_text("readers:\n  - {name: specialist1, group: specialist}\n"
                                           "  - {name: practitioner1, group: practitioner}\n")
    (tmp_path / "design.yaml").write_text("scale: call_confidence\nsessions: [first, ai_assisted]\n"
                                          "washout_days: 0\nseed: 3\n")
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    res = runner.invoke(app, ["read", "create", str(run), "--readers", str(tmp_path / "readers.yaml"), "--design",
                              str(tmp_path / "design.yaml"), "--db", db, "--json", "--tokens", str(tmp_path / "t.tsv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    plan = json.loads(res.output)
    assert (tmp_path / "t.tsv").stat().st_mode & 0o777 == 0o600  # the tokens file: its owner only
    assert (tmp_path / "t.tsv").read_text() == "".join(f"{r['name']}\t{r['token']}\n" for r in plan["readers"])
    splits = pd.read_csv(run / "classification" / "splits.csv", dtype={"patient_id": str})
    tested = set(splits.loc[(splits["repeat"] == 0) & (splits["role"] == "test"), "patient_id"])
    store = ReadingStore(db)
    assert set(store.cases()) <= tested and plan["cases"] == len(store.cases()) > 0
    assert plan["sequences"] == ["T2axi", "ADC"] and [r["name"] for r in plan["readers"]] == ["specialist1",
                                                                                              "practitioner1"]
    cohort = Cohort.load(run / "cohort")
    labels = cohort.patients.set_index("patient_id")["label"]
    given = {}
    for k, r in enumerate(plan["readers"]):
        me = store.authenticate(r["name"], r["token"])
        for session in ("first", "ai_assisted"):
            while (case := store.next_case(me, session)) is not None:
                store.open_case(me, session, case)
                call = (labels[case] == "sarcoma") != (session == "first" and k == 1 and case == store.cases()[0])
                given[(r["name"], session, case)] = store.submit(me, session, case, call_positive=bool(call),
                                                                 certainty="high" if k else "medium")
    res = runner.invoke(app, ["read", "progress", str(run), "--db", db, "--json"])
    assert res.exit_code == 0 and all(p["read"] == p["cases"] for p in json.loads(res.output)["progress"])
    out = tmp_path / "reads.csv"
    res = runner.invoke(app, ["read", "export", str(run), "--db", db, "-o", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    reads = pd.read_csv(out, dtype={"patient_id": str})
    assert {(r.reader, r.session, r.patient_id): round(5 * r.confidence) for r in reads.itertuples()} == given
    assert (reads["truth"] == reads["patient_id"].map(labels)).all()
    assert np.allclose(reads["score"], 1 - reads["confidence"])
    res = runner.invoke(app, ["stats", "mrmc", str(out), "--reader", "reader", "--case", "patient_id", "--modality",
                              "session", "--truth", "truth", "--score", "score", "--positive", "sarcoma", "--json"])
    assert res.exit_code == 0, res.output
    assert {m["modality"] for m in json.loads(res.output)["modalities"]} == {"first", "ai_assisted"}
    first = tmp_path / "first.csv"
    reads[reads["session"] == "first"].to_csv(first, index=False)
    res = runner.invoke(app, ["stats", "agreement", str(first), "--case", "patient_id", "--rater", "reader",
                              "--rating", "confidence", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["raters"] == ["practitioner1", "specialist1"]
    assert len(read_reads(out, cohort)) == len(reads)  # the study's reader stage takes it as it is
    from sarcomri.analysis.readers import session_tables

    likelihood = pd.read_csv(run / "classification" / "tables" / "likelihood.csv", dtype={"patient_id": str})
    tables = session_tables(read_reads(out, cohort), likelihood, "sarcoma", "leiomyoma")  # on its own scale
    assert set(tables["sessions"]["session"]) == {"first", "ai_assisted"}
    assert set(tables["per_reader"]["reader"]) == {"specialist1", "practitioner1"}


def test_the_ai_session_overlays_the_segmentation_models_tumour(study, tmp_path, browser):
    """In the AI-assisted session the reading page lays the study's segmentation model's out-of-fold tumour mask
    over the case's views (a red overlay the reader can hide); the mask is not served in the unaided session."""
    from fastapi.testclient import TestClient

    from sarcomri.read.design import Reader, ReadingDesign
    from sarcomri.read.plan import create_plan
    from sarcomri.read.server import background_server, create_app

    _, run, _ = study
    design = ReadingDesign(scale="six_point", sessions=["first", "ai_assisted"], washout_days=0)
    store, tokens = create_plan(run, design, [Reader(name="r1")], f"sqlite:///{tmp_path / 'reads.sqlite'}")
    me = store.authenticate("r1", tokens["r1"])
    app = create_app(run, store)
    client = TestClient(app)
    client.post("/api/login", json={"name": "r1", "token": tokens["r1"]})
    first = store.cases()[0]
    assert client.get(f"/api/overlay/{first}/T2axi").status_code == 403  # not in the unaided session
    while (case := store.next_case(me, "first")) is not None:
        store.submit(me, "first", case, confidence=3)
    ai = client.get(f"/api/ai/{first}").json()
    assert [(o["kind"], o["group"]) for o in ai["overlays"]] == [("mask", "T2axi"), ("gradcam", "T2axi"),
                                                                 ("gradcam", "ADC")] and ai["sequences"]
    mask = client.get(ai["overlays"][0]["url"])
    assert mask.status_code == 200
    assert mask.content == (run / "segmentation" / "predictions" / "T2axi" / f"{first}.nii.gz").read_bytes()
    cam = client.get(ai["overlays"][1]["url"])
    assert cam.status_code == 200
    (tmp_path / "cam.nii.gz").write_bytes(cam.content)
    import SimpleITK as sitk

    cam_image, image = sitk.ReadImage(str(tmp_path / "cam.nii.gz")), Cohort.load(run / "cohort").read_image(first,
                                                                                                          "T2axi")
    values = sitk.GetArrayFromImage(cam_image)
    assert cam_image.GetSize() == image.GetSize() and cam_image.GetOrigin() == pytest.approx(image.GetOrigin())
    assert values.min() >= 0 and 0 < values.max() <= 1  # the evidence, on the tumour slices the classifier read
    with background_server(app) as base:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.goto(base + "/")
        page.fill("input[name=name]", "r1")
        page.fill("input[name=token]", tokens["r1"])
        page.click("button[type=submit]")
        page.click("button[data-session=ai_assisted]")
        page.wait_for_function("window.sarcomriReader.overlaid === window.sarcomriReader.me.sequences.length",
                               timeout=30000)
        # each view: its image, the segmentation model's mask, its own sequence's Grad-CAM
        assert page.evaluate("window.sarcomriReader.viewers.map(v => v.volumes.length)") == [3, 3]
        assert page.is_visible("#overlay-toggle") and page.is_visible("#gradcam-toggle")
        page.uncheck("#show-overlay")
        assert page.evaluate("window.sarcomriReader.viewers.map(v => v.volumes.map(x => x.opacity))") == [
            [1, 0, 0.5], [1, 0, 0.5]]
        page.uncheck("#show-gradcam")
        assert page.evaluate("window.sarcomriReader.viewers.map(v => v.volumes[2].opacity)") == [0, 0]


def test_the_synthetic_readers_read_a_plan_through_the_store(study, tmp_path):
    """`read simulate` lets the study's synthetic readers read the sarcoma design's plan (unaided, then after the
    14-day washout on the simulated clock, AI-assisted); the export gives back their simulated ratings."""
    _, run, _ = study
    simulated = pd.read_csv(run / "readers" / "readers.csv", dtype={"patient_id": str})
    whole = simulated[simulated["sequence"] == "all"]
    people = whole.drop_duplicates("reader")[["reader", "group"]]
    (tmp_path / "readers.yaml").write_text(yaml.safe_dump(
        {"readers": [{"name": r.reader, "group": r.group} for r in people.itertuples()]}))
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    res = runner.invoke(app, ["read", "create", str(run), "--readers", str(tmp_path / "readers.yaml"), "--design",
                              "sarcoma", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["read", "simulate", str(run), "--db", db, "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    done = json.loads(res.output)
    assert done["readers"] == sorted(people["reader"])
    out = tmp_path / "reads.csv"
    assert runner.invoke(app, ["read", "export", str(run), "--db", db, "-o", str(out)]).exit_code == 0
    reads = pd.read_csv(out, dtype={"patient_id": str})
    assert len(reads) == done["reads"] == 2 * len(people) * reads["patient_id"].nunique()
    want = whole.set_index(["reader", "session", "patient_id"])["confidence"]
    got = reads.set_index(["reader", "session", "patient_id"])["confidence"]
    assert np.allclose(got.to_numpy(), want.reindex(got.index).to_numpy())
    at = pd.to_datetime(reads["read_at"])
    for _, mine in reads.assign(at=at).groupby("reader"):  # the washout, on the simulated clock
        assert (mine.loc[mine["session"] == "ai_assisted", "at"].min()
                - mine.loc[mine["session"] == "first", "at"].max()).days >= 14


def test_a_per_sequence_reader_study_feeds_the_model_vs_readers_tables(study, tmp_path):
    """The carcinosarcoma design (each sequence rated apart) read by the study's synthetic readers: the export
    has one read per sequence and feeds the model-vs-readers tables per sequence, as the simulated reads do."""
    from sarcomri.analysis.readers import reader_tables
    from sarcomri.study import read_reads

    _, run, _ = study
    simulated = pd.read_csv(run / "readers" / "readers.csv", dtype={"patient_id": str})
    people = simulated.drop_duplicates("reader")[["reader", "group"]]
    (tmp_path / "readers.yaml").write_text(yaml.safe_dump(
        {"readers": [{"name": r.reader, "group": r.group} for r in people.itertuples()]}))
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    assert runner.invoke(app, ["read", "create", str(run), "--readers", str(tmp_path / "readers.yaml"), "--design",
                               "carcinosarcoma", "--db", db]).exit_code == 0
    res = runner.invoke(app, ["read", "simulate", str(run), "--db", db])
    assert res.exit_code == 0, res.output + repr(res.exception)
    out = tmp_path / "reads.csv"
    assert runner.invoke(app, ["read", "export", str(run), "--db", db, "-o", str(out)]).exit_code == 0
    cohort = Cohort.load(run / "cohort")
    reads = read_reads(out, cohort)
    assert set(reads["sequence"]) == {"T2axi", "ADC"} and set(reads["session"]) == {"first"}
    likelihood = pd.read_csv(run / "classification" / "tables" / "likelihood.csv", dtype={"patient_id": str})
    tables = reader_tables(likelihood[likelihood["patient_id"].isin(reads["patient_id"])], reads, "sarcoma",
                           "leiomyoma")
    accuracy = tables["accuracy"]
    assert set(accuracy["sequence"]) == {"T2axi", "ADC"}
    assert set(people["reader"]) <= set(accuracy["interpreter"])


def test_the_demo_runs_its_reader_study_through_the_workstation(study, tmp_path):
    """`make demo`'s reader study: the study's synthetic readers read every planned case in both sessions through
    the store; the export gives back their simulated ratings; each reader's token (in a file only its owner can
    read) logs in; a rerun keeps the finished study, and a lost export is written again from the database."""
    import os
    import stat

    from sarcomri.demo import reader_study
    from sarcomri.read.plan import default_db
    from sarcomri.read.store import ReadingStore
    from sarcomri.runs import StudyRun

    _, run, _ = study
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("read"))
    lines: list[str] = []
    done = reader_study(StudyRun(copy), lines.append)
    simulated = pd.read_csv(copy / "readers" / "readers.csv", dtype={"patient_id": str})
    whole = simulated[simulated["sequence"] == "all"]
    reads = pd.read_csv(copy / "read" / "reads.csv", dtype={"patient_id": str})
    assert done["reads"] == len(reads) == 2 * whole["reader"].nunique() * done["cases"] and done["cases"] > 0
    assert set(reads["session"]) == {"first", "ai_assisted"}
    got = reads.set_index(["reader", "session", "patient_id"])["confidence"]
    want = whole.set_index(["reader", "session", "patient_id"])["confidence"].reindex(got.index)
    assert np.allclose(got.to_numpy(), want.to_numpy())
    tokens = copy / "read" / "tokens.tsv"
    assert stat.S_IMODE(os.stat(tokens).st_mode) == 0o600
    store = ReadingStore(default_db(copy))
    for line in tokens.read_text().splitlines():
        name, token = line.split("\t")
        assert store.reader_id(name) == store.authenticate(name, token)
    assert any("sarcomri read serve" in line for line in lines)
    before = (copy / "read" / "reads.csv").stat().st_mtime_ns
    assert reader_study(StudyRun(copy), lines.append) == done
    assert (copy / "read" / "reads.csv").stat().st_mtime_ns == before
    (copy / "read" / "reads.csv").unlink()
    assert reader_study(StudyRun(copy), lines.append) == done  # from the database: no read given twice

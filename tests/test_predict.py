"""`sarcomri predict` on a tiny hand-made study (ONNX models written directly, no training; one test with model
folders as training writes them, exported on the first call): every
substitution or fallback is stated in result.json and on the page; the result folder appears whole or not at
all, and an existing one is replaced only with --overwrite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

import sarcomri.predict as predict_lib
from sarcomri.cli.main import main
from sarcomri.predict import predict_patient

SIZE = 32


def tiny_onnx(path: Path, weight: float) -> Path:
    """A valid classifier graph: (N, 3, H, W) -> global average pool -> linear -> logits (N, 2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[0.0, weight]] * 3, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w", "b"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_run(root: Path, cohort: Path, sequences=("T2axi", "ADC"), unfinished: str | None = None,
             vote_cutoff: float | None = 0.5) -> Path:
    """A classification run: one finished ONNX model per sequence (plus an unfinished one for ``unfinished``)."""
    run = root / "run"
    cfg = {"name": "tiny", "cohort": str(cohort), "positive_label": "sarcoma", "sequences": list(sequences),
           "slices": {"mode": "tumour", "size": SIZE}}
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    for k, seq in enumerate(sequences):
        folder = run / "models" / seq / "fold0-rep0"
        tiny_onnx(folder / "model.onnx", 0.5 + k)
        (folder / "DONE").write_text("{}\n")
        if seq == unfinished:
            (run / "models" / seq / "fold1-rep0").mkdir()
    rule = {"threshold": 0} | ({"vote_cutoff": vote_cutoff} if vote_cutoff is not None else {})
    (run / "tables").mkdir()
    pd.DataFrame([rule]).to_csv(run / "tables" / "summed_threshold.csv", index=False)
    return run


def _image(array: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(array.astype(np.float32))
    img.SetSpacing((1.5, 1.5, 5.0))
    return img


def make_patient(folder: Path, adc: bool = False, dwi: bool = True, adc_mask: bool = False) -> Path:
    """A NIfTI patient: T2axi with its mask, optionally DWI at b = 0 and 800 and/or a scanner ADC."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    mask = np.zeros((6, 16, 16), np.uint8)
    mask[2:4, 5:10, 6:11] = 1
    sitk.WriteImage(_image(rng.normal(100, 10, mask.shape)), str(folder / "T2axi.nii.gz"))
    m = sitk.GetImageFromArray(mask)
    m.SetSpacing((1.5, 1.5, 5.0))
    sitk.WriteImage(m, str(folder / "T2axi_mask.nii.gz"))
    b0 = rng.uniform(800, 1200, mask.shape)
    if dwi:
        sitk.WriteImage(_image(b0), str(folder / "DWI_b0.nii.gz"))
        sitk.WriteImage(_image(b0 * np.exp(-800 * 1.2e-3)), str(folder / "DWI_b800.nii.gz"))
    if adc:
        sitk.WriteImage(_image(rng.normal(1200, 50, mask.shape)), str(folder / "ADC.nii.gz"))
        if adc_mask:
            sitk.WriteImage(m, str(folder / "ADC_mask.nii.gz"))
    return folder


def _kinds(result: dict) -> set[str]:
    return {s["kind"] for s in result["substitutions"]}


def test_every_substitution_is_stated(tmp_path, tiny_cohort):
    run = make_run(tmp_path, tiny_cohort, unfinished="T2axi", vote_cutoff=None)
    pred = predict_patient(make_patient(tmp_path / "p"), run, tmp_path / "out", key="k", gradcam=False)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result == json.loads(json.dumps(pred.to_dict()))
    assert _kinds(result) == {"fewer_models", "default_vote_cutoff", "adc_fitted", "no_mask"}
    adc = next(s for s in result["substitutions"] if s["kind"] == "adc_fitted")
    assert adc["what"] == "ADC" and adc["instead_of"] == "the scanner's ADC map" and "800" in adc["how"]
    seqs = {s["sequence"]: s for s in result["sequences"]}
    assert seqs["ADC"]["vote"] == 0 and seqs["T2axi"]["mask"] == "own" and seqs["T2axi"]["vote"] in (-1, 1)
    page = (tmp_path / "out" / "report.html").read_text()
    box = page[page.index('id="substitutions"'):page.index("</div>", page.index('id="substitutions"'))]
    assert "4 substitutions" in box and "instead of the scanner&#39;s ADC map" in box
    assert page.index('id="substitutions"') < page.index('<table id="sequences">')  # beside the decision


def test_a_mask_from_the_segmentation_model_is_stated(tmp_path, tiny_cohort, monkeypatch):
    def fake_segmentation(run, cohort, pid):
        return "T2axi", cohort.read_mask(pid, "T2axi")

    monkeypatch.setattr(predict_lib, "segment_patient", fake_segmentation)
    run = make_run(tmp_path, tiny_cohort)
    pred = predict_patient(make_patient(tmp_path / "p"), run, tmp_path / "out", segmentation_run=tmp_path / "seg",
                           key="k", gradcam=False)
    subs = {s.kind: s for s in pred.substitutions}
    assert set(subs) == {"adc_fitted", "mask_from_segmentation"}
    assert "ADC" in subs["mask_from_segmentation"].what and "the input's ADC mask is missing" in subs[
        "mask_from_segmentation"].how
    seqs = {s.sequence: s for s in pred.sequences}
    assert seqs["ADC"].mask == "segmentation model on T2axi" and seqs["ADC"].likelihood is not None
    assert seqs["T2axi"].mask == "own" and pred.outputs["mask"] == "mask.nii.gz"


def test_a_missing_sequence_votes_zero_and_says_so(tmp_path, tiny_cohort):
    run = make_run(tmp_path, tiny_cohort)
    pred = predict_patient(make_patient(tmp_path / "p", dwi=False), run, tmp_path / "out", key="k",
                           gradcam=False)
    assert [(s.kind, s.what) for s in pred.substitutions] == [("sequence_missing", "ADC: vote 0")]
    assert "no ADC series" in pred.substitutions[0].how


def test_inputs_as_trained_say_so(tmp_path, tiny_cohort):
    run = make_run(tmp_path, tiny_cohort)
    pred = predict_patient(make_patient(tmp_path / "p", dwi=False, adc=True, adc_mask=True), run,
                           tmp_path / "out", key="k", gradcam=False)
    assert pred.substitutions == [] and all(s.vote for s in pred.sequences)
    assert "no substitution or fallback" in (tmp_path / "out" / "report.html").read_text()


def test_trained_models_are_exported_once_and_score_as_pytorch(tmp_path, tiny_cohort, monkeypatch):
    """Model folders (weights.pt) as training writes them: the first call exports them to ONNX, later calls
    reuse the files and the sessions; the likelihood is the PyTorch ensemble's mean over slices and models."""
    import shutil

    import torch

    from sarcomri.infer import onnx as onnx_lib
    from sarcomri.models import ModelSpec, build_classifier, save_model

    run = make_run(tmp_path, tiny_cohort, sequences=("T2axi",))
    shutil.rmtree(run / "models" / "T2axi" / "fold0-rep0")
    spec = ModelSpec("mobilenetv2_050", in_channels=3, num_classes=2, input_size=SIZE)
    nets = []
    for k in range(2):
        torch.manual_seed(k)
        nets.append(build_classifier(spec.name).eval())
        save_model(nets[-1], spec, run / "models" / "T2axi" / f"fold{k}-rep0")
        (run / "models" / "T2axi" / f"fold{k}-rep0" / "DONE").write_text("{}\n")
    batches = []
    scored = onnx_lib.OnnxClassifier.predict_proba
    monkeypatch.setattr(onnx_lib.OnnxClassifier, "predict_proba", lambda self, b: batches.append(b) or scored(self, b))
    patient = make_patient(tmp_path / "p", dwi=False)
    said: list[str] = []
    first = predict_patient(patient, run, tmp_path / "a", key="k", gradcam=False, log=said.append)
    assert said == ["exported 2 model(s) of T2axi to ONNX (once; one trace per architecture)"]
    with torch.no_grad():
        want = np.mean([torch.softmax(n(torch.from_numpy(batches[0])), 1)[:, 1].mean().item() for n in nets])
    assert abs(first.sequences[0].likelihood - want) < 5.1e-5 and first.sequences[0].models == 2  # rounded to 4
    said.clear()
    again = predict_patient(patient, run, tmp_path / "b", key="k", gradcam=False, log=said.append)
    assert said == [] and again.sequences == first.sequences


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sarcomri", "predict", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out + captured.err


def test_a_corrupt_model_leaves_nothing_at_out(tmp_path, tiny_cohort, monkeypatch, capsys):
    monkeypatch.setattr(predict_lib, "segment_patient", lambda run, cohort, pid: ("T2axi",
                                                                                 cohort.read_mask(pid, "T2axi")))
    run = make_run(tmp_path, tiny_cohort)
    (run / "models" / "ADC" / "fold0-rep0" / "model.onnx").write_bytes(b"not an onnx graph")
    out = tmp_path / "results" / "out"
    code, text = _cli(monkeypatch, capsys, make_patient(tmp_path / "p"), "--model", run, "--out", out,
                      "--segmentation-model", tmp_path / "seg", "--deid-key", "k", "--no-gradcam")
    assert code == 1 and "cannot be loaded by ONNX Runtime" in text and "Traceback" not in text
    assert not out.exists() and list((tmp_path / "results").iterdir()) == []  # no mask, no temporary folder


def test_an_existing_result_is_replaced_only_with_overwrite(tmp_path, tiny_cohort, monkeypatch, capsys):
    run = make_run(tmp_path, tiny_cohort)
    patient = make_patient(tmp_path / "p", dwi=False, adc=True, adc_mask=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text('{"patient_id": "Pother"}\n')
    (out / "gradcam_T1.png").write_bytes(b"another patient's heat map")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def no_work(*args, **kwargs):
        raise AssertionError("predict started working before checking --out")

    monkeypatch.setattr(predict_lib, "ingest_patient", no_work)
    code, text = _cli(monkeypatch, capsys, patient, "--model", run, "--out", out, "--deid-key", "k")
    assert code == 1 and "exists already" in text and "--overwrite" in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    code, text = _cli(monkeypatch, capsys, patient, "--model", run, "--out", out, "--deid-key", "k",
                      "--no-gradcam", "--overwrite")
    assert code == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert "gradcam_T1.png" not in names and not any(n.startswith("gradcam") for n in names)  # no stale Grad-CAM
    assert {"report.html", "result.json"} <= set(names) and all(n.startswith("slices_") or n == "likelihoods.png"
                                                                for n in set(names) - {"report.html", "result.json"})
    assert json.loads((out / "result.json").read_text())["patient_id"] != "Pother"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_overwrite_replaces_only_a_result_folder(tmp_path, tiny_cohort, monkeypatch, capsys):
    run = make_run(tmp_path, tiny_cohort)
    patient = make_patient(tmp_path / "p", dwi=False, adc=True, adc_mask=True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    code, text = _cli(monkeypatch, capsys, patient, "--model", run, "--out", other, "--deid-key", "k",
                      "--overwrite")
    assert code == 1 and "another kind" in text and (other / "todo.txt").read_text() == "keep me"
    code, text = _cli(monkeypatch, capsys, patient, "--model", run, "--out", patient, "--deid-key", "k",
                      "--overwrite")
    assert code == 1 and (patient / "T2axi.nii.gz").is_file()


def test_the_positive_class_comes_from_the_cohort_when_the_config_names_none(tmp_path, tiny_cohort):
    """The run's config has no positive_label and the cohort lists the negative class first (labels
    [leiomyoma, sarcoma], cohort.json positive_label sarcoma): predict names sarcoma, never labels[0]."""
    run = make_run(tmp_path, tiny_cohort)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    del cfg["positive_label"]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert json.loads((tiny_cohort / "cohort.json").read_text())["labels"][0] == "leiomyoma"
    pred = predict_patient(make_patient(tmp_path / "p", dwi=False, adc=True, adc_mask=True), run,
                           tmp_path / "out", key="k", gradcam=False)
    assert (pred.positive_label, pred.negative_label) == ("sarcoma", "leiomyoma")
    assert pred.decision == ("sarcoma" if pred.summed_score >= pred.threshold else "leiomyoma")
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["positive_label"] == "sarcoma" and result["negative_label"] == "leiomyoma"


def _walk_values(ds) -> list[str]:
    """Every value of a DICOM dataset as text, nested sequences included."""
    out = []
    for elem in ds.iterall():
        if elem.VR != "SQ" and elem.value is not None and not isinstance(elem.value, bytes):
            values = elem.value if isinstance(elem.value, list | tuple) or elem.VM > 1 else [elem.value]
            out.extend(str(v) for v in values)
    return out


def test_the_dicom_seg_holds_no_identifying_value_of_the_source(tmp_path, tiny_cohort):
    """predict's DICOM-SEG: every attribute of io.deid's one list is the pseudonym or empty; none of the source's
    identifying values appears anywhere in it."""
    import pydicom

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.io.deid import IDENTIFYING_KEYWORDS
    from sarcomri.io.dicomseg import load_series
    from sarcomri.synth.dicom import write_dicom

    cohort = Cohort.load(tiny_cohort)
    write_dicom(cohort, tmp_path / "dicom")
    src = tmp_path / "dicom" / "P000"
    original = {k: ("19600102" if k == "PatientBirthDate" else "101500" if k == "PatientBirthTime"
                    else f"Orig{i:02d}^Zq{i:02d}") for i, k in enumerate(IDENTIFYING_KEYWORDS)}
    for path in src.rglob("*"):
        if path.is_file() and "SEG" not in path.parent.name:
            ds = pydicom.dcmread(path)
            for keyword, value in original.items():
                setattr(ds, keyword, value)
            ds.save_as(path)
    series = next(p for p in src.iterdir() if p.is_dir() and p.name.endswith("T2axi"))
    mask = cohort.read_mask("P000", "T2axi")
    mask = sitk.Resample(mask, load_series(series).image, sitk.Transform(), sitk.sitkNearestNeighbor)
    out = predict_lib.write_seg_for(sitk.Cast(mask, sitk.sitkUInt8), predict_lib.source_files(src), "T2axi",
                                    "Pabc123", tmp_path / "m.dcm")
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG" and seg.PatientID == "Pabc123" and str(seg.PatientName) == "Pabc123"
    for keyword in IDENTIFYING_KEYWORDS:
        assert str(seg.get(keyword, "") or "") in ("", "Pabc123"), keyword
    values = _walk_values(seg)
    text = " ".join(values)
    leaked = [v for v in original.values()  # dates and times exactly (digits occur in UIDs), names also in part
              if v in values or any(part in text for part in v.split("^") if not part.isdigit())]
    assert not leaked


def test_json_prints_the_result_and_quiet_hides_the_steps(tmp_path, tiny_cohort, monkeypatch, capsys):
    run = make_run(tmp_path, tiny_cohort)
    patient = make_patient(tmp_path / "p", dwi=False, adc=True, adc_mask=True)
    code, _ = _cli(monkeypatch, capsys, patient, "--model", run, "-o", tmp_path / "out", "--deid-key", "k",
                   "--no-gradcam", "--json")
    assert code == 0
    monkeypatch.setattr(sys, "argv", ["sarcomri", "predict", str(patient), "--model", str(run), "-o",
                                      str(tmp_path / "out2"), "--deid-key", "k", "--no-gradcam", "--json", "-q"])
    with pytest.raises(SystemExit):
        main()
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result == json.loads((tmp_path / "out2" / "result.json").read_text()) and captured.err == ""
    assert {"patient_id", "sequences", "summed_score", "threshold", "decision"} <= set(result)


def test_dicom_input_gets_the_result_as_a_dicom_sr_too(tmp_path, tiny_cohort):
    """On DICOM input, report.sr.dcm holds result.json's likelihoods, votes, score, threshold and decision,
    references the classified series of the patient's study, and names the patient by the pseudonym only."""
    import pydicom

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.io.dicomsr import read_prediction_sr
    from sarcomri.synth.dicom import write_dicom

    write_dicom(Cohort.load(tiny_cohort), tmp_path / "dicom")
    src = tmp_path / "dicom" / "P000"
    run = make_run(tmp_path, tiny_cohort)
    pred = predict_patient(src, run, tmp_path / "out", key="k", gradcam=False)
    assert pred.outputs["dicom_sr"] == "report.sr.dcm"
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    sr = pydicom.dcmread(tmp_path / "out" / "report.sr.dcm")
    back = read_prediction_sr(sr)
    assert [(s["sequence"], s["vote"]) for s in back["sequences"]] == [
        (s["sequence"], s["vote"]) for s in result["sequences"]]
    for got, want in zip(back["sequences"], result["sequences"], strict=True):
        assert got["likelihood"] == (None if want["likelihood"] is None else pytest.approx(want["likelihood"],
                                                                                          rel=1e-12))
    assert (back["summed_score"], back["threshold"]) == (result["summed_score"], result["threshold"])
    assert back["decision"].lower() == result["decision"] and back["study"] == "tiny"
    source = pydicom.dcmread(next(src.rglob("*T2axi/*.dcm")))
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == result["patient_id"] and str(sr.PatientName) == result["patient_id"]

"""One new patient through a finished study (``sarcomri predict``): likelihoods, the combined decision, a mask.

Steps, each timed:

1. **ingest** the patient's DICOM or NIfTI folder into a one-patient cohort (de-identified on the way in);
2. **segment** (optional): the study's 3D segmentation models (all folds, averaged) give the tumour mask on
   their sequence's grid; it stands in for any sequence that has no mask of its own;
3. **classify**: per sequence of the classification run, the patient's tumour slices (as in training) go
   through every model of that sequence with ONNX Runtime; a model's patient probability is the mean over
   slices (or the central slice, as the run's ``test_aggregation`` says); the sequence's likelihood is the
   mean over the models (the ensemble of the whole grid);
4. **combine**: a +1/-1 vote per sequence at the run's vote cut-off, summed, and the decision at the
   study's SS-Avg-maximising threshold on the summed score (``tables/summed_threshold.csv``).

The result is decision support for a radiologist, not a diagnosis.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import ClassificationConfig, load_config
from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path
from sarcomri.prep.prepare2d import SliceSpec, load_channels, slices_from_volume

Log = Callable[[str], None]
DISCLAIMER = ("Decision support for a radiologist, not a diagnosis: the likelihoods come from models trained on "
              "the study's cohort and carry its limits (population, scanners, sequences).")


@dataclass
class SequenceResult:
    """One sequence's ensemble output for the patient."""

    sequence: str
    likelihood: float | None
    models: int
    slices: int
    vote: int  # +1 positive, -1 negative, 0 when the sequence is missing
    note: str = ""


@dataclass
class Prediction:
    """The patient's result (``result.json``)."""

    patient_id: str
    positive_label: str
    negative_label: str
    sequences: list[SequenceResult]
    summed_score: int
    threshold: float
    decision: str
    vote_cutoff: float
    mask_source: str
    latency_seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    statement: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def ingest_patient(src: Path, work: Path, key: str | None = None) -> Cohort:
    """The patient's folder as a one-patient cohort (DICOM anywhere under ``src``; or NIfTI files
    ``<sequence>.nii.gz`` / ``<sequence>_mask.nii.gz`` directly in ``src``)."""
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.io.ingest import ingest

    src = Path(src)
    if not src.is_dir():
        raise InputError(src, "no such folder")
    if any(p.name.endswith((".nii", ".nii.gz")) for p in src.iterdir()):
        layout = work / "src"
        layout.mkdir(parents=True, exist_ok=True)
        (layout / "patient").symlink_to(src.resolve(), target_is_directory=True)
        src = layout
    report = ingest(src, work / "cohort", pseudonymizer=Pseudonymizer.from_key(key))
    if report.patients != 1:
        raise InputError(src, f"holds {report.patients} patients; predict takes one patient at a time")
    return Cohort.load(work / "cohort")


def sequences_of(cohort: Cohort, pid: str) -> list[str]:
    """The sequences ``pid`` has in ``cohort``."""
    return cohort.series.loc[cohort.series["patient_id"] == pid, "sequence"].tolist()


def study_models(run: Path) -> tuple[ClassificationConfig, dict[str, list[Path]], dict[str, Any]]:
    """The classification run's config, its model folders per sequence and its decision rule."""
    run = Path(run)
    if not (run / "config.yaml").is_file() or not (run / "models").is_dir():
        raise InputError(run, "not a classification run folder (no config.yaml or models/)")
    cfg = load_config(run / "config.yaml", ClassificationConfig)
    models = {seq: sorted(p for p in (run / "models" / seq).glob("*") if (p / "DONE").is_file())
              for seq in cfg.sequences}
    empty = [s for s, m in models.items() if not m]
    if empty:
        raise InputError(run, f"no finished models for {empty}: finish `sarcomri classify run` first")
    path = run / "tables" / "summed_threshold.csv"
    if not path.is_file():
        raise InputError(run, "no tables/summed_threshold.csv: run `sarcomri classify combine` first")
    rule = pd.read_csv(path).iloc[0].to_dict()
    return cfg, models, rule


def onnx_models(folders: list[Path], log: Log) -> list[Any]:
    """ONNX Runtime sessions of the model folders, exporting ``model.onnx`` once where missing."""
    from sarcomri.infer.onnx import OnnxClassifier, export_saved_model

    out = []
    for folder in folders:
        path = folder / "model.onnx"
        if not path.is_file():
            export_saved_model(folder, path)
            log(f"exported {folder.parent.name}/{folder.name} to ONNX (once)")
        out.append(OnnxClassifier(path, threads=None))
    return out


def segment_patient(seg_run: Path, cohort: Cohort, pid: str) -> tuple[str, sitk.Image]:
    """The tumour mask from a segmentation run's models (every fold, averaged), on its sequence's grid."""
    from sarcomri.seg3d.predict import segment_patient as segment_one

    models = Path(seg_run) / "models"
    groups = sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
    have = set(sequences_of(cohort, pid))
    for name in groups:
        group = name.split("+")
        if set(group) <= have:
            result = segment_one(models / name, {q: cohort.read_image(pid, q) for q in group})
            return group[0], result.mask
    raise InputError(seg_run, f"no segmentation model for the patient's sequences {sorted(have)}")


#: How result.json's ``mask_source`` begins when the mask came from a segmentation model (then the sequence).
FROM_SEGMENTATION_MODEL = "segmentation model on "

IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs",
               "OtherPatientNames", "AccessionNumber", "PatientAddress", "ReferringPhysicianName", "InstitutionName")


def source_series(src: Path, sequence: str) -> list[Path]:
    """The DICOM files under ``src`` that ingestion named ``sequence`` (empty when none)."""
    from sarcomri.cohort.sequences import SequenceMap
    from sarcomri.io.dicom import is_dicom_file, scan_dicom, walk_files
    from sarcomri.io.series_plan import plan_patient

    files = [f for f in walk_files(src) if is_dicom_file(f)]
    if not files:
        return []
    for series_list in scan_dicom(files, src).series_by_patient().values():
        for vol in plan_patient(series_list, SequenceMap.load()).volumes:
            if vol.sequence == sequence:
                return [i.path for i in vol.instances]
    return []


def write_seg_for(mask: sitk.Image, src: Path, sequence: str, pseudonym: str, out_path: Path) -> Path | None:
    """A DICOM-SEG of ``mask`` referencing the patient's ``sequence`` series, with the patient's identifying
    attributes replaced by the pseudonym (the SEG keeps the study and series UIDs it must reference)."""
    import pydicom

    from sarcomri.io.dicomseg import write_dicom_seg

    paths = source_series(src, sequence)
    if not paths:
        return None
    datasets = []
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword in IDENTIFYING:
            if keyword in ds:
                setattr(ds, keyword, pseudonym if keyword in ("PatientName", "PatientID") else "")
        datasets.append(ds)
    return write_dicom_seg(mask, datasets, out_path)


def patient_slices(cohort: Cohort, pid: str, group: tuple[str, ...], spec: SliceSpec,
                   fallback: sitk.Image | None) -> list:
    """The patient's 2D inputs for one model group, with ``fallback`` as mask when the series has none."""
    vol, mask = load_channels(cohort, pid, group)
    if (mask is None or not mask.any()) and fallback is not None:
        ref = cohort.read_image(pid, group[0])
        res = sitk.Resample(fallback, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        mask = (sitk.GetArrayFromImage(res) > 0).astype(np.uint8)
    return slices_from_volume(vol, mask, spec, pid, source=f"{'+'.join(group)}")


def gradcam_png(folder: Path, images: list[np.ndarray], titles: list[str], out_png: Path) -> Path:
    """Grad-CAM of one model (the first of a sequence's ensemble) on the given slices, as one PNG."""
    import torch

    from sarcomri.models.spec import load_model
    from sarcomri.report.figures import gradcam_figure, save_png
    from sarcomri.report.gradcam import gradcam

    model = load_model(folder)
    cams = gradcam(model, torch.from_numpy(np.stack(images)))
    return save_png(gradcam_figure([im[0] for im in images], list(cams), titles), out_png)


def predict_patient(src: str | Path, classification_run: str | Path, out: str | Path,
                    segmentation_run: str | Path | None = None, key: str | None = None, gradcam: bool = True,
                    log: Log = print) -> Prediction:
    """Run one patient through the study; write ``result.json``, ``report.html``, the mask and the Grad-CAM
    figure into ``out``."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg, folders, rule = study_models(Path(classification_run))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sarcomri-predict-") as tmp:
        cohort = ingest_patient(Path(src), Path(tmp), key)
        pid = str(cohort.patients["patient_id"].iloc[0])
        times["ingest"] = time.perf_counter() - t0
        outputs: dict[str, str] = {}
        seg_mask, mask_source = None, "the input's own masks"
        if segmentation_run is not None:
            t1 = time.perf_counter()
            seq, seg_mask = segment_patient(Path(segmentation_run), cohort, pid)
            with atomic_path(out / "mask.nii.gz") as tmp_mask:
                sitk.WriteImage(seg_mask, str(tmp_mask), useCompression=True)
            outputs["mask"] = "mask.nii.gz"
            if write_seg_for(seg_mask, Path(src), seq, pid, out / "mask.seg.dcm") is not None:
                outputs["dicom_seg"] = "mask.seg.dcm"
            mask_source = f"{FROM_SEGMENTATION_MODEL}{seq}"
            times["segment"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        sc = cfg.slices
        results = []
        central: dict[str, np.ndarray] = {}
        have = set(sequences_of(cohort, pid))
        for seq in cfg.sequences:
            group = tuple(seq.split("+"))
            if not set(group) <= have:
                results.append(SequenceResult(seq, None, 0, 0, 0, "sequence not in the study"))
                continue
            spec = SliceSpec(group, mode=sc.mode, size=sc.size, margin=sc.margin, normalisation=sc.normalisation,
                             channels=3 if len(group) == 1 else None)
            try:
                slices = patient_slices(cohort, pid, group, spec, seg_mask)
            except InputError:
                results.append(SequenceResult(seq, None, 0, 0, 0, "no tumour mask for this sequence"))
                continue
            if sc.test_aggregation == "central":
                slices = [s for s in slices if s.central] or slices[:1]
            batch = np.stack([s.image for s in slices])
            central[seq] = next((s.image for s in slices if s.central), slices[0].image)
            per_model = [float(m.predict_proba(batch)[:, 1].mean()) for m in onnx_models(folders[seq], log)]
            p = float(np.mean(per_model))
            cutoff = float(rule.get("vote_cutoff", 0.5))
            results.append(SequenceResult(seq, round(p, 4), len(per_model), len(slices), 1 if p >= cutoff else -1))
        times["classify"] = time.perf_counter() - t1
        figures = []
        if gradcam and central:
            t1 = time.perf_counter()
            for q, image in central.items():
                gradcam_png(folders[q][0], [image], [q], out / f"gradcam_{q}.png")
                figures.append({"src": f"gradcam_{q}.png",
                                "caption": f"{q}: central tumour slice, Grad-CAM of one model of the ensemble"})
            outputs["gradcam"] = ",".join(f["src"] for f in figures)
            times["gradcam"] = time.perf_counter() - t1
        if not any(r.likelihood is not None for r in results):
            raise InputError(Path(src), "no sequence of the study could be scored (missing sequences or masks)")
        trained_on = Path(cfg.cohort) if cfg.cohort else Path(classification_run) / "cohort"
        labels = list(Cohort.load(trained_on, check_files=False).meta.get("labels", []))
        positive = cfg.positive_label or (labels[0] if labels else "positive")
        negative = next((lab for lab in labels if lab != positive), "negative")
        score = int(sum(r.vote for r in results))
        threshold = float(rule["threshold"])
        pred = Prediction(pid, positive, negative, results, score, threshold,
                          positive if score >= threshold else negative, float(rule.get("vote_cutoff", 0.5)),
                          mask_source, outputs=outputs)
    times["total"] = time.perf_counter() - t0
    pred.latency_seconds = {k: round(v, 3) for k, v in times.items()}
    from sarcomri.report.patient import write_patient_page

    pred.outputs["page"] = "report.html"
    with atomic_path(out / "result.json") as tmp_json:
        tmp_json.write_text(json.dumps(pred.to_dict(), indent=2))
    write_patient_page(out, pred.to_dict(), figures)
    return pred

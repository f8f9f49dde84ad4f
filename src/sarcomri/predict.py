"""One new patient through a finished study (``sarcomri predict``): likelihoods, the combined decision, a mask.

Steps, each timed:

1. **ingest** the patient's DICOM or NIfTI folder into a one-patient cohort (de-identified on the way in);
2. **segment** (optional): the study's 3D segmentation models (all folds, averaged; or nnU-Net's,
   :mod:`sarcomri.predict_segment`) give the tumour mask on their sequence's grid; it stands in for any sequence
   that has no mask of its own;
3. **classify**: per sequence of the classification run, the patient's tumour slices (as in training) go
   through every model of that sequence with ONNX Runtime; a model's patient probability is the mean over
   slices (or the central slice, as the run's ``test_aggregation`` says); the sequence's likelihood is the
   mean over the models (the ensemble of the whole grid);
4. **combine**: a +1/-1 vote per sequence at the run's vote cut-off, summed, and the decision at the
   study's SS-Avg-maximising threshold on the summed score (``tables/summed_threshold.csv``).

This module runs the steps and writes the result; the per-sequence scoring of steps 3 and 4 (models, masks,
slices, likelihoods, votes and their substitutions) is :mod:`sarcomri.predict_scoring`.

Every input that is not what the study's models expect, and every fallback taken for want of one, is a
:class:`Substitution`, listed in ``result.json`` (``substitutions``) and in a box beside the decision on the
page: an ADC map fitted from the DWI instead of the scanner's, a scanner-computed DWI image instead of an
acquired one, a tumour mask from the segmentation model or from another sequence instead of the series' own,
a sequence that cannot vote (missing, or without a tumour mask) and so counts 0, an ensemble with fewer
models than the study trained, a default vote cut-off.

The result folder is built under a temporary name and moved into place whole (an error leaves nothing at
``out``); an existing result folder is replaced only with ``overwrite``, checked before any work.

The result is decision support for a radiologist, not a diagnosis.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from sarcomri import __version__
from sarcomri.analysis.voting import summed_call
from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_directory, write_json
from sarcomri.predict_checks import InputWarning, input_warnings, intensity_warnings
from sarcomri.predict_page import PageInputs, write_page
from sarcomri.predict_scoring import (
    DEFAULT_VOTE_CUTOFF,
    FROM_SEGMENTATION_MODEL,
    Log,
    SequenceResult,
    Substitution,
    input_substitutions,
    score_sequence,
    study_models,
    study_substitutions,
    vote_cutoff,
)
from sarcomri.predict_segment import segment_patient
from sarcomri.prep.profile import intensity_profile

__all__ = ["DEFAULT_VOTE_CUTOFF", "FROM_SEGMENTATION_MODEL", "Prediction", "SequenceResult", "Substitution",
           "ingest_patient", "is_result_folder", "predict_patient", "segment_patient", "write_seg_for",
           "write_sr_for"]

DISCLAIMER = ("Decision support for a radiologist, not a diagnosis: the likelihoods come from models trained on "
              "the study's cohort and carry its limits (population, scanners, sequences).")


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
    mask_source: str  # where mask.nii.gz came from; each sequence's mask is in SequenceResult.mask
    substitutions: list[Substitution] = field(default_factory=list)
    latency_seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    warnings: list[InputWarning] = field(default_factory=list)  # the input unlike the study's (predict_checks)
    score_meaning: dict[str, Any] | None = None  # the study's rates per score (analysis.score_meaning)
    input_series: list[dict[str, str]] = field(default_factory=list)  # sequence, source (scrubbed description)
    model_ids: dict[str, str] = field(default_factory=dict)  # per sequence, the key of its models (inputs.json)
    study: str = ""  # the classification run's name
    created: str = ""  # when the prediction was made (UTC)
    sarcomri_version: str = ""
    statement: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def ingest_patient(src: Path, work: Path, key: str | None = None, compute_adc: bool | None = None,
                   verbose: bool = False, pseudonymizer: Any = None) -> Cohort:
    """The patient's folder as a one-patient cohort (DICOM anywhere under ``src``; or NIfTI files
    ``<sequence>.nii.gz`` / ``<sequence>_mask.nii.gz`` directly in ``src``).

    ``compute_adc`` as for :func:`~sarcomri.io.ingest.ingest`; ``verbose`` lets messages show the source's
    folder names (which may identify the patient); ``pseudonymizer`` replaces the keyed hash of ``key`` (a patient
    pulled from a PACS is already named by its pseudonym)."""
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
    report = ingest(src, work / "cohort", pseudonymizer=pseudonymizer or Pseudonymizer.from_key(key),
                    compute_adc=compute_adc, verbose=verbose, compress=False)  # read back at once, then deleted
    if report.patients != 1:
        raise InputError(src, f"holds {report.patients} patients; predict takes one patient at a time")
    return Cohort.load(work / "cohort")


#: How result.json's ``mask_source`` begins when the mask came from a segmentation model (then the sequence).


def source_files(src: Path) -> dict[str, list[Path]]:
    """The DICOM files under ``src`` by the sequence ingestion named them (the first volume of each name; empty
    for an input that is not DICOM). One scan of every header: call it once per prediction."""
    from sarcomri.cohort.sequences import SequenceMap
    from sarcomri.io.dicom import is_dicom_file, scan_dicom, walk_files
    from sarcomri.io.series_plan import plan_patient

    files = [f for f in walk_files(src) if is_dicom_file(f)]
    out: dict[str, list[Path]] = {}
    if files:
        for series_list in scan_dicom(files, src).series_by_patient().values():
            for vol in plan_patient(series_list, SequenceMap.load()).volumes:
                out.setdefault(vol.sequence, [i.path for i in vol.instances])
    return out


def source_series(src: Path, sequence: str) -> list[Path]:
    """The DICOM files under ``src`` that ingestion named ``sequence`` (empty when none)."""
    return source_files(src).get(sequence, [])


def pseudonymous_headers(paths: list[Path], pseudonym: str, pixels: bool = True) -> list[Any]:
    """The datasets of ``paths`` with the patient's identifying attributes replaced by the pseudonym (the study
    and series UIDs kept: a DICOM object made from them must reference them)."""
    import pydicom

    from sarcomri.io.deid import IDENTIFYING_KEYWORDS

    datasets = []
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        for keyword in IDENTIFYING_KEYWORDS:
            if keyword in ds:
                setattr(ds, keyword, pseudonym if keyword in ("PatientName", "PatientID") else "")
        datasets.append(ds)
    return datasets


def write_seg_for(mask: sitk.Image, files: dict[str, list[Path]], sequence: str, pseudonym: str,
                  out_path: Path) -> Path | None:
    """A DICOM-SEG of ``mask`` referencing the patient's ``sequence`` series (``files``: :func:`source_files`),
    with the patient's identifying attributes replaced by the pseudonym (the SEG keeps the study and series UIDs it
    must reference). None when the series is not DICOM, or is multi-frame (Enhanced MR: a SEG of it is not written
    yet; the mask stays in ``mask.nii.gz``)."""
    from sarcomri.io.dicomseg import write_dicom_seg

    paths = files.get(sequence, [])
    if not paths or len(set(paths)) < len(paths):  # one file for several frames: a multi-frame series
        return None
    datasets = pseudonymous_headers(paths, pseudonym)
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        return None
    return write_dicom_seg(mask, datasets, out_path)


def write_sr_for(pred: Prediction, files: dict[str, list[Path]], dest: Path) -> Path | None:
    """``report.sr.dcm`` in ``dest``: the result as a DICOM SR (:mod:`sarcomri.io.dicomsr`) over the patient's
    classified DICOM series (``files``: :func:`source_files`), with the tumour of ``mask.nii.gz`` referencing
    ``mask.seg.dcm`` when both were written; None for an input that is not DICOM."""
    import pydicom

    from sarcomri.analysis.tumour_size import tumour_size
    from sarcomri.io.dicomsr import write_prediction_sr

    paths = list(dict.fromkeys(p for r in pred.sequences if r.likelihood is not None
                               for p in files.get(r.sequence, [])))  # a multi-frame file once
    if not paths:
        return None
    seg = tumour = None
    if (dest / "mask.seg.dcm").is_file() and (dest / "mask.nii.gz").is_file():
        seg = pydicom.dcmread(dest / "mask.seg.dcm")
        mask = sitk.ReadImage(str(dest / "mask.nii.gz"))
        if sitk.GetArrayViewFromImage(mask).any():
            tumour = tumour_size(sitk.GetArrayViewFromImage(mask), mask.GetSpacing()).to_dict()
    return write_prediction_sr(pred.to_dict(), pseudonymous_headers(paths, pred.patient_id, pixels=False),
                               dest / "report.sr.dcm", seg, tumour)


def write_summary_for(pred: Prediction, page: PageInputs, files: dict[str, list[Path]], dest: Path) -> Path | None:
    """``summary.sc.dcm`` in ``dest``: the prediction's one-image summary (:mod:`sarcomri.report.summary_figure`)
    as a DICOM secondary capture in the patient's study (``files``: :func:`source_files`); None for an input that
    is not DICOM."""
    from sarcomri.io.dicomsc import write_summary_sc
    from sarcomri.report.summary_figure import summary_figure

    scored = [r.sequence for r in pred.sequences if r.likelihood is not None]
    paths = next((files[q] for q in scored if files.get(q)), [])
    if not paths:
        return None
    view = next((page.views[q] for q in scored if q in page.views), None)
    ref = pseudonymous_headers(paths[:1], pred.patient_id, pixels=False)[0]
    return write_summary_sc(summary_figure(pred.to_dict(), view), ref, dest / "summary.sc.dcm")


def gradcam_map(folder: Path, image: np.ndarray) -> np.ndarray:
    """Grad-CAM (H, W) in [0, 1] of the positive class's evidence for one slice (C, H, W), from the model in
    ``folder`` (the first of a sequence's ensemble, whose own likelihood the page quotes). The network is
    rebuilt and run on one PyTorch thread: one slice is too little work to share, and on a small CPU busy with
    other work OpenMP threads waiting on each other made it several times slower."""
    import torch

    from sarcomri.models.folder import load_model
    from sarcomri.report.gradcam import gradcam
    from sarcomri.train.threads import torch_threads

    with torch_threads(1):
        return gradcam(load_model(folder), torch.from_numpy(image[None]), target=1)[0]


def model_ids(run: Any) -> dict[str, str]:
    """Per trained sequence, the key ``inputs.json`` records for its models (what they were trained from: the
    splits, the slices, the training and model settings), which names these models exactly."""
    from sarcomri.runrecord import RunRecord

    artifacts = RunRecord.load(run.path).artifacts
    out = {}
    for seq in run.trained_sequences():
        rel = str(run.model_dir(seq).relative_to(run.path))
        if rel in artifacts:
            out[seq] = str(artifacts[rel])
    return out


def study_profiles(run: Any, sequences: list[str]) -> dict[str, Any]:
    """The study's intensity profiles of ``sequences`` (``cache/<sequence>.profile.csv``), those recorded."""
    import pandas as pd

    return {q: pd.read_csv(run.profile_path(q), dtype={"patient_id": str}) for q in sequences
            if run.profile_path(q).is_file()}


def study_score_meaning(run: Any, threshold: float) -> dict[str, Any] | None:
    """What each summed score meant in the study (``tables/summed_score.csv``), None when the run has no such
    table (a run analysed by an earlier version)."""
    import pandas as pd

    from sarcomri.analysis.score_meaning import score_meaning

    path = run.table_path("summed_score")
    if not path.is_file():
        return None
    return score_meaning(pd.read_csv(path), threshold, len(run.trained_sequences())).to_dict()


def predict_patient(src: str | Path, classification_run: str | Path, out: str | Path,
                    segmentation_run: str | Path | None = None, key: str | None = None, gradcam: bool = True,
                    overwrite: bool = False, verbose: bool = False, log: Log | None = None,
                    pseudonymizer: Any = None, summary_image: bool = False) -> Prediction:
    """Run one patient through the study; write ``result.json``, ``report.html`` (self-contained: its figures
    are embedded), the mask and the figures into the folder ``out``, built under a temporary name and moved
    into place whole. ``latency_seconds`` times each step; its ``total`` is the prediction's, and ``page`` the
    figures and page made after it.

    An existing ``out`` is replaced only with ``overwrite`` (and only when it holds an earlier result), which
    is checked before any work; ``out`` may neither contain nor lie inside ``src``; on an error nothing is left
    at ``out``. ``verbose`` lets messages show the
    source's folder names. ``log`` receives progress lines. ``pseudonymizer`` (a
    :class:`~sarcomri.io.deid.Pseudonymizer`) replaces the keyed hash of ``key``. ``summary_image`` adds, on DICOM
    input, the summary as a DICOM secondary capture (``summary.sc.dcm``)."""
    log = log or _quiet
    with atomic_directory(out, overwrite=overwrite, replaceable=is_result_folder, protect=[src]) as dest:
        files = source_files(Path(src))
        pred, page = _predict(Path(src), Path(classification_run), dest, segmentation_run, key, gradcam, verbose,
                              log, pseudonymizer, files)
        if write_sr_for(pred, files, dest) is not None:
            pred.outputs["dicom_sr"] = "report.sr.dcm"
        if summary_image and write_summary_for(pred, page, files, dest) is not None:
            pred.outputs["dicom_summary"] = "summary.sc.dcm"
        t0 = time.perf_counter()
        pred.outputs["page"] = "report.html"
        write_page(dest, pred, page)
        pred.latency_seconds["page"] = round(time.perf_counter() - t0, 3)  # after the prediction: not in its total
        write_json(dest / "result.json", pred.to_dict())
    return pred


def is_result_folder(folder: Path) -> bool:
    """True for a folder ``sarcomri predict`` wrote (it holds a result.json), which ``--overwrite`` may replace."""
    return (Path(folder) / "result.json").is_file()


def _quiet(_: str) -> None:
    """A log that drops its lines."""


def _predict(src: Path, run_dir: Path, dest: Path, segmentation_run: str | Path | None, key: str | None,
             gradcam: bool, verbose: bool, log: Log, pseudonymizer: Any,
             files: dict[str, list[Path]]) -> tuple[Prediction, PageInputs]:
    """The prediction of :func:`predict_patient`, with its mask written into ``dest``, and what its page shows
    (``files``: the input's DICOM files, :func:`source_files`)."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    run, folders, rule = study_models(run_dir)
    cfg = run.config
    study_cohort = run.cohort(check_files=False)
    trained_on = study_cohort.meta
    used = {q for g in cfg.channel_groups() for q in g}
    subs = study_substitutions(run, folders, rule)
    with tempfile.TemporaryDirectory(prefix="sarcomri-predict-") as tmp:
        cohort = ingest_patient(src, Path(tmp), key, True if "ADC_computed" in used else None, verbose, pseudonymizer)
        pid = str(cohort.patients["patient_id"].iloc[0])
        subs += input_substitutions(cohort, pid, used, trained_on)
        times["ingest"] = time.perf_counter() - t0
        outputs: dict[str, str] = {}
        segmentation, mask_source = None, "the input's own masks"
        if segmentation_run is not None:
            t1 = time.perf_counter()
            segmentation = _segment_into(dest, Path(segmentation_run), cohort, pid, files, outputs)
            mask_source = f"{FROM_SEGMENTATION_MODEL}{segmentation[0]}"
            times["segment"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        cutoff = vote_cutoff(rule)
        results, page = [], PageInputs(run)
        for seq in run.trained_sequences():
            scored = score_sequence(cohort, pid, seq, run, folders[seq], cutoff, segmentation, log)
            results.append(scored.result)
            subs += scored.substitutions
            if scored.central is not None and scored.view is not None:
                page.central[seq], page.views[seq] = scored.central, scored.view
        times["classify"] = time.perf_counter() - t1
        warnings = input_warnings(cohort.series[cohort.series["patient_id"] == pid], study_cohort,
                                  sorted({q for g in cfg.channel_groups() for q in g}))
        warnings += intensity_warnings({q: intensity_profile(v.volume, v.mask) for q, v in page.views.items()},
                                       study_profiles(run, list(page.views)))
        if gradcam and page.central:
            t1 = time.perf_counter()
            page.cams = {q: gradcam_map(folders[q][0], s.image) for q, s in page.central.items()}
            times["gradcam"] = time.perf_counter() - t1
    if not any(r.likelihood is not None for r in results):
        raise InputError(src, "no sequence of the study could be scored (missing sequences or masks)")
    positive, negative = run.class_names(study_cohort)
    score = int(sum(r.vote for r in results))
    threshold = rule.threshold
    pred = Prediction(pid, positive, negative, results, score, threshold,
                      positive if summed_call(score, threshold) else negative, cutoff, mask_source, substitutions=subs,
                      outputs=outputs, warnings=warnings, score_meaning=study_score_meaning(run, threshold),
                      input_series=[{"sequence": r["sequence"], "source": r["source"]}
                                    for r in cohort.meta.get("series_sources", []) if r.get("patient_id") == pid],
                      model_ids=model_ids(run), study=run.name, sarcomri_version=__version__,
                      created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    times["total"] = time.perf_counter() - t0
    pred.latency_seconds = {k: round(v, 3) for k, v in times.items()}
    return pred, page


def _segment_into(dest: Path, seg_run: Path, cohort: Cohort, pid: str, files: dict[str, list[Path]],
                  outputs: dict[str, str]) -> tuple[str, sitk.Image]:
    """Segment the patient; write mask.nii.gz (and mask.seg.dcm for DICOM input) into ``dest``."""
    seq, mask = segment_patient(seg_run, cohort, pid)
    sitk.WriteImage(mask, str(dest / "mask.nii.gz"), useCompression=True)
    outputs["mask"] = "mask.nii.gz"
    if write_seg_for(mask, files, seq, pid, dest / "mask.seg.dcm") is not None:
        outputs["dicom_seg"] = "mask.seg.dcm"
    return seq, mask

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from sarcomri.analysis.voting import summed_call, vote
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_directory, write_json
from sarcomri.prep.prepare2d import SliceSpec, load_channels, slices_from_volume
from sarcomri.runs import ClassificationRun, DecisionRule, SegmentationRun, open_run

Log = Callable[[str], None]
DEFAULT_VOTE_CUTOFF = 0.5
DISCLAIMER = ("Decision support for a radiologist, not a diagnosis: the likelihoods come from models trained on "
              "the study's cohort and carry its limits (population, scanners, sequences).")


@dataclass
class Substitution:
    """An input the result rests on that is not what the study's models expect, or a fallback taken for want
    of one; each is stated in result.json and on the page."""

    kind: str  # adc_fitted, computed_dwi, mask_from_segmentation, mask_from_sequence, sequence_missing, no_mask,
    #            fewer_models, no_central_slice, default_vote_cutoff
    what: str  # what was used, e.g. 'ADC'
    instead_of: str  # what the study expects, e.g. "the scanner's ADC map"
    how: str  # how it was obtained and why


@dataclass
class SequenceResult:
    """One sequence's ensemble output for the patient."""

    sequence: str
    likelihood: float | None
    models: int
    slices: int
    vote: int  # +1 positive, -1 negative, 0 when the sequence cannot vote (missing, no tumour mask)
    note: str = ""
    mask: str = ""  # where its tumour mask came from: 'own', "<sequence>'s mask", 'segmentation model on <seq>'


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
    statement: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def ingest_patient(src: Path, work: Path, key: str | None = None, compute_adc: bool | None = None,
                   verbose: bool = False) -> Cohort:
    """The patient's folder as a one-patient cohort (DICOM anywhere under ``src``; or NIfTI files
    ``<sequence>.nii.gz`` / ``<sequence>_mask.nii.gz`` directly in ``src``).

    ``compute_adc`` as for :func:`~sarcomri.io.ingest.ingest`; ``verbose`` lets messages show the source's
    folder names (which may identify the patient)."""
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
    report = ingest(src, work / "cohort", pseudonymizer=Pseudonymizer.from_key(key), compute_adc=compute_adc,
                    verbose=verbose)
    if report.patients != 1:
        raise InputError(src, f"holds {report.patients} patients; predict takes one patient at a time")
    return Cohort.load(work / "cohort")


def sequences_of(cohort: Cohort, pid: str) -> list[str]:
    """The sequences ``pid`` has in ``cohort``."""
    return cohort.series.loc[cohort.series["patient_id"] == pid, "sequence"].tolist()


def study_models(path: str | Path) -> tuple[ClassificationRun, dict[str, list[Path]], DecisionRule]:
    """The classification run (a study folder opens its classification run), its finished model folders per
    sequence and its decision rule."""
    run = open_run(path, expect=ClassificationRun)
    if not run.models_dir.is_dir():
        raise run.not_a_run("no models/")
    models = {seq: run.models(seq) for seq in run.config.sequences}
    empty = [s for s, m in models.items() if not m]
    if empty:
        raise InputError(run.path, f"no finished models for {empty}: finish `sarcomri classify run` first")
    return run, models, run.decision_rule()


def expected_models(run: ClassificationRun, sequence: str) -> int:
    """How many models the run trains for ``sequence``: its (repeat, fold) jobs when ``splits.csv`` is there,
    else the model folders (finished or not)."""
    if run.splits_path.is_file():
        from sarcomri.train.grid import plan_jobs

        return len(plan_jobs(run.path, [sequence]))
    return len(run.models(sequence, finished=False))


def study_substitutions(run: ClassificationRun, folders: dict[str, list[Path]],
                        rule: DecisionRule) -> list[Substitution]:
    """What the classification run itself falls short of: unfinished ensembles, a missing vote cut-off."""
    out = []
    for seq, done in folders.items():
        expected = expected_models(run, seq)
        if len(done) < expected:
            out.append(Substitution("fewer_models", f"{seq}: an ensemble of {len(done)} model"
                                    + ("s" if len(done) != 1 else ""),
                                    f"the study's {expected}", f"{expected - len(done)} model(s) of the run are "
                                    "not finished; the likelihood is the mean over the finished ones"))
    if rule.vote_cutoff is None:
        out.append(Substitution("default_vote_cutoff", f"vote cut-off {DEFAULT_VOTE_CUTOFF}",
                                "the study's vote cut-off", "tables/summed_threshold.csv gives none; the default "
                                "is used"))
    return out


def input_substitutions(cohort: Cohort, pid: str, sequences: set[str],
                        trained_on: dict[str, Any]) -> list[Substitution]:
    """What ingestion made of the input in place of what the study expects, for the ``sequences`` it uses: an
    ADC map fitted from the DWI, scanner-computed DWI images (cohort.json ``adc`` and ``computed_series``).
    ``trained_on`` is the study cohort's cohort.json (to say how often its own ADC maps were fitted)."""
    out = []
    for m in cohort.meta.get("adc", {}).get("maps", []):
        if m.get("patient_id") == pid and m.get("source") == "computed" and m.get("sequence") == "ADC" \
                and "ADC" in sequences:
            out.append(Substitution("adc_fitted", "ADC", "the scanner's ADC map",
                                    f"fitted from the patient's DWI ({m.get('fit', '')} s/mm², mono-exponential "
                                    "least squares, 10^-6 mm²/s): the input holds no ADC map"
                                    + _fitted_in_training(trained_on)))
    for c in cohort.meta.get("computed_series", []):
        if c.get("patient_id") == pid and c.get("sequence") in sequences:
            b = c.get("b_value")
            out.append(Substitution("computed_dwi", c["sequence"], "an acquired DWI image" + (
                f" at b = {b:g} s/mm²" if isinstance(b, int | float) else ""), "the image the scanner computed "
                "(extrapolated) from other b-values: no acquired series gives this b-value"))
    return out


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


def _fitted_in_training(meta: dict[str, Any]) -> str:
    """How many of the study cohort's ADC maps were fitted rather than the scanner's, as a clause ('' if unknown)."""
    maps = [m for m in meta.get("adc", {}).get("maps", []) if m.get("sequence") == "ADC"]
    if not maps:
        return ""
    fitted = sum(m.get("source") == "computed" for m in maps)
    return f"; in the study's cohort {fitted} of {len(maps)} ADC maps were fitted"


def segment_patient(seg_run: Path, cohort: Cohort, pid: str) -> tuple[str, sitk.Image]:
    """The tumour mask from a segmentation run's models (every fold, averaged), on its sequence's grid."""
    from sarcomri.seg3d.predict import segment_patient as segment_one

    run = SegmentationRun(seg_run)
    have = set(sequences_of(cohort, pid))
    for name in run.model_groups():
        group = parse_group(name)
        if set(group) <= have:
            result = segment_one(run.model_dir(name), {q: cohort.read_image(pid, q) for q in group})
            return group[0], result.mask
    raise InputError(seg_run, f"no segmentation model for the patient's sequences {sorted(have)}")


#: How result.json's ``mask_source`` begins when the mask came from a segmentation model (then the sequence).
FROM_SEGMENTATION_MODEL = "segmentation model on "


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

    from sarcomri.io.deid import IDENTIFYING_KEYWORDS
    from sarcomri.io.dicomseg import write_dicom_seg

    paths = source_series(src, sequence)
    if not paths:
        return None
    datasets = []
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword in IDENTIFYING_KEYWORDS:
            if keyword in ds:
                setattr(ds, keyword, pseudonym if keyword in ("PatientName", "PatientID") else "")
        datasets.append(ds)
    return write_dicom_seg(mask, datasets, out_path)


def has_mask(cohort: Cohort, pid: str, sequence: str) -> bool:
    """True when the patient's ``sequence`` came with a mask file of its own."""
    rel = cohort.series_row(pid, sequence).get("mask")
    return isinstance(rel, str) and bool(rel)


def needs_mask(spec: SliceSpec) -> bool:
    """True when cutting slices under ``spec`` needs a non-empty tumour mask."""
    return spec.mode != "all" or spec.crop_to_tumour


@dataclass
class MaskChoice:
    """The tumour mask of one model group on its first sequence's grid, where it came from, and the
    substitution when it is not the group's own mask."""

    mask: np.ndarray | None
    origin: str
    substitution: Substitution | None = None


def choose_mask(cohort: Cohort, pid: str, group: tuple[str, ...], mask: np.ndarray | None,
                segmentation: tuple[str, sitk.Image] | None) -> MaskChoice:
    """The group's own mask, else another sequence's of the group (as :func:`load_channels` found it), else the
    segmentation model's resampled onto the group's grid, else none."""
    name, first = group_name(group), group[0]
    if mask is not None and mask.any():
        if has_mask(cohort, pid, first):
            return MaskChoice(mask, "own")
        donor = next(q for q in group[1:] if has_mask(cohort, pid, q))
        return MaskChoice(mask, f"{donor}'s mask", Substitution(
            "mask_from_sequence", f"{name}: the tumour mask of {donor}", f"{first}'s own mask",
            f"{donor}'s mask resampled onto the {first} grid (nearest neighbour): the input has no {first} mask"))
    why = "is empty" if has_mask(cohort, pid, first) else "is missing"
    if segmentation is None:
        return MaskChoice(mask, f"none (the input's {first} mask {why}, no segmentation model given)")
    seq, seg = segmentation
    ref = cohort.read_image(pid, first)
    res = sitk.Resample(seg, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    found = (sitk.GetArrayFromImage(res) > 0).astype(np.uint8)
    return MaskChoice(found, f"segmentation model on {seq}", Substitution(
        "mask_from_segmentation", f"{name}: the tumour mask of the segmentation model", f"the input's {first} mask",
        f"the study's segmentation model on {seq}" + (f", resampled onto the {first} grid" if seq != first else "")
        + f": the input's {first} mask {why}"))


def patient_slices(cohort: Cohort, pid: str, group: tuple[str, ...], spec: SliceSpec,
                   segmentation: tuple[str, sitk.Image] | None) -> tuple[list, MaskChoice]:
    """The patient's 2D inputs for one model group (empty when no non-empty tumour mask can be had) and where
    their mask came from (see :func:`choose_mask`)."""
    vol, mask = load_channels(cohort, pid, group)
    choice = choose_mask(cohort, pid, group, mask, segmentation)
    if needs_mask(spec) and (choice.mask is None or not choice.mask.any()):
        if choice.mask is not None:
            choice.origin += " (no tumour on this grid)"
        return [], choice
    return slices_from_volume(vol, choice.mask, spec, pid, source=group_name(group)), choice


def gradcam_png(folder: Path, images: list[np.ndarray], titles: list[str], out_png: Path) -> Path:
    """Grad-CAM of one model (the first of a sequence's ensemble) on the given slices, as one PNG."""
    import torch

    from sarcomri.models.folder import load_model
    from sarcomri.report.figures import gradcam_figure, save_png
    from sarcomri.report.gradcam import gradcam

    model = load_model(folder)
    cams = gradcam(model, torch.from_numpy(np.stack(images)))
    return save_png(gradcam_figure([im[0] for im in images], list(cams), titles), out_png)


def predict_patient(src: str | Path, classification_run: str | Path, out: str | Path,
                    segmentation_run: str | Path | None = None, key: str | None = None, gradcam: bool = True,
                    overwrite: bool = False, verbose: bool = False, log: Log | None = None) -> Prediction:
    """Run one patient through the study; write ``result.json``, ``report.html``, the mask and the Grad-CAM
    figures into the folder ``out``, built under a temporary name and moved into place whole.

    An existing ``out`` is replaced only with ``overwrite`` (and only when it holds an earlier result), which
    is checked before any work; ``out`` may neither contain nor lie inside ``src``; on an error nothing is left
    at ``out``. ``verbose`` lets messages show the
    source's folder names. ``log`` receives progress lines."""
    from sarcomri.report.patient import write_patient_page

    log = log or _quiet
    with atomic_directory(out, overwrite=overwrite, replaceable=is_result_folder, protect=[src]) as dest:
        pred, figures = _predict(Path(src), Path(classification_run), dest, segmentation_run, key, gradcam, verbose,
                                 log)
        pred.outputs["page"] = "report.html"
        write_json(dest / "result.json", pred.to_dict())
        write_patient_page(dest, pred.to_dict(), figures)
    return pred


def is_result_folder(folder: Path) -> bool:
    """True for a folder ``sarcomri predict`` wrote (it holds a result.json), which ``--overwrite`` may replace."""
    return (Path(folder) / "result.json").is_file()


def _quiet(_: str) -> None:
    """A log that drops its lines."""


def _predict(src: Path, run_dir: Path, dest: Path, segmentation_run: str | Path | None, key: str | None,
             gradcam: bool, verbose: bool, log: Log) -> tuple[Prediction, list[dict]]:
    """The prediction of :func:`predict_patient`, with its mask and Grad-CAM files written into ``dest``."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    run, folders, rule = study_models(run_dir)
    cfg = run.config
    study_cohort = run.cohort(check_files=False)
    trained_on = study_cohort.meta
    used = {q for g in cfg.channel_groups() for q in g}
    subs = study_substitutions(run, folders, rule)
    with tempfile.TemporaryDirectory(prefix="sarcomri-predict-") as tmp:
        cohort = ingest_patient(src, Path(tmp), key, True if "ADC_computed" in used else None, verbose)
        pid = str(cohort.patients["patient_id"].iloc[0])
        subs += input_substitutions(cohort, pid, used, trained_on)
        times["ingest"] = time.perf_counter() - t0
        outputs: dict[str, str] = {}
        segmentation, mask_source = None, "the input's own masks"
        if segmentation_run is not None:
            t1 = time.perf_counter()
            segmentation = _segment_into(dest, Path(segmentation_run), cohort, pid, src, outputs)
            mask_source = f"{FROM_SEGMENTATION_MODEL}{segmentation[0]}"
            times["segment"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        cutoff = vote_cutoff(rule)
        results, central = [], {}
        for seq in cfg.sequences:
            result, image, seq_subs = _score_sequence(cohort, pid, seq, run, folders[seq], cutoff, segmentation, log)
            results.append(result)
            subs += seq_subs
            if image is not None:
                central[seq] = image
        times["classify"] = time.perf_counter() - t1
        figures = _gradcam_into(dest, central, folders, outputs, times) if gradcam and central else []
    if not any(r.likelihood is not None for r in results):
        raise InputError(src, "no sequence of the study could be scored (missing sequences or masks)")
    positive, negative = run.class_names(study_cohort)
    score = int(sum(r.vote for r in results))
    threshold = rule.threshold
    pred = Prediction(pid, positive, negative, results, score, threshold,
                      positive if summed_call(score, threshold) else negative, cutoff, mask_source, substitutions=subs,
                      outputs=outputs)
    times["total"] = time.perf_counter() - t0
    pred.latency_seconds = {k: round(v, 3) for k, v in times.items()}
    return pred, figures


def vote_cutoff(rule: DecisionRule) -> float:
    """The study's vote cut-off on a sequence's likelihood, :data:`DEFAULT_VOTE_CUTOFF` when it gives none."""
    return DEFAULT_VOTE_CUTOFF if rule.vote_cutoff is None else rule.vote_cutoff


def _segment_into(dest: Path, seg_run: Path, cohort: Cohort, pid: str, src: Path,
                  outputs: dict[str, str]) -> tuple[str, sitk.Image]:
    """Segment the patient; write mask.nii.gz (and mask.seg.dcm for DICOM input) into ``dest``."""
    seq, mask = segment_patient(seg_run, cohort, pid)
    sitk.WriteImage(mask, str(dest / "mask.nii.gz"), useCompression=True)
    outputs["mask"] = "mask.nii.gz"
    if write_seg_for(mask, src, seq, pid, dest / "mask.seg.dcm") is not None:
        outputs["dicom_seg"] = "mask.seg.dcm"
    return seq, mask


def _score_sequence(cohort: Cohort, pid: str, seq: str, run: ClassificationRun, folders: list[Path],
                    cutoff: float, segmentation: tuple[str, sitk.Image] | None,
                    log: Log) -> tuple[SequenceResult, np.ndarray | None, list[Substitution]]:
    """One sequence's likelihood and vote, the slice for its Grad-CAM, and its substitutions."""
    group = parse_group(seq)
    missing = sorted(set(group) - set(sequences_of(cohort, pid)))
    if missing:
        return SequenceResult(seq, None, 0, 0, 0, "sequence not in the study", mask="-"), None, [Substitution(
            "sequence_missing", f"{seq}: vote 0", f"a +1/-1 vote of {seq}",
            f"the input has no {', '.join(missing)} series, so {seq} cannot vote")]
    slices, choice = patient_slices(cohort, pid, group, run.slice_spec(seq), segmentation)
    subs = [choice.substitution] if choice.substitution else []
    if not slices:
        return SequenceResult(seq, None, 0, 0, 0, "no tumour mask for this sequence", mask=choice.origin), None, [
            *subs, Substitution("no_mask", f"{seq}: vote 0", f"a +1/-1 vote of {seq}",
                                f"no tumour mask to cut its slices by: {choice.origin}")]
    centre = next((s for s in slices if s.central), None)
    if centre is None:
        subs.append(Substitution("no_central_slice", f"{seq}: slice {slices[0].slice_index}",
                                 "the central tumour slice", "no tumour mask marks a central slice; the first "
                                 "slice is used"))
    if run.config.slices.test_aggregation == "central":
        slices = [centre or slices[0]]
    batch = np.stack([s.image for s in slices])
    per_model = [float(m.predict_proba(batch)[:, 1].mean()) for m in onnx_models(folders, log)]
    p = float(np.mean(per_model))
    result = SequenceResult(seq, round(p, 4), len(per_model), len(slices), int(vote(p, cutoff)),
                            mask=choice.origin)
    return result, (centre or slices[0]).image, subs


def _gradcam_into(dest: Path, central: dict[str, np.ndarray], folders: dict[str, list[Path]],
                  outputs: dict[str, str], times: dict[str, float]) -> list[dict]:
    """Grad-CAM of one model per sequence on its central slice, as ``gradcam_<sequence>.png`` in ``dest``."""
    t1 = time.perf_counter()
    figures = []
    for q, image in central.items():
        gradcam_png(folders[q][0], [image], [q], dest / f"gradcam_{q}.png")
        figures.append({"src": f"gradcam_{q}.png",
                        "caption": f"{q}: central tumour slice, Grad-CAM of one model of the ensemble"})
    outputs["gradcam"] = ",".join(f["src"] for f in figures)
    times["gradcam"] = time.perf_counter() - t1
    return figures

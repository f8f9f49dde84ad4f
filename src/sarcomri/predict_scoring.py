"""The per-sequence scoring of one new patient (the **classify** and **combine** steps of
:mod:`sarcomri.predict`): the classification run's models, the tumour mask each sequence's slices are cut by,
the slices (cut as in training), their ONNX Runtime likelihood and vote, and every :class:`Substitution` made
on the way (see :mod:`sarcomri.predict` for the list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from sarcomri.analysis.voting import vote
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.errors import InputError
from sarcomri.prep.prepare2d import PreparedSlice, SliceSpec, load_channels, slices_from_volume
from sarcomri.runs import ClassificationRun, DecisionRule, open_run

Log = Callable[[str], None]
DEFAULT_VOTE_CUTOFF = 0.5


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
    model_likelihoods: list[float] = field(default_factory=list)  # each model's, in the run's model order
    tumour: dict[str, Any] | None = None  # the mask's size (:class:`~sarcomri.analysis.tumour_size.TumourSize`)


@dataclass(frozen=True)
class View:
    """One sequence of the patient as the page shows it: the raw volume (z, y, x), the tumour mask the scores
    used on the same grid, and the voxel spacing (x, y, z) in mm."""

    sequence: str
    volume: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]


@dataclass
class Scored:
    """One sequence scored: its result, the central slice as the network saw it (None when it was not scored),
    the substitutions made, and the raw volume with its mask for the page (:class:`View`)."""

    result: SequenceResult
    central: PreparedSlice | None = None
    substitutions: list[Substitution] = field(default_factory=list)
    view: View | None = None


def sequences_of(cohort: Cohort, pid: str) -> list[str]:
    """The sequences ``pid`` has in ``cohort``."""
    return cohort.series.loc[cohort.series["patient_id"] == pid, "sequence"].tolist()


def study_models(path: str | Path) -> tuple[ClassificationRun, dict[str, list[Path]], DecisionRule]:
    """The classification run (a study folder opens its classification run), its finished model folders per
    sequence and its decision rule."""
    run = open_run(path, expect=ClassificationRun)
    if not run.models_dir.is_dir():
        raise run.not_a_run("no models/")
    models = {seq: run.models(seq) for seq in run.trained_sequences()}
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
    """ONNX Runtime sessions of the model folders, kept for the process (:mod:`sarcomri.infer.pool`); a
    ``model.onnx`` missing or not made from the folder's present weights is exported first (one trace per
    architecture). Members get one intra-op thread each when :func:`~sarcomri.infer.pool.ensemble_proba` runs
    them side by side (:func:`~sarcomri.infer.pool.ensemble_threads`)."""
    from sarcomri.infer.pool import ensemble_classifiers, ensemble_threads

    return ensemble_classifiers(folders, log, threads=ensemble_threads(len(folders)))


def _fitted_in_training(meta: dict[str, Any]) -> str:
    """How many of the study cohort's ADC maps were fitted rather than the scanner's, as a clause ('' if unknown)."""
    maps = [m for m in meta.get("adc", {}).get("maps", []) if m.get("sequence") == "ADC"]
    if not maps:
        return ""
    fitted = sum(m.get("source") == "computed" for m in maps)
    return f"; in the study's cohort {fitted} of {len(maps)} ADC maps were fitted"


#: How result.json's ``mask_source`` begins when the mask came from a segmentation model (then the sequence).
FROM_SEGMENTATION_MODEL = "segmentation model on "


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
                   segmentation: tuple[str, sitk.Image] | None) -> tuple[list, MaskChoice, np.ndarray]:
    """The patient's 2D inputs for one model group (empty when no non-empty tumour mask can be had), where
    their mask came from (see :func:`choose_mask`) and the group's volume (C, z, y, x) they were cut from."""
    vol, mask = load_channels(cohort, pid, group)
    choice = choose_mask(cohort, pid, group, mask, segmentation)
    if needs_mask(spec) and (choice.mask is None or not choice.mask.any()):
        if choice.mask is not None:
            choice.origin += " (no tumour on this grid)"
        return [], choice, vol
    return slices_from_volume(vol, choice.mask, spec, pid, source=group_name(group)), choice, vol


def view_of(cohort: Cohort, pid: str, group: tuple[str, ...], vol: np.ndarray, mask: np.ndarray) -> View:
    """The page's view of a scored group: its first sequence's raw volume and the mask, with their spacing."""
    row = cohort.series_row(pid, group[0])
    return View(group_name(group), vol[0], mask, (float(row["spacing_x"]), float(row["spacing_y"]),
                                                  float(row["spacing_z"])))


def vote_cutoff(rule: DecisionRule) -> float:
    """The study's vote cut-off on a sequence's likelihood, :data:`DEFAULT_VOTE_CUTOFF` when it gives none."""
    return DEFAULT_VOTE_CUTOFF if rule.vote_cutoff is None else rule.vote_cutoff


def score_sequence(cohort: Cohort, pid: str, seq: str, run: ClassificationRun, folders: list[Path],
                    cutoff: float, segmentation: tuple[str, sitk.Image] | None, log: Log) -> Scored:
    """One sequence's likelihood, vote and each model's likelihood, the tumour's size, the central slice for
    its Grad-CAM, its substitutions and the view the page shows."""
    from sarcomri.analysis.tumour_size import tumour_size
    from sarcomri.infer.pool import ensemble_proba

    group = parse_group(seq)
    missing = sorted(set(group) - set(sequences_of(cohort, pid)))
    if missing:
        return Scored(SequenceResult(seq, None, 0, 0, 0, "sequence not in the study", mask="-"), None, [Substitution(
            "sequence_missing", f"{seq}: vote 0", f"a +1/-1 vote of {seq}",
            f"the input has no {', '.join(missing)} series, so {seq} cannot vote")])
    slices, choice, vol = patient_slices(cohort, pid, group, run.slice_spec(seq), segmentation)
    subs = [choice.substitution] if choice.substitution else []
    if not slices:
        return Scored(SequenceResult(seq, None, 0, 0, 0, "no tumour mask for this sequence", mask=choice.origin),
                      None, [*subs, Substitution("no_mask", f"{seq}: vote 0", f"a +1/-1 vote of {seq}",
                                                 f"no tumour mask to cut its slices by: {choice.origin}")])
    centre = next((s for s in slices if s.central), None)
    if centre is None:
        subs.append(Substitution("no_central_slice", f"{seq}: slice {slices[0].slice_index}",
                                 "the central tumour slice", "no tumour mask marks a central slice; the first "
                                 "slice is used"))
    if run.config.slices.test_aggregation == "central":
        slices = [centre or slices[0]]
    batch = np.stack([s.image for s in slices])
    per_model = [float(p[:, 1].mean()) for p in ensemble_proba(onnx_models(folders, log), batch)]
    p = float(np.mean(per_model))
    view = view_of(cohort, pid, group, vol, choice.mask)
    result = SequenceResult(seq, round(p, 4), len(per_model), len(slices), int(vote(p, cutoff)),
                            mask=choice.origin, model_likelihoods=[round(v, 4) for v in per_model],
                            tumour=tumour_size(view.mask, view.spacing).to_dict())
    return Scored(result, centre or slices[0], subs, view)

"""The tumour mask of ``sarcomri predict --segmentation-model``: the first model whose sequences the patient has,
from a segmentation run of the project's engine (every fold, averaged), a run trained with ``--engine nnunet`` or
an nnU-Net model folder (the output folder of ``nnUNetv2_train``)."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.errors import InputError
from sarcomri.predict_scoring import sequences_of
from sarcomri.runs import SegmentationRun


def segment_patient(seg_run: Path, cohort: Cohort, pid: str) -> tuple[str, sitk.Image]:
    """The first sequence of the model used and the tumour mask, on that sequence's grid (see the module)."""
    from sarcomri.seg3d.nnunet_engine import nnunet_model_folders

    have = set(sequences_of(cohort, pid))
    nnunet = nnunet_model_folders(seg_run)
    if nnunet:
        return _segment_nnunet(seg_run, nnunet, cohort, pid, have)
    from sarcomri.seg3d.predict import segment_patient as segment_one

    run = SegmentationRun(seg_run)
    for name in run.model_groups():
        group = parse_group(name)
        if set(group) <= have:
            result = segment_one(run.model_dir(name), {q: cohort.read_image(pid, q) for q in group})
            return group[0], result.mask
    raise InputError(seg_run, f"no segmentation model for the patient's sequences {sorted(have)}")


def _segment_nnunet(seg_run: Path, folders: list[Path], cohort: Cohort, pid: str,
                    have: set[str]) -> tuple[str, sitk.Image]:
    """:func:`segment_patient` with nnU-Net model folders."""
    from sarcomri.seg3d.nnunet_engine import NnunetSegmenter, channel_names

    channels = {folder: channel_names(folder) for folder in folders}
    for folder, names in channels.items():
        if set(names) <= have:
            result = NnunetSegmenter(folder).segment({q: cohort.read_image(pid, q) for q in names}, pid)
            return names[0], result.mask
    raise InputError(seg_run, "no nnU-Net model for the patient's sequences: the models take "
                              f"{', '.join(group_name(names) for names in channels.values())}; the patient has "
                              f"{', '.join(sorted(have))}")

"""Which volumes and masks one patient's DICOM series become: naming, b-value splitting, references.

Decisions, in order, for each series of a patient (series ordered by study date, study, series number):

* an image series is named through the :class:`~sarcomri.cohort.sequences.SequenceMap` from its
  SeriesDescription, ProtocolName and ImageOrientationPatient (plane); a series the map skips
  (localisers) or cannot name is **kept aside** with its reason;
* a diffusion series is split by b-value (standard or vendor tag, else a ``b800`` in the description) and
  each volume is named ``DWI_b<value>``;
* a series whose description marks it as **computed by the scanner** (Siemens ``CALC_BVAL``, "computed
  b", "cDWI") is an extrapolated image, not an acquisition: it is named ``DWI_b<value>`` like an acquired
  one, flagged ``computed`` (listed in cohort.json ``computed_series``), never used to fit ADC, and kept
  aside when an acquired series gives the same b-value;
* two series giving the same name: the first (acquired before computed, then in series order) wins,
  the other is kept aside;
* a multi-frame (enhanced) series is expanded into its frames (:mod:`sarcomri.io.multiframe`), which are
  named and split like the slices of a classic series; it is kept aside, with the reason, when its frames'
  geometry is unknown, no installed decoder reads its pixel data, or a volume's frames cannot form one 3D
  volume (several orientations, stacks, time points or echoes). For multi-frame series the ``files`` of a
  record kept aside count frames where only part of the series is kept aside;
* non-image objects are kept aside; RTSTRUCT and DICOM-SEG objects become masks of the series they reference.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pydicom

from sarcomri.cohort.sequences import SequenceMap, dwi_name
from sarcomri.io import dicomseg, multiframe, rtstruct
from sarcomri.io.bvalues import b_value_from_description
from sarcomri.io.deid import scrub
from sarcomri.io.dicom import DicomSeries, Instance

COMPUTED_B_RE = re.compile(r"calc_?b_?val|comp(uted)?[ _-]?b\b|synthetic[ _-]?b|\bc-?dwi\b", re.I)


@dataclass
class PlannedVolume:
    """A volume to read: its canonical name, its series and the slices that form it."""

    sequence: str
    series: DicomSeries
    instances: list[Instance]
    role: str = "image"  # 'image', 'dwi' or 'adc'
    b_value: float | None = None
    computed: bool = False


@dataclass
class PlannedMask:
    """A mask object (one RTSTRUCT or SEG file) and the series it references."""

    kind: str  # 'rtstruct' or 'seg'
    instance: Instance
    series: DicomSeries
    target_uid: str


@dataclass
class PatientPlan:
    """Everything decided for one patient before any pixel is read."""

    volumes: list[PlannedVolume] = field(default_factory=list)
    masks: list[PlannedMask] = field(default_factory=list)
    aside: list[dict] = field(default_factory=list)
    orphans: list[dict] = field(default_factory=list)  # masks whose image series is not in the source (kind, path)

    def keep_aside(self, series: DicomSeries, reason: str, files: int | None = None) -> None:
        """Record a series (or part of one) that does not enter the cohort, and why."""
        identifiers = series.identifiers
        self.aside.append({
            "series_number": series.series_number,
            "description": scrub(series.description or series.protocol, identifiers),
            "files": len(series.instances) if files is None else files,
            "reason": scrub(reason, identifiers),
        })


def series_label(series: DicomSeries) -> str:
    """How messages name a series: its number and scrubbed description (never a patient identifier)."""
    text = scrub(series.description or series.protocol, series.identifiers)
    return f"series {series.series_number} ({text!r})"


def plan_patient(series_list: list[DicomSeries], seqmap: SequenceMap) -> PatientPlan:
    """Name every series of one patient and split diffusion series by b-value (see module docstring)."""
    plan = PatientPlan()
    candidates: list[PlannedVolume] = []
    for series in series_list:
        if series.kind in ("rtstruct", "seg"):
            for inst in series.instances:
                plan.masks.append(PlannedMask(series.kind, inst, series, ""))
        elif any(inst.kind == "multiframe" for inst in series.instances):
            candidates.extend(_name_multiframe_series(series, seqmap, plan))
        elif series.kind == "other":
            kinds = sorted({i.sop_class_name or "unknown class" for i in series.instances})
            plan.keep_aside(series, f"not an image ({', '.join(kinds)})")
        else:
            candidates.extend(_name_image_series(series, seqmap, plan))
    taken: dict[str, PlannedVolume] = {}
    for vol in sorted(candidates, key=lambda v: v.computed):  # stable: acquired first, then series order
        if vol.sequence in taken:
            first = taken[vol.sequence]
            plan.keep_aside(vol.series, f"{vol.sequence} is already given by {series_label(first.series)}",
                            files=len(vol.instances))
            continue
        taken[vol.sequence] = vol
        plan.volumes.append(vol)
    _resolve_masks(plan, series_list)
    return plan


def _name_image_series(series: DicomSeries, seqmap: SequenceMap, plan: PatientPlan) -> list[PlannedVolume]:
    first = series.instances[0]
    naming = seqmap.name_series(series.description, series.protocol, first.iop)
    if naming.skip:
        plan.keep_aside(series, f"skipped by the sequence map rule '{naming.rule}'")
        return []
    if naming.name is None:
        plan.keep_aside(series, "no rule of the sequence map names it")
        return []
    text = f"{series.description} {series.protocol}"
    if not naming.diffusion:
        role = "adc" if naming.name == "ADC" else "image"
        return [PlannedVolume(naming.name, series, list(series.instances), role=role)]
    computed = bool(COMPUTED_B_RE.search(text))
    by_b: dict[float, list[Instance]] = defaultdict(list)
    fallback = b_value_from_description(series.description) or b_value_from_description(series.protocol)
    missing = 0
    for inst in series.instances:
        b = inst.b_value if inst.b_value is not None else fallback
        if b is None:
            missing += 1
        else:
            by_b[round(b, 3)].append(inst)
    if missing:
        plan.keep_aside(series, f"diffusion series: {missing} image(s) without a b-value (no standard or vendor "
                        "b-value tag, none in the description)", files=missing)
    volumes = []
    for b, insts in sorted(by_b.items()):
        kept = _trace_only(insts)
        if len(kept) < len(insts):
            plan.keep_aside(series, f"diffusion series: {len(insts) - len(kept)} directional image(s) at b={b:g} "
                            "(the trace image is used)", files=len(insts) - len(kept))
        volumes.append(PlannedVolume(dwi_name(b), series, kept, role="dwi", b_value=b, computed=computed))
    return volumes


def _name_multiframe_series(series: DicomSeries, seqmap: SequenceMap, plan: PatientPlan) -> list[PlannedVolume]:
    """The volumes of a multi-frame series, named from its frames as a classic series from its slices."""
    try:
        frames = multiframe.expand_series(series)
    except multiframe.KeepAside as reason:
        plan.keep_aside(series, f"multi-frame images: {reason}")
        return []
    volumes = []
    for vol in _name_image_series(frames, seqmap, plan):
        problem = multiframe.volume_problem(vol.instances)
        if problem:
            what = f"{vol.sequence}: " if vol.b_value is not None else ""
            whole = len(vol.instances) == len(frames.instances)
            plan.keep_aside(series, f"multi-frame images: {what}{problem}",
                            files=len(series.instances) if whole else len(vol.instances))
        else:
            volumes.append(vol)
    return volumes


def _trace_only(instances: list[Instance]) -> list[Instance]:
    """The trace images of one b-value when it holds several images per slice position, some of them trace."""
    normal = np.cross(instances[0].iop[:3], instances[0].iop[3:]) if instances[0].iop else None
    if normal is None or any(i.ipp is None for i in instances):
        return instances
    positions = {round(float(np.dot(i.ipp, normal)), 2) for i in instances}
    trace = [i for i in instances if i.trace]
    if len(positions) == len(instances) or not trace or len(trace) == len(instances):
        return instances
    return trace


def _resolve_masks(plan: PatientPlan, series_list: list[DicomSeries]) -> None:
    """Find the series each mask references; masks of unknown or aside series are kept aside."""
    by_uid = {s.series_uid: s for s in series_list}
    by_sop = {i.sop_uid: s.series_uid for s in series_list for i in s.instances}
    planned = {v.series.series_uid for v in plan.volumes}
    resolved = []
    for mask in plan.masks:
        ds = pydicom.dcmread(mask.instance.path, stop_before_pixels=True)
        module = rtstruct if mask.kind == "rtstruct" else dicomseg
        uid = module.referenced_series_uid(ds)
        if uid is None or uid not in by_uid:
            sops = {by_sop[u] for u in module.referenced_sop_uids(ds) if u in by_sop}
            uid = sops.pop() if len(sops) == 1 else uid
        if uid is None or uid not in by_uid:
            kind = "RTSTRUCT" if mask.kind == "rtstruct" else "DICOM-SEG"
            plan.keep_aside(mask.series, f"{kind} whose referenced image series is not in the source", files=1)
            plan.orphans.append({"kind": kind, "series_number": mask.series.series_number,
                                 "path": mask.instance.path})
        elif uid not in planned:
            plan.keep_aside(mask.series, f"{mask.kind.upper()} of {series_label(by_uid[uid])}, which is kept aside",
                            files=1)
        else:
            mask.target_uid = uid
            resolved.append(mask)
    plan.masks = resolved

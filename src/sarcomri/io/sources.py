"""Load one patient's volumes and masks from a DICOM or NIfTI source, ready to be written to a cohort.

Both loaders return a :class:`PatientData`: named volumes (each with its mask, if any) and the series
kept aside. Nothing here knows the patient's identifier or pseudonym; messages name files and series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pydicom
import SimpleITK as sitk

from sarcomri.cohort.sequences import SequenceMap, b_value_of
from sarcomri.io import dicomseg, multiframe, rtstruct
from sarcomri.io.deid import scrub
from sarcomri.io.dicom import DicomSeries
from sarcomri.io.images import check_finite, same_grid
from sarcomri.io.nifti import NiftiPatient, read_nifti_image, read_nifti_mask
from sarcomri.io.series_plan import PatientPlan, plan_patient, series_label
from sarcomri.io.volume import read_volume


@dataclass
class Volume:
    """One volume of the cohort-to-be: canonical name, image, optional mask and where it came from."""

    sequence: str
    image: sitk.Image
    mask: sitk.Image | None = None
    role: str = "image"  # 'image', 'dwi', 'adc' or 'adc_computed'
    b_value: float | None = None
    computed: bool = False
    origin: str = ""  # for the console: 'series 4 ('t2_tse_tra')' or 'T2axi.nii.gz'
    mask_table: list[dict] | None = None
    mask_kind: str | None = None


@dataclass
class PatientData:
    """A patient's volumes and the series of the patient kept out of the cohort."""

    volumes: list[Volume] = field(default_factory=list)
    aside: list[dict] = field(default_factory=list)
    orphans: list[dict] = field(default_factory=list)  # masks whose image series is not in the source (kind, path)

    def names(self) -> set[str]:
        """The sequence names present."""
        return {v.sequence for v in self.volumes}


def load_dicom_patient(series_list: list[DicomSeries], seqmap: SequenceMap,
                       log: Callable[[str], None] | None = None) -> PatientData:
    """Plan, read and check the volumes and masks of one patient's DICOM series."""
    plan: PatientPlan = plan_patient(series_list, seqmap)
    data = PatientData(aside=plan.aside, orphans=plan.orphans)
    first_image: dict[str, sitk.Image] = {}
    for item in plan.volumes:
        what = series_label(item.series) + (f", b={item.b_value:g}" if item.b_value is not None else "")
        reader = multiframe.read_frames if multiframe.is_frames(item.instances) else read_volume
        image, _ = reader(item.instances, what)
        check_finite(image, str(item.instances[0].path))
        data.volumes.append(Volume(item.sequence, image, role=item.role, b_value=item.b_value,
                                   computed=item.computed, origin=what))
        first_image.setdefault(item.series.series_uid, image)
        if log:
            size = "x".join(str(n) for n in image.GetSize())
            log(f"  {what} -> {item.sequence} ({size})" + (" [computed by the scanner]" if item.computed else ""))
    by_series = {}
    for item, vol in zip(plan.volumes, data.volumes, strict=True):
        by_series.setdefault(item.series.series_uid, []).append(vol)
    for mask in plan.masks:
        image = first_image[mask.target_uid]
        path = mask.instance.path
        if mask.kind == "rtstruct":
            labelmap, table = rtstruct.rtstruct_to_mask(pydicom.dcmread(path), image, path)
        else:
            labelmap, table = dicomseg.seg_to_mask(path, image)
        identifiers = mask.series.identifiers
        for row in table:
            for key in ("name", "description"):
                if key in row:
                    row[key] = scrub(row[key], identifiers)
        kind = "RTSTRUCT" if mask.kind == "rtstruct" else "DICOM-SEG"
        attached = []
        for vol in by_series[mask.target_uid]:
            if vol.mask is not None:
                plan.keep_aside(mask.series, f"{kind}: {vol.sequence} already has a mask", files=1)
                continue
            if not same_grid(vol.image, labelmap):
                continue
            vol.mask, vol.mask_table, vol.mask_kind = labelmap, table, kind
            attached.append(vol.sequence)
        if log and attached:
            log(f"  {series_label(mask.series)} {kind} ({len(table)} label(s)) -> mask of {', '.join(attached)}")
    return data


def load_nifti_patient(patient: NiftiPatient, log: Callable[[str], None] | None = None) -> PatientData:
    """Read and check the images and masks of one NIfTI patient folder."""
    data = PatientData()
    for series in patient.series:
        image = read_nifti_image(series.image)
        mask = read_nifti_mask(series.mask, image, series.image) if series.mask is not None else None
        b = b_value_of(series.sequence)
        role = "dwi" if b is not None else ("adc" if series.sequence == "ADC" else "image")
        table = None
        if mask is not None:
            labels = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(mask)) if v]
            table = [{"label": lab, "name": ""} for lab in labels]
        data.volumes.append(Volume(series.sequence, image, mask, role=role, b_value=b, origin=series.sequence,
                                   mask_table=table, mask_kind="NIfTI" if mask is not None else None))
        if log:
            size = "x".join(str(n) for n in image.GetSize())
            log(f"  {series.sequence} ({size})" + (" with mask" if mask is not None else ""))
    return data


def acquired_dwi(data: PatientData) -> dict[float, sitk.Image]:
    """Acquired (not scanner-computed) DWI volumes by b-value that share the grid of the lowest b-value."""
    dwi = {v.b_value: v.image for v in data.volumes if v.role == "dwi" and not v.computed and v.b_value is not None}
    if not dwi:
        return {}
    reference = dwi[min(dwi)]
    return {b: img for b, img in sorted(dwi.items()) if same_grid(reference, img)}

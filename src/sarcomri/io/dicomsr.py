"""The classification result as a DICOM Structured Report (Comprehensive 3D SR, TID 1500 Measurement Report via
highdicom), for PACS and viewers that show neither JSON nor HTML.

Content (one ``Imaging Measurement Report``; the observer is the device ``sarcomri``: manufacturer ``sarcomri``,
model name the study, serial number the sarcomri version):

* per sequence, a measurement group (TID 1501) tracked as ``sequence <name>``: ``Probability`` (DCM 122157) = the
  ensemble's likelihood of the positive class, ``Sequence vote`` (+1/-1/0), with the algorithm (``sarcomri
  <study>``, the sarcomri version, the models' key as its parameter);
* the decision, a measurement group tracked as ``decision``: ``Score`` (SCT 246262008) = the summed vote,
  ``Decision threshold``, and the qualitative evaluation ``Decision at the study's threshold`` = the class called
  (SNOMED CT where the
  class name has a code, e.g. Sarcoma 1187396000, Leiomyoma 1162890002; otherwise a local code);
* the tumour, a volumetric group (TID 1411) referencing segment 1 of the DICOM-SEG of the mask (when the mask came
  from the segmentation model): ``Volume`` (mL), ``Long axis``, ``Short axis`` (mm, on the slice of largest
  cross-section) and ``Through-plane extent`` (mm) as :mod:`sarcomri.analysis.tumour_size` defines them.

Codes sarcomri defines itself use the coding scheme :data:`SCHEME` (a private scheme, as DICOM PS3.16 allows with
a ``99`` prefix). :func:`read_prediction_sr` reads the values back (with highdicom's own SR parser) into the shape
``result.json`` has, so a round trip can be checked value for value.

The patient and study modules are copied by highdicom from the source images (as the DICOM-SEG's are): the SR
carries no identifier the de-identified source does not carry.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from sarcomri import __version__
from sarcomri.io.dicomseg import with_type2_attributes

SCHEME = "99SARCOMRI"
VOTE = CodedConcept("VOTE", SCHEME, "Sequence vote")
THRESHOLD = CodedConcept("THRESHOLD", SCHEME, "Decision threshold")
THROUGH_PLANE = CodedConcept("THROUGHPLANE", SCHEME, "Through-plane extent")
CALLED = CodedConcept("DECISION", SCHEME, "Decision at the study's threshold")
MRI = CodedConcept("113091000", "SCT", "Magnetic resonance imaging")
MILLILITER = CodedConcept("ml", "UCUM", "milliliter")
DECISION = "decision"
SEQUENCE_PREFIX = "sequence "
TUMOUR = "tumour"
SR_SERIES_NUMBER = 901


def class_code(label: str) -> CodedConcept:
    """The code of a class name: SNOMED CT's where pydicom's code dictionary has one (``sarcoma`` -> Sarcoma),
    else a local code of :data:`SCHEME`."""
    keyword = "".join(part.capitalize() for part in label.replace("-", " ").split())
    try:
        code = getattr(codes.SCT, keyword)
        return CodedConcept(code.value, code.scheme_designator, code.meaning)
    except AttributeError:
        return CodedConcept(keyword.upper()[:16] or "CLASS", SCHEME, label)


def prediction_sr(result: dict[str, Any], source: Sequence[pydicom.Dataset], seg: pydicom.Dataset | None = None,
                  tumour: dict[str, float] | None = None) -> hd.sr.Comprehensive3DSR:
    """The SR of ``result`` (``result.json``'s content) over the source images ``source`` (the evidence: the
    classified series, at least one image); with ``seg`` (the DICOM-SEG of the mask) and ``tumour`` (its size:
    :meth:`~sarcomri.analysis.tumour_size.TumourSize.to_dict`), the tumour group referencing the SEG's segment 1."""
    algorithm_of = {q: hd.sr.AlgorithmIdentification(name=f"sarcomri {result.get('study', '')}".strip(),
                                                     version=str(result.get("sarcomri_version") or __version__),
                                                     parameters=[str(result.get("model_ids", {}).get(q, ""))]
                                                     if result.get("model_ids", {}).get(q) else None)
                    for q in [s["sequence"] for s in result["sequences"]] + [DECISION]}
    groups: list = []
    for s in result["sequences"]:
        measurements = [hd.sr.Measurement(codes.DCM.Probability, float(s["likelihood"]), codes.UCUM.NoUnits,
                                          algorithm_id=algorithm_of[s["sequence"]])] \
            if s.get("likelihood") is not None else []
        measurements.append(hd.sr.Measurement(VOTE, float(s["vote"]), codes.UCUM.NoUnits))
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=SEQUENCE_PREFIX + s["sequence"]),
            measurements=measurements, algorithm_id=algorithm_of[s["sequence"]]))
    groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=DECISION),
        measurements=[hd.sr.Measurement(codes.SCT.Score, float(result["summed_score"]), codes.UCUM.NoUnits),
                      hd.sr.Measurement(THRESHOLD, float(result["threshold"]), codes.UCUM.NoUnits)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(CALLED, class_code(result["decision"]))],
        algorithm_id=algorithm_of[DECISION]))
    if seg is not None and tumour:
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=TUMOUR),
            referenced_segment=_segment_one(seg),
            finding_type=codes.SCT.Neoplasm,
            measurements=[hd.sr.Measurement(codes.SCT.Volume, float(tumour["volume_ml"]), MILLILITER),
                          hd.sr.Measurement(codes.SCT.LongAxis, float(tumour["long_axis_mm"]), codes.UCUM.Millimeter),
                          hd.sr.Measurement(codes.SCT.ShortAxis, float(tumour["short_axis_mm"]),
                                            codes.UCUM.Millimeter),
                          hd.sr.Measurement(THROUGH_PLANE, float(tumour["through_plane_mm"]), codes.UCUM.Millimeter)]))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="sarcomri", manufacturer_name="sarcomri",
            model_name=str(result.get("study") or "sarcomri"), serial_number=str(result.get("sarcomri_version", ""))))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=MRI, imaging_measurements=groups)
    evidence = [with_type2_attributes(ds) for ds in source] + ([seg] if seg is not None else [])
    with warnings.catch_warnings():  # about values copied from the source (an over-long StudyID, a bare name)
        warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum length")
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        return hd.sr.Comprehensive3DSR(
            evidence=evidence, content=report, series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="sarcomri", is_complete=True,
            series_description="sarcomri classification (decision support)")


def _segment_one(seg: pydicom.Dataset) -> hd.sr.ReferencedSegment:
    """Segment 1 of ``seg`` with the series it segments (highdicom's ``from_segmentation`` needs the segment in
    each frame's functional groups; a one-segment SEG keeps it in the shared ones)."""
    series = str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
    return hd.sr.ReferencedSegment(sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID),
                                   segment_number=1, source_series=hd.sr.SourceSeriesForSegmentation(series))


def write_prediction_sr(result: dict[str, Any], source: Sequence[pydicom.Dataset], out_path: str | Path,
                        seg: pydicom.Dataset | None = None, tumour: dict[str, float] | None = None) -> Path:
    """Write :func:`prediction_sr` to ``out_path`` (atomically)."""
    from sarcomri.io.atomic import atomic_path

    sr = prediction_sr(result, source, seg, tumour)
    with atomic_path(out_path, overwrite=True) as tmp:
        sr.save_as(tmp)
    return Path(out_path)


def read_prediction_sr(ds: pydicom.Dataset) -> dict[str, Any]:
    """The values of an SR :func:`prediction_sr` wrote: ``sequences`` ({sequence, likelihood, vote}),
    ``summed_score``, ``threshold``, ``decision`` (the code's meaning), ``tumour`` (volume_ml, long_axis_mm,
    short_axis_mm, through_plane_mm) or None, ``study`` and ``version`` (the observing device's model name and
    serial number), ``segment`` (the referenced SEG's SOPInstanceUID) or None."""
    content = hd.sr.Comprehensive3DSR.from_dataset(ds).content
    if not isinstance(content, hd.sr.MeasurementReport):
        content = hd.sr.MeasurementReport.from_sequence(content)
    out: dict[str, Any] = {"sequences": [], "tumour": None, "segment": None}
    for group in content.get_image_measurement_groups():
        name = str(group.tracking_identifier)
        values = {m.name.meaning: m.value for m in group.get_measurements()}
        if name.startswith(SEQUENCE_PREFIX):
            out["sequences"].append({"sequence": name.removeprefix(SEQUENCE_PREFIX),
                                     "likelihood": values.get(codes.DCM.Probability.meaning),
                                     "vote": int(values[VOTE.meaning])})
        elif name == DECISION:
            out["summed_score"] = int(values[codes.SCT.Score.meaning])
            out["threshold"] = float(values[THRESHOLD.meaning])
            out["decision"] = group.get_qualitative_evaluations()[0].value.meaning
    for group in content.get_volumetric_roi_measurement_groups():
        values = {m.name.meaning: float(m.value) for m in group.get_measurements()}
        out["tumour"] = {"volume_ml": values[codes.SCT.Volume.meaning],
                         "long_axis_mm": values[codes.SCT.LongAxis.meaning],
                         "short_axis_mm": values[codes.SCT.ShortAxis.meaning],
                         "through_plane_mm": values[THROUGH_PLANE.meaning]}
        segment = group.referenced_segment
        if segment is not None:
            out["segment"] = str(segment.referenced_sop_instance_uid)
    device = content.get_observer_contexts(observer_type=codes.DCM.Device)
    if device:
        attributes = device[0].observer_identifying_attributes
        out["study"] = attributes.model_name
        out["version"] = attributes.serial_number
    return out

"""Input warnings of `sarcomri predict`: a missing sequence, a spacing or matrix outside the study's range (with
the spacing tolerance), and nothing for an input like the study's."""

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.predict_checks import input_warnings


def _series(rows):
    cols = ["patient_id", "sequence", "spacing_x", "spacing_y", "spacing_z", "size_x", "size_y", "size_z"]
    return pd.DataFrame(rows, columns=cols)


STUDY = Cohort(patients=pd.DataFrame({"patient_id": ["a", "b"], "label": ["x", "y"]}),
               series=_series([("a", "T2", 0.7, 0.7, 4.0, 256, 256, 20), ("b", "T2", 0.9, 0.9, 5.0, 320, 320, 24),
                               ("a", "ADC", 1.5, 1.5, 5.0, 128, 128, 20)]), meta={}, root=None)


def test_an_input_like_the_study_has_no_warning():
    patient = _series([("p", "T2", 0.94, 0.8, 4.5, 300, 256, 22), ("p", "ADC", 1.5, 1.5, 5.0, 128, 128, 20)])
    assert input_warnings(patient, STUDY, ["T2", "ADC"]) == []  # 0.94 is within 5% of 0.9


def test_unlike_inputs_are_each_named():
    patient = _series([("p", "T2", 0.5, 0.7, 6.0, 512, 256, 20)])
    got = input_warnings(patient, STUDY, ["T2", "ADC", "DWI"])
    assert [(w.kind, w.sequence) for w in got] == [("spacing", "T2"), ("spacing", "T2"), ("matrix", "T2"),
                                                   ("missing_sequence", "ADC")]  # DWI: not in the study
    assert got[0].message == "T2: in-plane spacing (x) 0.5 mm, outside the study's 0.7-0.9 mm (2 series)"
    assert got[1].message == "T2: slice spacing 6 mm, outside the study's 4-5 mm (2 series)"
    assert got[2].message == "T2: matrix (columns) 512, outside the study's 256-320 (2 series)"


def test_an_intensity_profile_outside_the_study_range_is_flagged():
    from sarcomri.predict_checks import intensity_warnings

    study = {"T2": pd.DataFrame({"patient_id": ["a", "b", "c"], "tumour_to_body": [1.2, 1.5, 2.0],
                                 "body_range": [2.0, 2.5, float("nan")]})}
    like = {"T2": {"tumour_to_body": 2.4, "body_range": 1.7}}  # within x1.25 of the range
    assert intensity_warnings(like, study) == []
    unlike = {"T2": {"tumour_to_body": 0.5, "body_range": 3.2}, "ADC": {"tumour_to_body": 9.0, "body_range": 9.0}}
    got = intensity_warnings(unlike, study)
    assert [(w.kind, w.sequence) for w in got] == [("intensity", "T2"), ("intensity", "T2")]  # ADC: no study profile
    assert got[0].message.startswith("T2: tumour-to-body intensity ratio 0.50, outside the study's 1.20-2.00 (3 ")
    assert "(2 patients)" in got[1].message  # the undefined value does not count

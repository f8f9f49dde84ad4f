"""The demo's check of the new patient's mask against the synthetic truth (the study itself is run end to end
by tests/e2e)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import CohortWriter
from sarcomri.demo import mask_against_truth


def _image(array: np.ndarray, spacing=(2.0, 2.0, 5.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin((-30.0, -20.0, 4.0))
    return img


def test_mask_against_truth_scores_the_prediction_on_the_truth_grid(tmp_path):
    truth = np.zeros((6, 20, 20), np.uint8)
    truth[2:4, 5:15, 5:15] = 1  # 200 voxels of 20 mm3: 4 mL
    with CohortWriter(tmp_path / "synthetic", labels=["sarcoma", "leiomyoma"]) as w:
        w.add_patient("SARC-0001", "sarcoma")
        w.add_series("SARC-0001", "DWI_b1000", _image(np.ones((6, 20, 20), np.float32)), _image(truth))
    same = tmp_path / "same.nii.gz"
    sitk.WriteImage(_image(truth), str(same))
    m = mask_against_truth(tmp_path, same, "DWI_b1000")
    assert m["dice"] == 1.0 and m["hd95_mm"] == 0.0
    assert m["true_ml"] == pytest.approx(4.0) and m["predicted_ml"] == pytest.approx(4.0)
    # half the tumour, written on a finer grid (1 mm in-plane): taken back onto the truth's grid
    half = np.zeros((6, 40, 40), np.uint8)
    half[2:4, 10:30, 10:20] = 1
    finer = tmp_path / "finer.nii.gz"
    sitk.WriteImage(_image(half, (1.0, 1.0, 5.0)), str(finer))
    m = mask_against_truth(tmp_path, finer, "DWI_b1000")
    assert m["predicted_ml"] == pytest.approx(2.0) and m["dice"] == pytest.approx(2 * 100 / 300)


def _demo_study(root, cfg, extra_ids=()):
    """A demo study folder (config, id map, ingested cohort) whose patients carry the pseudonyms the demo's
    DICOM round trip gives the study's synthetic patients (plus ``extra_ids``)."""
    from sarcomri.config import dump_config
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.runs import StudyRun
    from sarcomri.study_cohort import ROUNDTRIP_KEY
    from sarcomri.synth.cohort import make_patient, resolve_sequences
    from sarcomri.synth.tasks import TASKS

    s = cfg.synth
    task = TASKS[s.task]
    synthetic = [make_patient(task, i, s.seed, resolve_sequences(task, s.sequences), s.protocol(), images=False)
                 .patient_id for i in range(s.patients)]
    pseudonym = Pseudonymizer.from_key(ROUNDTRIP_KEY)
    study = StudyRun(root, cfg)
    root.mkdir()
    study.config_path.write_text(dump_config(cfg))
    study.id_map_path.write_text("synthetic_id,patient_id\n" + "".join(f"{i},{pseudonym(i)}\n" for i in synthetic))
    with CohortWriter(study.ingested_dir, labels=["sarcoma", "leiomyoma"], positive_label="sarcoma") as w:
        for pid in [pseudonym(i) for i in synthetic] + list(extra_ids):
            w.add_patient(pid, "sarcoma")
            w.add_series(pid, "T2axi", _image(np.ones((4, 4, 4), np.float32)))
    return StudyRun(root), synthetic


def test_the_new_patient_never_shares_a_pseudonym_with_a_study_patient(tmp_path):
    import pydicom

    from sarcomri.demo import demo_config, new_patient
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.study_cohort import ROUNDTRIP_KEY

    cfg = demo_config(patients=24)
    cfg.synth = cfg.synth.model_copy(update={"size": 32, "slices": 8})
    study, synthetic = _demo_study(tmp_path / "study", cfg)
    folder, label = new_patient(tmp_path / "new-patient", cfg, lambda m: None, study=study)
    patient_id = pydicom.dcmread(next(p for p in folder.rglob("*") if p.is_file()), stop_before_pixels=True).PatientID
    assert patient_id == "NEW-SARC-0001" and patient_id not in synthetic and label in ("sarcoma", "leiomyoma")
    assert Pseudonymizer.from_key(ROUNDTRIP_KEY)(patient_id) not in set(study.cohort(check_files=False).patient_ids)


def test_a_new_patient_with_a_study_patients_pseudonym_is_refused(tmp_path):
    from sarcomri.demo import check_new_patient, demo_config
    from sarcomri.errors import SarcomriError
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.study_cohort import ROUNDTRIP_KEY

    cfg = demo_config(patients=24)
    study, synthetic = _demo_study(tmp_path / "study", cfg, [Pseudonymizer.from_key(ROUNDTRIP_KEY)("NEW-SARC-0001")])
    check_new_patient("NEW-SARC-0002", study)
    for clash in ("NEW-SARC-0001", synthetic[0]):  # the old demo's new patient was the study's SARC-0001
        with pytest.raises(SarcomriError, match="would share its id or pseudonym with a patient of the study"):
            check_new_patient(clash, study)

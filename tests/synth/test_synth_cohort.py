"""The synthetic cohort: folder contract, determinism, availability, clinical columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import make_patient, synthesise_cohort
from sarcomri.synth.tasks import TASKS, UTERINE_SEQUENCES

SMALL = Protocol(fov_mm=240.0, size=40, slices=8)


def _arrays(cohort: Cohort) -> dict[tuple[str, str], bytes]:
    out = {}
    for r in cohort.series.itertuples():
        out[(r.patient_id, r.sequence)] = sitk.GetArrayFromImage(cohort.read_image(r.patient_id, r.sequence)).tobytes()
        out[(r.patient_id, r.sequence, "mask")] = sitk.GetArrayFromImage(
            cohort.read_mask(r.patient_id, r.sequence)).tobytes()
    return out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Cohort:
    return synthesise_cohort(tmp_path_factory.mktemp("c") / "sarc", "sarcoma", 5, seed=4, protocol=SMALL)


def test_cohort_folder_contract(cohort):
    root = cohort.root
    assert {"sarcoma", "leiomyoma"} == set(cohort.patients.label) and cohort.positive_label == "sarcoma"
    for col in ("age", "site", "histology", "stage", "center", "diameter_mm", "degenerated", "irregular_margin"):
        assert col in cohort.patients.columns, col
    assert cohort.series["mask"].notna().all()  # a tumour mask for every series, on its own grid
    for r in cohort.series.itertuples():
        img, mask = cohort.read_image(r.patient_id, r.sequence), cohort.read_mask(r.patient_id, r.sequence)
        assert img.GetSize() == mask.GetSize() and img.GetDirection() == mask.GetDirection()
        assert img.GetPixelID() == sitk.sitkFloat32
    lat = pd.read_csv(root / "latent.csv")
    assert list(lat.patient_id) == cohort.patient_ids
    for col in ("diameter_mm", "margin", "t2_ratio", "heterogeneity", "necrosis", "adc", "enhancement",
                "degenerated", "component", "ideal_llr"):
        assert col in lat.columns, col
    reads = pd.read_csv(root / "readers.csv")
    assert list(reads.columns) == ["patient_id", "reader", "group", "sequence", "session", "confidence"]
    assert set(reads.patient_id) == set(cohort.patient_ids)
    assert (root / "ai.csv").is_file()
    assert 0.90 <= cohort.meta["ideal_observer_auc"] <= 0.95
    assert set(cohort.meta["ideal_observer_auc_by_sequence"]) == set(cohort.sequences) - {"DWI_b0"} | (
        {"DWI_b0"} & set(cohort.meta["provenance"]["sequences_requested"]))
    assert not list(root.parent.glob(".*partial"))  # atomic: nothing half-written left behind


def test_same_seed_same_bytes_other_seed_differs(cohort, tmp_path):
    again = synthesise_cohort(tmp_path / "again", "sarcoma", 5, seed=4, protocol=SMALL)
    assert _arrays(again) == _arrays(cohort)
    for name in ("patients.csv", "series.csv", "latent.csv", "readers.csv"):
        a = pd.read_csv(again.root / name).drop(columns=["image", "mask"], errors="ignore")
        b = pd.read_csv(cohort.root / name).drop(columns=["image", "mask"], errors="ignore")
        pd.testing.assert_frame_equal(a, b)
    other = synthesise_cohort(tmp_path / "other", "sarcoma", 5, seed=5, protocol=SMALL)
    a, b = _arrays(other), _arrays(cohort)
    assert all(a[k] != b[k] for k in set(a) & set(b))


def test_patient_does_not_depend_on_cohort_size_or_other_sequences():
    task = TASKS["sarcoma"]
    one = make_patient(task, 3, 9, ("T2axi",), SMALL)
    more = make_patient(task, 3, 9, ("T2axi", "ADC", "T2sag", "DWI_b0", "DWI_b1000"), SMALL)
    assert "T2axi" in one.series and "T2axi" in more.series
    for a, b in zip(one.series["T2axi"], more.series["T2axi"], strict=True):
        assert sitk.GetArrayFromImage(a).tobytes() == sitk.GetArrayFromImage(b).tobytes()
    assert {k: v for k, v in one.latent.items() if k != "sequences"} == {
        k: v for k, v in more.latent.items() if k != "sequences"}


def test_availability_by_centre_and_never_all_sequences():
    task = TASKS["sarcoma"]
    rows = [make_patient(task, i, 1, UTERINE_SEQUENCES, SMALL, images=False).latent for i in range(600)]
    table = pd.DataFrame(rows)
    have = {s: table.sequences.str.split("+").apply(lambda lst, s=s: s in lst) for s in UTERINE_SEQUENCES}
    # T2 axial and sagittal 98%, DWI 97% (SYNTHETIC.md); binomial SE 0.006-0.007 at n = 600
    assert have["T2axi"].mean() == pytest.approx(0.98, abs=0.025)
    assert have["T2sag"].mean() == pytest.approx(0.98, abs=0.025)
    assert have["ADC"].mean() == pytest.approx(0.97, abs=0.025)
    assert (have["ADC"] == have["DWI_b0"]).all() and (have["ADC"] == have["DWI_b1000"]).all()
    n_have = sum(h.astype(int) for h in have.values())
    assert n_have.max() < len(UTERINE_SEQUENCES)  # no patient has all 16 (15 types, DWI as two b-values)
    assert not have["fsT2axi"][table.center == "A"].any() and have["fsT2axi"][table.center == "B"].mean() > 0.5
    assert set(table.center) == {"A", "B", "C"}


def test_carcinosarcoma_availability_and_prevalence():
    task = TASKS["carcinosarcoma"]
    rows = pd.DataFrame([make_patient(task, i, 2, task.default_sequences, SMALL, images=False).latent
                         for i in range(662)])
    assert (rows.label == "carcinosarcoma").sum() == pytest.approx(104, abs=1)  # 52:279 twice over
    adc = rows.sequences.str.contains("ADC")
    assert adc.mean() == pytest.approx(42 / 52, abs=0.05)  # ADC in 42 of 52 carcinosarcomas
    assert rows.sequences.str.contains("T2axi").all()  # T2WI in all 52


def test_segmentation_volumes_follow_the_published_distribution():
    from sarcomri.synth.tasks import segmentation_patient

    vols = np.array([segmentation_patient(np.random.default_rng(i))[1]["volume_cm3"] for i in range(3000)])
    assert np.median(vols) == pytest.approx(4.2, rel=0.1)  # median 4.2 cm3, range 0.14 to 270
    assert vols.min() >= 0.14 and vols.max() <= 270


def test_segmentation_cohort(tmp_path):
    c = synthesise_cohort(tmp_path / "seg", "segmentation", 3, seed=0, protocol=SMALL)
    assert c.positive_label is None and c.meta["ideal_observer_auc"] is None
    assert set(c.sequences) == {"DWI_b0", "DWI_b1000", "ADC"}
    assert {"site", "histology", "volume_cm3"} <= set(c.patients.columns)
    assert not (c.root / "readers.csv").exists()


def test_bad_requests_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="T3axi"):
        synthesise_cohort(tmp_path / "x", "sarcoma", 2, sequences=["T3axi"], protocol=SMALL)
    with pytest.raises(InputError, match="unknown task"):
        synthesise_cohort(tmp_path / "x", "lymphoma", 2, protocol=SMALL)

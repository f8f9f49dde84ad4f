"""The soft-tissue sarcoma (STS) segmentation study at smoke scale: the synthetic ``sts`` cohort (histologies in
the published proportions, sites, T1/T2FS/T1CEFS co-registered), a 2-fold cross-validation of single-sequence and
combined models, the paper tables (Dice, F2, ASSD, HD95 as median and IQR overall, by site and by histology) and
the nnU-Net export of the run's own folds."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.synth.acquisition import Protocol, grid_for
from sarcomri.synth.cohort import synthesise_cohort
from sarcomri.synth.tasks import STS_COUNTS, STS_SITES, TASKS, sts_histology, sts_patient

SMALL = Protocol(fov_mm=160.0, size=48, slices=16)
MODELS = ["T1", "T2FS", "T1CEFS", "T1+T2FS", "T1+T2FS+T1CEFS"]
#: The smoke scale of the preset (docs/segmentation3d.md), changing only keys a smoke scale may change
#: (sarcomri.scale.SMOKE_KEYS): a tiny network whose patch is the whole 16 x 48 x 48 image (one window per
#: case, so mirrored sliding-window inference stays cheap), 1 epoch of 2 steps, one thread.
SMOKE = {
    "name": "sts-smoke", "sequences": MODELS, "folds": 2, "workers": 1, "stratify_by": ["histology"],
    "plan": {"max_patch_voxels": 16 * 48 * 48, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16,
             "max_depth": 3},
    "train": {"epochs": 1, "iterations": 2, "threads": 1},
    "infer": {"threads": 1},
}


@pytest.fixture(scope="module")
def sts_cohort(tmp_path_factory) -> tuple[Cohort, float]:
    """16 STS patients at 48 x 48 x 16 voxels, and the seconds it took."""
    start = time.perf_counter()
    cohort = synthesise_cohort(tmp_path_factory.mktemp("sts") / "cohort", "sts", 16, seed=0, protocol=SMALL)
    return cohort, time.perf_counter() - start


@pytest.fixture(scope="module")
def sts_run(sts_cohort, tmp_path_factory):
    """The smoke cross-validation of the five models (one thread: a second one mostly spins on a shared CPU);
    (run folder, per-case table, seconds)."""
    import torch

    from sarcomri.seg3d.config import Seg3DConfig
    from sarcomri.seg3d.crossval import run_crossval

    cohort, _ = sts_cohort
    run = tmp_path_factory.mktemp("sts-run") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        per_case = run_crossval(Seg3DConfig(**{**SMOKE, "cohort": str(cohort.root)}), run)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    return run, per_case, seconds


# ------------------------------------------------------------------------------------------ the cohort


def test_histologies_follow_the_published_counts_for_any_cohort_size():
    total = sum(STS_COUNTS.values())
    picks = [sts_histology(i) for i in range(total)]
    assert pd.Series(picks).value_counts().to_dict() == STS_COUNTS  # 299 patients: exactly 67/55/60/70/47
    for n in (16, 24, 50):
        counts = pd.Series(picks[:n]).value_counts()
        for name, k in STS_COUNTS.items():
            assert abs(counts.get(name, 0) - n * k / total) < 1.0 + 1e-9


def test_histology_changes_appearance():
    """Myxoid tumours are darker on T1 and brighter on T2FS than leiomyosarcoma and UPS; the myxoma enhances
    least and is smallest and smoothest; UPS is the most necrotic; myxofibrosarcoma the most irregular and the
    most often superficial."""
    rows = []
    for i in range(1500):
        lat, clin = sts_patient(i, np.random.default_rng(i))
        rows.append({**lat, **clin})
    t = pd.DataFrame(rows).groupby("histology").median(numeric_only=True)
    myxoid = ["myxoid_liposarcoma", "intramuscular_myxoma"]
    solid = ["leiomyosarcoma", "undifferentiated_pleomorphic_sarcoma"]
    assert t.loc[myxoid, "t1_ratio"].max() < 0.8 < 0.95 < t.loc[solid, "t1_ratio"].min()
    assert t.loc[myxoid, "t2_ratio"].min() > 3.5 > 2.8 > t.loc[solid, "t2_ratio"].max()
    assert t["enhancement"].idxmin() == "intramuscular_myxoma" and t["diameter_mm"].idxmin() == "intramuscular_myxoma"
    assert t["margin"].idxmin() == "intramuscular_myxoma" and t["margin"].idxmax() == "myxofibrosarcoma"
    assert t["necrosis"].idxmax() == "undifferentiated_pleomorphic_sarcoma"
    assert t["superficial"].idxmax() == "myxofibrosarcoma"


def test_tumour_signal_is_relative_to_muscle():
    from sarcomri.synth.appearance import MUSCLE, SIGNAL, tumour_signal

    lat = {"t1_ratio": 0.6, "t2_ratio": 4.0, "enhancement": 0.7}
    assert tumour_signal("T1", lat, MUSCLE) == pytest.approx(0.6 * SIGNAL["T1"][MUSCLE])
    assert tumour_signal("fsT2", lat, MUSCLE) == pytest.approx(4.0 * SIGNAL["fsT2"][MUSCLE])
    assert tumour_signal("fsT1CE", lat, MUSCLE) == pytest.approx(0.7 * SIGNAL["fsT1CE"][MUSCLE])


def test_default_grid_is_the_published_t1_grid():
    grid = grid_for("T1", TASKS["sts"].protocol)
    assert grid.spacing[0] == pytest.approx(0.98, abs=0.01) and grid.spacing[2] == pytest.approx(3.3, abs=0.05)
    assert {grid_for(s, TASKS["sts"].protocol) for s in ("T1", "T2FS", "T1CEFS")} == {grid}  # one grid


def test_sts_cohort(sts_cohort):
    cohort, seconds = sts_cohort
    assert seconds < 30  # about 1 s on the project's 2-core CPU when idle
    assert cohort.meta["task"] == "sts" and cohort.positive_label is None
    assert set(cohort.sequences) == {"T1", "T2FS", "T1CEFS"}
    p = cohort.patients
    assert {"site", "histology", "depth", "diameter_mm", "volume_cm3"} <= set(p.columns)
    assert set(p["site"]) <= set(STS_SITES) and set(p["label"]) == {"tumour"}
    assert p["patient_id"].str.match(r"^STS-\d{4}$").all()
    assert len(cohort.series) == 3 * 16  # every patient has the three sequences
    for pid in cohort.patient_ids[:4]:
        images = [cohort.read_image(pid, s) for s in ("T1", "T2FS", "T1CEFS")]
        masks = [sitk.GetArrayFromImage(cohort.read_mask(pid, s)) for s in ("T1", "T2FS", "T1CEFS")]
        assert len({(im.GetSize(), im.GetSpacing(), im.GetOrigin()) for im in images}) == 1  # co-registered
        assert all((m == masks[0]).all() for m in masks) and masks[0].sum() > 20
    latent = pd.read_csv(cohort.root / "latent.csv")
    assert (latent["component"] == p["histology"]).all()


def test_same_seed_same_cohort(sts_cohort, tmp_path):
    cohort, _ = sts_cohort
    again = synthesise_cohort(tmp_path / "again", "sts", 3, seed=0, protocol=SMALL)
    for pid in again.patient_ids:
        a = sitk.GetArrayFromImage(again.read_image(pid, "T2FS"))
        b = sitk.GetArrayFromImage(cohort.read_image(pid, "T2FS"))
        assert np.array_equal(a, b)  # patient i does not depend on the cohort size


def test_dicom_round_trip_keeps_the_sts_sequence_names(tmp_path):
    from sarcomri.cohort.sequences import SequenceMap
    from sarcomri.synth.dicom import patient_series

    cohort = synthesise_cohort(tmp_path / "c", "sts", 1, seed=2, protocol=Protocol(160.0, 24, 8))
    smap = SequenceMap.load()
    names = []
    for _folder, slices, _seg in patient_series(cohort, cohort.patient_ids[0], 2):
        ds = slices[0]
        names.append(smap.name_series(ds.SeriesDescription, ds.ProtocolName, ds.ImageOrientationPatient).name)
    assert names == ["T1", "T2FS", "T1CEFS"]


# ------------------------------------------------------------------------------ cross-validation and tables


@pytest.mark.slow
def test_smoke_crossval_runs_every_model(sts_run):
    run, per_case, _seconds = sts_run  # about 35 s on the project's 2-core CPU under load
    assert per_case.groupby("sequence").size().to_dict() == dict.fromkeys(MODELS, 16)
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    assert splits.groupby("patient_id")["role"].apply(lambda r: (r == "test").sum()).eq(1).all()
    two = sitk.ReadImage(str(next((run / "predictions" / "T1+T2FS").glob("*.nii.gz"))))
    assert two.GetSize() == (48, 48, 16)  # on the patient's own grid
    plan = json.loads((run / "models" / "T1+T2FS" / "fold0-rep0" / "plan.json").read_text())
    assert plan["sequences"] == ["T1", "T2FS"] and plan["patch_size"] == [16, 48, 48]


@pytest.mark.slow
def test_paper_tables_are_medians_and_iqr_per_model_site_and_histology(sts_run, sts_cohort):
    from sarcomri.report.papertables import read_paper_tables

    run, per_case, _ = sts_run
    cohort, _ = sts_cohort
    tables = {entry.name: (entry, frame) for entry, frame in read_paper_tables(run / "paper")}
    assert list(tables) == ["segmentation_overall", "segmentation_by_site", "segmentation_by_histology"]
    overall = tables["segmentation_overall"][1]
    assert overall["model"].tolist() == MODELS and (overall["n"] == 16).all()
    merged = per_case.merge(cohort.patients[["patient_id", "site", "histology"]], on="patient_id")
    for name, col in (("segmentation_by_site", "site"), ("segmentation_by_histology", "histology")):
        entry, frame = tables[name]
        assert "median (IQR)" in entry.title and "F2 = F-beta with beta 2" in entry.note
        assert frame.groupby("model")["n"].sum().to_dict() == dict.fromkeys(MODELS, 16)
        for row in frame.sample(3, random_state=0).itertuples():
            sub = merged[(merged["sequence"] == row.model) & (merged[col] == getattr(row, col))]
            assert row.n == len(sub)
            assert row.dice_median == pytest.approx(np.median(sub["dice"]))
            q1, q3 = np.percentile(sub["f2"], [25, 75])
            assert (row.f2_q1, row.f2_q3) == pytest.approx((q1, q3))
            both = sub[~sub["empty_pred"].astype(bool) & ~sub["empty_ref"].astype(bool)]
            assert row.n_distance == len(both)
            if len(both):
                assert row.hd95_mm_median == pytest.approx(np.median(both["hd95_mm"]))
                assert row.assd_mm_median == pytest.approx(np.median(both["assd_mm"]))


@pytest.mark.slow
def test_per_case_f2_assd_hd95_match_reference_implementations(sts_run, sts_cohort):
    """F2 is sklearn's F-beta (beta 2) on voxels; ASSD and HD95 in mm are MONAI's on the mask grid."""
    from sklearn.metrics import fbeta_score

    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    run, per_case, _ = sts_run
    cohort, _ = sts_cohort
    rows = per_case[per_case["dice"] > 0].sort_values("dice").tail(3)  # both masks non-empty
    assert len(rows) == 3
    for row in rows.itertuples():
        ref_img = cohort.read_mask(row.patient_id, row.sequence.split("+")[0])
        ref = sitk.GetArrayFromImage(ref_img) > 0
        path = run / "predictions" / row.sequence / f"{row.case}.nii.gz"
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0
        assert row.f2 == pytest.approx(fbeta_score(ref.ravel(), pred.ravel(), beta=2))
        spacing = list(ref_img.GetSpacing()[::-1])
        y_pred = torch.from_numpy(np.stack([~pred, pred])[None])
        y = torch.from_numpy(np.stack([~ref, ref])[None])
        hd95 = metrics.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=spacing).item()
        assd = metrics.compute_average_surface_distance(y_pred, y, symmetric=True, spacing=spacing).item()
        assert row.hd95_mm == pytest.approx(hd95, rel=1e-5) and row.assd_mm == pytest.approx(assd, rel=1e-5)


def test_segmentation_section_shows_each_model_by_site_and_histology(sts_cohort, tmp_path):
    """The report keeps the models apart within a site or histology (not pooled over the sequences)."""
    import yaml

    from sarcomri.io.atomic import write_csv
    from sarcomri.report.segmentation import segmentation_section
    from sarcomri.seg3d.evaluate import evaluate_folder

    cohort, _ = sts_cohort
    seg = tmp_path / "seg"
    tables = []
    for k, seq in enumerate(("T1", "T2FS")):
        pred_dir = seg / "predictions" / seq
        pred_dir.mkdir(parents=True)
        for pid in cohort.patient_ids:
            mask = sitk.Cast(cohort.read_mask(pid, seq) != 0, sitk.sitkUInt8)
            sitk.WriteImage(sitk.BinaryDilate(mask, [k, k, 0]), str(pred_dir / f"{pid}.nii.gz"))
        tables.append(evaluate_folder(pred_dir, cohort, seq).assign(fold=0))
    (seg / "config.yaml").write_text(yaml.safe_dump({"cohort": str(cohort.root)}))
    write_csv(seg / "tables" / "per_case.csv", pd.concat(tables, ignore_index=True))
    section = segmentation_section([seg], tmp_path / "figures")
    by = {t.title: t for t in section.tables}
    site = by["Segmentation per sequence by site: median (IQR)"].frame
    assert set(site.columns) >= {"model", "site", "n", "Dice", "F2", "ASSD (mm)", "HD95 (mm)"}
    t1_sites = site[site["model"] == "T1"]
    assert (t1_sites["Dice"] == "1.00 (1.00-1.00)").all()  # T1: the reference itself
    assert site.groupby("model")["n"].sum().to_dict() == {"T1": 16, "T2FS": 16}
    assert "Segmentation per sequence by histology: median (IQR)" in by


# ------------------------------------------------------------------------------ nnU-Net export of the folds


@pytest.mark.slow
def test_nnunet_export_uses_the_runs_folds(sts_run, tmp_path):
    from sarcomri.io.nnunet import export_run_folds

    run, _, _ = sts_run
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    exports = export_run_folds(run, tmp_path / "raw", 601, "STS")
    assert [e.folder.name for e in exports] == [
        "Dataset601_STS_T1", "Dataset602_STS_T2FS", "Dataset603_STS_T1CEFS", "Dataset604_STS_T1-T2FS",
        "Dataset605_STS_T1-T2FS-T1CEFS"]
    for exp in exports:
        folds = json.loads((exp.folder / "splits_final.json").read_text())
        assert len(folds) == splits["fold"].nunique() == 2
        for k, fold in enumerate(folds):
            test = set(splits.loc[(splits["fold"] == k) & (splits["role"] == "test"), "patient_id"])
            assert set(fold["val"]) == test and set(fold["train"]) == set(splits["patient_id"]) - test
        vals = [p for fold in folds for p in fold["val"]]
        assert len(vals) == len(set(vals)) == 16  # no patient validated in two folds
        meta = json.loads((exp.folder / "dataset.json").read_text())
        assert meta["sarcomri_folds_from"] == str(run) and meta["numTraining"] == 16
    both = exports[3].folder
    assert meta["channel_names"] == {"0": "T1", "1": "T2FS", "2": "T1CEFS"}
    assert len(list((both / "imagesTr").glob("*_0001.nii.gz"))) == 16
    assert not list((both / "imagesTr").glob("*_0002.nii.gz"))


@pytest.mark.slow
def test_export_nnunet_cli_folds_from(sts_run, tmp_path):
    from typer.testing import CliRunner

    from sarcomri.cli.main import app

    run, _, _ = sts_run
    res = CliRunner().invoke(app, ["export", "nnunet", "--folds-from", str(run), "--out", str(tmp_path),
                                   "--id", "610", "--name", "STS", "--sequences", "T1+T2FS", "--numbered"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "Dataset610_STS"
    cases = pd.read_csv(folder / "cases.csv", dtype=str)
    folds = json.loads((folder / "splits_final.json").read_text())
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    patient = dict(zip(cases["case"], cases["patient_id"], strict=True))
    for k, fold in enumerate(folds):
        test = set(splits.loc[(splits["fold"] == k) & (splits["role"] == "test"), "patient_id"])
        assert {patient[c] for c in fold["val"]} == test
    bad = CliRunner().invoke(app, ["export", "nnunet", "--folds-from", str(run), "--out", str(tmp_path),
                                   "--id", "611", "--name", "X", "--sequences", "T2FS+T1"])
    assert bad.exit_code != 0 and "has no model 'T2FS+T1'" in str(bad.exception)

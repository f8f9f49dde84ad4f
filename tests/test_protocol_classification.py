"""The papers' classification protocols, piece by piece: per-sequence protocols, optimiser constants, whole-image
slices, a sequence's own validation patients, slice-balanced folds, several examinations per subject, the
ensemble likelihood's two readings and single models vs ensembles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from sarcomri.cohort import splits as sp
from sarcomri.config import ClassificationConfig, SliceConfig
from sarcomri.data.augment import Augmentation, get_preset
from sarcomri.infer.aggregate import accuracy_ss_avg, loo_ensembles, patient_predictions, single_vs_ensemble
from sarcomri.prep.prepare2d import SliceSpec, slices_from_volume
from sarcomri.prep.slices import body_box, body_threshold
from sarcomri.runs import slice_spec
from sarcomri.train.classifier import _optimizer
from sarcomri.train.config import TrainConfig


def _cfg(**extra) -> ClassificationConfig:
    return ClassificationConfig.model_validate({"name": "p", "cohort": "c", "sequences": ["T2axi", "ADC"], **extra})


def _patients(n_pos=20, n_neg=40, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_pos + n_neg
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)],
                         "label": ["sarcoma"] * n_pos + ["leiomyoma"] * n_neg,
                         "center": rng.choice(["A", "B"], size=n)})


# ----------------------------------------------------------------------------------------------- config
def test_per_sequence_protocol_overrides_epochs_and_val_ratio_and_refuses_unknown_sequences():
    cfg = _cfg(train={"epochs": 7}, per_sequence={"T2axi": {"epochs": 100, "val_ratio": 0.2},
                                                  "ADC": {"val_ratio": 0.1}})
    assert cfg.train_for("T2axi").epochs == 100 and cfg.train_for("ADC").epochs == 7
    assert cfg.train_for("T2axi").lr == cfg.train.lr  # only the epochs change
    assert cfg.own_val_ratio("T2axi") == 0.2 and cfg.own_val_ratio("ADC") == 0.1
    assert _cfg().own_val_ratio("T2axi") is None and _cfg().train_for("ADC").epochs == 10
    with pytest.raises(ValidationError, match="per_sequence names \\['fsT1CEaxi'\\]"):
        _cfg(per_sequence={"fsT1CEaxi": {"epochs": 200}})
    with pytest.raises(ValidationError):
        _cfg(per_sequence={"T2axi": {"epochs": 100, "patience": 3}})  # unknown key
    with pytest.raises(ValidationError):
        _cfg(per_sequence={"T2axi": {"val_ratio": 1.0}})


def test_ablation_ensemble_and_balance_sections_validate():
    cfg = _cfg(ablation={"epochs": [200, 50, 100, 50], "val_ratios": [0.2, 0.1]}, ensemble={"likelihood": "vote_share"})
    assert cfg.ablation.epochs == [50, 100, 200] and cfg.ablation.val_ratios == [0.1, 0.2]
    assert cfg.ablation.metric == "val_loss" and cfg.ensemble.likelihood == "vote_share"
    assert _cfg().ablation is None and _cfg().ensemble.likelihood == "mean_probability"
    for bad in ({"epochs": []}, {"epochs": [0, 5]}, {"val_ratios": [0.0]}, {"metric": "accuracy"}):
        with pytest.raises(ValidationError):
            _cfg(ablation=bad)
    assert _cfg().splits.balance == "patients" and _cfg().slices.crop == "tumour"
    with pytest.raises(ValidationError, match="balance: slices applies to k-fold"):
        _cfg(splits={"scheme": "holdout", "balance": "slices"})


def test_optimiser_constants_reach_the_adam_family():
    net = torch.nn.Linear(3, 2)
    assert TrainConfig().betas == (0.9, 0.999) and TrainConfig().eps == 1e-8
    for name, cls in (("adam", torch.optim.Adam), ("amsgrad", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        opt = _optimizer(net, TrainConfig(optimizer=name, betas=[0.8, 0.99], eps=1e-7))
        group = opt.param_groups[0]
        assert type(opt) is cls and group["betas"] == (0.8, 0.99) and group["eps"] == 1e-7
        assert group["amsgrad"] is (name == "amsgrad")
    default = _optimizer(net, TrainConfig()).param_groups[0]
    assert default["betas"] == (0.9, 0.999) and default["eps"] == 1e-8
    with pytest.raises(ValidationError, match="betas must lie in"):
        TrainConfig(betas=[0.9, 1.0])
    with pytest.raises(ValidationError):
        TrainConfig(eps=0)


def test_carcinosarcoma_augmentation_is_the_papers():
    assert get_preset("carcinosarcoma") == Augmentation(hflip=True, rotation_deg=4.5, shear=0.05, zoom=0.05)


# ------------------------------------------------------------------------------------- whole-image slices
def _body_volume() -> tuple[np.ndarray, np.ndarray]:
    """(1, 5, 64, 64): a body of 100 at rows 10-29, columns 4-43 on a background of 1 with one bright noise
    voxel far outside it; tumour on slices 1-3."""
    vol = np.ones((1, 5, 64, 64), np.float32)
    vol[0, :, 10:30, 4:44] = 100.0
    vol[0, :, 60, 60] = 150.0  # one noisy voxel: not body
    mask = np.zeros((5, 64, 64), np.uint8)
    mask[1:4, 15:20, 10:15] = 1
    return vol, mask


def test_body_box_is_the_squared_bounding_box_of_the_body_without_noise():
    vol, _ = _body_volume()
    t = body_threshold(vol[0])
    assert 1.0 < t < 100.0
    y0, y1, x0, x1 = body_box(vol[0, 0], t)
    assert (x0, x1) == (4, 44) and y1 - y0 == 40 and (y0 + y1) / 2 == pytest.approx(20.0)  # 20 rows, centred
    empty = body_box(np.zeros((8, 12)), 0.5)
    assert empty[1] - empty[0] == empty[3] - empty[2] == 12  # no body: the whole slice, made square


def test_crop_none_cuts_the_whole_field_of_view_and_keeps_tumour_slices():
    vol, mask = _body_volume()
    cfg = SliceConfig(crop="none", size=40, normalisation="none", mode="tumour")
    spec = slice_spec("T2axi", cfg)
    assert spec.crop_to_tumour is False and slice_spec("T2axi", SliceConfig()).crop_to_tumour is True
    out = slices_from_volume(vol, mask, spec)
    assert [s.slice_index for s in out] == [1, 2, 3] and [s.central for s in out] == [False, True, False]
    img = out[0].image[0]
    assert img.shape == (40, 40)
    # the body fills the width; 10 padded rows above and below it hold the background
    assert np.all(img[20, :] == 100.0) and np.all(img[:9, :] == 1.0) and np.all(img[31:, :] == 1.0)
    assert out[0].mask.sum() == 25  # the tumour mask cut by the same box (40 -> 40: unscaled)
    tumour = slices_from_volume(vol, mask, SliceSpec(("T2axi",), size=40, normalisation="none"))
    assert tumour[0].mask.mean() > 5 * out[0].mask.mean()  # the tumour crop: a close square around it instead


# ---------------------------------------------------------------------------- a sequence's own validation
def test_resplit_validation_keeps_the_tests_and_carves_stratified_validation():
    pts = _patients()
    base = sp.kfold(pts, n_folds=4, n_repeats=2, seed=5, val_ratio=0.2)
    assert sp.resplit_validation(base, pts, 0.2, seed=5).equals(base)  # the k-fold's own carve, given back
    own = sp.resplit_validation(base, pts, 0.1, seed=5)
    sp.check_no_leakage(own)
    test = ["repeat", "fold", "patient_id"]
    pd.testing.assert_frame_equal(own[own.role == "test"][test].reset_index(drop=True),
                                  base[base.role == "test"][test].reset_index(drop=True))
    n = own.groupby(["repeat", "fold", "role"]).size().unstack()
    assert (n["val"] == 4).all() and (n["train"] == 41).all()  # round(0.1 * 45)
    lab = pts.set_index("patient_id")["label"]
    val_pos = own[own.role == "val"].assign(pos=lambda d: d.patient_id.map(lab) == "sarcoma")
    assert set(val_pos.groupby(["repeat", "fold"]).pos.sum()) == {1}  # 15 of 45 sarcomas: 1.3 of 4
    assert sp.resplit_validation(base, pts, 0.1, seed=5).equals(own)
    assert not sp.resplit_validation(base, pts, 0.1, seed=6).equals(own)


# -------------------------------------------------------------------------------- slice-balanced folds
def test_slice_balanced_folds_are_more_uniform_stratified_and_differ_by_repeat():
    pts = _patients()
    rng = np.random.default_rng(0)
    counts = dict(zip(pts.patient_id, (rng.lognormal(2.0, 1.0, len(pts)) + 1).astype(int), strict=True))
    spread = {}
    for balance in ("patients", "slices"):
        s = sp.kfold(pts, n_folds=6, n_repeats=3, seed=2, val_ratio=0.1, balance=balance, slice_counts=counts)
        sp.check_no_leakage(s)
        test = s[s.role == "test"].assign(n=lambda d: d.patient_id.map(counts),
                                           pos=lambda d: d.patient_id.map(pts.set_index("patient_id").label))
        totals = test.groupby(["repeat", "fold"]).n.sum().unstack()
        spread[balance] = (totals.max(axis=1) - totals.min(axis=1)).max()
        per_class = test.groupby(["repeat", "fold", "pos"]).size().unstack()
        assert (per_class.max() - per_class.min()).max() <= 1  # stratified: 3 or 4 sarcomas per fold
        if balance == "slices":
            folds = test.set_index(["repeat", "patient_id"]).fold
            assert (folds.xs(0).sort_index() != folds.xs(1).sort_index()).any()  # the repeats differ
    assert spread["slices"] <= 2 < spread["patients"] / 5
    with pytest.raises(sp.SarcomriError, match="no tumour slice count"):
        sp.kfold(pts, n_folds=6, balance="slices", slice_counts={"P000": 3})


def test_slice_balanced_folds_swap_within_a_stratum_only():
    stratum = np.array(["a"] * 6 + ["b"] * 6)
    counts = np.array([100, 1, 1, 1, 1, 1, 50, 50, 1, 1, 1, 1])
    fold = sp.slice_balanced_folds(stratum, counts, 3, seed=0)
    assert all((pd.Series(fold[stratum == s]).value_counts() == 2).all() for s in "ab")
    totals = np.bincount(fold, weights=counts, minlength=3)
    assert sorted(totals) == [53, 53, 103]  # the best with 2 + 2 per fold: 100 + 1 + 1 + 1 against 50 + 1 + 1 + 1
    assert (fold == sp.slice_balanced_folds(stratum, counts, 3, seed=0)).all()


# ------------------------------------------------------------------------------ several examinations
def _examinations() -> pd.DataFrame:
    """30 subjects (10 sarcoma), each with 1 to 3 examinations (rows); one row without a subject_id."""
    rows = []
    for s in range(30):
        for e in range(1 + s % 3):
            rows.append({"patient_id": f"S{s:02d}E{e}", "label": "sarcoma" if s < 10 else "leiomyoma",
                         "subject_id": f"S{s:02d}", "center": "AB"[s % 2]})
    rows.append({"patient_id": "LONE", "label": "leiomyoma", "subject_id": None, "center": "A"})
    return pd.DataFrame(rows)


def _one_role_per_subject(table: pd.DataFrame) -> bool:
    subject = table.patient_id.str[:3].where(table.patient_id != "LONE", "LONE")
    return bool((table.assign(s=subject).groupby(["repeat", "fold", "s"]).role.nunique() == 1).all())


def test_every_scheme_keeps_a_subjects_examinations_together():
    pts = _examinations()
    counts = {p: 2 for p in pts.patient_id}
    tables = {"kfold": sp.kfold(pts, 5, 2, 0, 0.2), "holdout": sp.holdout(pts, 1 / 6, 0, 0.2),
              "groups": sp.leave_group_out(pts, "center", 0.2, 0),
              "slices": sp.kfold(pts, 5, 1, 0, 0.2, balance="slices", slice_counts=counts)}
    tables["resplit"] = sp.resplit_validation(tables["kfold"], pts, 0.3, seed=1)
    for name, table in tables.items():
        sp.check_no_leakage(table)
        assert _one_role_per_subject(table), name
        assert set(table.patient_id) == set(pts.patient_id) and "subject_id" in table.columns
    assert (tables["kfold"].subject_id == tables["kfold"].patient_id.str[:3].where(
        tables["kfold"].patient_id != "LONE", "LONE")).all()
    # stratified by the subject's label: 10 sarcoma subjects over 5 folds, 2 each
    test = tables["kfold"][tables["kfold"].role == "test"].drop_duplicates(["repeat", "subject_id"])
    pos = test.assign(pos=test.subject_id.str[:3].isin([f"S{s:02d}" for s in range(10)]))
    assert set(pos.groupby(["repeat", "fold"]).pos.sum()) == {2}
    nested = sp.nested_subsets(pts, (0.5, 1.0), seed=0)
    half = nested[nested.fraction == 0.5].patient_id
    subjects = half.str[:3]
    assert all(set(pts.patient_id[pts.patient_id.str[:3] == s]) <= set(half) for s in subjects if s != "LON")


def test_leakage_check_fails_on_a_subject_split_across_roles():
    table = sp.kfold(_examinations(), 5, 1, 0, 0.2)
    first = table[(table.subject_id == "S02") & (table.fold == 0)].index
    bad = table.copy()
    bad.loc[first[0], "role"] = "val" if bad.loc[first[0], "role"] != "val" else "train"
    with pytest.raises(sp.LeakageError, match="subject S02 is split across roles"):
        sp.check_no_leakage(bad)


def test_tumour_slice_counts_sum_the_masks_of_the_sequences(tiny_cohort):
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.prep.prepare2d import tumour_slice_counts

    cohort = Cohort.load(tiny_cohort)
    assert tumour_slice_counts(cohort, ["T2axi"]) == {p: 2 for p in cohort.patient_ids}  # masks on z 2-3
    assert tumour_slice_counts(cohort, ["ADC"]) == {p: 0 for p in cohort.patient_ids}  # ADC has no masks
    assert tumour_slice_counts(cohort, ["T2axi+ADC"]) == {p: 2 for p in cohort.patient_ids}


# ------------------------------------------------------------------------- ensembles and single models
def _patient_preds() -> pd.DataFrame:
    """3 repeats x 2 folds; A (label 1) and B (label 0) tested in fold 0, C (1) and D (0) in fold 1."""
    p = {"A": [0.9, 0.4, 0.6], "B": [0.2, 0.7, 0.1], "C": [0.8, 0.9, 0.3], "D": [0.6, 0.2, 0.4]}
    rows = []
    for pid, probs in p.items():
        fold = 0 if pid in "AB" else 1
        for r, pr in enumerate(probs):
            rows.append(dict(model=f"T2axi/fold{fold}-rep{r}", sequence="T2axi", repeat=r, fold=fold, split="test",
                             patient_id=pid, label=int(pid in "AC"), p_positive=pr, n_slices=1))
    return pd.DataFrame(rows)


def test_ensemble_likelihood_mean_probability_and_vote_share():
    pp = _patient_preds()
    mean = loo_ensembles(pp).set_index(["ensemble", "patient_id"]).likelihood
    votes = loo_ensembles(pp, likelihood="vote_share").set_index(["ensemble", "patient_id"]).likelihood
    assert mean[(0, "A")] == pytest.approx(0.5) and votes[(0, "A")] == pytest.approx(0.5)  # 0.4, 0.6
    assert mean[(1, "A")] == pytest.approx(0.75) and votes[(1, "A")] == pytest.approx(1.0)  # 0.9, 0.6
    assert mean[(2, "B")] == pytest.approx(0.45) and votes[(2, "B")] == pytest.approx(0.5)  # 0.2, 0.7
    assert mean[(0, "D")] == pytest.approx(0.3) and votes[(0, "D")] == pytest.approx(0.0)  # 0.2, 0.4
    with pytest.raises(ValueError, match="unknown ensemble likelihood"):
        loo_ensembles(pp, likelihood="median")


def test_single_models_vs_ensembles_by_hand():
    assert accuracy_ss_avg(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.1, 0.6])) == (0.5, 0.5)
    acc, ss = accuracy_ss_avg(np.array([1, 1]), np.array([0.9, 0.2]))
    assert acc == 0.5 and np.isnan(ss)
    pp = _patient_preds()
    table = single_vs_ensemble(pp, loo_ensembles(pp)).set_index("kind")
    single, ens = table.loc["single model"], table.loc["ensemble"]
    # the 6 fold models, each on its 2 test patients (calls at p >= 0.5):
    # rep0 f0 A.9 B.2 -> 1; rep1 f0 A.4 B.7 -> 0; rep2 f0 A.6 B.1 -> 1; rep0 f1 C.8 D.6 -> .5; rep1 f1 C.9 D.2 -> 1;
    # rep2 f1 C.3 D.4 -> .5
    assert single["n"] == 6 and single["accuracy_min"] == 0.0 and single["accuracy_max"] == 1.0
    assert single["accuracy_median"] == pytest.approx(0.75) and single["ss_avg_median"] == pytest.approx(0.75)
    # ensembles (means): e0 A.5 B.4 C.6 D.3 -> 1; e1 A.75 B.15 C.55 D.5 -> .75; e2 A.65 B.45 C.85 D.4 -> 1
    assert ens["n"] == 3 and ens["accuracy_min"] == pytest.approx(0.75) and ens["accuracy_median"] == 1.0
    assert ens["ss_avg_max"] == 1.0 and list(table.columns[:2]) == ["sequence", "n"]


def test_patient_predictions_feed_the_ensembles_unchanged():
    pp = _patient_preds()
    slices = pp.drop(columns="n_slices").assign(slice_index=0, central=True)
    again = patient_predictions(slices, "central")
    pd.testing.assert_frame_equal(loo_ensembles(again), loo_ensembles(pp))


def _fit_tiny(select: str) -> tuple[object, torch.nn.Module, list[dict]]:
    """A linear classifier fitted 4 epochs on separable noise with ``select``; its result, the network and the
    weights after every epoch."""
    from sarcomri.data.sliceset import SliceSet
    from sarcomri.train.classifier import fit_classifier

    rng = np.random.default_rng(0)

    def sliceset(n: int) -> SliceSet:
        labels = np.arange(n) % 2
        images = (rng.normal(size=(n, 3, 8, 8)) + labels[:, None, None, None] * 0.3).astype(np.float32)
        return SliceSet(images, labels.astype(np.int64), np.array([f"P{i}" for i in range(n)], dtype=object),
                        np.zeros(n, int))

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    seen: list[dict] = []

    def keep(epoch: int, row: dict) -> None:
        seen.append({k: v.clone() for k, v in net.state_dict().items()})

    cfg = TrainConfig(epochs=4, batch_size=8, lr=0.05, select=select, patience=1, channels_last=False)
    return fit_classifier(net, sliceset(24), sliceset(12), cfg, progress=keep), net, seen


def test_select_last_keeps_the_last_epoch_and_best_the_best_validation_epoch():
    for select in ("last", "best"):
        result, net, seen = _fit_tiny(select)
        losses = [row["val_loss"] for row in result.history]
        want = len(losses) - 1 if select == "last" else int(np.argmin(losses))
        assert result.best_epoch == want
        assert all(torch.equal(net.state_dict()[k], seen[want][k]) for k in seen[want])
        if select == "last":
            assert len(result.history) == 4  # no early stopping with a fixed number of epochs

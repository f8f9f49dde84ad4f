"""The transfer study as published (Lin et al. 2023): the freezing levels on smp's module names, the training
sizes of 256 patients, the preset's protocol, the DSC confidence interval and the ANOVA/Tukey against
scipy/statsmodels, patient-level k-fold cross-validation with the best-Dice choice, the 14 ADC features and
their ICC, and the paper-format tables of a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from sarcomri.cohort.splits import LeakageError, check_no_leakage
from sarcomri.errors import InputError
from sarcomri.radiomics.firstorder import PYRADIOMICS_NAMES, firstorder_features
from sarcomri.radiomics.reliability import PAPER_ADC_FEATURES, feature_icc
from sarcomri.seg2d.config import (
    PAPER_FRACTIONS,
    CrossValidation,
    FineTuneSettings,
    NetworkSettings,
    RadiomicsSettings,
    TransferStudyConfig,
    load_transfer_config,
)
from sarcomri.seg2d.crossval import choose_fold, cv_folds, fold_patients, fold_stability, n_folds
from sarcomri.seg2d.design import nested_target_subsets, subset_size
from sarcomri.seg2d.model import build_network, count_parameters, freeze, frozen_prefixes
from sarcomri.seg2d.tables import (
    anova_by_fraction,
    icc_paper_table,
    level_comparison,
    paper_dice_table,
    summarise,
    t_interval,
)

from .conftest import TINY_DATA, TINY_NET, TINY_TRAIN

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ freezing levels
def _trainable(net: torch.nn.Module) -> set[str]:
    return {n for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("encoder", ["tu-mobilenetv2_035", "tu-xception41"])
def test_levels_freeze_the_papers_parts_by_smp_module_name(encoder):
    assert frozen_prefixes(None, "deeplabv3plus", "L0") == []
    assert frozen_prefixes(None, "deeplabv3plus", "L1") == ["encoder"]
    assert frozen_prefixes(None, "deeplabv3plus", "L2") == ["encoder", "decoder.aspp.0.convs"]
    assert frozen_prefixes(None, "deeplabv3plus", "L3") == [
        "encoder", "decoder.aspp.0.convs", "decoder.aspp.0.project", "decoder.aspp.1", "decoder.aspp.2"]
    counts = []
    for level in ("L0", "L1", "L2", "L3"):
        torch.manual_seed(0)
        net = build_network(NetworkSettings(encoder=encoder, decoder_channels=16), 3)
        # smp's DeepLabV3+ decoder.aspp: Sequential(ASPP(convs, project), SeparableConv2d, BatchNorm2d, ReLU)
        assert [type(m).__name__ for m in net.decoder.aspp] == ["ASPP", "SeparableConv2d", "BatchNorm2d", "ReLU"]
        freeze(net, "deeplabv3plus", level)
        names = _trainable(net)
        counts.append(count_parameters(net, trainable_only=True))
        has = {part: any(n.startswith(part + ".") for n in names) for part in
               ("encoder", "decoder.aspp.0.convs", "decoder.aspp.0.project", "decoder.aspp.1", "decoder.aspp.2",
                "decoder.block1", "decoder.block2", "segmentation_head")}
        expected = {
            "L0": set(has),
            # L1: the backbone frozen, ASPP and decoder retrained
            "L1": set(has) - {"encoder"},
            # L2: backbone and ASPP frozen; the layer after ASPP (projection + separable conv) and decoder retrained
            "L2": set(has) - {"encoder", "decoder.aspp.0.convs"},
            # L3: the whole encoder frozen, the decoder retrained
            "L3": {"decoder.block1", "decoder.block2", "segmentation_head"},
        }[level]
        assert {p for p, v in has.items() if v} == expected, level
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0


# ------------------------------------------------------------------------------------------ training sizes
def test_training_sizes_of_256_patients_are_the_papers():
    assert [subset_size(f, 256) for f in PAPER_FRACTIONS] == [5, 13, 26, 51, 128, 256]
    assert [subset_size(f, 256, "ceil") for f in PAPER_FRACTIONS] == [6, 13, 26, 52, 128, 256]
    assert subset_size(0.5, 5) == 3 and subset_size(0.5, 7) == 4  # half up
    assert subset_size(0.02, 10) == 1 and subset_size(0.1, 30) == 3  # at least one; 0.1 x 30 is not 3.0000001
    with pytest.raises(InputError):
        subset_size(0.0, 10)
    patients = pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(256)], "label": ["tumour"] * 256})
    sub = nested_target_subsets(patients, PAPER_FRACTIONS, seed=3)
    sets = [set(sub.loc[np.isclose(sub["fraction"], f), "patient_id"]) for f in PAPER_FRACTIONS]
    assert [len(s) for s in sets] == [5, 13, 26, 51, 128, 256]
    assert all(a < b for a, b in zip(sets, sets[1:], strict=False))


def test_the_paper_preset_holds_the_published_protocol():
    cfg = load_transfer_config(REPO / "configs" / "transfer-dwi.yaml")
    assert cfg.network.arch == "deeplabv3plus" and cfg.network.encoder == "tu-xception41"
    assert cfg.network.encoder_weights is None  # weight randomisation
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (1e-3, 100, 2)
    assert cfg.data.augmentation == "paper" and cfg.data.sequences == ["DWI_b0", "DWI_b1000", "ADC"]
    assert cfg.fractions == PAPER_FRACTIONS and cfg.subset_rounding == "nearest"
    assert cfg.levels == ["L1", "L2", "L3"] and cfg.models == ["source", "target", "transfer", "aggregated"]
    assert cfg.test_ratio == 0.2 and cfg.radiomics.sequence == "ADC"
    assert cfg.cv is not None and cfg.cv.folds == 5 and cfg.cv.choose == "best_dice"
    demo = load_transfer_config(REPO / "configs" / "demo-transfer.yaml")
    assert demo.cv is None  # off by default: the demo stays fast
    assert TransferStudyConfig(name="x", synth={}).cv is None


# ------------------------------------------------------------------------------------------ statistics
def test_t_interval_is_scipys():
    rng = np.random.default_rng(1)
    for n in (2, 5, 64):
        x = rng.uniform(0, 1, n)
        lo, hi = t_interval(x.mean(), x.std(ddof=1), n)
        ref = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
        np.testing.assert_allclose([lo, hi], ref, rtol=1e-12)
    lo, hi = t_interval(0.5, np.nan, 1)
    assert np.isnan(lo) and np.isnan(hi)


def _per_case(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model, kind, level, shift in (("target", "target", "", 0.0), ("transfer-L1", "transfer", "L1", 0.15),
                                      ("transfer-L3", "transfer", "L3", 0.05), ("aggregated", "aggregated", "", 0.1)):
        for f, n in ((0.5, 3), (1.0, 6)):
            for ts, k in (("source", 5), ("target", 7)):
                for i in range(k):
                    rows.append({"model": model, "kind": kind, "level": level, "fraction": f, "n_target_train": n,
                                 "n_source_train": 4, "test_set": ts, "patient_id": f"{ts[0]}{i}",
                                 "dice": float(np.clip(rng.normal(0.5 + shift + 0.1 * f, 0.12), 0, 1))})
    return pd.DataFrame(rows)


def test_summary_and_paper_dice_table_carry_the_95_percent_t_interval():
    per_case = _per_case()
    summary = summarise(per_case, "dice", ["target", "transfer-L1", "transfer-L3", "aggregated"])
    assert list(summary.columns[summary.columns.get_loc("mean"):][:4]) == ["mean", "sd", "ci_lower", "ci_upper"]
    row = summary[(summary["test_set"] == "combined") & (summary["model"] == "transfer-L1")
                  & (summary["fraction"] == 1.0)].iloc[0]
    x = per_case[(per_case["model"] == "transfer-L1") & (per_case["fraction"] == 1.0)]["dice"].to_numpy()
    assert row["n"] == 12
    np.testing.assert_allclose([row["ci_lower"], row["ci_upper"]],
                               stats.t.interval(0.95, 11, loc=x.mean(), scale=stats.sem(x)), rtol=1e-12)
    paper = paper_dice_table(summary)
    assert list(paper.columns) == ["test_set", "model", "training_size", "n_target_train", "n_cases", "dsc_mean",
                                   "dsc_ci_lower", "dsc_ci_upper", "dsc_sd"]
    assert len(paper) == 3 * 4 * 2 and paper["training_size"].iloc[0] == "50% (n=3)"
    np.testing.assert_allclose(paper["dsc_ci_lower"], summary["ci_lower"])


def test_anova_and_tukey_agree_with_statsmodels_ols_and_scipy_tukey_hsd():
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    per_case = _per_case(2)
    anova, tukey = anova_by_fraction(per_case, "dice")
    cell = per_case[(per_case["test_set"] == "target") & (per_case["fraction"] == 1.0)]
    fit = ols("dice ~ C(model)", data=cell).fit()
    ref = sm.stats.anova_lm(fit, typ=1)
    row = anova[(anova["test_set"] == "target") & (anova["fraction"] == 1.0)].iloc[0]
    np.testing.assert_allclose([row["F"], row["p"]], [ref.loc["C(model)", "F"], ref.loc["C(model)", "PR(>F)"]],
                               rtol=1e-10)
    assert (row["df1"], row["df2"]) == (3, len(cell) - 4)
    groups = sorted(cell["model"].unique())
    res = stats.tukey_hsd(*[cell.loc[cell["model"] == g, "dice"].to_numpy() for g in groups])
    ci = res.confidence_interval(0.95)
    tk = tukey[(tukey["test_set"] == "target") & (tukey["fraction"] == 1.0)]
    assert len(tk) == 6
    for r in tk.itertuples():
        i, j = groups.index(r.group1), groups.index(r.group2)
        # statsmodels: meandiff = mean(group2) - mean(group1); scipy's statistic[i, j] = mean(i) - mean(j)
        np.testing.assert_allclose(r.meandiff, -res.statistic[i, j], rtol=1e-10)
        np.testing.assert_allclose(r.p_adj, res.pvalue[i, j], atol=2e-3)
        np.testing.assert_allclose([r.lower, r.upper], [-ci.high[i, j], -ci.low[i, j]], atol=2e-3)


def test_level_comparison_means_and_anova_across_levels_only():
    per_case = _per_case(3)
    table = level_comparison(per_case, "dice")
    assert list(table.columns) == ["test_set", "training_size", "fraction", "n_target_train", "transfer-L1",
                                   "transfer-L3", "best", "F", "p", "note"]
    assert list(table["test_set"]) == ["source", "source", "target", "target", "combined", "combined"]
    r = table[(table["test_set"] == "target") & (table["fraction"] == 0.5)].iloc[0]
    cell = per_case[(per_case["test_set"] == "target") & (per_case["fraction"] == 0.5)]
    l1 = cell.loc[cell["model"] == "transfer-L1", "dice"]
    l3 = cell.loc[cell["model"] == "transfer-L3", "dice"]
    assert r["transfer-L1"] == pytest.approx(l1.mean()) and r["best"] == ("transfer-L1" if l1.mean() > l3.mean()
                                                                          else "transfer-L3")
    ref = stats.f_oneway(l1, l3)
    assert r["F"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)


# ------------------------------------------------------------------------------------------ cross-validation
def test_cv_folds_are_patient_level_balanced_by_domain_and_leak_free():
    train = [("source", f"S{i}") for i in range(10)] + [("target", f"T{i}") for i in range(5)]
    folds = cv_folds(train, 5, seed=1)
    assert len(folds) == 5 * 15 and set(folds["fold"]) == set(range(5))
    val = folds[folds["role"] == "val"]
    assert val["patient_id"].value_counts().eq(1).all() and len(val) == 15  # each validated exactly once
    assert (val.groupby("fold").size() == 3).all()
    for k in range(5):
        v, t = set(fold_patients(folds, k, "val")), set(fold_patients(folds, k, "train"))
        assert not v & t and len(v | t) == 15
        assert sum(d == "source" for d, _ in v) == 2 and sum(d == "target" for d, _ in v) == 1
    pd.testing.assert_frame_equal(folds, cv_folds(train, 5, seed=1))
    # a patient validated in two folds is what the project's leakage check refuses
    bad = folds.copy()
    pid = bad.loc[bad["role"] == "val", "patient_id"].iloc[0]
    bad.loc[(bad["patient_id"] == pid) & (bad["role"] == "train"), "role"] = "val"
    with pytest.raises(LeakageError):
        check_no_leakage(bad.replace({"role": {"val": "test"}}), kfold_complete=True)
    assert n_folds(3, 5) == 3 and n_folds(1, 5) == 0
    with pytest.raises(InputError):
        cv_folds([("target", "T0")], 5)


def test_fold_stability_and_the_best_dice_choice():
    per_fold = pd.DataFrame({"model": "target", "n_target_train": 5, "fold": [0, 1, 2, 3],
                             "val_dice": [0.6, 0.8, 0.7, 0.8]})
    assert choose_fold(per_fold) == 1  # the best, the lower fold on a tie
    assert choose_fold(per_fold.assign(val_dice=[np.nan, 0.1, np.nan, 0.2])) == 3
    table = fold_stability(per_fold.assign(chosen=per_fold["fold"] == 1))
    r = table.iloc[0]
    assert (r["folds"], r["chosen_fold"]) == (4, 1)
    np.testing.assert_allclose([r["mean"], r["sd"], r["min"], r["max"], r["chosen_dice"]],
                               [0.725, np.std([0.6, 0.8, 0.7, 0.8], ddof=1), 0.6, 0.8, 0.8])


# ------------------------------------------------------------------------------------------ ADC features
def test_the_14_paper_features_are_computed_and_their_icc_is_pingouins(monkeypatch):
    import pingouin as pg

    monkeypatch.setitem(pg.options, "round", None)
    monkeypatch.setitem(pg.options, "round.column.CI95", None)

    assert len(PAPER_ADC_FEATURES) == 14
    assert all(PYRADIOMICS_NAMES[k] == v for k, v in PAPER_ADC_FEATURES.items())
    rng = np.random.default_rng(0)
    img = rng.normal(1.2, 0.3, (4, 10, 10))
    mask = np.zeros(img.shape, bool)
    mask[1:3, 2:8, 2:8] = True
    feats = firstorder_features(img, mask, (5.0, 1.0, 1.0), bin_width=0.05)
    assert set(PAPER_ADC_FEATURES) <= set(feats)
    rows = []
    for c in range(8):
        base = rng.normal(1.0, 0.2)
        for m, noise in (("manual", 0.0), ("automatic", rng.normal(0.05, 0.05))):
            rows.append({"case": f"target/{c}", "mask": m, "feature": "mean", "value": base + noise})
    long = pd.DataFrame(rows)
    ref = pg.intraclass_corr(long, targets="case", raters="mask", ratings="value").set_index("Type")
    for form, pg_type in (("ICC(2,1)", "ICC(A,1)"), ("ICC(3,1)", "ICC(C,1)")):
        got = feature_icc(long, form=form).iloc[0]
        assert got["icc"] == pytest.approx(ref.loc[pg_type, "ICC"], abs=1e-10)
        np.testing.assert_allclose([got["lower"], got["upper"]], ref.loc[pg_type, "CI95"], rtol=1e-6)
    rel = pd.concat([feature_icc(pd.concat([long, long.assign(feature="percentile_10")]))
                     .assign(model="target", fraction=1.0, n_target_train=6, test_set=ts, level="")
                     for ts in ("combined", "target")], ignore_index=True)
    rel = pd.concat([rel, rel.iloc[[0]].assign(feature="volume_mm3")], ignore_index=True)
    table = icc_paper_table(rel)
    assert list(table["feature"]) == ["10Percentile", "Mean", "10Percentile", "Mean"]  # paper order, 14 only
    assert list(table["test_set"]) == ["target", "target", "combined", "combined"]


# ------------------------------------------------------------------------------------------ a run
@pytest.mark.slow
def test_a_cross_validated_run_keeps_the_best_fold_and_writes_the_paper_tables(pair_cohort, tmp_path):
    from sarcomri.report.papertables import read_paper_tables
    from sarcomri.runs import TransferRun
    from sarcomri.seg2d.train import load_network
    from sarcomri.seg2d.transfer import run_transfer_study

    cfg = TransferStudyConfig(
        name="cv", cohort=str(pair_cohort), test_ratio=0.25, fractions=[0.5, 1.0], levels=["L1", "L3"],
        models=["source", "target", "transfer"], network=TINY_NET, data=TINY_DATA, train=TINY_TRAIN,
        finetune=FineTuneSettings(epochs=1, lr=1e-3), cv=CrossValidation(folds=3),
        radiomics=RadiomicsSettings(sequence="ADC", scale=0.001, bin_width=0.1))
    run = tmp_path / "run"
    tables = run_transfer_study(cfg, run)
    folds = tables["cv_folds"]
    # source 4 training patients (3 folds), target/transfer at 3 and 6 target patients (3 folds each)
    assert len(folds) == 3 * (1 + 3 * 2)
    assert set(zip(folds["n_train"], folds["n_val"], strict=True)) == {(2, 2), (3, 1), (2, 1), (4, 2)}
    stability = tables["cv_stability"]
    assert len(stability) == 7 and (stability["folds"] == 3).all()
    for r in stability.itertuples():
        g = folds[(folds["model"] == r.model) & (folds["n_target_train"] == r.n_target_train)]
        assert r.chosen_dice == pytest.approx(g["val_dice"].max()) and r.mean == pytest.approx(g["val_dice"].mean())
        folder = run / "models" / r.model / ("" if r.model == "source" else f"n{r.n_target_train:03d}")
        net, _, meta = load_network(folder)
        assert meta["cv"]["chosen_fold"] == r.chosen_fold
        chosen, _, fold_meta = load_network(folder / "cv" / f"fold{r.chosen_fold}")
        assert meta["train"] == fold_meta["train"]  # the fold model itself, trained on its folds only
        a, b = net.state_dict(), chosen.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        fold_table = pd.read_csv(folder / "cv_folds.csv")
        check_no_leakage(fold_table.replace({"role": {"val": "test"}}), kfold_complete=True)
    papers = {t.name: (t, f) for t, f in read_paper_tables(TransferRun(run).paper_dir)}
    assert list(papers) == ["transfer_dice", "transfer_levels", "transfer_cv_stability", "transfer_adc_icc"]
    dice = papers["transfer_dice"][1]
    pc = tables["per_case"]
    x = pc[(pc["model"] == "transfer-L1") & (pc["fraction"] == 1.0) & (pc["test_set"] == "target")]["dice"]
    r = dice[(dice["model"] == "transfer-L1") & (dice["training_size"] == "100% (n=6)")
             & (dice["test_set"] == "target")].iloc[0]
    assert r["dsc_mean"] == pytest.approx(x.mean())
    assert (r["dsc_ci_lower"], r["dsc_ci_upper"]) == pytest.approx(
        stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x)))
    assert set(papers["transfer_adc_icc"][1]["feature"]) <= set(PAPER_ADC_FEATURES.values())
    index = json.loads((TransferRun(run).paper_dir / "index.json").read_text())
    assert all("Lin et al. 2023" in t["title"] for t in index["tables"])
    # resumed: nothing retrained, the same tables
    events: list[dict] = []
    again = run_transfer_study(cfg, run, progress=events.append)
    assert not [e for e in events if e["event"] == "model_start"]
    pd.testing.assert_frame_equal(again["cv_folds"], folds)

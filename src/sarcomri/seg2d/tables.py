"""Tables and the figure of the transfer study, pure functions of the per-case table.

The per-case table has one row per (model, fraction, test patient): ``model`` (``source``, ``target``,
``transfer-L1``..., ``aggregated``), ``kind``, ``level``, ``fraction`` (of the target training patients; 0 for
the source model), ``n_target_train``, ``test_set`` (the patient's domain: ``source`` or ``target``),
``patient_id`` and the metrics of :func:`sarcomri.stats.segmentation.segmentation_metrics`. The *combined*
test set is the union of both (its rows are added by :func:`with_combined`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path
from sarcomri.stats.groups import anova_tukey

TEST_SETS = ("source", "target", "combined")
#: The confidence level of the mean DSC's interval.
CI_LEVEL = 0.95
KEYS = ["test_set", "model", "kind", "level", "fraction", "n_target_train"]


def with_combined(per_case: pd.DataFrame) -> pd.DataFrame:
    """The per-case rows plus a copy of every row with ``test_set = 'combined'``."""
    both = per_case.assign(test_set="combined")
    return pd.concat([per_case, both], ignore_index=True)


def _order(frame: pd.DataFrame, models: Sequence[str] | None) -> pd.DataFrame:
    ts = pd.Categorical(frame["test_set"], [t for t in TEST_SETS if t in set(frame["test_set"])], ordered=True)
    frame = frame.assign(test_set=ts)
    if models is not None:
        frame = frame.assign(model=pd.Categorical(frame["model"], list(models), ordered=True))
    out = frame.sort_values(["test_set", "model", "fraction"]).reset_index(drop=True)
    return out.assign(test_set=out["test_set"].astype(str), model=out["model"].astype(str))


def t_interval(mean: np.ndarray | float, sd: np.ndarray | float, n: np.ndarray | int,
               level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The t confidence interval of a mean over ``n`` cases: ``mean +- t(1 - (1 - level) / 2, n - 1) sd / sqrt(n)``
    with ``sd`` the sample SD (n - 1), as ``scipy.stats.t.interval(level, n - 1, mean, sd / sqrt(n))``; NaN
    below two cases."""
    mean, sd, n = (np.asarray(v, dtype=float) for v in (mean, sd, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return mean - half, mean + half


def summarise(per_case: pd.DataFrame, metric: str = "dice", models: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean with its 95% t-interval over the cases (``ci_lower``, ``ci_upper``: :func:`t_interval`), SD,
    median and quartiles of ``metric`` per (test set incl. combined, model, fraction).

    Distance metrics use only cases with both masks non-empty (``n`` says how many), overlap metrics all."""
    if metric not in per_case.columns:
        raise InputError(None, f"per-case table has no column {metric!r}")
    data = with_combined(per_case)
    if metric.endswith("_mm"):
        data = data[~data["empty_pred"].astype(bool) & ~data["empty_ref"].astype(bool)]
    g = data.groupby(KEYS, dropna=False)[metric]
    out = g.agg(n="count", mean="mean", sd="std", median="median").reset_index()
    lo, hi = t_interval(out["mean"], out["sd"], out["n"])
    out.insert(out.columns.get_loc("sd") + 1, "ci_lower", lo)
    out.insert(out.columns.get_loc("ci_lower") + 1, "ci_upper", hi)
    out["q1"] = g.quantile(0.25).to_numpy()
    out["q3"] = g.quantile(0.75).to_numpy()
    out.insert(1, "metric", metric)
    return _order(out, models)


def paper_table(summary: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The paper's format: one row per (test set, model), one column per training size (% of the target
    training patients, with the number of patients), each cell "mean / median" of the metric; the source
    model (no target patient) sits in the column ``0%``."""
    s = summary.copy()
    s["size"] = [f"{round(100 * f, 1):g}% (n={int(n)})" for f, n in zip(s["fraction"], s["n_target_train"],
                                                                        strict=True)]
    s["cell"] = [f"{m:.{digits}f} / {md:.{digits}f}" for m, md in zip(s["mean"], s["median"], strict=True)]
    cols = list(dict.fromkeys(s.sort_values("fraction")["size"]))
    wide = s.pivot_table(index=["test_set", "model"], columns="size", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=cols).fillna("")
    wide.columns.name = None
    return wide.reset_index()


def size_label(fraction: float, n: int) -> str:
    """A training size as the paper writes it: ``"2% (n=5)"``."""
    return f"{round(100 * float(fraction), 1):g}% (n={int(n)})"


def paper_dice_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The DSC table in the paper's layout, one row per (test set, model, training size): ``test_set``,
    ``model``, ``training_size`` (``"2% (n=5)"``; ``0% (n=0)`` for the source model), ``n_target_train``,
    ``n_cases``, ``dsc_mean``, ``dsc_ci_lower``, ``dsc_ci_upper`` (95% t-interval), ``dsc_sd``, in the
    summary's order (test set, model, fraction)."""
    s = summary[summary["metric"] == "dice"] if "metric" in summary.columns else summary
    return pd.DataFrame({
        "test_set": s["test_set"].to_numpy(), "model": s["model"].to_numpy(),
        "training_size": [size_label(f, n) for f, n in zip(s["fraction"], s["n_target_train"], strict=True)],
        "n_target_train": s["n_target_train"].astype(int).to_numpy(), "n_cases": s["n"].astype(int).to_numpy(),
        "dsc_mean": s["mean"].to_numpy(), "dsc_ci_lower": s["ci_lower"].to_numpy(),
        "dsc_ci_upper": s["ci_upper"].to_numpy(), "dsc_sd": s["sd"].to_numpy()})


def level_comparison(per_case: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """The freezing levels compared: per (test set, training size) the mean ``metric`` of each transfer
    model (one column per model, ``transfer-L1``...), the best of them, and the one-way ANOVA across them
    (``F``, ``p``; ``note`` when it cannot be computed)."""
    transfer = per_case[per_case["kind"] == "transfer"]
    cols = ["test_set", "training_size", "fraction", "n_target_train"]
    if transfer.empty:
        return pd.DataFrame(columns=cols)
    data = with_combined(transfer)
    means = data.pivot_table(index=["test_set", "fraction", "n_target_train"], columns="model", values=metric,
                             aggfunc="mean", sort=False)
    levels = sorted(means.columns)
    means = means[levels].reset_index()
    means.columns.name = None
    anova, _ = anova_by_fraction(transfer, metric, exclude=())
    out = means.merge(anova[["test_set", "fraction", "F", "p", "note"]], on=["test_set", "fraction"], how="left")
    out.insert(1, "training_size", [size_label(f, n) for f, n in zip(out["fraction"], out["n_target_train"],
                                                                     strict=True)])
    out.insert(4 + len(levels), "best", out[levels].idxmax(axis=1))
    ts = pd.Categorical(out["test_set"], [t for t in TEST_SETS if t in set(out["test_set"])], ordered=True)
    out = out.assign(test_set=ts).sort_values(["test_set", "fraction"]).reset_index(drop=True)
    return out.assign(test_set=out["test_set"].astype(str), note=out["note"].fillna(""))


def icc_paper_table(reliability: pd.DataFrame) -> pd.DataFrame:
    """The feature reliability table in the paper's layout: the 14 first-order features of
    :data:`sarcomri.radiomics.reliability.PAPER_ADC_FEATURES` (pyradiomics names, in that order) per model,
    training size and test set: ``icc``, its 95% CI (``lower``, ``upper``), ``n`` cases and the form."""
    from sarcomri.radiomics.reliability import PAPER_ADC_FEATURES

    cols = ["model", "training_size", "n_target_train", "test_set", "feature", "icc_form", "icc", "lower",
            "upper", "n"]
    rel = reliability[reliability["feature"].isin(list(PAPER_ADC_FEATURES))] if not reliability.empty else reliability
    if rel.empty:
        return pd.DataFrame(columns=cols)
    order = {f: i for i, f in enumerate(PAPER_ADC_FEATURES)}
    ts_order = {t: i for i, t in enumerate(TEST_SETS)}
    rel = rel.assign(_f=rel["feature"].map(order), _t=rel["test_set"].map(ts_order), _m=range(len(rel)))
    first_row = rel.groupby("model", sort=False)["_m"].transform("min")
    rel = rel.assign(_mo=first_row).sort_values(["_mo", "fraction", "_t", "_f"], kind="stable")
    out = rel.assign(training_size=[size_label(f, n) for f, n in zip(rel["fraction"], rel["n_target_train"],
                                                                     strict=True)],
                     feature=rel["feature"].map(PAPER_ADC_FEATURES))
    return out[cols].reset_index(drop=True)


def anova_by_fraction(per_case: pd.DataFrame, metric: str = "dice",
                      exclude: Sequence[str] = ("source",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-way ANOVA and Tukey HSD of ``metric`` across models, per (test set, training fraction)
    (:func:`sarcomri.stats.groups.anova_tukey`); the source model, trained on no target patient, is left
    out by default. A cell with fewer than two models or fewer than two cases in every model gets a row
    with NaN and the reason in ``note``."""
    data = with_combined(per_case)
    data = data[~data["model"].isin(exclude)]
    anova_rows, tukey = [], []
    for (ts, frac), sub in data.groupby(["test_set", "fraction"], sort=False):
        row = {"test_set": ts, "fraction": frac, "metric": metric, "models": int(sub["model"].nunique()),
               "n": len(sub), "F": np.nan, "df1": np.nan, "df2": np.nan, "p": np.nan, "note": ""}
        counts = sub.groupby("model")[metric].count()
        if len(counts) < 2 or (counts < 2).all() or sub[metric].nunique() < 2:
            row["note"] = "too few models or cases, or no variation"
        else:
            try:
                with np.errstate(all="ignore"):
                    res, table = anova_tukey(sub, metric, "model")
            except (InputError, ValueError, ZeroDivisionError) as err:
                row["note"] = str(err)
            else:
                row.update(F=res.statistic, df1=res.df, df2=res.df2, p=res.p_value)
                tukey.append(table.assign(test_set=ts, fraction=frac, metric=metric))
        anova_rows.append(row)
    anova = pd.DataFrame(anova_rows)
    cols = ["test_set", "fraction", "metric", "group1", "group2", "meandiff", "p_adj", "lower", "upper", "reject"]
    tk = pd.concat(tukey, ignore_index=True)[cols] if tukey else pd.DataFrame(columns=cols)
    if not anova.empty:
        anova = _order(anova.assign(model=""), None).drop(columns="model")
    return anova, tk


def _domain_note(test_set: str, domains: dict[str, str] | None) -> str:
    """' (cervix)' for a test set of the named domain, ' (cervix + corpus)' for the combined one."""
    if not domains:
        return ""
    if test_set in domains:
        return f" ({domains[test_set]})"
    return f" ({domains['source']} + {domains['target']})" if {"source", "target"} <= set(domains) else ""


def learning_curve_figure(summary: pd.DataFrame, path: str | Path, models: Sequence[str] | None = None,
                          metric_label: str = "DSC", domains: dict[str, str] | None = None) -> Path:
    """Mean metric against the number of target training patients, one panel per test set, one line per
    model; the source model (no target patient) is a dashed horizontal line. ``domains`` names the source and
    target patients in the panels' titles (e.g. ``{"source": "cervix", "target": "corpus"}``). Written as PNG at
    print resolution (200 dpi), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sets = [t for t in TEST_SETS if t in set(summary["test_set"])]
    models = list(models) if models is not None else list(dict.fromkeys(summary["model"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ts in zip(axes[0], sets, strict=True):
        sub = summary[summary["test_set"] == ts]
        for i, m in enumerate(models):
            line = sub[sub["model"] == m].sort_values("n_target_train")
            if line.empty:
                continue
            colour = colours[i % len(colours)]
            if (line["n_target_train"] == 0).all():
                ax.axhline(float(line["mean"].iloc[0]), ls="--", color=colour, label=m)
            else:
                ax.plot(line["n_target_train"], line["mean"], marker="o", color=colour, label=m)
        ax.set_xscale("log")
        ticks = sorted(int(n) for n in set(sub["n_target_train"]) if n > 0)
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(f"{ts} test set" + _domain_note(ts, domains))
        ax.set_xlabel("target training patients")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"mean {metric_label}")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=200, format="png")
    plt.close(fig)
    return path

"""`sarcomri stats`: diagnostic and reader statistics from CSV tables (thin commands over sarcomri.stats)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from sarcomri.cli.options import hidden_alias, renamed, require
from sarcomri.errors import InputError
from sarcomri.io.tables import read_csv_table
from sarcomri.stats import agreement, mrmc, roc
from sarcomri.stats._json import jsonable
from sarcomri.stats.diagnostic import (
    CI_METHODS,
    ConfusionMatrix,
    DiagnosticResult,
    diagnostic_at_threshold,
    diagnostic_metrics,
)

app = typer.Typer(
    help="Diagnostic and reader statistics: ROC curves and DeLong tests, kappa and ICC agreement, "
         "multi-reader multi-case (MRMC) analysis, sensitivity/specificity from a 2x2 table.",
    no_args_is_help=True,
)

CSV_ARG = typer.Argument(..., exists=False, help="CSV file, one row per case (per read for agreement/MRMC).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object (keys listed above) instead of tables.")
CI_OPT = typer.Option("wilson", "--ci-method", help="CI of proportions: wilson or clopper-pearson.")


@contextmanager
def _about(path: Path) -> Iterator[None]:
    """Name the CSV in errors raised by the library for its content."""
    try:
        yield
    except InputError as err:
        if err.path is None:
            raise InputError(path, err.problem) from None
        raise


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    return read_csv_table(path, columns)


def _match_value(path: Path, series: pd.Series, value: str, option: str) -> Any:
    """The value of ``series`` whose text is ``value`` (so '--positive 1' finds the integer 1)."""
    for v in pd.unique(series.dropna()):
        if str(v) == value or (isinstance(v, float) and v.is_integer() and str(int(v)) == value):
            return v
    found = ", ".join(map(str, pd.unique(series.dropna())[:10]))
    raise InputError(path, f"{option} {value!r} does not occur in column {series.name!r} (values: {found})")


def _distinct(path: Path, values: list[str], option: str) -> list[str]:
    """``values`` of a repeatable option, refusing one given twice (it would be compared with itself)."""
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise InputError(path, f"{option} {v!r} is given twice; give each column once")
        seen.add(v)
    return values


def _complete(path: Path, frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    kept = frame.dropna(subset=columns)
    if kept.empty:
        raise InputError(path, f"no row has values in all of {', '.join(columns)}")
    return kept, len(frame) - len(kept)


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(jsonable(obj), indent=2))


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _table(title: str, frame: pd.DataFrame, digits: int = 4) -> Table:
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v, digits) for v in row])
    return table


def _metrics_frame(res: DiagnosticResult) -> pd.DataFrame:
    frame = res.to_frame().reset_index()
    frame["metric"] = frame["metric"].replace({"ss_avg": "SS-Avg", "ppv": "PPV", "npv": "NPV"})
    return frame


@app.command("roc")
def roc_cmd(
    csv: Path = CSV_ARG,
    truth: str = typer.Option(..., "--truth", help="Column with the reference standard (e.g. histology)."),
    positive: str = typer.Option(..., "--positive", help="Value of --truth that is the positive class "
                                 "(e.g. 1, sarcoma, EC); never guessed."),
    score: list[str] = typer.Option(..., "--score", help="Score column (model probability, reader "
                                    "confidence, marker); repeat for several scores on the same cases."),
    direction: str = typer.Option("<", "--direction", help="'<': controls score lower than cases (higher "
                                  "= more likely positive); '>': the reverse. Fixed, never guessed."),
    cutoff: list[float] = typer.Option(None, "--cutoff", help="Also report the metrics at this fixed "
                                       "cut-off of every score (e.g. 0.5 for a model probability); repeatable."),
    ci_method: str = CI_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """ROC analysis: empirical AUC with DeLong 95% CI (pROC conventions), paired DeLong tests between the
    scores, the SS-Avg (Youden) cut-off and sensitivity/specificity/accuracy/PPV/NPV at it.

    JSON keys: positive, direction, n_cases, n_controls, n_dropped (rows with a missing value),
    scores (list of {score, auc, se, lower, upper, ss_avg_threshold, at_threshold: {confusion,
    sensitivity, specificity, accuracy, ppv, npv, ss_avg: {estimate, lower, upper, numerator,
    denominator}}, at_cutoffs: list of {cutoff, metrics: same as at_threshold}}), comparisons (list of
    {score1, score2, auc1, auc2, difference, lower, upper, z, p}).
    """
    _distinct(csv, score, "--score")
    frame = _read(csv, [truth, *score])
    frame, dropped = _complete(csv, frame, [truth, *score])
    with _about(csv):
        pos = _match_value(csv, frame[truth], positive, "--positive")
        aucs, tests = roc.delong_pairwise(frame[truth], {s: frame[s] for s in score}, pos, direction)
        entries = []
        for s, row in zip(score, aucs.itertuples(index=False), strict=True):
            threshold, res = roc.ss_avg_cutoff(frame[truth], frame[s], pos, direction, ci_method)
            fixed = [{"cutoff": c, "metrics": diagnostic_at_threshold(frame[truth], frame[s], pos, c, direction,
                                                                      ci_method).to_dict()} for c in cutoff or []]
            entries.append({"score": s, "auc": row.auc, "se": row.se, "lower": row.lower, "upper": row.upper,
                            "ss_avg_threshold": threshold, "at_threshold": res.to_dict(), "at_cutoffs": fixed})
    is_pos = frame[truth] == pos
    out = {"positive": pos, "direction": direction, "n_cases": int(is_pos.sum()),
           "n_controls": int((~is_pos).sum()), "n_dropped": dropped, "scores": entries,
           "comparisons": tests}
    if as_json:
        _emit_json(out)
        return
    console = Console()
    console.print(f"{csv}: {out['n_cases']} cases ({truth} = {pos}), {out['n_controls']} controls, "
                  f"direction '{direction}'" + (f"; {dropped} rows with missing values left out" if dropped else ""))
    console.print(_table("AUC with DeLong 95% CI", aucs))
    cut = pd.DataFrame([{"score": e["score"], "threshold": e["ss_avg_threshold"],
                         **{m: e["at_threshold"][m]["estimate"] for m in
                            ("sensitivity", "specificity", "accuracy", "ppv", "npv", "ss_avg")}} for e in entries])
    console.print(_table("At the SS-Avg cut-off (optimistic on the data that chose it)", cut))
    if cutoff:
        fixed = pd.DataFrame([{"score": e["score"], "cutoff": f["cutoff"],
                               **{m: f["metrics"][m]["estimate"] for m in
                                  ("sensitivity", "specificity", "accuracy", "ppv", "npv", "ss_avg")}}
                              for e in entries for f in e["at_cutoffs"]])
        console.print(_table("At fixed cut-offs", fixed))
    if len(tests):
        console.print(_table("Paired DeLong tests (difference = AUC1 - AUC2)", tests))


@app.command("agreement")
def agreement_cmd(
    csv: Path = CSV_ARG,
    case: str = typer.Option(None, "--case", help="Long table: the case (patient) column."),
    rater: str = typer.Option(None, "--rater", help="Long table: the rater column (model or reader name)."),
    rating: str = typer.Option(None, "--rating", help="Long table: the rating/decision column."),
    column: list[str] = typer.Option(None, "--column", help="Wide table: one column per rater (repeat)."),
    weights: str = typer.Option("none", "--weights", help="Cohen's kappa weights: none, linear or quadratic."),
    fleiss: bool = typer.Option(False, "--fleiss", help="Also give Fleiss' kappa over all raters."),
    as_json: bool = JSON_OPT,
) -> None:
    """Inter-rater agreement: the pairwise Cohen's kappa matrix over all raters (model and readers, as in
    the carcinosarcoma study's Table 5) with 95% CIs (Fleiss-Cohen-Everitt ASE), optionally Fleiss' kappa.

    Give either a long table (--case, --rater, --rating) or a wide one (--column per rater).
    JSON keys: weights, raters, n_cases, matrix ({rater: {rater: kappa}}), pairs (list of {rater1,
    rater2, kappa, se, lower, upper, z, p_value, n}), fleiss ({kappa, se0, z, p_value, subjects, raters}
    or null).
    """
    wt = None if weights == "none" else weights
    long_mode = case is not None or rater is not None or rating is not None
    if long_mode == bool(column):
        raise InputError(csv, "give either --case, --rater and --rating (long table) or --column per rater "
                              "(wide table)")
    if long_mode:
        if None in (case, rater, rating):
            raise InputError(csv, "a long table needs all of --case, --rater and --rating")
        frame = _read(csv, [case, rater, rating])
        with _about(csv):
            wide = agreement.long_to_wide(frame, case, rater, rating)
    else:
        wide = _read(csv, _distinct(csv, list(column), "--column"))[list(column)]
    with _about(csv):
        pairs = agreement.kappa_pairs(wide, wt)
        matrix = agreement.kappa_matrix(wide, wt)
        fl = agreement.fleiss_kappa(wide.dropna()).to_dict() if fleiss else None
    out = {"weights": weights, "raters": [str(c) for c in wide.columns], "n_cases": len(wide),
           "matrix": {str(k): {str(c): v for c, v in row.items()} for k, row in matrix.iterrows()},
           "pairs": pairs, "fleiss": fl}
    if as_json:
        _emit_json(out)
        return
    console = Console()
    console.print(_table(f"Cohen's kappa ({weights} weights), {len(wide)} cases", matrix.reset_index(), 3))
    console.print(_table("Pairs with 95% CI", pairs, 3))
    if fl:
        console.print(f"Fleiss' kappa {fl['kappa']:.3f} (z = {fl['z']:.2f}, p = {fl['p_value']:.3g}), "
                      f"{fl['subjects']} cases rated by all {fl['raters']} raters")


@app.command("icc")
def icc_cmd(
    csv: Path = CSV_ARG,
    case: str | None = typer.Option(None, "--case", help="Column of the rated cases (patients, lesions): ICC's "
                                    "targets. Required."),
    rater: str | None = typer.Option(None, "--rater", help="Column naming the rater (reader, session, software). "
                                     "Required."),
    rating: str | None = typer.Option(None, "--rating", help="Column of the numeric ratings. Required."),
    as_json: bool = JSON_OPT,
    old_targets: str | None = hidden_alias("--targets"),
    old_raters: str | None = hidden_alias("--raters"),
    old_ratings: str | None = hidden_alias("--ratings"),
) -> None:
    """Intraclass correlation in all six Shrout-Fleiss / McGraw-Wong forms with F test and 95% CI, from a
    long table (one row per case and rater; complete design): --case, --rater and --rating name its columns,
    as in `stats agreement` (--targets, --raters and --ratings are their old names).

    JSON keys: n_targets, n_raters, forms (list of {form, mcgraw_wong, model, type, unit, icc, F, df1,
    df2, p, lower, upper}).
    """
    targets = require(renamed(case, old_targets, "--case", "--targets"), "--case")
    raters = require(renamed(rater, old_raters, "--rater", "--raters"), "--rater")
    ratings = require(renamed(rating, old_ratings, "--rating", "--ratings"), "--rating")
    frame = _read(csv, [targets, raters, ratings])
    with _about(csv):
        table = agreement.icc(frame, targets, raters, ratings)
    out = {"n_targets": int(frame[targets].nunique()), "n_raters": int(frame[raters].nunique()), "forms": table}
    if as_json:
        _emit_json(out)
        return
    Console().print(_table(f"ICC: {out['n_targets']} targets, {out['n_raters']} raters", table, 3))


@app.command("mrmc")
def mrmc_cmd(
    csv: Path = CSV_ARG,
    reader: str = typer.Option(..., "--reader", help="Reader column."),
    case: str = typer.Option(..., "--case", help="Case column."),
    modality: str = typer.Option(..., "--modality", help="Modality / treatment column (e.g. unaided vs AI)."),
    truth: str = typer.Option(..., "--truth", help="Column with the reference standard of each case."),
    score: str = typer.Option(..., "--score", help="Rating column (higher = more likely positive)."),
    positive: str = typer.Option("1", "--positive", help="Value of --truth marking diseased (positive) "
                                 "cases; default 1, the 0/1 convention of RJafroc and MRMCaov."),
    covariance: str = typer.Option("jackknife", "--covariance", help="AUC covariance: jackknife or delong."),
    as_json: bool = JSON_OPT,
) -> None:
    """Multi-reader multi-case ROC analysis: Obuchowski-Rockette with Hillis denominator df, for random
    readers and cases (rrrc), fixed readers (frrc) and fixed cases (rrfc); trapezoidal AUC.

    JSON keys: covariance, n_cases, n_controls, confidence, aucs (list of {modality, reader, auc}),
    components ({var, cov1, cov2, cov3, ms_t, ms_r, ms_tr}), tests (list of {analysis, statistic, df1,
    df2, p}), differences (list of {analysis, modality1, modality2, difference, se, df, lower, upper, p}),
    modalities (list of {analysis, modality, auc, se, df, lower, upper}); df null = normal quantile.
    """
    frame = _read(csv, [reader, case, modality, truth, score])
    with _about(csv):
        pos = _match_value(csv, frame[truth], positive, "--positive")
        res = mrmc.or_mrmc(frame, reader, case, modality, truth, score, pos, covariance)
    out = res.to_dict()
    if as_json:
        _emit_json(out)
        return
    console = Console()
    console.print(f"{csv}: {res.n_cases} positive and {res.n_controls} negative cases, {covariance} covariances")
    console.print(_table("Reader AUCs", res.aucs.reset_index()))
    console.print(_table("Tests of equal reader-averaged AUCs", res.tests))
    console.print(_table("Differences of reader-averaged AUCs (95% CI)", res.differences))
    console.print(_table("Reader-averaged AUC per modality (95% CI)", res.modalities))


@app.command("diagnostic")
def diagnostic_cmd(
    tp: int = typer.Option(..., "--tp", help="True positives."),
    fp: int = typer.Option(..., "--fp", help="False positives."),
    fn: int = typer.Option(..., "--fn", help="False negatives."),
    tn: int = typer.Option(..., "--tn", help="True negatives."),
    ci_method: str = CI_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Sensitivity, specificity, accuracy, PPV, NPV and SS-Avg (balanced accuracy) with 95% CIs from the
    counts of a 2x2 table.

    JSON keys: confusion ({tp, fp, fn, tn}), ci_method, confidence, and sensitivity, specificity,
    accuracy, ppv, npv, ss_avg, each {estimate, lower, upper, numerator, denominator}.
    """
    if ci_method not in CI_METHODS:
        raise InputError(None, f"--ci-method must be one of {', '.join(CI_METHODS)}, not {ci_method!r}")
    res = diagnostic_metrics(ConfusionMatrix(tp=tp, fp=fp, fn=fn, tn=tn), ci_method)
    if as_json:
        _emit_json(res.to_dict())
        return
    Console().print(_table(f"TP {tp}, FP {fp}, FN {fn}, TN {tn} ({ci_method} 95% CI)", _metrics_frame(res)))

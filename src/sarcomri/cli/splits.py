"""`sarcomri splits`: patient-level splits (k-fold with repeats, hold-out, leave-hospital-out, subsets)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from sarcomri.cli.options import emit_json, json_option, out_option
from sarcomri.cohort import splits as sp
from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.atomic import check_writable, write_csv
from sarcomri.io.tables import read_csv_table

app = typer.Typer(help="Patient-level splits: no patient is ever in training and test of one fold.",
                  no_args_is_help=True)


class Scheme(StrEnum):
    kfold = "kfold"
    holdout = "holdout"
    groups = "groups"


@app.command("make")
def make(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    out: Path = out_option(..., help="splits.csv to write (patient_id, repeat, fold, role)."),
    scheme: Scheme = typer.Option(Scheme.kfold, help="kfold (the sarcoma study: 6 folds x 24 repeats), holdout "
                                  "(the carcinosarcoma study's 5:1), or groups (leave one hospital out)."),
    folds: int = typer.Option(6, help="Folds for kfold."),
    repeats: int = typer.Option(1, help="Repeats of kfold with reshuffled folds."),
    test_ratio: float = typer.Option(1 / 6, help="Test share for holdout (1/6 = a 5:1 split)."),
    val_ratio: float = typer.Option(0.1, help="Share of each training fold kept for validation (epoch choice)."),
    stratify: str = typer.Option("label", help="Comma-separated patients.csv columns to stratify by jointly."),
    group: str = typer.Option("center", help="Column whose values are left out in turn for --scheme groups."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same splits."),
    balance_slices: str | None = typer.Option(
        None, "--balance-slices", help="kfold only: comma-separated sequences whose tumour slices (mask slices "
        "with tumour, summed over them) the folds should hold as evenly as possible, stratified by class (the "
        "sarcoma study's rule), e.g. 'T2axi,T2sag'. Default: folds even in patients."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file (never a cohort's "
                                   "own files)."),
    as_json: bool = json_option("out, scheme, seed, patients, folds (number of (repeat, fold) pairs), counts "
                                "(list of {repeat, fold, role, label, patients}), leakage_check"),
) -> None:
    """Write patient-level splits for a cohort and prove they do not leak patients."""
    check_writable(out, overwrite=overwrite)  # before any work: a cohort's own files or an existing file
    c = Cohort.load(cohort)
    by = tuple(s.strip() for s in stratify.split(",") if s.strip())
    if balance_slices and scheme is not Scheme.kfold:
        raise InputError(None, "--balance-slices applies to --scheme kfold only")
    if scheme is Scheme.kfold and balance_slices:
        from sarcomri.prep.prepare2d import tumour_slice_counts

        names = [s.strip() for s in balance_slices.split(",") if s.strip()]
        unknown = sorted(set(names) - set(c.sequences))
        if unknown:
            raise InputError(cohort, f"has no sequence {', '.join(unknown)} (it has {', '.join(c.sequences)})")
        table = sp.kfold(c.patients, folds, repeats, seed, val_ratio, by, "slices", tumour_slice_counts(c, names))
    elif scheme is Scheme.kfold:
        table = sp.kfold(c.patients, folds, repeats, seed, val_ratio, by)
    elif scheme is Scheme.holdout:
        table = sp.holdout(c.patients, test_ratio, seed, val_ratio, by)
    else:
        table = sp.leave_group_out(c.patients, group, val_ratio, seed)
    sp.check_no_leakage(table)
    write_csv(out, table, overwrite=overwrite)
    if as_json:
        counts = (table.assign(label=table["patient_id"].map(c.patients.set_index("patient_id")["label"]))
                  .groupby(["repeat", "fold", "role", "label"]).size().rename("patients").reset_index())
        emit_json({"out": str(out), "scheme": scheme.value, "seed": seed, "patients": table["patient_id"].nunique(),
                   "folds": table.groupby(["repeat", "fold"]).ngroups, "counts": counts, "leakage_check": "passed"})
        return
    print_summary(table, c.patients)
    Console().print(f"wrote {out}; leakage check passed")


@app.command("check")
def check(splits_csv: Path = typer.Argument(..., help="splits.csv (patient_id, repeat, fold, role).")) -> None:
    """Prove that no patient holds two roles in one fold (and, for k-fold, is tested exactly once per repeat)."""
    table = read_csv_table(splits_csv, sp.SPLIT_COLUMNS, dtype={"patient_id": str})
    try:
        sp.check_no_leakage(table)
    except sp.LeakageError as err:
        raise InputError(splits_csv, str(err)) from None
    Console().print(f"{splits_csv}: no leakage ({table['patient_id'].nunique()} patients, "
                    f"{table.groupby(['repeat', 'fold']).ngroups} folds)")


def print_summary(table: pd.DataFrame, patients: pd.DataFrame) -> None:
    labels = patients.set_index("patient_id")["label"]
    counts = (
        table.assign(label=table["patient_id"].map(labels))
        .groupby(["repeat", "fold", "role", "label"]).size().unstack(["role", "label"], fill_value=0)
    )
    t = Table("repeat", "fold", *[f"{r} {lab}" for r, lab in counts.columns], title="Patients per fold")
    for (rep, fold), row in counts.head(12).iterrows():
        t.add_row(str(rep), str(fold), *[str(int(v)) for v in row])
    Console().print(t)
    if len(counts) > 12:
        Console().print(f"... {len(counts) - 12} more folds")

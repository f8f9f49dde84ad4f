"""`sarcomri cohort`: inspect a cohort folder (patients, labels, sequences per patient, geometry, masks)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.problems import ValidationReport
from sarcomri.cohort.summary import availability_by_label, summarise

app = typer.Typer(help="Inspect and validate cohort folders (patients, labels, MRI sequences).", no_args_is_help=True)


@app.command("info")
def info(
    cohort: Path = typer.Argument(..., help="Cohort folder (cohort.json, patients.csv, series.csv, images/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (keys: sarcomri.cohort.summary)."),
    matrix: bool = typer.Option(False, "--matrix", help="Also print the patient x sequence availability matrix."),
) -> None:
    """Summarise a cohort: patients per label, which sequences each patient has, spacing, size, mask coverage."""
    c = Cohort.load(cohort)
    summary = summarise(c)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    con = Console()
    labels = ", ".join(f"{k}: {v}" for k, v in summary["labels"].items())
    con.print(f"[bold]{cohort}[/]  {summary['n_patients']} patients ({labels}); positive class: "
              f"{summary['positive_label']}")
    if "ideal_observer_auc" in summary:
        con.print(f"ideal-observer AUC (synthetic ground truth): {summary['ideal_observer_auc']:.3f}")
    t = Table("sequence", *[f"n {lab}" for lab in summary["labels"]], "masks", "spacing x/y/z mm (median)",
              "size x/y/z (median)", title="Sequences")
    by_label = availability_by_label(c)
    for seq, e in summary["sequences"].items():
        t.add_row(seq, *[str(int(by_label.loc[seq, lab])) for lab in summary["labels"]], str(e["with_mask"]),
                  " x ".join(f"{v:g}" for v in e.get("spacing", {}).get("median", [])),
                  " x ".join(f"{v:g}" for v in e.get("size", {}).get("median", [])))
    con.print(t)
    p = Table("available sequences", "patients", title="Availability patterns (multi-hospital data lack some)")
    for row in summary["availability_patterns"][:15]:
        p.add_row(row["sequences"], str(row["patients"]))
    con.print(p)
    con.print(f"patients with every sequence: {summary['patients_with_all_sequences']} of {summary['n_patients']}")
    if matrix:
        av = c.availability()
        m = Table("patient", "label", *av.columns, title="Availability matrix")
        labels_by_pid = c.patients.set_index("patient_id")["label"]
        for pid, row in av.iterrows():
            m.add_row(pid, labels_by_pid[pid], *["x" if v else "." for v in row])
        con.print(m)


class Level(StrEnum):
    """How deep ``cohort validate`` looks."""

    headers = "headers"
    content = "content"


@app.command("validate")
def validate(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    level: Level = typer.Option(Level.content, "--level", help="headers: tables, paths, file headers, grids (what "
                                "every stage checks on loading); content: also every voxel (NaN, mask values)."),
    as_json: bool = typer.Option(False, "--json", help="Print the problems as JSON (cohort, level, errors, "
                                 "warnings, problems: [{file, row, field, problem, severity}])."),
) -> None:
    """Check a cohort folder against its contract and list EVERY problem (file, row, field, problem, severity);
    exit code 1 when there is an error, 0 when there are only warnings."""
    from sarcomri.cohort.validate import validate_cohort

    c = Cohort.read(cohort)
    report = validate_cohort(c, level=level.value)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(Console(highlight=False), cohort, c, report)
    if report.errors:
        raise typer.Exit(code=1)


def _print_report(con: Console, root: Path, c: Cohort, report: ValidationReport) -> None:
    """The problems as a table, then one line: valid or not, with the counts."""
    if report.problems:
        t = Table("file", "row", "field", "problem", "severity", title=f"Problems ({report.level} level)")
        for p in report.problems:
            file = Path(p.file).relative_to(root) if Path(p.file).is_relative_to(root) else Path(p.file)
            colour = "red" if p.severity == "error" else "yellow"
            t.add_row(escape(str(file)), "" if p.row is None else str(p.row), escape(p.field or ""),
                      escape(p.problem), f"[{colour}]{p.severity}[/]")
        con.print(t)
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if report.errors:
        con.print(f"[bold red]{escape(str(root))}: not valid[/] ({counts})")
    else:
        con.print(f"[green]{escape(str(root))}: valid[/] ({len(c.patients)} patients, {len(c.series)} series; "
                  f"{report.level} checked; {counts})")

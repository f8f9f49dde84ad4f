"""`sarcomri study run`: a whole study from one YAML, every stage skipped when current."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sarcomri import study as study_lib
from sarcomri.cli.options import COHORT_OPT, QUIET_OPT, RUN_DIR_OPT, RUNS_OPT, emit_json, json_option
from sarcomri.runs import StudyRun
from sarcomri.study_cohort import cohort_dir
from sarcomri.study_config import load_study_config

app = typer.Typer(help="Whole studies: cohort, classification, readers, segmentation, transfer, report.",
                  no_args_is_help=True)

SMOKE_OPT = typer.Option(False, "--smoke", help="The preset's smoke scale: fewer epochs, repeats, folds and "
                         "patients, smaller images (its 'smoke:' section), on a synthetic cohort unless --cohort is "
                         "given: the whole design in minutes on a CPU.")
READS_OPT = typer.Option(None, "--readers", help="The radiologists' reads (CSV: patient_id, reader, group, "
                         "sequence, session, confidence) instead of the cohort's readers.csv.")


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Study config YAML: the demo's preset "
                                  "src/sarcomri/presets/demo-study.yaml, or your own with the same sections "
                                  "(classification, segmentation, transfer: each the config of its own command, "
                                  "as in configs/demo-sarcoma.yaml, configs/seg3d-cpu.yaml, "
                                  "configs/demo-transfer.yaml, less the cohort)."),
    runs: Path = RUNS_OPT,
    run_dir: Path | None = RUN_DIR_OPT,
    cohort: Path | None = COHORT_OPT,
    reads: Path | None = READS_OPT,
    smoke: bool = SMOKE_OPT,
    quiet: bool = QUIET_OPT,
    as_json: bool = json_option("name, run_dir, seconds, ran (stage names), stages (list of {name, status (ran or "
                                "skipped), seconds, outputs (paths)}), cohort, report (path or null)"),
) -> None:
    """Synthesise or read the cohort, train the classification grid, ensemble, vote and search sequence
    combinations, compare with the readers, segment, run the transfer-learning study and write the report.
    A rerun redoes only the stages whose config (or an upstream stage) changed, or that did not finish."""
    con = Console()
    cfg = load_study_config(config, smoke=smoke or None, cohort=cohort, reads=reads)
    out = run_dir if run_dir is not None else runs / cfg.name
    t0 = time.perf_counter()
    log = Console(stderr=as_json, quiet=quiet).print  # stage lines: on stderr with --json, none with --quiet
    status = study_lib.run_study(cfg, out, log=log, progress=not (quiet or as_json))
    ran = [k for k, v in status.items() if v == "ran"]
    if as_json:
        emit_json(_result(cfg.name, out, status, time.perf_counter() - t0, cohort_dir(cfg, out)))
        return
    con.print(f"[bold]{cfg.name}[/]: {len(ran)} stage(s) ran ({', '.join(ran) or 'none'}) in "
              f"{time.perf_counter() - t0:.0f} s; run folder {out.resolve()}")
    report = StudyRun(out).report_html
    if report.is_file():
        con.print(f"report: {report.resolve()}")


def _result(name: str, out: Path, status: dict[str, str], seconds: float, cohort: Path) -> dict[str, Any]:
    """What ``study run --json`` prints: each stage's status and the outputs it wrote (from the stage ledger)."""
    from sarcomri.stages import Ledger

    ledger = Ledger(out).entries
    stages = [{"name": stage, "status": state, "seconds": ledger.get(stage, {}).get("seconds"),
               "outputs": [str((out / o).resolve()) for o in ledger.get(stage, {}).get("outputs", [])]}
              for stage, state in status.items()]
    report = StudyRun(out).report_html
    return {"name": name, "run_dir": str(out.resolve()), "seconds": round(seconds, 1),
            "ran": [s["name"] for s in stages if s["status"] == "ran"], "stages": stages,
            "cohort": str(Path(cohort).resolve()), "report": str(report.resolve()) if report.is_file() else None}


@app.command("plan")
def plan(
    config: Path = typer.Argument(..., help="Study config YAML (a preset of configs/, or your own)."),
    runs: Path = RUNS_OPT,
    run_dir: Path | None = RUN_DIR_OPT,
    cohort: Path | None = COHORT_OPT,
    reads: Path | None = READS_OPT,
    smoke: bool = SMOKE_OPT,
    check_files: bool = typer.Option(False, "--check-files", help="Also open every image and mask the cohort "
                                     "names (slow on a large cohort); by default only its tables are read."),
    as_json: bool = json_option("name, scale, run_dir, cohort (summary or null), cohort_source, protocol (every "
                                "section resolved), design (models, ensembles, combinations, training sizes), "
                                "published (list of {item, paper, preset, match, key, note}), smoke_changes, splits "
                                "(per fold: patients per role and class), stages, checks (list of {level, message}), "
                                "ok"),
) -> None:
    """Check a study config against its cohort and print the resolved protocol, its design, the paper's values
    beside the study's, and the stages, without running anything. Exits 1 when a check fails."""
    from sarcomri.configfile import read_yaml
    from sarcomri.studyplan import plan_study

    cfg = load_study_config(config, smoke=smoke or None, cohort=cohort, reads=reads)
    out = run_dir if run_dir is not None else runs / cfg.name
    result = plan_study(cfg, out, raw=read_yaml(config), check_files=check_files)
    if as_json:
        emit_json(result)
    else:
        _print_plan(Console(), result)
    if not result["ok"]:
        raise typer.Exit(1)


def _print_plan(con: Console, plan: dict[str, Any]) -> None:
    """The plan as tables: the cohort, the published values, the design, the splits, the stages, the checks."""
    from rich.table import Table

    con.print(f"[bold]{plan['name']}[/] ({plan['scale']} scale): cohort {plan['cohort_source']}")
    if plan["cohort"]:
        c = plan["cohort"]
        con.print(f"cohort: {c['patients']} patients ({', '.join(f'{k} {v}' for k, v in c['labels'].items())}); "
                  "sequences (patients / with mask): " + ", ".join(f"{s} {n}/{c['masks'].get(s, 0)}"
                                                                   for s, n in c["sequences"].items()))
    if plan["published"]:
        table = Table("item", "paper", "study", "as published", "key", title="The paper's protocol")
        for row in plan["published"]:
            mark = {True: "yes", False: "[yellow]differs[/]", None: "?"}[row["match"]]
            table.add_row(row["item"], str(row["paper"]), str(row["preset"]), mark, row["key"])
        con.print(table)
    for section, values in plan["design"].items():
        con.print(f"[bold]{section}[/]: " + "; ".join(f"{k} {v}" for k, v in values.items() if not isinstance(v, dict)))
    if plan.get("splits"):
        table = Table("fold", "train", "val", "test", title="Patients per class (first repeat)")
        for row in plan["splits"]:
            table.add_row(str(row["fold"]), *(", ".join(f"{k} {v}" for k, v in row[r].items())
                                              for r in ("train", "val", "test")))
        con.print(table)
    if plan["smoke_changes"] and plan["scale"] == "smoke":
        con.print("smoke scale: " + "; ".join(f"{c['key']} {c['full']} -> {c['smoke']}" for c in plan["smoke_changes"]))
    con.print("stages: " + " -> ".join(s["name"] for s in plan["stages"]))
    for check in plan["checks"]:
        colour = "red" if check["level"] == "error" else "yellow"
        con.print(f"[{colour}]{check['level']}:[/] {check['message']}")
    con.print("[green]ok[/]: ready to run" if plan["ok"] else "[red]not ready[/]: fix the errors above")

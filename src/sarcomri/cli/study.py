"""`sarcomri study run`: a whole study from one YAML, every stage skipped when current."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sarcomri import study as study_lib
from sarcomri.cli.options import COHORT_OPT, QUIET_OPT, RUN_DIR_OPT, RUNS_OPT, emit_json, json_option
from sarcomri.config import load_study_config
from sarcomri.runs import StudyRun

app = typer.Typer(help="Whole studies: cohort, classification, readers, segmentation, transfer, report.",
                  no_args_is_help=True)


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
    quiet: bool = QUIET_OPT,
    as_json: bool = json_option("name, run_dir, seconds, ran (stage names), stages (list of {name, status (ran or "
                                "skipped), seconds, outputs (paths)}), cohort, report (path or null)"),
) -> None:
    """Synthesise or read the cohort, train the classification grid, ensemble, vote and search sequence
    combinations, compare with the readers, segment, run the transfer-learning study and write the report.
    A rerun redoes only the stages whose config (or an upstream stage) changed, or that did not finish."""
    con = Console()
    cfg = load_study_config(config)
    if cohort is not None:  # the user's cohort instead of the config's (or its synthetic one)
        cfg = cfg.model_copy(update={"cohort": str(cohort.resolve()), "synth": None})
    out = run_dir if run_dir is not None else runs / cfg.name
    t0 = time.perf_counter()
    log = Console(stderr=as_json, quiet=quiet).print  # stage lines: on stderr with --json, none with --quiet
    status = study_lib.run_study(cfg, out, log=log, progress=not (quiet or as_json))
    ran = [k for k, v in status.items() if v == "ran"]
    if as_json:
        emit_json(_result(cfg.name, out, status, time.perf_counter() - t0, study_lib.cohort_dir(cfg, out)))
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

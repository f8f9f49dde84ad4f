"""`sarcomri study run`: a whole study from one YAML, every stage skipped when current."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from sarcomri import study as study_lib
from sarcomri.config import load_study_config

app = typer.Typer(help="Whole studies: cohort, classification, readers, segmentation, transfer, report.",
                  no_args_is_help=True)


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Study config YAML (see configs/study-*.yaml)."),
    runs: Path = typer.Option(Path("runs"), help="Folder that holds run folders (<runs>/<name>)."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Explicit run folder (overrides --runs/name)."),
) -> None:
    """Synthesise or read the cohort, train the classification grid, ensemble, vote and search sequence
    combinations, compare with the readers, segment, run the transfer-learning study and write the report.
    A rerun redoes only the stages whose config (or an upstream stage) changed, or that did not finish."""
    con = Console()
    cfg = load_study_config(config)
    out = run_dir if run_dir is not None else runs / cfg.name
    t0 = time.perf_counter()
    status = study_lib.run_study(cfg, out, log=con.print)
    ran = [k for k, v in status.items() if v == "ran"]
    con.print(f"[bold]{cfg.name}[/]: {len(ran)} stage(s) ran ({', '.join(ran) or 'none'}) in "
              f"{time.perf_counter() - t0:.0f} s; run folder {out.resolve()}")
    report = out / "report" / "report.html"
    if report.is_file():
        con.print(f"report: {report.resolve()}")

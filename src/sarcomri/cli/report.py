"""`sarcomri report`: the HTML report of a run or study folder (thin command over sarcomri.report)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sarcomri.cli.options import out_option


def report(
    run: Path = typer.Argument(..., help="A classification run folder (`sarcomri classify run`) or a study folder "
                                         "(`sarcomri study run`)."),
    out: Path | None = out_option(None, help="Report folder (default <run>/report)."),
    cohort: Path | None = typer.Option(None, "--cohort", help="The cohort folder, when the run's config does not "
                                                              "name it."),
    segmentation: list[Path] = typer.Option(None, "--segmentation", help="A segmentation run folder "
                                            "(`sarcomri segment train`); repeatable."),
    readers: Path | None = typer.Option(None, "--readers", help="readers.csv to use instead of the run's or the "
                                                                "cohort's."),
    transfer: Path | None = typer.Option(None, "--transfer", help="A transfer-learning study folder."),
    gradcam: bool = typer.Option(True, "--gradcam/--no-gradcam", help="Grad-CAM of the run's models on test "
                                                                      "slices (needs models/ and cache/)."),
) -> None:
    """Write report.html (ROC curves with the readers, the published tables, reading sessions,
    misdiagnoses, Grad-CAM, segmentation, model card), its PNG figures and model_card.md."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.report import build_report

    loaded = Cohort.load(cohort, check_files=False) if cohort is not None else None
    path = build_report(run, cohort=loaded, segmentation_dirs=segmentation or None, out_dir=out, gradcam=gradcam,
                        readers=readers, transfer_dir=transfer)
    Console().print(f"[green]report:[/] {escape(str(path))}")

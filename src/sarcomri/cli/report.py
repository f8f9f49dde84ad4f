"""`sarcomri report`: the HTML report of a run or study folder (thin command over sarcomri.report)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sarcomri.cli.options import out_option


class Assets(StrEnum):
    """Where the report's figures go: inside report.html, or a figures/ folder beside it."""

    embed = "embed"
    folder = "folder"


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
    assets: Assets = typer.Option(Assets.embed, "--assets", help="embed: the figures inside report.html (one file "
                                  "to mail); folder: PNGs in figures/ beside it."),
    pdf: bool = typer.Option(False, "--pdf", help="Also write report.pdf, printed by headless Chromium (must be "
                                                  "installed: apt-get install chromium)."),
) -> None:
    """Write report.html (ROC curves with the readers, the published tables, reading sessions,
    misdiagnoses, Grad-CAM, segmentation, model card) with its figures, model_card.md, and report.pdf with --pdf."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.report import build_report

    loaded = Cohort.load(cohort, check_files=False) if cohort is not None else None
    path = build_report(run, cohort=loaded, segmentation_dirs=segmentation or None, out_dir=out, gradcam=gradcam,
                        readers=readers, transfer_dir=transfer, assets=assets.value, pdf=pdf)
    Console().print(f"[green]report:[/] {escape(str(path))}")
    if pdf:
        Console().print(f"[green]pdf:[/] {escape(str(path.with_suffix('.pdf')))}")

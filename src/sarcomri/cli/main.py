"""The ``sarcomri`` command: one entry point, one sub-command per stage of a study."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from sarcomri import __version__
from sarcomri.cli import classify as classify_cli
from sarcomri.cli import cohort as cohort_cli
from sarcomri.cli import config as config_cli
from sarcomri.cli import demo as demo_cli
from sarcomri.cli import export as export_cli
from sarcomri.cli import ingest as ingest_cli
from sarcomri.cli import predict as predict_cli
from sarcomri.cli import radiomics as radiomics_cli
from sarcomri.cli import read as read_cli
from sarcomri.cli import report as report_cli
from sarcomri.cli import segment as segment_cli
from sarcomri.cli import segment_transfer, stats_seg
from sarcomri.cli import splits as splits_cli
from sarcomri.cli import stats as stats_cli
from sarcomri.cli import study as study_cli
from sarcomri.cli import synth as synth_cli
from sarcomri.cli.console import ROOT_OPTIONS
from sarcomri.errors import SarcomriError

app = typer.Typer(
    name="sarcomri",
    help="Deep learning on MRI of rare tumours: uterine sarcoma vs leiomyoma, carcinosarcoma vs endometrial "
    "carcinoma, soft-tissue sarcoma segmentation. From DICOM to the published tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cohort_cli.app, name="cohort")
app.add_typer(splits_cli.app, name="splits")
app.add_typer(classify_cli.app, name="classify")
stats_cli.app.command("seg")(stats_seg.seg)
app.add_typer(stats_cli.app, name="stats")
app.add_typer(radiomics_cli.app, name="radiomics")
segment_cli.app.command("transfer-study")(segment_transfer.transfer_study)
app.add_typer(segment_cli.app, name="segment")
app.add_typer(study_cli.app, name="study")
app.add_typer(read_cli.app, name="read")
app.add_typer(config_cli.app, name="config")
export_app = typer.Typer(help="Export a cohort for other tools (nnU-Net v2).", no_args_is_help=True)
export_app.command("nnunet")(export_cli.export_nnunet)
app.add_typer(export_app, name="export")
app.command("ingest")(ingest_cli.ingest)
app.command("synth")(synth_cli.synth)
app.command("demo")(demo_cli.demo)
app.command("report")(report_cli.report)
app.command("predict")(predict_cli.predict)


def _print_version(value: bool) -> None:
    """``--version``: print the version and stop before any command is looked for."""
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the sarcomri version and exit."),
    verbose: bool = typer.Option(False, "--verbose", help="Let messages show the source's folder and file names "
                                 "(they often hold a patient's name or ID, so they are hidden by default)."),
) -> None:
    """Options of every command; without a command, a usage error."""
    ROOT_OPTIONS["verbose"] = verbose
    if ctx.invoked_subcommand is None:
        ctx.fail("Missing command.")


#: Exit code of a user error (bad input: a missing or invalid file, a refused overwrite); usage errors (an
#: unknown option, a missing argument) keep click's 2.
USER_ERROR = 1
#: OS errors about a path the user gave: a user error, shown as one line naming the file.
_PATH_ERRORS = (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def main() -> None:
    """Console-script entry point: a user error becomes one red line (naming the file and the problem, no
    traceback) and exit code 1; click's usage errors exit with 2."""
    try:
        app()
    except SarcomriError as err:
        _fail(str(err))
    except _PATH_ERRORS as err:
        _fail(f"{err.filename}: {err.strerror}" if err.filename and err.strerror else str(err))


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(USER_ERROR)


if __name__ == "__main__":
    main()

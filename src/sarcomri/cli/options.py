"""The options every command spells the same way, declared once: ``--run-dir`` and ``--runs``, ``--out``/``-o``,
``--json``, ``--quiet``/``-q``, ``--cohort``; the old names of renamed options as hidden aliases; and the
one JSON printer.

The rules (``tests/cli/test_option_names.py`` walks every command and checks them):

* a run folder is ``--run-dir`` (with ``--runs``, the folder of run folders, as the default's parent);
* an output file or folder is ``--out``, always with the short flag ``-o``;
* a command that prints a result (tables) also prints it as one JSON object with ``--json``; stdout then
  holds the JSON only (no progress bars);
* a long command (training, ingestion, synthesis, inference) is silenced with ``--quiet``/``-q``;
* a cohort folder given as an option is ``--cohort``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sarcomri.stats._json import jsonable

#: ``--runs``: where a run folder goes by default (``<runs>/<name>``).
RUNS_OPT = typer.Option(Path("runs"), "--runs", help="Folder that holds run folders: the run folder is "
                        "<runs>/<name> unless --run-dir is given.")
#: ``--run-dir``: the run folder itself.
RUN_DIR_OPT = typer.Option(None, "--run-dir", help="Explicit run folder (overrides --runs/<name>).")
#: ``--quiet``/``-q`` of a long command.
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines.")
#: ``--cohort`` overriding the config's cohort.
COHORT_OPT = typer.Option(None, "--cohort", help="Cohort folder (overrides the config's 'cohort').")


def out_option(default: Any, help: str) -> Any:
    """``--out``/``-o``: the file or folder a command writes (``...`` when required)."""
    return typer.Option(default, "--out", "-o", help=help)


def json_option(keys: str) -> Any:
    """``--json``: print the result as one JSON object whose keys ``keys`` lists."""
    return typer.Option(False, "--json", help=f"Print one JSON object instead of the tables (stdout holds the JSON "
                                              f"only; no progress bars). Keys: {keys}.")


def hidden_alias(*names: str) -> Any:
    """A renamed option's old name(s), still accepted (with a warning) but no longer shown in ``--help``."""
    return typer.Option(None, *names, hidden=True)


def renamed(value: Any, old_value: Any, new: str, old: str, default: Any = None) -> Any:
    """The value of option ``new`` given either as ``new`` or under its old name ``old`` (a hidden alias): a
    warning on stderr for the old name, a usage error (exit 2) when both are given."""
    if old_value is None:
        return value
    if value is not None and value != default:
        raise typer.BadParameter(f"{old} is the old name of {new}: give only {new}", param_hint=f"'{old}'")
    Console(stderr=True).print(f"[yellow]warning:[/] {old} is deprecated; use {new}", highlight=False)
    return old_value


def require(value: Any, name: str) -> Any:
    """``value`` of a required option that may come from a hidden alias; a usage error (exit 2) when neither
    the option nor its alias was given."""
    if value is None:
        raise typer.BadParameter("missing: this option is required", param_hint=f"'{name}'")
    return value


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout: numpy values and tables made plain, NaN as null, paths as text."""
    typer.echo(json.dumps(jsonable(obj), indent=2, default=str))


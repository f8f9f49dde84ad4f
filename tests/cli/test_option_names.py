"""The same option names for the same things in every command (sarcomri.cli.options): a walk over the whole
typer app, so that a new command that breaks a rule fails here. (Typer ships its own copy of click, so the walk
goes by attributes, not click's classes.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from sarcomri.cli.main import app

REPO = Path(__file__).resolve().parents[2]

#: Commands that run for minutes (training, ingestion, synthesis, inference): each takes --quiet/-q.
LONG = {"classify run", "segment train", "segment predict", "segment transfer-study", "study run", "ingest", "synth",
        "demo", "predict"}
#: Commands that print no result table (one line, a path, or JSON already): the only ones without --json.
NO_TABLE = {"splits check", "segment plan", "segment predict", "export nnunet", "report", "demo",
            "config schema", "read export", "read serve"}


def _commands() -> dict[str, Any]:
    """Every leaf command of ``sarcomri``, by its full name (``'segment train'``)."""
    found: dict[str, Any] = {}

    def walk(cmd: Any, prefix: str) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return found


COMMANDS = _commands()


def _options(cmd: Any, hidden: bool = False) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option" and (hidden or not p.hidden)]


def _names(cmd: Any, hidden: bool = False) -> set[str]:
    return {name for p in _options(cmd, hidden) for name in (*p.opts, *p.secondary_opts)}


def test_the_walk_finds_every_command():
    assert {"splits check", "stats icc", "segment transfer-study", "study run", "export nnunet"} <= set(COMMANDS)
    assert LONG <= set(COMMANDS) and NO_TABLE <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_run_folders_are_run_dir(name):
    names = _names(COMMANDS[name])
    if "--runs" in names:
        assert "--run-dir" in names, f"{name}: --runs without --run-dir"
    out = next((p for p in _options(COMMANDS[name]) if "--out" in p.opts), None)
    if "--run-dir" in names:
        assert out is None, f"{name}: a run command names its run folder --run-dir, not --out"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_out_has_the_short_flag_o(name):
    for p in _options(COMMANDS[name]):
        if "--out" in p.opts:
            assert set(p.opts) == {"--out", "-o"}, f"{name}: {p.opts}"
        elif "-o" in p.opts:
            pytest.fail(f"{name}: -o is the short flag of --out only, not of {p.opts}")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_quiet_json_and_overwrite_are_plain_flags(name):
    for p in _options(COMMANDS[name]):
        if {"--quiet", "--json", "--overwrite"} & set(p.opts):
            assert p.is_flag and not p.secondary_opts, f"{name}: {p.opts} / {p.secondary_opts}"
        if "--quiet" in p.opts:
            assert set(p.opts) == {"--quiet", "-q"}, f"{name}: --quiet without -q"


@pytest.mark.parametrize("name", sorted(LONG))
def test_every_long_command_has_quiet(name):
    assert {"--quiet", "-q"} <= _names(COMMANDS[name]), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_with_a_result_table_has_json(name):
    has_json = "--json" in _names(COMMANDS[name])
    assert has_json == (name not in NO_TABLE), f"{name}: --json {'missing' if not has_json else 'unexpected'}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_cohort_option_is_named_cohort(name):
    for p in _options(COMMANDS[name]):
        if re.match(r"cohort folder", p.help or "", re.I) and "--out" not in p.opts:  # a cohort to read
            assert p.opts == ["--cohort"], f"{name}: {p.opts} holds a cohort folder"


def test_agreement_and_icc_name_their_columns_alike():
    for name in ("stats agreement", "stats icc"):
        assert {"--case", "--rater", "--rating"} <= _names(COMMANDS[name]), name
    visible = {n for cmd in COMMANDS.values() for n in _names(cmd)}
    assert not {"--targets", "--raters", "--ratings"} & visible  # the old names: hidden aliases only
    assert {"--targets", "--raters", "--ratings"} <= _names(COMMANDS["stats icc"], hidden=True)
    assert {"--out", "-o"} <= _names(COMMANDS["segment transfer-study"], hidden=True)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_paths_named_in_help_exist(name):
    """A config or preset a --help names is a file in the repository (no pattern that matches nothing)."""
    cmd = COMMANDS[name]
    texts = [cmd.help or ""] + [p.help or "" for p in cmd.params if getattr(p, "help", None)]
    for path in re.findall(r"(?:src/sarcomri/presets|configs)/[\w*.-]+\.yaml", " ".join(texts)):
        assert "*" not in path and (REPO / path).is_file(), f"{name} names {path}"


#: Text that rich would take for a markup tag and drop from the help (``[nnunet]`` in ``'sarcomri[nnunet]'``);
#: an escaped ``\[`` is printed as written.
_MARKUP_TAG = re.compile(r"(?<!\\)\[[a-z#/@][^\]\[]*\]")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_texts_survive_rich_markup(name):
    cmd = COMMANDS[name]
    texts = [cmd.help or ""] + [p.help or "" for p in cmd.params if getattr(p, "help", None)]
    lost = [m.group(0) for text in texts for m in _MARKUP_TAG.finditer(text)]
    assert not lost, f"sarcomri {name}: help text {lost} would vanish as rich markup; escape it as \\["

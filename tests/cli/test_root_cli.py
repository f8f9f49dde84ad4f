"""The root `sarcomri` command: --version, --verbose, and a missing command."""

from __future__ import annotations

from typer.testing import CliRunner

from sarcomri import __version__
from sarcomri.cli.console import ROOT_OPTIONS, verbose_asked
from sarcomri.cli.main import app

runner = CliRunner()


def test_version_prints_the_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == __version__


def test_no_command_is_a_usage_error():
    res = runner.invoke(app, ["--verbose"])
    assert res.exit_code == 2 and "Missing command" in res.output


def test_verbose_reaches_the_commands():
    assert runner.invoke(app, ["--verbose", "stats", "--help"]).exit_code == 0
    assert ROOT_OPTIONS["verbose"] and verbose_asked()
    assert runner.invoke(app, ["stats", "--help"]).exit_code == 0
    assert not ROOT_OPTIONS["verbose"] and not verbose_asked() and verbose_asked(True)

"""Helpers of the preset smoke tests: run a preset at its smoke scale through the CLI, read its paper tables."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sarcomri.cli.main import app
from sarcomri.report.papertables import read_paper_tables
from sarcomri.runs import StudyRun

REPO = Path(__file__).resolve().parents[2]


def run_smoke(name: str, run_dir: Path) -> dict:
    """``sarcomri study run configs/<name>.yaml --smoke --json``: the result, after checking it succeeded."""
    result = CliRunner().invoke(app, ["study", "run", str(REPO / "configs" / f"{name}.yaml"), "--smoke",
                                      "--run-dir", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    return json.loads(result.stdout)


def paper_names(folder: Path) -> set[str]:
    """The names of the paper tables in a ``paper/`` folder."""
    return {entry.name for entry, _ in read_paper_tables(folder)}


def report_text(run_dir: Path) -> str:
    """The study's report.html, after checking that it has the "As published" section."""
    html = StudyRun(run_dir).report_html.read_text()
    assert 'id="published"' in html and "As published" in html
    return html

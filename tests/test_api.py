"""The Python API (``sarcomri.__all__``, docs/api.md): every name imports, ``import sarcomri`` loads no torch,
and the walkthrough of docs/api.md runs as written on its tiny cohort."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sarcomri

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_import_sarcomri_loads_no_torch():
    code = "import sarcomri, sys; assert 'torch' not in sys.modules, 'torch imported'; sarcomri.__all__"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sarcomri.__all__)
def test_every_public_name_imports_and_says_what_it_is_for(name):
    value = getattr(sarcomri, name)
    assert value is getattr(sarcomri, name) and name in dir(sarcomri)
    doc = inspect.getdoc(value)
    assert doc and len(doc.split()) >= 4, f"sarcomri.{name} has no docstring saying what it is for"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        sarcomri.no_such_thing  # noqa: B018


def snippets(text: str) -> list[str]:
    """The ```python blocks of a Markdown page, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_api_walkthrough_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = snippets(DOC.read_text())
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[snippet {i + 1}]", "exec"), namespace)  # noqa: S102
    study = sarcomri.open_run(tmp_path / "runs" / "api-study")
    assert study.classification.predictions_path.is_file()
    assert namespace["prediction"].decision in ("sarcoma", "leiomyoma")
    assert (tmp_path / "new-patient-result" / "result.json").is_file()
    assert sarcomri.run_study(namespace["cfg"], "runs/api-study", log=lambda line: None, progress=False) == {
        stage: "skipped" for stage in namespace["status"]}

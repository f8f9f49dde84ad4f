"""Typed configs: every shipped config validates against its exported JSON Schema and loads to the settings it
loaded to before the configs were typed (``data/config_dumps.json``, recorded then: effective settings, study
seeds and stage keys); ``sarcomri config schema`` and ``sarcomri config validate``; no untyped study section."""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from sarcomri.cli.main import main
from sarcomri.config_kinds import CONFIG_KINDS, config_schema, guess_kind, load_any_config
from sarcomri.fingerprint import key
from sarcomri.study import seeds
from sarcomri.study_config import StudyConfig

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*(REPO / "configs").glob("*.yaml"), *(REPO / "src/sarcomri/presets").glob("*.yaml")])
GOLDEN = json.loads((Path(__file__).parent / "data" / "config_dumps.json").read_text())
KIND = {"demo-carcinosarcoma": "classification", "demo-sarcoma": "classification", "seg3d-cpu": "segmentation",
        "seg3d-gpu": "segmentation", "demo-transfer": "transfer", "transfer-dwi": "transfer", "demo-study": "study",
        "s0-carcinosarcoma": "study", "s1-sarcoma": "study", "s2-dwi-transfer": "study", "s3-sts-segmentation": "study"}


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _portable(obj: object) -> object:
    """``obj`` with the repository's absolute path written ``<repo>``, as in the recorded dumps."""
    return json.loads(json.dumps(obj).replace(str(REPO), "<repo>"))


def test_every_shipped_config_is_recorded():
    assert {_rel(p) for p in SHIPPED} == set(GOLDEN) and {p.stem for p in SHIPPED} == set(KIND)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_validate_against_their_schema(path):
    kind = KIND[path.stem]
    raw = yaml.safe_load(path.read_text())
    assert guess_kind(raw) == kind
    jsonschema.validate(raw, config_schema(kind))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_load_to_the_settings_recorded_before_typing(path):
    kind, cfg = load_any_config(path)
    assert kind == KIND[path.stem]
    golden = GOLDEN[_rel(path)]
    assert _portable(cfg.model_dump(mode="json")) == golden["dump"]
    assert type(cfg).model_validate(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json")))) == cfg
    if kind != "study":
        return
    for seed in (0, 7):
        study = cfg.model_copy(update={"seed": seed})
        want = golden[f"seed{seed}"]
        assert seeds(study) == want["seeds"]
        assert {n: key(study.seeded(n)) for n in ("classification", "segmentation", "transfer")} == want["keys"]
        for name, got in (("cls", study.classification and study.classification_config("X")),
                          ("seg", study.segmentation and study.segmentation_config("X")),
                          ("tr", study.transfer and study.transfer_config())):
            assert _portable(got.model_dump(mode="json") if got else None) == want[name]


def test_a_study_written_back_reads_the_same():
    """config.yaml of a study run holds each section as written, so the study seed still fills its seeds."""
    cfg = StudyConfig(name="s", cohort="c", seed=7, classification={"sequences": ["T2axi"], "train": {"epochs": 2}})
    again = StudyConfig.model_validate(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"))))
    assert again.classification_config("c") == cfg.classification_config("c")
    assert again.classification_config("c").train.seed == 7 and again.classification.train.epochs == 2


def _untyped(annotation: object) -> bool:
    """Whether an annotation is or holds a ``dict`` (or ``Any``) rather than a config model."""
    if annotation is typing.Any or annotation is dict:
        return True
    return typing.get_origin(annotation) is dict or any(_untyped(a) for a in typing.get_args(annotation))


def test_study_sections_are_typed():
    for name in ("classification", "segmentation", "transfer"):
        annotation = StudyConfig.model_fields[name].annotation
        assert any(isinstance(a, type) and issubclass(a, BaseModel) for a in typing.get_args(annotation)), name
    assert not [n for n, f in StudyConfig.model_fields.items() if _untyped(f.annotation)]


def test_the_training_sections_share_one_model():
    from sarcomri.seg2d.config import TrainSettings2D
    from sarcomri.seg3d.config import TrainSettings
    from sarcomri.train.config import TrainConfig, TrainSection

    for model in (TrainConfig, TrainSettings2D, TrainSettings):
        assert issubclass(model, TrainSection) and set(TrainSection.model_fields) <= set(model.model_fields)
    assert CONFIG_KINDS["classification"].model_fields["train"].annotation is TrainConfig


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["sarcomri", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return done.value.code or 0, out.out, out.err


@pytest.mark.parametrize("kind", sorted(CONFIG_KINDS))
def test_schema_command_prints_the_schema(kind, monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "config", "schema", kind)
    schema = json.loads(out)
    assert code == 0 and schema["title"] == CONFIG_KINDS[kind].__name__ and schema == config_schema(kind)


def test_schema_out_needs_overwrite_to_replace(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "study.schema.json"
    assert _cli(monkeypatch, capsys, "config", "schema", "study", "--out", dest)[0] == 0
    assert json.loads(dest.read_text())["title"] == "StudyConfig"
    code, _, err = _cli(monkeypatch, capsys, "config", "schema", "transfer", "-o", dest)
    assert code == 1 and "exists already" in err and json.loads(dest.read_text())["title"] == "StudyConfig"
    assert _cli(monkeypatch, capsys, "config", "schema", "transfer", "-o", dest, "--overwrite")[0] == 0
    assert json.loads(dest.read_text())["title"] == "TransferStudyConfig"


def test_validate_prints_one_line(tmp_path, monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "config", "validate", REPO / "configs/seg3d-cpu.yaml")
    assert code == 0 and out.strip().endswith("valid segmentation config") and len(out.splitlines()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsynth: {}\nsequences: [T2axi]\ntrain: {epochs: 0}\n")
    code, out, err = _cli(monkeypatch, capsys, "config", "validate", bad)
    assert code == 1 and out == "" and "field 'train.epochs'" in err and len(err.strip().splitlines()) == 1
    code, out, _ = _cli(monkeypatch, capsys, "config", "validate", bad, "--json")
    result = json.loads(out)
    assert code == 1 and not result["valid"] and "train.epochs" in result["error"]
    study = tmp_path / "study.yaml"
    study.write_text("name: s\nsynth: {}\ntransfer: {levels: [L9]}\n")
    code, _, err = _cli(monkeypatch, capsys, "config", "validate", study)
    assert code == 1 and "field 'transfer.levels.0'" in err

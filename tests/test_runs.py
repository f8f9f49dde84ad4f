"""The run contract (sarcomri.runs): a run folder opens as its kind, owns its paths, and states one rule each for
the cohort, the positive label, the slice specification and the decision rule."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from sarcomri.config import ClassificationConfig, dump_config
from sarcomri.errors import SarcomriError
from sarcomri.runs import (
    ClassificationRun,
    NotARunError,
    SegmentationRun,
    StudyRun,
    TransferRun,
    negative_label,
    open_run,
    resolve_positive_label,
)
from sarcomri.seg2d.config import TransferStudyConfig
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.study_config import StudyConfig


def _folder(path, cfg=None, files=()):
    path.mkdir(parents=True)
    if cfg is not None:
        (path / "config.yaml").write_text(dump_config(cfg) if not isinstance(cfg, dict) else yaml.safe_dump(cfg))
    for name in files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text("{}")
    return path


def test_open_run_recognises_each_kind(tmp_path, tiny_cohort):
    cls = _folder(tmp_path / "cls", ClassificationConfig(name="c", cohort=str(tiny_cohort), sequences=["T2axi"]))
    seg = _folder(tmp_path / "seg", Seg3DConfig(name="s", cohort=str(tiny_cohort), sequences=["T2axi"]))
    transfer = _folder(tmp_path / "transfer", TransferStudyConfig(name="t"))
    made_before = _folder(tmp_path / "old", {"name": "tiny", "cohort": str(tiny_cohort), "sequences": ["T2axi"],
                                             "positive_label": "sarcoma", "slices": {"size": 32}})
    study = _folder(tmp_path / "study", StudyConfig(name="st", cohort=str(tiny_cohort)), files=["stages.json"])
    old_study = _folder(tmp_path / "old-study")  # made before stages.json: a classification/ folder
    _folder(old_study / "classification", ClassificationConfig(name="c", cohort=str(tiny_cohort), sequences=["ADC"]))
    kinds = {cls: ClassificationRun, seg: SegmentationRun, transfer: TransferRun, made_before: ClassificationRun,
             study: StudyRun, old_study: StudyRun}
    for folder, kind in kinds.items():
        assert type(open_run(folder)) is kind, folder
    run = open_run(cls)
    assert run.splits_path == cls / "splits.csv" and run.predictions_path == cls / "predictions.parquet"
    assert run.cache_path("T2axi") == cls / "cache" / "T2axi.npz" and run.table_path("votes") == cls / "tables" / \
        "votes.csv"
    assert run.model_folder("T2axi", 2, 1) == cls / "models" / "T2axi" / "fold2-rep1"
    assert open_run(old_study, expect=ClassificationRun).path == old_study / "classification"
    parts = StudyRun(study)
    assert (parts.classification.path, parts.segmentation.path, parts.transfer.path, parts.readers_csv,
            parts.report_dir) == (study / "classification", study / "segmentation", study / "transfer",
                                  study / "readers" / "readers.csv", study / "report")


def test_a_folder_that_is_not_a_run_says_how_to_make_one(tmp_path, tiny_cohort):
    empty = _folder(tmp_path / "empty")
    with pytest.raises(NotARunError, match="not a run folder .no config.yaml.; make one with `sarcomri classify run"):
        open_run(empty)
    with pytest.raises(NotARunError, match=r"not a classification run folder \(no config.yaml\); make one with "
                                           r"`sarcomri classify run CONFIG --run-dir"):
        open_run(empty, expect=ClassificationRun)
    seg = _folder(tmp_path / "seg", Seg3DConfig(name="s", cohort=str(tiny_cohort), sequences=["T2axi"]))
    with pytest.raises(NotARunError, match="it is a segmentation run folder"):
        open_run(seg, expect=ClassificationRun)
    with pytest.raises(NotARunError, match="no such folder"):
        open_run(tmp_path / "missing", expect=StudyRun)


def test_the_positive_label_rule():
    meta = {"labels": ["leiomyoma", "sarcoma"], "positive_label": "sarcoma"}
    assert resolve_positive_label(None, meta) == "sarcoma"  # the cohort's, not the first label
    assert resolve_positive_label("leiomyoma", meta) == "leiomyoma"  # the config wins
    assert negative_label("sarcoma", meta) == "leiomyoma"
    with pytest.raises(SarcomriError, match="not a label of the cohort"):
        resolve_positive_label("carcinoma", meta)
    with pytest.raises(SarcomriError, match="set positive_label in the config"):
        resolve_positive_label(None, {"labels": ["leiomyoma", "sarcoma"], "positive_label": None})


def test_the_run_applies_its_positive_label_to_its_cohort(tmp_path, tiny_cohort):
    cfg = ClassificationConfig(name="c", cohort=str(tiny_cohort), sequences=["T2axi"])
    assert ClassificationRun(tmp_path / "r", cfg).class_names() == ("sarcoma", "leiomyoma")
    flipped = cfg.model_copy(update={"positive_label": "leiomyoma"})
    cohort = ClassificationRun(tmp_path / "r", flipped).cohort(check_files=False)
    assert cohort.positive_label == "leiomyoma" and cohort.labels_binary()["P005"] == 1


def test_the_cohort_rule(tmp_path, tiny_cohort):
    synth = {"task": "sarcoma", "patients": 8}
    assert ClassificationRun(tmp_path, ClassificationConfig(name="c", synth=synth, sequences=["T2axi"])
                             ).cohort_dir == tmp_path / "cohort"
    assert ClassificationRun(tmp_path, ClassificationConfig(name="c", cohort=str(tiny_cohort), sequences=["T2axi"])
                             ).cohort_dir == tiny_cohort
    roundtrip = StudyConfig(name="s", synth=synth, dicom_roundtrip=True)
    assert StudyRun(tmp_path, roundtrip).cohort_dir == tmp_path / "cohort"
    assert StudyRun(tmp_path, StudyConfig(name="s", synth=synth)).cohort_dir == tmp_path / "synthetic"
    assert StudyRun(tmp_path, StudyConfig(name="s", cohort=str(tiny_cohort))).cohort_dir == tiny_cohort


def test_the_decision_rule_and_the_slice_spec(tmp_path, tiny_cohort):
    cfg = StudyConfig(name="s", cohort=str(tiny_cohort), readers={"cut": 0.2},
                      classification={"sequences": ["T2axi", "DWI_b0+ADC"], "slices": {"size": 48, "margin": 0.1}})
    study = StudyRun(tmp_path, cfg)
    cls = ClassificationRun(study.classification.path, study.classification_config())
    with pytest.raises(SarcomriError, match="run `sarcomri classify combine` first"):
        cls.decision_rule()
    cls.tables_dir.mkdir(parents=True)
    pd.DataFrame([{"threshold": 1, "ss_avg": 0.8}]).to_csv(cls.table_path("summed_threshold"), index=False)
    assert (cls.decision_rule().threshold, cls.decision_rule().vote_cutoff) == (1.0, None)
    pd.DataFrame([{"threshold": 0, "vote_cutoff": 0.4}]).to_csv(cls.table_path("summed_threshold"), index=False)
    rule = study.decision_rule()
    assert (rule.threshold, rule.vote_cutoff, rule.reader_cut) == (0.0, 0.4, 0.2)
    one, group = cls.slice_spec("T2axi"), cls.slice_spec("DWI_b0+ADC")
    assert (one.sequences, one.size, one.margin, one.channels) == (("T2axi",), 48, 0.1, 3)
    assert (group.sequences, group.channels) == (("DWI_b0", "ADC"), None)
    assert study.relative(cls.predictions_path) == "classification/predictions.parquet"


def test_versions_name_the_cpu_and_the_vector_instructions_torch_uses():
    """Runs record the CPU beside the package versions: the same seed on another CPU may train differently."""
    import torch

    from sarcomri.classification import versions

    v = versions()
    assert torch.__version__.startswith(v["torch"])
    name, capability = v["cpu"].rsplit(" (", 1)
    assert name.strip() and capability == f"{torch.backends.cpu.get_cpu_capability()})"

"""Study configs: every shipped preset validates; errors name the file and the field."""

from pathlib import Path

import pytest
import yaml

from sarcomri.config import ClassificationConfig, dump_config, load_config
from sarcomri.configfile import read_yaml
from sarcomri.errors import InputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["demo-sarcoma", "demo-carcinosarcoma"])
def test_shipped_classification_presets_validate(name):
    cfg = load_config(CONFIGS / f"{name}.yaml", ClassificationConfig)
    assert cfg.name == name and cfg.sequences
    again = ClassificationConfig.model_validate(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_paper_presets_follow_the_protocols():
    from sarcomri.study_config import load_study_config

    s1 = load_study_config(CONFIGS / "s1-sarcoma.yaml").classification_config("c")
    assert (s1.splits.folds, s1.splits.repeats, len(s1.sequences)) == (6, 24, 15)
    assert s1.model.name == "mobilenetv2_100" and s1.train.augmentation == "sarcoma"
    s0 = load_study_config(CONFIGS / "s0-carcinosarcoma.yaml").classification_config("c")
    assert s0.splits.scheme == "holdout" and s0.splits.test_ratio == 0.2
    assert s0.slices.test_aggregation == "central" and "xception" in s0.model.name


def test_errors_name_file_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nsynth: {task: sarcoma}\nsequences: [T2axi]\ntrain: {epochs: 0}\n")
    with pytest.raises(InputError, match=r"bad.yaml: field 'train.epochs'"):
        load_config(p)
    p.write_text("name: x\nsequences: [T2axi]\n")
    with pytest.raises(InputError, match="either 'cohort'"):
        load_config(p)
    p.write_text("name: x\nsynth: {}\nsequences: [T2axi]\nmodle: {}\n")
    with pytest.raises(InputError, match="field 'modle'"):
        load_config(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(p)


def test_a_setting_written_twice_is_refused_where_it_is(tmp_path):
    """YAML keeps the last of two equal keys without a word; a config, a sequence map or a reading design with
    one written twice is refused with the key and its line. A merge (``<<``) that a key overrides is not a repeat."""
    from sarcomri.cohort.sequences import SequenceMap
    from sarcomri.read.design import load_design
    from sarcomri.seg3d.config import Seg3DConfig

    p = tmp_path / "twice.yaml"
    p.write_text("name: x\ncohort: c\nsequences: [T1]\n"
                 "data: {rotate_prob: 0.2, scale_intensity: 0.1,\n       rotate_prob: 0.0}\n")
    with pytest.raises(InputError, match=r"the key 'rotate_prob' is written twice .*\(line 5, column 8\)"):
        load_config(p, Seg3DConfig)
    p.write_text("name: x\ncohort: c\nsequences: [T1]\nseed: 0\nseed: 1\n")
    with pytest.raises(InputError, match=r"'seed' is written twice .*line 5"):
        load_config(p, Seg3DConfig)
    p.write_text("base: &b {rotate_prob: 0.2, zoom: 0.1}\nname: x\ncohort: c\nsequences: [T1]\n"
                 "data:\n  <<: *b\n  rotate_prob: 0.0\n")
    raw = read_yaml(p)
    assert raw["data"] == {"rotate_prob": 0.0, "zoom": 0.1}
    p.write_text("rules:\n  - {name: T1, match: t1}\n  - {name: T2, match: t2, match: stir}\n")
    with pytest.raises(InputError, match="'match' is written twice"):
        SequenceMap.load(p)
    p.write_text("cases: test\nseed: 1\ncases: all\n")
    with pytest.raises(InputError, match="'cases' is written twice"):
        load_design(p)


def test_demo_study_preset_is_valid_and_complete():
    from sarcomri.demo import preset_path
    from sarcomri.study_config import load_study_config

    cfg = load_study_config(preset_path())
    assert cfg.synth is not None and cfg.dicom_roundtrip and cfg.report
    assert cfg.classification_config("c").positive_label == "sarcoma"
    assert cfg.segmentation_config("c").sequences == ["DWI_b1000"]
    assert set(cfg.transfer_config().models) == {"source", "target", "transfer", "aggregated"}


def test_study_config_transfer_errors_name_the_section(tmp_path):
    from sarcomri.errors import InputError
    from sarcomri.study_config import load_study_config

    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsynth: {task: sarcoma, patients: 20}\ntransfer: {levels: [L9]}\n")
    with pytest.raises(InputError, match="transfer.levels"):
        load_study_config(path)

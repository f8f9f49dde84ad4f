"""The study seed (StudyConfig.seed) is the seed of every stage's splits and training that the stage's section
does not set itself; the demo preset leaves its stages' seeds to it, so `demo --seed` reaches them all."""

from __future__ import annotations

from sarcomri.demo import demo_config
from sarcomri.study import seeds, stages
from sarcomri.study_config import SECTION_SEEDS, StudyConfig

SECTIONS = {"classification": {"sequences": ["T2axi"]}, "segmentation": {"sequences": ["T2axi"]},
            "transfer": {"synth": {"source_patients": 4, "target_patients": 4}}}


def _resolved(cfg: StudyConfig) -> dict[str, int]:
    c, s, t = cfg.classification_config("c"), cfg.segmentation_config("c"), cfg.transfer_config()
    return {"classification.splits": c.splits.seed, "classification.train": c.train.seed, "segmentation": s.seed,
            "segmentation.train": s.train.seed, "transfer.splits": t.split_seed, "transfer.train": t.train.seed,
            "transfer.synth": t.synth.seed}


def test_the_study_seed_fills_every_seed_a_section_leaves_out():
    cfg = StudyConfig(name="s", cohort="c", seed=7, **SECTIONS)
    assert set(_resolved(cfg).values()) == {7}
    assert set(SECTION_SEEDS) == {"classification", "segmentation", "transfer"}
    assert cfg.model_dump()["classification"] == {"sequences": ["T2axi"]}  # the config as written is left alone


def test_a_seed_the_section_sets_is_kept():
    sections = {"classification": {"sequences": ["T2axi"], "splits": {"seed": 3}},
                "segmentation": {"sequences": ["T2axi"], "seed": 4, "train": {"seed": 5}},
                "transfer": {"split_seed": 6, "cohort": "src"}}
    cfg = StudyConfig(name="s", cohort="c", seed=7, **sections)
    c, s, t = cfg.classification_config("c"), cfg.segmentation_config("c"), cfg.transfer_config()
    assert (c.splits.seed, c.train.seed, s.seed, s.train.seed, t.split_seed, t.train.seed) == (3, 7, 4, 5, 6, 7)
    assert t.synth is None  # no synthetic pair is switched on by the seed


def test_a_new_study_seed_reruns_the_stages(tmp_path):
    keys = []
    for seed in (0, 1):
        cfg = StudyConfig(name="s", cohort=str(tmp_path), seed=seed, **SECTIONS, report=False)
        keys.append({st.name: st.section for st in stages(cfg, tmp_path, log=lambda m: None)})
    for name in ("classification", "segmentation", "transfer"):
        assert keys[0][name] != keys[1][name], name


def test_demo_seeds_unchanged_by_default_and_all_moved_by_seed():
    default = demo_config()
    assert default.seed == 0 and set(_resolved(default).values()) == {0} and default.synth.seed == 0
    moved = demo_config(seed=5)
    assert set(_resolved(moved).values()) == {5} and moved.synth.seed == 5
    assert seeds(moved)["classification"] == {"splits": 5, "training": 5}


def test_every_seed_defaults_to_the_default_study_seed():
    """Why a study seed of DEFAULT_SEED may leave the sections as written: every seed it would fill is that."""
    from sarcomri.study_config import DEFAULT_SEED

    cfg = StudyConfig(name="s", cohort="c", **SECTIONS)
    assert cfg.seed == DEFAULT_SEED and set(_resolved(cfg).values()) == {DEFAULT_SEED}
    assert cfg.seeded("classification") == SECTIONS["classification"]  # the stage keys of existing runs stay

"""nnU-Net v2 as the engine (`segment train --engine nnunet`) and nnU-Net model folders in `segment predict`, on
the CPU with a tiny trainer (1 epoch of 2 iterations): the integration, not the model's quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from sarcomri.cli.segment import app
from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.io.images import same_grid
from sarcomri.seg3d.nnunet_engine import is_nnunet_model_folder, nnunet_available

from .conftest import blob_volume

needs_nnunet = pytest.mark.skipif(not nnunet_available(), reason="nnunetv2 is not installed (pip install "
                                  "'sarcomri[nnunet]'): the nnU-Net engine cannot be tested")
TRAINER = "nnUNetTrainer_sarcomriTiny"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """6 patients (T1), 2 folds, nnU-Net trained with the tiny trainer on the CPU through the command line."""
    base = tmp_path_factory.mktemp("nnunet_engine")
    rng = np.random.default_rng(5)
    root = base / "blobs"
    with CohortWriter(root, labels=["sarcoma"], positive_label=None) as w:
        for i in range(6):
            image, mask = blob_volume(rng)
            w.add_patient(f"S{i:02d}", "sarcoma", center="AB"[i % 2])
            w.add_series(f"S{i:02d}", "T1", image, mask)
    cfg = base / "seg.yaml"
    cfg.write_text(yaml.safe_dump({"name": "tiny", "cohort": str(root), "sequences": ["T1"], "folds": 2,
                                   "train": {"device": "cpu"},
                                   "nnunet": {"trainer": TRAINER, "dataset_id": 777, "processes": 0}}))
    run = base / "run"
    res = CliRunner().invoke(app, ["train", str(cfg), "--engine", "nnunet", "--run-dir", str(run), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    return {"root": root, "run": run, "cfg": cfg, "out": out, "base": base}


@needs_nnunet
@pytest.mark.slow
def test_train_uses_the_runs_folds_and_writes_checkpoints(trained):
    run, out = trained["run"], trained["out"]
    [model] = out["models"]
    folder = Path(model["model_folder"])
    assert folder == run / "nnunet" / "results" / "Dataset777_tiny" / f"{TRAINER}__nnUNetPlans__3d_fullres"
    assert model["folds"] == [0, 1] and is_nnunet_model_folder(folder)
    for k in (0, 1):
        assert (folder / f"fold_{k}" / "checkpoint_final.pth").is_file()
    # the splits nnU-Net trained with are the run's patient-level folds
    used = json.loads((run / "nnunet" / "preprocessed" / "Dataset777_tiny" / "splits_final.json").read_text())
    folds = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    for k, split in enumerate(used):
        test = sorted(folds.loc[(folds["fold"] == k) & (folds["role"] == "test"), "patient_id"])
        train = sorted(folds.loc[(folds["fold"] == k) & (folds["role"] != "test"), "patient_id"])
        assert (sorted(split["val"]), sorted(split["train"])) == (test, train)
        log = next((folder / f"fold_{k}").glob("training_log_*.txt")).read_text()
        assert "Using splits from existing split file" in log
    # a rerun skips the trained folds
    res = CliRunner().invoke(app, ["train", str(trained["cfg"]), "--engine", "nnunet", "--run-dir", str(run)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "fold 1: already trained" in res.output


@needs_nnunet
@pytest.mark.slow
def test_predict_with_the_model_folder_and_evaluate_the_validation(trained, tmp_path):
    folder = Path(trained["out"]["models"][0]["model_folder"])
    cohort = Cohort.load(trained["root"])
    image = tmp_path / "S00.nii.gz"
    sitk.WriteImage(cohort.read_image("S00", "T1"), str(image))
    res = CliRunner().invoke(app, ["predict", str(folder), str(image), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    mask = sitk.ReadImage(str(tmp_path / "o" / "S00.nii.gz"))
    assert same_grid(mask, sitk.ReadImage(str(image)))
    assert set(np.unique(sitk.GetArrayFromImage(mask))) <= {0, 1}
    # the out-of-fold predictions nnU-Net wrote are scored by `segment evaluate`
    res = CliRunner().invoke(app, ["evaluate", str(folder / "fold_0" / "validation"), str(trained["root"]),
                                   "--json"])
    assert res.exit_code == 0, res.output
    per_case = json.loads(res.output)["per_case"]
    folds = pd.read_csv(trained["run"] / "splits.csv", dtype={"patient_id": str})
    val = sorted(folds.loc[(folds["fold"] == 0) & (folds["role"] == "test"), "patient_id"])
    assert sorted(r["patient_id"] for r in per_case) == val


def _fake_model_folder(folder: Path, channels: dict[str, str]) -> Path:
    (folder / "fold_0").mkdir(parents=True)
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (folder / "plans.json").write_text("{}")
    (folder / "dataset.json").write_text(json.dumps({"channel_names": channels, "labels": {"background": 0,
                                                                                             "tumour": 1}}))
    return folder


def test_predict_refuses_an_nnunet_model_of_other_channels(blob_cohort, tmp_path):
    from sarcomri.errors import InputError

    model = _fake_model_folder(tmp_path / "results" / "Dataset900_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres",
                               {"0": "T1", "1": "FLAIR", "2": "DWI"})
    res = CliRunner().invoke(app, ["predict", str(model), str(blob_cohort), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError)  # the command line prints its one line
    assert "T1+FLAIR+DWI" in str(res.exception) and "no FLAIR, DWI" in str(res.exception)
    assert not (tmp_path / "o").exists()
    # one image given for a three-channel model
    image = tmp_path / "p.nii.gz"
    sitk.WriteImage(Cohort.load(blob_cohort).read_image("S00", "T1"), str(image))
    res = CliRunner().invoke(app, ["predict", str(model), str(image), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError) and "3 sequence(s)" in str(res.exception)
    # the dataset's results folder instead of its model folder
    res = CliRunner().invoke(app, ["predict", str(model.parent), str(image), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError)
    assert "nnUNetTrainer__nnUNetPlans__3d_fullres" in str(res.exception)


@needs_nnunet
def test_an_nnunet_folder_without_a_trained_fold_is_refused(tmp_path):
    from sarcomri.errors import InputError
    from sarcomri.seg3d.nnunet_engine import NnunetSegmenter

    model = _fake_model_folder(tmp_path / "m", {"0": "T1"})
    (model / "fold_0" / "checkpoint_final.pth").unlink()
    with pytest.raises(InputError, match="no trained fold"):
        NnunetSegmenter(model, device="cpu")


@needs_nnunet
def test_a_damaged_nnunet_checkpoint_is_one_clear_error(tmp_path):
    """An empty or truncated checkpoint (a copy cut short) names the folder and the file, not torch's traceback."""
    from sarcomri.errors import InputError
    from sarcomri.seg3d.nnunet_engine import NnunetSegmenter

    model = _fake_model_folder(tmp_path / "m", {"0": "T1"})
    with pytest.raises(InputError, match="damaged or incomplete checkpoint_final.pth") as err:
        NnunetSegmenter(model, device="cpu")
    assert str(model) in str(err.value)
    (model / "fold_0" / "checkpoint_final.pth").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(InputError, match="could not be loaded by nnU-Net"):
        NnunetSegmenter(model, device="cpu")


def test_the_engine_is_a_config_field_and_refused_when_unknown(tmp_path):
    from sarcomri.errors import InputError
    from sarcomri.seg3d.config import Seg3DConfig

    cfg = Seg3DConfig(name="x", cohort="c", sequences=["T1"])
    assert cfg.engine == "sarcomri" and cfg.nnunet is None
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "cohort": str(tmp_path), "sequences": ["T1"]}))
    res = CliRunner().invoke(app, ["train", str(path), "--engine", "monai", "--run-dir", str(tmp_path / "r")])
    assert isinstance(res.exception, InputError) and "choose sarcomri or nnunet" in str(res.exception)


def test_a_run_folder_made_before_the_engine_setting_still_opens(tmp_path):
    """Run folders written before ``engine``/``nnunet`` existed resume: a new setting at its default changes
    nothing; a changed setting is still refused."""
    from sarcomri.classification import open_run
    from sarcomri.errors import SarcomriError
    from sarcomri.seg3d.config import Seg3DConfig

    cfg = Seg3DConfig(name="x", cohort=str(tmp_path), sequences=["T1"])
    run = open_run(cfg, tmp_path / "run")
    old = yaml.safe_load((run / "config.yaml").read_text())
    del old["engine"], old["nnunet"]
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    open_run(cfg, run)
    assert yaml.safe_load((run / "config.yaml").read_text())["engine"] == "sarcomri"
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(SarcomriError, match="changed: engine"):
        open_run(cfg.model_copy(update={"engine": "nnunet"}), run)


@pytest.mark.parametrize("setting", [{"final": True}, {"members": 2}, {"cascade": {}}, {"slices": {}}])
def test_the_nnunet_engine_refuses_the_sarcomri_engines_settings(tmp_path, setting):
    from sarcomri.errors import InputError
    from sarcomri.seg3d.config import Seg3DConfig
    from sarcomri.seg3d.nnunet_engine import train_nnunet

    cfg = Seg3DConfig(name="x", cohort=str(tmp_path), sequences=["T1"], engine="nnunet", **setting)
    with pytest.raises(InputError, match=f"{next(iter(setting))}: settings of the sarcomri engine"):
        train_nnunet(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


@needs_nnunet
def test_the_timed_trainer_fits_its_epochs_into_the_budget():
    from sarcomri.seg3d.nnunet_trainers.sarcomri_nnunet_trainers import (
        budget_seconds,
        epochs_within,
        seconds_trained,
    )

    assert epochs_within(600, 40.0, 1) == 15  # 40 s an epoch: 15 epochs in 10 minutes
    assert epochs_within(600, 41.0, 1) == 14  # never past the budget
    assert epochs_within(600, 700.0, 1) == 1  # the first epoch alone overran it: no more
    assert epochs_within(600, 90.0, 3) == 20  # the pace of three epochs
    assert epochs_within(60, 90.0, 3) == 3  # never fewer than those done
    with pytest.raises(ValueError, match="finished epoch"):
        epochs_within(600, 10.0, 0)
    # a resumed run plans again from nnU-Net's logged epoch times
    assert seconds_trained([0.0, 50.0, 90.0], [40.0, 85.0, 130.0], 2) == 75.0
    assert epochs_within(600, seconds_trained([0.0, 50.0], [40.0, 85.0], 2), 2) == 16
    with pytest.raises(ValueError, match="holds 1 timed epochs, not 2"):
        seconds_trained([0.0], [40.0], 2)
    assert budget_seconds({}) == 600.0
    assert budget_seconds({"SARCOMRI_NNUNET_MINUTES": "2.5"}) == 150.0
    for bad in ("ten", "0", "-1"):
        with pytest.raises(ValueError, match="SARCOMRI_NNUNET_MINUTES"):
            budget_seconds({"SARCOMRI_NNUNET_MINUTES": bad})


TIMED_TEST_TRAINER = '''
import torch
from sarcomri.seg3d.nnunet_trainers.sarcomri_nnunet_trainers import nnUNetTrainer_sarcomriTimed


class nnUNetTrainer_sarcomriTimedTest(nnUNetTrainer_sarcomriTimed):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1
        self.save_every = 1
'''


@needs_nnunet
@pytest.mark.slow
def test_the_timed_trainer_trains_the_epochs_it_planned(trained, tmp_path):
    """nnUNetTrainer_sarcomriTimed (with epochs of 2 iterations) on the engine's preprocessed dataset: it times
    its first epoch, plans the epochs that fit into SARCOMRI_NNUNET_MINUTES, trains exactly those and ends with
    nnU-Net's validation; resumed (``--c``) from a checkpoint it plans again from the logged pace and finishes."""
    import os
    import re
    import subprocess

    from sarcomri.seg3d.nnunet_engine import NnunetPaths, _entry

    (tmp_path / "trainers").mkdir()
    (tmp_path / "trainers" / "timed_test_trainer.py").write_text(TIMED_TEST_TRAINER)
    env = NnunetPaths.of_run(trained["run"]).env(0, "cpu")
    env.update({"nnUNet_results": str(tmp_path / "results"), "SARCOMRI_NNUNET_MINUTES": "0.2",
                "nnUNet_extTrainer": os.pathsep.join((env["nnUNet_extTrainer"], str(tmp_path / "trainers")))})
    cmd = _entry("nnunetv2.run.run_training", "run_training_entry", "nnUNetv2_train",
                 ["777", "3d_fullres", "0", "-tr", "nnUNetTrainer_sarcomriTimedTest", "-device", "cpu"])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    fold = (tmp_path / "results" / "Dataset777_tiny" / "nnUNetTrainer_sarcomriTimedTest__nnUNetPlans__3d_fullres"
            / "fold_0")
    log = next(fold.glob("training_log_*.txt")).read_text()
    planned = int(re.search(r"(\d+) epochs fit into 0.2 minutes", log).group(1))
    assert planned >= 1
    assert len(re.findall(r"Epoch time: ([\d.]+) s", log)) == planned
    assert [int(e) for e in re.findall(r": Epoch (\d+) *$", log, re.M)] == list(range(planned))
    assert (fold / "checkpoint_final.pth").is_file() and (fold / "validation" / "summary.json").is_file()
    # interrupted before the end: resumed from checkpoint_latest (or _best after one epoch), it plans again
    (fold / "checkpoint_final.pth").unlink()
    for old in fold.glob("training_log_*.txt"):
        old.rename(old.with_suffix(".first"))
    done = subprocess.run([*cmd, "--c"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert re.search(r"\d+ epochs fit into 0.2 minutes", log)
    assert (fold / "checkpoint_final.pth").is_file()


@needs_nnunet
@pytest.mark.slow
def test_sarcomri_predict_segments_with_an_nnunet_run_or_model_folder(trained, tmp_path):
    """`sarcomri predict --segmentation-model` takes a run trained with --engine nnunet or one of its nnU-Net
    model folders: the mask on the patient's T1 grid; a model of channels the patient lacks is refused."""
    from sarcomri.errors import InputError
    from sarcomri.predict import segment_patient

    cohort = Cohort.load(trained["root"])
    folder = Path(trained["out"]["models"][0]["model_folder"])
    by_run = segment_patient(trained["run"], cohort, "S01")
    by_folder = segment_patient(folder, cohort, "S01")
    assert by_run[0] == by_folder[0] == "T1"
    assert same_grid(by_run[1], cohort.read_image("S01", "T1"))
    assert np.array_equal(sitk.GetArrayFromImage(by_run[1]), sitk.GetArrayFromImage(by_folder[1]))
    other = _fake_model_folder(tmp_path / "Dataset900_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres",
                               {"0": "T2", "1": "DWI"})
    with pytest.raises(InputError, match="the models take T2\\+DWI; the patient has T1"):
        segment_patient(other, cohort, "S01")

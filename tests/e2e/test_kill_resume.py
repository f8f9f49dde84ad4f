"""Kill and resume each long command: `classify run`, `segment train`, `study run` and `ingest` are started as real
processes, SIGKILLed at a seeded random point of the work an uninterrupted run did (timed from its first output),
rerun to the end, and compared with the uninterrupted run: the same results to the bit, and no temporary left
behind.

A kill rarely lands inside a write, so the killed folder also gets the temporary such a kill leaves (an atomic
writer's ``.<name>.<random>.tmp<suffix>``): the resumed run must remove it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from sarcomri.cohort.manifest import CohortWriter

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
       "COLUMNS": "200"}
LIMIT_S = 300


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "sarcomri.cli.main", *map(str, args)]


def _run(*args) -> None:
    """Run a command to its end."""
    res = subprocess.run(_command(*args), env=ENV, capture_output=True, text=True, timeout=LIMIT_S)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(_command(*args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_for(proc: subprocess.Popen, root: Path, marker: str) -> float:
    """Seconds until a file matching ``marker`` appears under ``root`` (the command's work has begun)."""
    t0 = time.perf_counter()
    while not any(root.glob(marker)):
        assert proc.poll() is None, f"the command ended (rc {proc.returncode}) before {marker} appeared"
        assert time.perf_counter() - t0 < LIMIT_S
        time.sleep(0.05)
    return time.perf_counter() - t0


def _timed_run(root: Path, marker: str, *args) -> float:
    """Run a command to its end; returns how long it worked after ``marker`` appeared."""
    proc = _start(*args)
    _wait_for(proc, root, marker)
    t_marker = time.perf_counter()
    err = proc.communicate(timeout=LIMIT_S)[1]
    assert proc.returncode == 0, err[-3000:]
    return time.perf_counter() - t_marker


def _kill_during_work(name: str, work_s: float, root: Path, marker: str, *args) -> None:
    """Start a command and SIGKILL it (and anything it started) at a seeded random point of its work (after
    ``marker`` appears); it must still be running then."""
    proc = _start(*args)
    try:
        _wait_for(proc, root, marker)
        proc.wait(timeout=random.Random(name).uniform(0.2, 0.7) * work_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the command ended (rc {proc.returncode}) before the kill"


def _plant_temporary(folder: Path, name: str = ".checkpoint.pt.k1ll3d.tmp.pt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"half a checkpoint")
    return folder / name


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith((".partial", ".old"))]


def _same_files(a: Path, b: Path, pattern: str, skip: tuple[str, ...] = ()) -> int:
    """Byte-compare every file matching ``pattern`` under ``a`` with its twin under ``b``; returns how many."""
    names = sorted(p.relative_to(a) for p in a.glob(pattern) if p.is_file() and p.name not in skip)
    assert names == sorted(p.relative_to(b) for p in b.glob(pattern) if p.is_file() and p.name not in skip)
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs after the resume"
    return len(names)


def _kill_and_resume(tmp_path: Path, name: str, args_for, marker: str, last: str) -> tuple[Path, Path]:
    """An uninterrupted run in ``full``; a killed one in ``part`` (before it wrote ``last``), given a leftover
    temporary, then resumed."""
    full, part = tmp_path / "full", tmp_path / "part"
    work = _timed_run(full, marker, *args_for(full))
    _kill_during_work(name, work, part, marker, *args_for(part))
    assert not (part / last).exists()
    planted = _plant_temporary(part)
    _run(*args_for(part))
    assert not planted.exists() and _temporaries(part) == []
    return full, part


# --------------------------------------------------------------------------------------------- classify run
def test_classify_run_killed_and_resumed_gives_the_same_results(tiny_cohort, tmp_path):
    cfg = {"name": "kill", "cohort": str(tiny_cohort), "positive_label": "sarcoma", "sequences": ["T2axi"],
           "splits": {"scheme": "kfold", "folds": 2, "repeats": 2, "val_ratio": 0.25, "seed": 1},
           "slices": {"mode": "tumour", "size": 32}, "model": {"name": "mobilenetv2_050"},
           "train": {"epochs": 3, "batch_size": 8, "augmentation": "sarcoma", "sampling": "balanced", "threads": 1}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full, part = _kill_and_resume(tmp_path, "classify", lambda run: ("classify", "run", path, "--run-dir", run,
                                                                     "--quiet"), "models/*/*/checkpoint.pt",
                                  "predictions.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(part / "predictions.parquet"),
                                  pd.read_parquet(full / "predictions.parquet"), check_exact=True)
    assert _same_files(full, part, "tables/*.csv") >= 6 and _same_files(full, part, "splits.csv") == 1


# -------------------------------------------------------------------------------------------- segment train
def _blob(rng: np.random.Generator, shape=(12, 32, 32)) -> tuple[sitk.Image, sitk.Image]:
    z, y, x = np.indices(shape).astype(float)
    c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    mask = ((((z - c[0]) * 3.0) ** 2 + ((y - c[1]) * 1.2) ** 2 + ((x - c[2]) * 1.2) ** 2) <= 49).astype(np.uint8)
    image = sitk.GetImageFromArray((rng.normal(100, 10, shape) + 80 * mask).astype(np.float32))
    image.SetSpacing((1.2, 1.2, 3.0))
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(image)
    return image, m


def test_segment_train_killed_and_resumed_gives_the_same_results(tmp_path):
    rng = np.random.default_rng(3)
    cohort = tmp_path / "blobs"
    with CohortWriter(cohort, labels=["sarcoma"]) as w:
        for i in range(6):
            w.add_patient(f"S{i:02d}", "sarcoma")
            w.add_series(f"S{i:02d}", "T1", *_blob(rng))
    cfg = {"name": "kill", "cohort": str(cohort), "sequences": ["T1"], "folds": 2,
           "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
           "train": {"epochs": 4, "iterations": 3, "lr": 0.01, "threads": 1}, "infer": {"mirror": False}}
    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full, part = _kill_and_resume(tmp_path, "segment", lambda run: ("segment", "train", path, "--run-dir", run,
                                                                    "--quiet"), "models/*/*/checkpoint.pt",
                                  "tables/per_case.csv")
    assert _same_files(full, part, "predictions/T1/*.nii.gz") == 6
    assert _same_files(full, part, "tables/*.csv", skip=("timing.csv",)) == 4


# ------------------------------------------------------------------------------------------------ study run
def test_study_run_killed_and_resumed_gives_the_same_results(tmp_path):
    cfg = {"name": "kill-study",
           "synth": {"task": "sarcoma", "patients": 12, "seed": 5, "sequences": ["T2axi"], "size": 32, "slices": 6},
           "classification": {"positive_label": "sarcoma", "sequences": ["T2axi"],
                              "splits": {"scheme": "kfold", "folds": 2, "repeats": 2, "val_ratio": 0.0, "seed": 1},
                              "slices": {"mode": "tumour", "size": 32}, "model": {"name": "mobilenetv2_050"},
                              "train": {"epochs": 2, "batch_size": 16, "sampling": "balanced", "threads": 1}},
           "segmentation": {"sequences": ["T2axi"], "folds": 2, "preset": "cpu",
                            "plan": {"max_patch_voxels": 4 * 16 * 16, "base_filters": 4, "max_filters": 16},
                            "train": {"epochs": 2, "iterations": 2, "threads": 1}, "infer": {"mirror": False}},
           "report": False}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full, part = _kill_and_resume(tmp_path, "study", lambda run: ("study", "run", path, "--run-dir", run),
                                  "stages.json", "study.json")
    pd.testing.assert_frame_equal(pd.read_parquet(part / "classification" / "predictions.parquet"),
                                  pd.read_parquet(full / "classification" / "predictions.parquet"), check_exact=True)
    assert _same_files(full, part, "classification/tables/*.csv") >= 6
    assert _same_files(full, part, "readers/**/*.csv") >= 2
    assert _same_files(full, part, "segmentation/tables/*.csv", skip=("timing.csv",)) == 4
    assert _same_files(full, part, "synthetic/*.csv") >= 2


# --------------------------------------------------------------------------------------------------- ingest
def test_ingest_killed_and_resumed_gives_the_same_cohort(tmp_path):
    from sarcomri.synth.acquisition import Protocol
    from sarcomri.synth.cohort import synthesise_cohort
    from sarcomri.synth.dicom import write_dicom

    synthetic = synthesise_cohort(tmp_path / "synthetic", n_patients=6, seed=2, sequences=["T2axi", "ADC"],
                                  protocol=Protocol(fov_mm=240.0, size=32, slices=6))
    dicom = tmp_path / "dicom"
    write_dicom(synthetic, dicom)

    def args(out: Path) -> tuple:
        return ("ingest", dicom, "--out", out, "--labels", dicom / "labels.csv", "--positive", "sarcoma",
                "--deid-key", "k", "--quiet")

    full, part = tmp_path / "full", tmp_path / "part"
    work = _timed_run(tmp_path, ".full.*", *args(full))  # the cohort is built in a hidden folder beside --out
    _kill_during_work("ingest", work, tmp_path, ".part.*", *args(part))
    _run(*args(part))
    assert _temporaries(tmp_path) == []  # the killed run's half-built folder is gone too
    for name in ("patients.csv", "series.csv"):
        assert (part / name).read_bytes() == (full / name).read_bytes()
    assert _same_files(full, part, "images/**/*.nii.gz") == 12 and _same_files(full, part, "masks/**/*.nii.gz") >= 6
    meta = [json.loads((run / "cohort.json").read_text()) for run in (full, part)]
    for m in meta:  # the date of the ingestion is the one field that may differ (a run across midnight)
        m["provenance"].pop("ingested_on")
    assert meta[0] == meta[1]

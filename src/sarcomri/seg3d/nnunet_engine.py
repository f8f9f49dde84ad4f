"""nnU-Net v2 as the engine of a 3D segmentation run (``sarcomri segment train CONFIG --engine nnunet``), and
prediction with a trained nnU-Net model folder (``sarcomri segment predict``).

Training exports the run's cohort with the run's own patient-level folds (:func:`sarcomri.io.nnunet.export_run_folds`,
the same dataset ``sarcomri export nnunet --folds-from RUN`` writes), then runs nnU-Net's own command-line
programs in subprocesses, with ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` set to folders
inside the run::

    <run>/config.yaml, splits.csv                      as for the sarcomri engine
    <run>/nnunet/raw/Dataset<ID>_<Name>/               the export (dataset.json, imagesTr, labelsTr, splits_final.json)
    <run>/nnunet/preprocessed/Dataset<ID>_<Name>/      nnUNetv2_plan_and_preprocess; splits_final.json = the run's folds
    <run>/nnunet/results/Dataset<ID>_<Name>/<trainer>__<plans>__<configuration>/fold_<k>/checkpoint_final.pth

A finished fold (``checkpoint_final.pth``) is skipped on a rerun, an interrupted one resumes from
``checkpoint_latest.pth``. ``<trainer>__<plans>__<configuration>/`` is the model folder ``segment predict``
takes. nnU-Net finds trainer classes by name in ``nnunetv2`` and in the folders of ``nnUNet_extTrainer``, which
is set to :mod:`sarcomri.seg3d.nnunet_trainers` (``nnUNetTrainer_sarcomriTiny``: the CPU test).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from sarcomri.cohort.sequences import group_name
from sarcomri.errors import InputError, SarcomriError
from sarcomri.seg3d.config import NnunetEngine, Seg3DConfig

TRAINERS_DIR = Path(__file__).with_name("nnunet_trainers")
CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")
NNUNET_MISSING = ("nnU-Net v2 is not installed: pip install 'sarcomri[nnunet]' (or pip install nnunetv2) "
                  "in the environment that runs sarcomri")


def nnunet_available() -> bool:
    """Whether ``nnunetv2`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("nnunetv2") is not None


def _require_nnunet() -> None:
    if not nnunet_available():
        raise SarcomriError(NNUNET_MISSING)


def _ext_trainer_path(current: str | None) -> str:
    """``nnUNet_extTrainer`` with sarcomri's trainer folder added."""
    parts = [p for p in (current or "").split(os.pathsep) if p]
    if str(TRAINERS_DIR) not in parts:
        parts.append(str(TRAINERS_DIR))
    return os.pathsep.join(parts)


@dataclass
class NnunetPaths:
    """The three nnU-Net folders of a run."""

    raw: Path
    preprocessed: Path
    results: Path

    @classmethod
    def of_run(cls, run_dir: str | Path) -> NnunetPaths:
        base = Path(run_dir) / "nnunet"
        return cls(base / "raw", base / "preprocessed", base / "results")

    def env(self, processes: int, device: str) -> dict[str, str]:
        """The environment of nnU-Net's subprocesses."""
        env = dict(os.environ)
        env.update({"nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                    "nnUNet_results": str(self.results), "nnUNet_n_proc_DA": str(processes),
                    "nnUNet_def_n_proc": str(max(1, processes)),
                    "nnUNet_extTrainer": _ext_trainer_path(os.environ.get("nnUNet_extTrainer"))})
        if device == "cpu":
            env.setdefault("nnUNet_compile", "false")  # torch.compile on a CPU costs more than a short run gains
        return env


@dataclass
class NnunetModel:
    """One trained nnU-Net model of a run: its dataset folder (raw), its model folder and the folds trained."""

    sequences: tuple[str, ...]
    dataset: Path
    model_folder: Path
    folds: list[int]


def _device(cfg: Seg3DConfig) -> str:
    if cfg.train.device != "auto":
        return cfg.train.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _entry(module: str, function: str, name: str, args: list[str]) -> list[str]:
    """The command line that runs one of nnU-Net's console entry points with this interpreter."""
    code = f"import sys; sys.argv[0] = {name!r}; from {module} import {function}; {function}()"
    return [sys.executable, "-c", code, *args]


def _run(cmd: list[str], env: dict[str, str], log: Path, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd[3:]) if cmd[1] == '-c' else ' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SarcomriError(f"nnU-Net {what} failed (exit {done.returncode}); the end of {log}:\n" + "\n".join(tail))


def train_nnunet(cfg: Seg3DConfig, run_dir: str | Path, folds: list[int] | None = None,
                 progress: Callable[[str], None] | None = None) -> list[NnunetModel]:
    """Train nnU-Net on the run's cohort and folds (see the module docstring): export, plan and preprocess
    (once), then every fold of every model of the config (or only ``folds``). Returns the trained models."""
    from sarcomri.classification import open_run
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.io.atomic import write_csv
    from sarcomri.io.nnunet import export_run_folds
    from sarcomri.runs import SegmentationRun
    from sarcomri.seg3d.crossval import study_splits

    if cfg.final or cfg.members > 1 or cfg.cascade is not None or cfg.slices is not None:
        what = [n for n, on in (("final", cfg.final), ("members", cfg.members > 1), ("cascade", cfg.cascade),
                                ("slices", cfg.slices)) if on]
        raise InputError(None, f"{', '.join(what)}: settings of the sarcomri engine, not of --engine nnunet "
                               "(nnU-Net trains on every patient with `nnUNetv2_train ID CONFIG all`, and has its own "
                               "3d_cascade_fullres configuration)")
    _require_nnunet()
    say = progress or (lambda _msg: None)
    engine = cfg.nnunet or NnunetEngine()
    run_dir = open_run(cfg, run_dir)
    run = SegmentationRun(run_dir, cfg)
    cohort = Cohort.load(cfg.cohort)
    if not run.splits_path.is_file():
        write_csv(run.splits_path, study_splits(cfg, cohort, run_dir, reuse=False), overwrite=True)
    paths = NnunetPaths.of_run(run_dir)
    device = _device(cfg)
    env = paths.env(engine.processes, device)
    log = Path(run_dir) / "nnunet" / "nnunet.log"
    name = engine.dataset_name or "".join(c if c.isalnum() or c in "_-" else "-" for c in cfg.name)
    groups = cfg.channel_groups()
    several = len(groups) > 1
    from sarcomri.io.nnunet import dataset_folder_name, run_dataset_name

    folder_names = [dataset_folder_name(engine.dataset_id + k, run_dataset_name(name, g, several))
                    for k, g in enumerate(groups)]
    if any(not (paths.raw / f / "dataset.json").is_file() for f in folder_names):
        say(f"exporting the cohort with the run's folds to {paths.raw}")
        export_run_folds(run_dir, paths.raw, engine.dataset_id, name, overwrite=True)
    models = []
    for k, group in enumerate(groups):
        dataset_id = engine.dataset_id + k
        folder_name = folder_names[k]
        raw = paths.raw / folder_name
        pre = paths.preprocessed / folder_name
        if not (pre / f"{engine.plans}.json").is_file():
            say(f"{group_name(group)}: nnUNetv2_plan_and_preprocess -d {dataset_id} -c {engine.configuration}")
            _run(_entry("nnunetv2.experiment_planning.plan_and_preprocess_entrypoints", "plan_and_preprocess_entry",
                        "nnUNetv2_plan_and_preprocess",
                        ["-d", str(dataset_id), "-c", engine.configuration, "-pl", engine.planner,
                         "-np", str(max(1, engine.processes)), "-npfp", str(max(1, engine.processes)),
                         "--verify_dataset_integrity", "--no_pbar"]),
                 {**env, "nnUNet_n_proc_DA": str(max(1, engine.processes))},  # the planner needs 1 or more
                 log, "planning and preprocessing")
        shutil.copyfile(raw / "splits_final.json", pre / "splits_final.json")  # the run's folds, not nnU-Net's
        n_folds = len(json.loads((raw / "splits_final.json").read_text()))
        model_folder = paths.results / folder_name / f"{engine.trainer}__{engine.plans}__{engine.configuration}"
        todo = list(range(n_folds)) if folds is None else [f for f in folds if 0 <= f < n_folds]
        if folds is not None and len(todo) != len(folds):
            raise InputError(None, f"folds {folds}: the run has folds 0 to {n_folds - 1}")
        for fold in todo:
            fold_dir = model_folder / f"fold_{fold}"
            if (fold_dir / "checkpoint_final.pth").is_file():
                say(f"{group_name(group)} fold {fold}: already trained")
                continue
            resume = ["--c"] if (fold_dir / "checkpoint_latest.pth").is_file() else []
            say(f"{group_name(group)} fold {fold}: nnUNetv2_train {dataset_id} {engine.configuration} {fold} "
                f"-tr {engine.trainer} -p {engine.plans} -device {device}")
            _run(_entry("nnunetv2.run.run_training", "run_training_entry", "nnUNetv2_train",
                        [str(dataset_id), engine.configuration, str(fold), "-tr", engine.trainer, "-p", engine.plans,
                         "-device", device, *resume]), env, log, f"training of fold {fold}")
        models.append(NnunetModel(tuple(group), raw, model_folder, todo))
    return models


# --------------------------------------------------------------------------------------------------- prediction


def is_nnunet_model_folder(path: str | Path) -> bool:
    """Whether ``path`` looks like the output folder of ``nnUNetv2_train`` (plans.json, dataset.json, fold_*)."""
    path = Path(path)
    return (path / "plans.json").is_file() and (path / "dataset.json").is_file() and any(path.glob("fold_*"))


def nnunet_model_folders(path: str | Path) -> list[Path]:
    """The nnU-Net model folders ``path`` names: itself when it is one, else those of a run trained with
    ``--engine nnunet`` (``<run>/nnunet/results/Dataset<ID>_<Name>/<trainer>__<plans>__<configuration>/``, in
    dataset order); empty for anything else."""
    path = Path(path)
    if is_nnunet_model_folder(path):
        return [path]
    return sorted(p for p in (path / "nnunet" / "results").glob("Dataset*/*") if is_nnunet_model_folder(p))


def channel_names(model_folder: str | Path) -> list[str]:
    """The model's input channels in nnU-Net's order (dataset.json ``channel_names``, or ``modality``)."""
    path = Path(model_folder) / "dataset.json"
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(path, f"not JSON: {exc}") from None
    names = data.get("channel_names") or data.get("modality")
    if not isinstance(names, dict) or not names:
        raise InputError(path, "has no channel_names: not an nnU-Net v2 dataset.json")
    return [str(names[k]) for k in sorted(names, key=int)]


class NnunetSegmenter:
    """A trained nnU-Net model folder loaded for prediction (every fold with a checkpoint: nnU-Net averages
    them); :meth:`segment` takes images by sequence name, the channels being dataset.json's names."""

    def __init__(self, model_folder: str | Path, overlap: float = 0.5, mirror: bool = True,
                 largest_component: bool = True, device: str = "auto", folds: list[int] | None = None):
        _require_nnunet()
        folder = Path(model_folder)
        if not is_nnunet_model_folder(folder):
            raise InputError(folder, "is not an nnU-Net model folder (plans.json, dataset.json and fold_<k>/ with "
                                     "checkpoint_final.pth: the output folder of nnUNetv2_train)")
        self.folder = folder
        self.sequences = channel_names(folder)
        found = {}
        for name in CHECKPOINTS:
            found = {int(p.parent.name.split("_")[1]): name for p in folder.glob(f"fold_*/{name}")
                     if p.parent.name.split("_")[1].isdigit()}
            if found:
                break
        if folds is not None:
            found = {f: n for f, n in found.items() if f in folds}
        if not found:
            raise InputError(folder, "has no trained fold (fold_<k>/checkpoint_final.pth or checkpoint_best.pth)")
        self.folds = sorted(found)
        checkpoint = next(iter(found.values()))
        os.environ["nnUNet_extTrainer"] = _ext_trainer_path(os.environ.get("nnUNet_extTrainer"))
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        with _quiet():  # nnU-Net prints its trainer search and device notes
            self.predictor = nnUNetPredictor(tile_step_size=1.0 - overlap, use_gaussian=True, use_mirroring=mirror,
                                             perform_everything_on_device=dev == "cuda", device=torch.device(dev),
                                             verbose=False, allow_tqdm=False)
            try:
                self.predictor.initialize_from_trained_model_folder(str(folder), use_folds=tuple(self.folds),
                                                                    checkpoint_name=checkpoint)
            except (EOFError, RuntimeError, KeyError, pickle.UnpicklingError) as err:  # torch.load, the plans
                raise InputError(folder, f"could not be loaded by nnU-Net: a damaged or incomplete {checkpoint}, "
                                         f"or plans.json that does not match it ({type(err).__name__}: {err})"
                                 ) from err
        self.largest_component = largest_component

    def segment(self, images: Mapping[str, object], case_id: str = "patient"):
        """The mask and tumour probability on the grid of the first channel (the later channels are resampled
        onto it, as in the export)."""
        from sarcomri.seg3d.patient import PatientSegmentation, read_input_image
        from sarcomri.seg3d.postprocess import largest_component

        missing = [s for s in self.sequences if s not in images]
        if missing:
            raise InputError(case_id, f"the nnU-Net model takes {group_name(self.sequences)}; missing "
                                      f"{', '.join(missing)} (given: {', '.join(images) or 'nothing'})")
        ref = read_input_image(images[self.sequences[0]], self.sequences[0])  # type: ignore[arg-type]
        channels = [ref]
        for s in self.sequences[1:]:
            img = read_input_image(images[s], s)  # type: ignore[arg-type]
            channels.append(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32))
        data = np.stack([sitk.GetArrayFromImage(c).astype(np.float32) for c in channels])
        props = {"spacing": list(ref.GetSpacing())[::-1]}
        with _quiet():
            seg, probs = self.predictor.predict_single_npy_array(data, props, None, None, True)
        mask = sitk.GetImageFromArray((np.asarray(seg) > 0).astype(np.uint8))
        mask.CopyInformation(ref)
        if self.largest_component:
            mask = largest_component(mask)
        prob = sitk.GetImageFromArray(np.asarray(probs)[1:].sum(axis=0).astype(np.float32))
        prob.CopyInformation(ref)
        return PatientSegmentation(mask, prob, list(self.sequences), len(self.folds))


def _quiet():
    """Send what nnU-Net prints to stdout to nowhere (warnings still reach stderr)."""
    import contextlib
    import io

    return contextlib.redirect_stdout(io.StringIO())


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a thin command line for scripts
    """``python -m sarcomri.seg3d.nnunet_engine CONFIG RUN_DIR``: :func:`train_nnunet`."""
    import argparse

    from sarcomri.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, Seg3DConfig)
    for model in train_nnunet(cfg, args.run_dir, progress=print):
        print(model.model_folder)


if __name__ == "__main__":  # pragma: no cover
    main()

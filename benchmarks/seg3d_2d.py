"""Does an ImageNet-pretrained 2D network help the 3D default on plain T1? Measured beside a finished run.

For each fold of a finished ``segment train`` run (one sequence, its ``splits.csv``): a U-Net with the offline
ImageNet EfficientNet-Lite0 encoder (``sarcomri.seg2d``: smp with a timm encoder) trained on the fold's training
patients only, on every tumour slice and half as many others, with the paper's six-fold rotation and flip
augmentation (Adam 1e-3, batch 16, about ``--steps`` steps, one thread), slices padded to a square and resized to
``--size`` px; with ``--context N`` the N slices above and below are extra channels (2.5D). Its probabilities on the
fold's test patients are written on their own grid (``<out>/prob2d[-c<N>]/``), next to the run's out-of-fold
probabilities recomputed with the run's models and ``infer:`` settings (``<out>/prob3d/``).

Scored on the run's 24 (or so) patients with ``case_metrics``: the run's 3D default as it stands, the 2D network
alone (threshold 0.5, then the 3D default's component and body rules), the mean of both probabilities at
thresholds 0.4 and 0.5 (with and without the component rule), and the slice stage's gated mean
(:func:`sarcomri.seg3d.slices.gated_fusion`: the mean only where the 2D mask covers at least a quarter, a tenth
or half of the 3D mask). Every variant is printed; the last lines choose among the 3D alone and the gated means
fold by fold on the other folds' patients (nested), as the post-processing was chosen.

Run (resumable per fold; ``--workers`` folds at once, one thread each):
    nice .venv/bin/python benchmarks/seg3d_2d.py RUN --out runs/seg3d-2d [--workers 2] [--context 1] [--folds 0 1]
Target: the issue's goal, a mean Dice >= 0.75 and a median HD95 <= 12 mm, within 30 minutes of training (3D + 2D).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from seg3d_runs import TARGET, summary

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage
from sarcomri.config import load_config
from sarcomri.io.atomic import atomic_path
from sarcomri.seg3d.config import Seg3DConfig, SlicesSettings
from sarcomri.seg3d.evaluate import case_metrics
from sarcomri.seg3d.postprocess import body_region, keep_components
from sarcomri.seg3d.slices import epochs_for, gated_fusion


def fold_patients(splits: pd.DataFrame, fold: int) -> tuple[list[str], list[str]]:
    """(training, test) patients of a fold; no patient in both."""
    sub = splits[splits["fold"] == fold]
    train = sorted(sub.loc[sub["role"] != "test", "patient_id"])
    test = sorted(sub.loc[sub["role"] == "test", "patient_id"])
    assert not set(train) & set(test)
    return train, test


def with_context(image: np.ndarray, context: int) -> np.ndarray:
    """Slices (Z, C, S, S) with the ``context`` slices above and below each as extra channels (edges repeated)."""
    if context == 0:
        return image
    z = np.arange(len(image))
    return np.concatenate([image[np.clip(z + d, 0, len(image) - 1)] for d in range(-context, context + 1)], axis=1)


def train_2d_fold(cohort_root: str, sequence: str, train: list[str], test: list[str], out: str, size: int,
                  steps: int, context: int, seed: int) -> float:
    """Train the 2D network of one fold and write its test patients' probabilities to ``out``; seconds taken."""
    import torch

    from sarcomri.seg2d.config import DataSettings2D, InferSettings2D, NetworkSettings, TrainSettings2D
    from sarcomri.seg2d.data import load_case, slice_data
    from sarcomri.seg2d.infer import predict_case
    from sarcomri.seg2d.model import build_network
    from sarcomri.seg2d.train import fit_segmenter
    from sarcomri.train.threads import torch_threads

    start = time.perf_counter()
    with torch_threads(1):
        cohort = Cohort.load(cohort_root)
        data_settings = DataSettings2D(sequences=[sequence], image_size=size, background_ratio=0.5,
                                       augmentation="paper")
        cases = {p: load_case(cohort, p, data_settings) for p in train + test}
        cases = {p: replace(c, image=with_context(c.image, context)) for p, c in cases.items()}
        data = slice_data([cases[p] for p in train], 0.5, seed=seed)
        epochs = epochs_for(SlicesSettings(steps=steps, batch_size=16), len(data), 6)
        torch.manual_seed(seed)  # the decoder's initialisation (the encoder's weights are ImageNet's)
        network = build_network(NetworkSettings(arch="unet", encoder="tu-efficientnet_lite0",
                                                encoder_weights="imagenet", decoder_channels=128), 1 + 2 * context)
        result = fit_segmenter(network, data, TrainSettings2D(epochs=epochs, batch_size=16, lr=1e-3, seed=seed,
                                                              threads=1), arch="unet", augmentation="paper")
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for p in test:
            _, prob = predict_case(result.network, cases[p], InferSettings2D(largest_component=False))
            with atomic_path(folder / f"{p}.nii.gz", overwrite=True) as tmp:
                sitk.WriteImage(prob, str(tmp))
    return time.perf_counter() - start


def run_probabilities(run: Path, cfg: Seg3DConfig, cohort: Cohort, splits: pd.DataFrame, out: Path) -> None:
    """The run's out-of-fold tumour probabilities (each test patient by its fold's model), written to ``out``."""
    from sarcomri.seg3d.infer import Model, predict_images
    from sarcomri.train.threads import torch_threads

    out.mkdir(parents=True, exist_ok=True)
    group = cfg.channel_groups()[0]
    with torch_threads(1):
        for fold in sorted(splits["fold"].unique()):
            _, test = fold_patients(splits, fold)
            if all((out / f"{p}.nii.gz").is_file() for p in test):
                continue
            model = Model.load(run / "models" / "+".join(group) / f"fold{fold}-rep0")
            for p in test:
                _, prob = predict_images([model], [cohort.read_image(p, s) for s in group], cfg.infer, case_id=p)
                with atomic_path(out / f"{p}.nii.gz", overwrite=True) as tmp:
                    sitk.WriteImage(prob, str(tmp))


def masks(probability: np.ndarray, body: np.ndarray, threshold: float, keep: float) -> np.ndarray:
    """Threshold, the body restriction and the component rule, as the 3D default applies them."""
    return keep_components((probability >= threshold) & body, probability, keep)


@dataclass
class ScoredCase:
    """What scoring one patient needs, read once: the reference mask, the body and each source's probability."""

    reference: sitk.Image
    body: np.ndarray
    probability: dict[str, np.ndarray]


def read_cases(cohort: Cohort, sequence: str, folders: dict[str, Path], patients: list[str]) -> dict[str, ScoredCase]:
    """:class:`ScoredCase` of every patient, the probabilities read from ``folders`` (by source name)."""
    return {p: ScoredCase(cohort.read_mask(p, sequence), body_region([cohort.read_image(p, sequence)], 0.05),
                          {name: sitk.GetArrayFromImage(sitk.ReadImage(str(f / f"{p}.nii.gz")))
                           for name, f in folders.items()})
            for p in patients}


def score(cases: dict[str, ScoredCase], sources: list[str], threshold: float, keep: float,
          gate: float | None = None, threshold3d: float = 0.4) -> pd.DataFrame:
    """Per-patient metrics of the mean probability of ``sources`` after :func:`masks`; with ``gate``, of the slice
    stage's gated mean of "3d" and "2d" instead (the 3D result where the gate stays closed)."""
    rows = []
    for p, case in cases.items():
        if gate is None:
            prob, threshold_p = np.mean([case.probability[s] for s in sources], axis=0), threshold
        else:
            p3, p2 = (case.probability[s] * case.body for s in ("3d", "2d"))
            fused = gated_fusion(p3, p2, threshold3d, keep, SlicesSettings(gate=gate, threshold=threshold))
            prob, threshold_p = (p3, threshold3d) if fused is None else fused
        mask = sitk.GetImageFromArray(masks(prob, case.body, threshold_p, keep).astype(np.uint8))
        mask.CopyInformation(case.reference)
        rows.append({"patient_id": p, **case_metrics(mask, case.reference)})
    return pd.DataFrame(rows)


def nested_choice(tables: dict[str, pd.DataFrame], fold_of: dict[str, int]) -> pd.DataFrame:
    """Each fold's patients scored by the variant with the highest mean Dice on the other folds' patients (the
    first listed on a tie)."""
    chosen = []
    for fold in sorted(set(fold_of.values())):
        means = {name: t.loc[t["patient_id"].map(fold_of) != fold, "dice"].mean() for name, t in tables.items()}
        best = max(means, key=means.__getitem__)
        t = tables[best]
        chosen.append(t[t["patient_id"].map(fold_of) == fold].assign(fold=fold, variant=best))
    return pd.concat(chosen, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished `segment train` run (one sequence)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=160, help="slice size in px (a multiple of 16)")
    ap.add_argument("--steps", type=int, default=400, help="training steps per fold, about")
    ap.add_argument("--context", type=int, default=0, help="slices above and below as channels (2.5D)")
    ap.add_argument("--folds", type=int, nargs="*", help="only these folds (default: all)")
    args = ap.parse_args()
    cfg = load_config(args.run / "config.yaml", Seg3DConfig)
    cohort = Cohort.load(cfg.cohort)
    group = cfg.channel_groups()[0]
    if len(group) != 1:
        raise SystemExit("a run of one sequence, please")
    splits = pd.read_csv(args.run / "splits.csv", dtype={"patient_id": str})
    check_no_leakage(splits)
    folds = sorted(splits["fold"].unique()) if args.folds is None else args.folds
    out2d = args.out / (f"prob2d-c{args.context}" if args.context else "prob2d")
    todo = [f for f in folds if not all((out2d / f"{p}.nii.gz").is_file() for p in fold_patients(splits, f)[1])]
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        jobs = {f: pool.submit(train_2d_fold, str(cohort.root), group[0], *fold_patients(splits, f), str(out2d),
                               args.size, args.steps, args.context, 0) for f in todo}
        for f, job in jobs.items():
            print(f"fold {f}: 2D network trained and applied in {job.result():.0f} s", flush=True)
    run_probabilities(args.run, cfg, cohort, splits, args.out / "prob3d")
    patients = [p for f in folds for p in fold_patients(splits, f)[1]]
    cases = read_cases(cohort, group[0], {"3d": args.out / "prob3d", "2d": out2d}, patients)
    s = cfg.infer
    variants = {"3D (the run's default)": (["3d"], s.threshold, s.keep_components),
                "2D, threshold 0.5": (["2d"], 0.5, 0.0),
                "2D, threshold 0.5, components": (["2d"], 0.5, s.keep_components),
                "mean, threshold 0.4, components": (["3d", "2d"], 0.4, s.keep_components),
                "mean, threshold 0.5, components": (["3d", "2d"], 0.5, s.keep_components),
                "mean, threshold 0.5": (["3d", "2d"], 0.5, 0.0)}
    gates = {f"gated mean, gate {g}": g for g in (0.1, 0.25, 0.5)}
    tables = {name: score(cases, sources, threshold, keep) for name, (sources, threshold, keep) in variants.items()}
    tables |= {name: score(cases, ["3d"], 0.5, s.keep_components, gate=g, threshold3d=s.threshold)
               for name, g in gates.items()}
    fold_of = {p: f for f in folds for p in fold_patients(splits, f)[1]}
    nested = nested_choice({k: tables[k] for k in ["3D (the run's default)", *gates]}, fold_of)
    rows = [summary(name, t, key="variant")
            for name, t in [*tables.items(), ("nested: 3D or a gated mean, chosen on the other folds", nested)]]
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print("nested choice per fold:", dict(nested.groupby("fold")["variant"].first()))
    print(TARGET)


if __name__ == "__main__":
    main()

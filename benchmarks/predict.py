"""Latency of `sarcomri predict` for one new patient: three sequences with 24-model ensembles (target < 10 s).

Builds a classification run folder with random-weight models (speed does not depend on the weights): three
sequences x 24 models of ``--model`` at ``--size`` px, the run's decision rule, and a one-patient NIfTI input
with tumour masks from a synthetic cohort. The first call exports every model to ONNX (a one-off, reported
apart); the following calls are timed and their median printed, with the breakdown by step.
Run: .venv/bin/python benchmarks/predict.py [--model efficientnet_lite0] [--size 64] [--models 24] [--repeats 3]
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from sarcomri.io.atomic import write_csv
from sarcomri.models import ModelSpec, save_model
from sarcomri.models.registry import build_classifier
from sarcomri.predict import predict_patient
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import synthesise_cohort

SEQUENCES = ["T2axi", "ADC", "fsT1CEaxi"]


def make_run(root: Path, model: str, size: int, n_models: int, cohort: Path) -> Path:
    """A classification run folder with ``n_models`` finished models per sequence."""
    run = root / "run"
    cfg = {"name": "bench", "cohort": str(cohort), "positive_label": "sarcoma", "sequences": SEQUENCES,
           "slices": {"mode": "tumour", "size": size, "test_aggregation": "mean"}, "model": {"name": model}}
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    spec = ModelSpec(name=model, in_channels=3, num_classes=2, input_size=size)
    for seq in SEQUENCES:
        for k in range(n_models):
            folder = run / "models" / seq / f"fold{k % 6}-rep{k // 6}"
            save_model(build_classifier(model, in_channels=3, num_classes=2), spec, folder)
            (folder / "DONE").write_text("{}\n")
    write_csv(run / "tables" / "summed_threshold.csv", pd.DataFrame([{"threshold": 1, "vote_cutoff": 0.5}]))
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cohort = synthesise_cohort(root / "cohort", task="sarcoma", n_patients=8, seed=1, sequences=SEQUENCES,
                                   protocol=Protocol(size=128, slices=24))
        have = cohort.series.groupby("patient_id")["sequence"].apply(set)
        pid = next(p for p, seqs in have.items() if set(SEQUENCES) <= seqs)
        src = root / "patient"
        src.mkdir()
        for seq in SEQUENCES:
            row = cohort.series_row(pid, seq)
            shutil.copy(cohort.root / row["image"], src / f"{seq}.nii.gz")
            shutil.copy(cohort.root / row["mask"], src / f"{seq}_mask.nii.gz")
        t0 = time.perf_counter()
        run = make_run(root, args.model, args.size, args.models, cohort.root)
        print(f"run with {len(SEQUENCES)} sequences x {args.models} {args.model} models at {args.size} px built in "
              f"{time.perf_counter() - t0:.1f} s")
        first = predict_patient(src, run, root / "out0", key="bench", gradcam=False, log=lambda m: None)
        print(f"first call (exports {len(SEQUENCES) * args.models} models to ONNX once): "
              f"{first.latency_seconds['total']:.2f} s")
        totals, parts = [], []
        for r in range(args.repeats):
            pred = predict_patient(src, run, root / f"out{r + 1}", key="bench", gradcam=False, log=lambda m: None)
            totals.append(pred.latency_seconds["total"])
            parts.append(pred.latency_seconds)
        slices = sum(s.slices for s in pred.sequences)
        print(f"predict latency (median of {args.repeats}): {statistics.median(totals):.2f} s "
              f"for {slices} tumour slices x {args.models} models per sequence; steps: "
              + ", ".join(f"{k} {statistics.median(p[k] for p in parts):.2f} s" for k in parts[0] if k != "total"))
        pred = predict_patient(src, run, root / "out-gc", key="bench", gradcam=True, log=lambda m: None)
        print(f"with Grad-CAM (one model per sequence): {pred.latency_seconds['total']:.2f} s")


if __name__ == "__main__":
    main()

"""Latency of `sarcomri predict` for one new patient (issue 15's targets: a repeated call < 1 s, the first call's
one-off ONNX export < 10 s, the demo's new patient < 2 s).

1. Builds a classification run folder with random-weight models (speed does not depend on the weights): three
   sequences x 24 models of ``--model`` at ``--size`` px, each exported to ONNX as training does at its end
   (:func:`sarcomri.train.jobs.export_onnx`, timed), the run's decision rule, and a one-patient NIfTI input with
   tumour masks from a synthetic cohort. The first call after training loads every session; the following calls
   in the same process (sessions kept, :mod:`sarcomri.infer.pool`) are timed and their median printed, with the
   breakdown by step; then one call with Grad-CAM, one in a new process (every session loaded and checked: what
   each `sarcomri predict` command pays), and one first call on a run trained before training exported (its
   ``model.onnx`` files removed: 72 exports on demand).
2. With ``--demo`` (default ``runs/demo`` when it holds a finished `make demo`): the demo's predict step as
   `make demo` runs it: a new process that has loaded the modules the demo has when it reaches predict (timm and
   ONNX, not ONNX Runtime) makes the demo's new patient (synthesised and written as DICOM, into a scratch folder) and
   sends its DICOM through the study's segmentation and classification models with Grad-CAM. Training writes each
   model's ``model.onnx`` (:mod:`sarcomri.train.jobs`); a demo trained by an earlier version has them exported
   here once, in place, as its first ``sarcomri predict`` did.

Every figure is printed with the machine's load average (a shared machine: compare figures of one run).
Run: .venv/bin/python benchmarks/predict.py [--model efficientnet_lite0] [--size 64] [--models 24] [--repeats 3]
     [--demo runs/demo | --demo none]
"""

import argparse
import gc
import logging
import os
import shutil
import statistics
import subprocess
import sys
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
from sarcomri.train.jobs import export_onnx

SEQUENCES = ["T2axi", "ADC", "fsT1CEaxi"]
NEW_PROCESS = """
import sys, time
t0 = time.perf_counter()
from sarcomri.predict import predict_patient
t1 = time.perf_counter()
pred = predict_patient(sys.argv[1], sys.argv[2], sys.argv[3], key="bench", gradcam=False, log=print)
print(f"{t1 - t0:.3f} {pred.latency_seconds['total']:.3f} {pred.latency_seconds['classify']:.3f}")
"""


def load() -> str:
    """The 1-minute load average, for the figures' context."""
    return f"load {os.getloadavg()[0]:.2f}"


def make_run(root: Path, model: str, size: int, n_models: int, cohort: Path) -> tuple[Path, float]:
    """A classification run folder with ``n_models`` finished models per sequence, and the seconds their
    exports at the end of training took altogether."""
    run = root / "run"
    cfg = {"name": "bench", "cohort": str(cohort), "positive_label": "sarcoma", "sequences": SEQUENCES,
           "slices": {"mode": "tumour", "size": size, "test_aggregation": "mean"}, "model": {"name": model}}
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    spec = ModelSpec(name=model, in_channels=3, num_classes=2, input_size=size)
    exporting = 0.0
    for seq in SEQUENCES:
        for k in range(n_models):
            folder = run / "models" / seq / f"fold{k % 6}-rep{k // 6}"
            save_model(build_classifier(model, in_channels=3, num_classes=2), spec, folder)
            t0 = time.perf_counter()
            export_onnx(folder)
            exporting += time.perf_counter() - t0
            (folder / "DONE").write_text("{}\n")
    write_csv(run / "tables" / "summed_threshold.csv", pd.DataFrame([{"threshold": 1, "vote_cutoff": 0.5}]))
    return run, exporting


def forget_sessions() -> None:
    """Drop this process's kept ONNX Runtime sessions and traced architectures (a process that made none)."""
    try:
        from sarcomri.infer import export, pool
    except ImportError:  # a sarcomri without them (measuring an earlier version)
        return
    pool.clear()
    export._TEMPLATES.clear()
    export._DIGESTS.clear()


def synthetic_run(args: argparse.Namespace, root: Path) -> None:
    """Part 1 of the module docstring."""
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
    logging.getLogger("sarcomri.models").setLevel(logging.ERROR)  # "random weights", once per model built
    forget_sessions()
    run, exporting = make_run(root, args.model, args.size, args.models, cohort.root)
    n = len(SEQUENCES) * args.models
    print(f"run with {len(SEQUENCES)} sequences x {args.models} {args.model} models at {args.size} px built in "
          f"{time.perf_counter() - t0:.1f} s; their exports at the end of training took {exporting:.2f} s in all "
          f"({1000 * exporting / n:.0f} ms per model, the first trace included; {load()})")
    forget_sessions()  # predict in a process that did not export (training ran elsewhere)
    first = predict_patient(src, run, root / "out0", key="bench", gradcam=False, log=lambda m: None)
    print(f"first call after training ({n} sessions loaded): {first.latency_seconds['total']:.2f} s, of which "
          f"classify {first.latency_seconds['classify']:.2f} s (target < 10 s; {load()})")
    totals, parts = [], []
    for r in range(args.repeats):
        pred = predict_patient(src, run, root / f"out{r + 1}", key="bench", gradcam=False, log=lambda m: None)
        totals.append(pred.latency_seconds["total"])
        parts.append(pred.latency_seconds)
    slices = sum(s.slices for s in pred.sequences)
    print(f"predict latency, repeated call (median of {args.repeats}): {statistics.median(totals):.2f} s "
          f"(target < 1 s; {load()}) for {slices} tumour slices x {args.models} models per sequence; steps: "
          + ", ".join(f"{k} {statistics.median(p[k] for p in parts):.2f} s" for k in parts[0] if k != "total"))
    print("likelihoods: " + ", ".join(f"{s.sequence} {s.likelihood}" for s in pred.sequences)
          + f"; summed score {pred.summed_score}, decision {pred.decision}")
    pred = predict_patient(src, run, root / "out-gc", key="bench", gradcam=True, log=lambda m: None)
    print(f"with Grad-CAM (one model per sequence): {pred.latency_seconds['total']:.2f} s ({load()})")
    forget_sessions()  # this process's memory back before the next one starts (a kept session: ~25 MB)
    gc.collect()
    done = subprocess.run([sys.executable, "-c", NEW_PROCESS, str(src), str(run), str(root / "out-new")],
                          capture_output=True, text=True, check=True)
    *said, last = done.stdout.strip().splitlines()
    for line in said:
        print(f"  the new process: {line}")
    imports, total, classify = (float(v) for v in last.split())
    print(f"a new process, ONNX files cached (each `sarcomri predict` command): {total:.2f} s, of which classify "
          f"{classify:.2f} s, after {imports:.2f} s of imports ({load()})")
    for onnx_file in (run / "models").rglob("model.onnx"):
        onnx_file.unlink()
    forget_sessions()
    old = predict_patient(src, run, root / "out-old", key="bench", gradcam=False, log=lambda m: None)
    print(f"first call on a run trained before training exported ({n} models exported on demand, one trace per "
          f"architecture): {old.latency_seconds['total']:.2f} s, of which classify "
          f"{old.latency_seconds['classify']:.2f} s ({load()})")


DEMO_PROCESS = """
import json, sys
from pathlib import Path
# what `sarcomri demo` has loaded when it reaches its predict step: it trained timm networks and exported them
# to ONNX in this process (not ONNX Runtime: nothing ran them yet)
import onnx, timm
import sarcomri.cli.main, sarcomri.report.gradcam, sarcomri.seg3d.predict, sarcomri.study, sarcomri.study_cohort
from sarcomri import demo
from sarcomri.study_config import load_study_config
from sarcomri.predict import predict_patient
from sarcomri.runs import StudyRun
study = StudyRun(sys.argv[1])
# the new patient as the demo makes it (synthesised, written as DICOM with highdicom), into a scratch folder
folder, _ = demo.new_patient(Path(sys.argv[2]), load_study_config(study.path / "config.yaml"), lambda m: None,
                             study=study)
pred = predict_patient(folder, study.classification.path, sys.argv[3], segmentation_run=study.segmentation.path,
                       key=sarcomri.study_cohort.ROUNDTRIP_KEY, gradcam=True, log=print)
print(json.dumps(pred.to_dict()))
"""


def demo_predict(demo: Path, root: Path) -> None:
    """Part 2 of the module docstring: the demo's predict step in a new process that has done what the demo has
    when it predicts. The study is used in place: its models are only read, and exported (``model.onnx``) where
    training did not export them (a demo trained by an earlier version), as ``make demo`` would."""
    import json

    onnx = len(list((demo / "study" / "classification" / "models").rglob("model.onnx")))
    models = len(list((demo / "study" / "classification" / "models").rglob("weights.pt")))
    done = subprocess.run([sys.executable, "-c", DEMO_PROCESS, str(demo / "study"), str(root / "new-patient"),
                           str(root / "demo-prediction")], capture_output=True, text=True, check=True)
    *said, last = done.stdout.strip().splitlines()
    pred = json.loads(last)
    lat, seqs = pred["latency_seconds"], pred["sequences"]
    print(f"the demo's models: {models}, with model.onnx beforehand: {onnx}")
    for line in said:
        print(f"  predict said: {line}")
    print(f"demo's new patient ({len(seqs)} sequences x {max(s['models'] for s in seqs)} models, "
          f"{max(s['slices'] for s in seqs)} slices), as `make demo` runs it: total {lat['total']:.2f} s "
          f"(target < 2 s; {load()}); steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in lat.items() if k != "total"))
    print("demo likelihoods: " + ", ".join(f"{s['sequence']} {s['likelihood']} (vote {s['vote']:+d})" for s in seqs)
          + f"; decision {pred['decision']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo", default="runs/demo", help="a finished `make demo` folder, or 'none'")
    ap.add_argument("--skip-synthetic", action="store_true", help="only the demo's predict step")
    args = ap.parse_args()
    demo = Path(args.demo) if args.demo != "none" else None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_synthetic:
            synthetic_run(args, Path(tmp))
        if demo is not None and (demo / "study" / "classification" / "models").is_dir() \
                and (demo / "new-patient" / "dicom").is_dir():
            demo_predict(demo, Path(tmp))
        elif demo is not None:
            print(f"no finished demo at {demo} (run `make demo`): the demo's figure is not measured")


if __name__ == "__main__":
    main()

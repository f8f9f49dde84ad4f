"""A new patient's segmentation time with a run's fold ensemble, with and without its slice stage (issue 14: under
10 s per volume).

The models of ``RUN/models/<seq>`` are loaded once (``find_models``), then each named patient of the run's cohort is
segmented twice per variant with ``predict_images`` and the run's ``infer:`` settings, on one PyTorch thread; the
second call is timed. CPU seconds are printed beside the wall clock: on a shared machine the CPU time stays while
the wall clock grows with other jobs' load.

Run: nice .venv/bin/python benchmarks/seg3d_predict.py RUN PATIENT [PATIENT ...] [--infer overlap=0.25]
Target: under 10 s per volume.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from seg3d_runs import with_changes

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import load_config
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.infer import find_models, predict_images
from sarcomri.train.threads import torch_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished `segment train` run (one sequence)")
    ap.add_argument("patients", nargs="+", help="patients of the run's cohort")
    ap.add_argument("--infer", action="append", default=[], metavar="KEY=VALUE",
                    help="change one of the run's infer: settings, e.g. overlap=0.25 (repeatable)")
    args = ap.parse_args()
    cfg = load_config(args.run / "config.yaml", Seg3DConfig)
    infer = with_changes(cfg.infer, args.infer)
    group = cfg.channel_groups()[0]
    models = find_models(args.run / "models" / "+".join(group))
    cohort = Cohort.load(cfg.cohort)
    variants = {"3D models": [replace(m, slices=None) for m in models]}
    if all(m.slices is not None for m in models):
        variants["3D + slice stage"] = models
    with torch_threads(1):
        for pid in args.patients:
            images = [cohort.read_image(pid, s) for s in group]
            for name, ms in variants.items():
                predict_images(ms, images, infer, case_id=pid)  # warm-up
                cpu, wall = time.process_time(), time.perf_counter()
                predict_images(ms, images, infer, case_id=pid)
                print(f"{pid} {images[0].GetSize()} {len(ms)} x {name}: {time.process_time() - cpu:.2f} CPU-s, "
                      f"{time.perf_counter() - wall:.2f} s wall", flush=True)
    print("target: under 10 s per volume")


if __name__ == "__main__":
    main()

"""3D segmentation speed on this machine: training patches per second and sliding-window seconds per volume.

Uses the plan of the CPU default (configs/seg3d-cpu.yaml: its preset and plan overrides) on the real sts-t1 data
(../shared/data/sts-t1, read directly) when present, else on synthetic volumes of the same size (150 x 150 x 60
voxels of 0.98 x 0.98 x 3.3 mm). Training: ``--steps`` steps of the fit loop (patch sampling and augmentation
included) after a two-step warm-up, for every combination of ``--threads`` and float32 / bfloat16 autocast.
Inference: one volume with and without test-time mirroring, back on its own grid.

Each line gives wall-clock figures and the process's CPU time: on a CPU shared with other jobs the wall
clock depends on their load, the CPU time much less (a second PyTorch thread that has to wait for a core
spins, which shows as CPU time without progress).
Run: nice .venv/bin/python benchmarks/seg3d.py [--steps 10] [--threads 1 2] [--config configs/seg3d-cpu.yaml]
(target: ratio of the epoch's time to its network steps' time <= 1.10)
"""

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import yaml

from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.data import prepare_case
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.seg3d.model import count_parameters
from sarcomri.seg3d.plan import fingerprint_from_arrays, make_plan
from sarcomri.seg3d.train import fit

ROOT = Path(__file__).resolve().parents[1]
STS = ROOT.parent / "shared" / "data" / "sts-t1"


def volumes(n: int) -> list[tuple[sitk.Image, sitk.Image]]:
    """``n`` (image, mask) pairs: real sts-t1 cases when available, else synthetic ones."""
    if STS.is_dir():
        folders = sorted(p for p in STS.iterdir() if (p / "image.nii.gz").is_file())[:n]
        return [(sitk.ReadImage(str(f / "image.nii.gz")), sitk.ReadImage(str(f / "mask.nii.gz"))) for f in folders]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        z, y, x = np.indices((60, 150, 150))
        m = (((z - 30) / 12) ** 2 + ((y - 75) / 35) ** 2 + ((x - 75) / 30) ** 2 <= 1).astype(np.uint8)
        img = sitk.GetImageFromArray((rng.normal(300, 60, m.shape) + 150 * m).astype(np.float32))
        img.SetSpacing((0.977, 0.977, 3.27))
        mask = sitk.GetImageFromArray(m)
        mask.CopyInformation(img)
        out.append((img, mask))
    return out


class Clock:
    """Wall-clock and process CPU seconds since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "seg3d-cpu.yaml")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--cases", type=int, default=6)
    a = ap.parse_args()
    cfg = Seg3DConfig(**{**yaml.safe_load(a.config.read_text()), "cohort": "-"})
    data = volumes(a.cases)
    fp = fingerprint_from_arrays([str(i) for i in range(len(data))], [im.GetSpacing()[::-1] for im, _ in data],
                                 [im.GetSize()[::-1] for im, _ in data])
    plan = make_plan(fp, ["T1"], cfg.plan_settings())
    cases = [prepare_case(str(i), [im], m, plan) for i, (im, m) in enumerate(data)]
    print(f"data: {'sts-t1 (real)' if STS.is_dir() else 'synthetic'}, {len(cases)} cases; config {a.config.name} "
          f"(preset {cfg.preset}): spacing {plan.target_spacing} mm, patch {plan.patch_size}, filters "
          f"{plan.filters}, batch {plan.batch_size}, deep supervision {plan.deep_supervision}")
    network = None
    for threads in a.threads:
        torch.set_num_threads(threads)
        for precision in a.precision:
            fit(cases, plan, cfg.train.model_copy(update={"epochs": 1, "iterations": 2, "precision": precision,
                                                          "threads": threads}), cfg.data)
            settings = cfg.train.model_copy(update={"epochs": 1, "iterations": a.steps, "precision": precision,
                                                    "threads": threads})
            clock = Clock()
            result = fit(cases, plan, settings, cfg.data)
            wall, cpu = clock.read()
            h = result.history[-1]
            patches = a.steps * plan.batch_size
            network = network or result.network
            print(f"training {threads} thread(s) {precision}: {patches / wall:.2f} patches/s wall "
                  f"({wall / a.steps:.2f} s/step, network {h['step_seconds'] / a.steps:.2f} s); "
                  f"CPU {cpu / a.steps:.2f} s/step = {patches / cpu:.2f} patches per CPU-second; "
                  f"ratio epoch / network steps {h['train_seconds'] / h['step_seconds']:.3f} (target <= 1.10: the "
                  "patch sampling and augmentation cost)", flush=True)
    print(f"network: {count_parameters(network) / 1e6:.2f} M parameters")
    model = Model(network.eval(), plan)
    image = data[0][0]
    for threads in a.threads:
        for mirror in (False, True):
            clock = Clock()
            predict_images([model], [image], cfg.infer.model_copy(update={"mirror": mirror, "threads": threads}))
            wall, cpu = clock.read()
            print(f"sliding-window inference {threads} thread(s) (overlap {cfg.infer.overlap}, Gaussian, "
                  f"mirror={mirror}): {wall:.2f} s wall, {cpu:.2f} s CPU per volume of {image.GetSize()} voxels",
                  flush=True)


if __name__ == "__main__":
    main()

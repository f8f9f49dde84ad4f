"""3D segmentation speed on this machine: training patches per second and sliding-window seconds per volume.

Uses the CPU preset plan of the real sts-t1 data (../shared/data/sts-t1, read directly) when present, else
synthetic volumes of the same size (150 x 150 x 60 voxels of 0.98 x 0.98 x 3.3 mm). Training: ``--steps``
steps of the fit loop (patch sampling and augmentation included) after one warm-up epoch, in float32 and
bfloat16 autocast. Inference: one volume with and without test-time mirroring, back on its own grid.
Run: nice .venv/bin/python benchmarks/seg3d.py [--steps 10] [--preset cpu]
(figures vary with the load other processes put on the cores: compare runs made at the same time)
"""

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from sarcomri.seg3d.config import PRESETS, InferSettings, PlanSettings, TrainSettings
from sarcomri.seg3d.data import prepare_case
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.seg3d.model import count_parameters
from sarcomri.seg3d.plan import fingerprint_from_arrays, make_plan
from sarcomri.seg3d.train import fit

STS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sts-t1"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--cases", type=int, default=6)
    a = ap.parse_args()
    data = volumes(a.cases)
    fp = fingerprint_from_arrays([str(i) for i in range(len(data))], [im.GetSpacing()[::-1] for im, _ in data],
                                 [im.GetSize()[::-1] for im, _ in data])
    plan = make_plan(fp, ["T1"], PlanSettings(**PRESETS[a.preset]))
    cases = [prepare_case(str(i), [im], m, plan) for i, (im, m) in enumerate(data)]
    print(f"data: {'sts-t1 (real)' if STS.is_dir() else 'synthetic'}, {len(cases)} cases; {torch.get_num_threads()} "
          f"threads; plan '{a.preset}': spacing {plan.target_spacing} mm, patch {plan.patch_size}, filters "
          f"{plan.filters}, batch {plan.batch_size}")
    network = None
    for precision in ("fp32", "bf16"):
        warm = TrainSettings(epochs=1, iterations=2, precision=precision)
        fit(cases, plan, warm)
        settings = TrainSettings(epochs=1, iterations=a.steps, precision=precision)
        t0 = time.perf_counter()
        result = fit(cases, plan, settings)
        seconds = time.perf_counter() - t0
        h = result.history[-1]
        network = result.network if precision == "fp32" else network
        print(f"training {precision}: {a.steps * plan.batch_size / seconds:.2f} patches/s "
              f"({seconds / a.steps:.2f} s/step, of which network {h['step_seconds'] / a.steps:.2f} s)")
    print(f"network: {count_parameters(network) / 1e6:.2f} M parameters")
    model = Model(network.eval(), plan)
    image = data[0][0]
    for mirror in (False, True):
        t0 = time.perf_counter()
        predict_images([model], [image], InferSettings(mirror=mirror))
        print(f"sliding-window inference (overlap 0.5, Gaussian, mirror={mirror}): "
              f"{time.perf_counter() - t0:.2f} s per volume of {image.GetSize()} voxels")


if __name__ == "__main__":
    main()

"""Training throughput of the 2D segmenters on this machine: images per second (forward, Dice + CE loss,
backward, Adam step, with the paper's augmentation applied per batch) for DeepLabV3+ with
tu-mobilenetv2_100 and tu-resnet34 at 128 and 256 px, three input channels, batch 8; plus inference
slices per second.

    .venv/bin/python benchmarks/seg2d.py [--steps 4] [--threads N] [--sizes 128 256] [--arch deeplabv3plus]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sarcomri.seg2d import augment  # noqa: E402
from sarcomri.seg2d.config import NetworkSettings  # noqa: E402
from sarcomri.seg2d.model import DiceCELoss, build_network  # noqa: E402


def bench(arch: str, encoder: str, size: int, batch: int, steps: int) -> tuple[float, float]:
    """(training images/s, inference images/s) over ``steps`` timed steps after one warm-up step."""
    torch.manual_seed(0)
    net = build_network(NetworkSettings(arch=arch, encoder=encoder), 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = DiceCELoss()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = torch.from_numpy((rng.random((batch, size, size)) > 0.9).astype(np.float32))
    net.train()
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        xb, yb = augment.apply(x, y, rng.integers(0, 6, batch))
        loss = loss_fn(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    net.eval()
    inf = []
    with torch.no_grad():
        for i in range(steps + 1):
            t0 = time.perf_counter()
            net(x)
            if i:
                inf.append(time.perf_counter() - t0)
    return batch / float(np.median(times)), batch / float(np.median(inf))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--arch", default="deeplabv3plus", choices=["deeplabv3plus", "unet"])
    ap.add_argument("--encoders", nargs="+", default=["tu-mobilenetv2_100", "tu-resnet34"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.steps} timed steps (median)")
    print(f"{'arch':<14} {'encoder':<20} {'px':>5} {'train img/s':>12} {'infer img/s':>12}")
    for enc in args.encoders:
        for size in args.sizes:
            tr, inf = bench(args.arch, enc, size, args.batch, args.steps)
            print(f"{args.arch:<14} {enc:<20} {size:>5} {tr:>12.1f} {inf:>12.1f}", flush=True)


if __name__ == "__main__":
    main()

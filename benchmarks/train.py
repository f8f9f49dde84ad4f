"""Does the data pipeline make the model wait? Epoch wall time of `fit` / time of the model steps alone.

The model steps alone are forward + backward + optimiser step on pre-built batches of the same size; the
epoch adds sampling, batched augmentation (the sarcoma preset) and the channels_last conversion.
Run: .venv/bin/python benchmarks/train.py [--model mobilenetv2_050] [--size 128]   (target: ratio <= 1.10)
"""

import argparse
import time

import numpy as np
import timm
import torch
import torch.nn.functional as F

from sarcomri.data.sliceset import SliceSet
from sarcomri.train.classifier import fit_classifier as fit
from sarcomri.train.config import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenetv2_050")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    data = SliceSet(rng.normal(size=(a.n, 3, a.size, a.size)).astype(np.float32),
                    (rng.random(a.n) < 0.3).astype(np.int64), np.array([f"P{i}" for i in range(a.n)], dtype=object),
                    np.zeros(a.n, np.int64))
    torch.manual_seed(0)
    model = timm.create_model(a.model, pretrained=False, num_classes=2).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.from_numpy(data.images[: a.batch]).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(data.labels[: a.batch])
    n_steps = a.n // a.batch
    model.train()
    for _ in range(2):  # warm-up
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(n_steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    steps = time.perf_counter() - t0
    cfg = TrainConfig(epochs=1, batch_size=a.batch, augmentation="sarcoma", sampling="balanced", seed=0)
    t0 = time.perf_counter()
    logs = fit(model, data, None, cfg).history[-1]
    epoch = time.perf_counter() - t0
    print(f"{a.model} at {a.size} px, {a.n} images, batch {a.batch}, {torch.get_num_threads()} threads")
    print(f"model steps alone: {steps:.2f} s ({a.n / steps:.1f} images/s)")
    print(f"fit epoch (sampling + augmentation + steps): {epoch:.2f} s ({a.n / epoch:.1f} images/s)")
    print(f"ratio epoch / model steps (separate runs): {epoch / steps:.3f}")
    print(f"within the epoch: training pass {logs['train_seconds']:.2f} s, of which model steps "
          f"{logs['step_seconds']:.2f} s -> ratio {logs['train_seconds'] / logs['step_seconds']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()

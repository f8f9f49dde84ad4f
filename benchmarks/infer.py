"""ONNX Runtime vs eager PyTorch for classifier inference on this CPU (images/s and speed-up; target >= 3x).

MobileNetV2 (mobilenetv2_100, 2 classes, random weights: speed does not depend on them) at 224 px, batches of
1 and 16. Eager PyTorch runs in eval mode under ``torch.inference_mode`` in its default (contiguous) layout and
in channels_last; ONNX Runtime uses ``OnnxClassifier`` (intra-op threads = the cores this process may use).
The methods are timed in interleaved rounds and the median round is reported, so that load from other
processes on a shared machine hits them alike.
Run: .venv/bin/python benchmarks/infer.py [--model mobilenetv2_100] [--size 224] [--batches 1 16] [--rounds 7]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sarcomri.infer.onnx import OnnxClassifier, default_threads, export_onnx
from sarcomri.models.registry import _create, resolve_name


def _per_image_seconds(fn, batch, min_seconds: float) -> float:
    """Seconds per image of ``fn(batch)``, repeated for at least ``min_seconds``."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn(batch)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds and n >= 3:
            return elapsed / (n * len(batch))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenetv2_100")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum time per method and round")
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: the available cores)")
    a = ap.parse_args()

    threads = a.threads or default_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arch = resolve_name(a.model)
    model = _create(arch, 3, 2).eval()
    model_cl = _create(arch, 3, 2).eval().to(memory_format=torch.channels_last)
    model_cl.load_state_dict(model.state_dict())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = export_onnx(model, Path(tmp) / f"{arch}.onnx", (3, a.size, a.size))
        export_s = time.perf_counter() - t0
        onnx_clf = OnnxClassifier(path, threads=threads)

        def eager(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x))

        def eager_cl(x):
            with torch.inference_mode():
                return model_cl(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))

        methods = {"pytorch eager": eager, "pytorch channels_last": eager_cl, "onnxruntime": onnx_clf.predict_logits}
        rng = np.random.default_rng(0)
        print(f"{arch} at {a.size} px, {threads} threads (torch {torch.__version__}), "
              f"load average {os.getloadavg()[0]:.2f}; ONNX export took {export_s:.1f} s")
        for batch in a.batches:
            x = rng.normal(size=(batch, 3, a.size, a.size)).astype(np.float32)
            diff = float(np.abs(onnx_clf.predict_logits(x) - eager(x).numpy()).max())
            for fn in methods.values():  # warm-up
                for _ in range(2):
                    fn(x)
            rounds: dict[str, list[float]] = {m: [] for m in methods}
            for _ in range(a.rounds):
                for name, fn in methods.items():
                    rounds[name].append(_per_image_seconds(fn, x, a.seconds))
            rate = {m: 1.0 / statistics.median(v) for m, v in rounds.items()}
            print(f"batch {batch} (max |logit difference| onnxruntime vs pytorch {diff:.1e}):")
            for name, r in rate.items():
                print(f"  {name:<22} {r:7.1f} images/s  ({1000 / r:6.1f} ms/image)")
            print(f"  speed-up onnxruntime vs eager: {rate['onnxruntime'] / rate['pytorch eager']:.2f}x, "
                  f"vs channels_last: {rate['onnxruntime'] / rate['pytorch channels_last']:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()

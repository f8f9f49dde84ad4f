"""ONNX Runtime vs eager PyTorch for classifier inference on this CPU (images/s and speed-up; target >= 4x at
batch 1 and 16, issue 15).

MobileNetV2 (mobilenetv2_100, 2 classes, random weights: speed does not depend on them) at 224 px, batches of
1 and 16. Eager PyTorch runs in eval mode under ``torch.inference_mode`` in its default (contiguous) layout and
in channels_last; ONNX Runtime uses ``OnnxClassifier`` (intra-op threads = the cores this process may use;
idle threads sleep), and with more than one thread once more with spinning threads (ONNX Runtime's own
default) for comparison. A last row runs the graph quantised to int8 (ONNX Runtime's static quantisation,
per-channel weights, QDQ format, calibrated on random batches like the inputs): what int8 would buy; its
logits differ from PyTorch's (printed), so `sarcomri predict` does not use it.
The methods are timed in interleaved rounds and the median round is reported, so that load from other
processes on a shared machine hits them alike.
Each thread count is run for both engines: the available cores, then one thread (on a small CPU shared with
other processes, OpenMP threads waiting on a busy core can make multi-threaded eager PyTorch several times
slower than single-threaded; the one-thread figures show the engines without that effect).
ONNX Runtime cuts a batch into chunks of ``sarcomri.infer.onnx.chunk_size`` images (about 100,000 pixels per
thread); the row "pytorch eager, same chunks" gives eager PyTorch the same chunks, for a like-for-like figure.
``--chunks`` prints instead ONNX Runtime's time per image for a batch of 64 cut into chunks of 1 to 64, with and
without its memory arena (the session pool runs without): the measurement behind ``chunk_size``.
Run: .venv/bin/python benchmarks/infer.py [--model mobilenetv2_100] [--size 224] [--batches 1 16] [--threads 2 1]
     [--chunks]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from sarcomri.infer.onnx import OnnxClassifier, chunk_size, default_threads, export_onnx, onnx_bytes, write_onnx
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


def _rates(methods: dict, x: np.ndarray, rounds: int, seconds: float) -> dict[str, float]:
    """Images/s of each method: the median of interleaved rounds, after a warm-up."""
    for fn in methods.values():
        for _ in range(2):
            fn(x)
    per_image: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            per_image[name].append(_per_image_seconds(fn, x, seconds))
    return {m: 1.0 / statistics.median(v) for m, v in per_image.items()}


def quantise_int8(path: Path, out: Path, size: int, rng: np.random.Generator) -> Path:
    """``path``'s graph with int8 weights and activations (static, per-channel, QDQ), calibrated on random
    batches like the benchmark's inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.left = iter([{"input": rng.normal(size=(4, 3, size, size)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.left, None)

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(path), str(prepared))
    quantize_static(str(prepared), str(out), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return write_onnx(onnx_bytes(onnx.load(str(out))), out)  # a digest of its own (it kept the source's)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenetv2_100")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum time per method and round")
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="thread counts to compare, each used by both engines (default: the available cores, then 1)")
    ap.add_argument("--chunks", action="store_true", help="time ONNX Runtime by chunk size instead")
    a = ap.parse_args()

    thread_counts = list(dict.fromkeys(a.threads or [default_threads(), 1]))
    torch.manual_seed(0)
    arch = resolve_name(a.model)
    model = _create(arch, 3, 2).eval()
    model_cl = _create(arch, 3, 2).eval().to(memory_format=torch.channels_last)
    model_cl.load_state_dict(model.state_dict())

    def eager(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x))

    def eager_cl(x):
        with torch.inference_mode():
            return model_cl(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))

    def eager_chunked(x):
        step = chunk_size(x.shape[2] * x.shape[3], torch.get_num_threads())
        with torch.inference_mode():
            return torch.cat([model(torch.from_numpy(x[i : i + step])) for i in range(0, len(x), step)])

    rng = np.random.default_rng(0)
    if a.chunks:
        chunk_table(model, arch, a.size, thread_counts, a.rounds, a.seconds, rng)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = export_onnx(model, Path(tmp) / f"{arch}.onnx", (3, a.size, a.size))
        print(f"{arch} at {a.size} px, torch {torch.__version__}, {default_threads()} cores available; "
              f"ONNX export took {time.perf_counter() - t0:.1f} s")
        int8_path = quantise_int8(path, Path(tmp) / f"{arch}.int8.onnx", a.size, rng)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            onnx_clf = OnnxClassifier(path, threads=threads)
            int8_clf = OnnxClassifier(int8_path, threads=threads)
            methods = {"pytorch eager": eager, "pytorch channels_last": eager_cl,
                       "pytorch eager, same chunks": eager_chunked,
                       "onnxruntime": onnx_clf.predict_logits, "onnxruntime int8": int8_clf.predict_logits}
            print(f"\n== {threads} thread(s) for both (load average {os.getloadavg()[0]:.2f})")
            for batch in a.batches:
                x = rng.normal(size=(batch, 3, a.size, a.size)).astype(np.float32)
                want = eager(x).numpy()
                diff = float(np.abs(onnx_clf.predict_logits(x) - want).max())
                diff8 = float(np.abs(int8_clf.predict_logits(x) - want).max())
                rate = _rates(methods, x, a.rounds, a.seconds)
                print(f"batch {batch} (max |logit difference| vs pytorch: onnxruntime {diff:.1e}, int8 {diff8:.1e}; "
                      f"load {os.getloadavg()[0]:.2f}):")
                for name, r in rate.items():
                    print(f"  {name:<22} {r:7.1f} images/s  ({1000 / r:6.1f} ms/image)")
                print(f"  onnxruntime in chunks of {chunk_size(a.size * a.size, threads)}; speed-up vs eager in the "
                      f"same chunks: {rate['onnxruntime'] / rate['pytorch eager, same chunks']:.2f}x")
                print(f"  speed-up onnxruntime vs eager: {rate['onnxruntime'] / rate['pytorch eager']:.2f}x, "
                      f"vs channels_last: {rate['onnxruntime'] / rate['pytorch channels_last']:.2f}x (target >= 4x); "
                      f"int8 vs eager: {rate['onnxruntime int8'] / rate['pytorch eager']:.2f}x")
            if threads > 1:  # measured apart: spinning threads keep cores busy after each call, slowing the next
                spinning = OnnxClassifier(path, threads=threads, spin=True)
                pair = {"idle threads sleep (default)": onnx_clf.predict_logits,
                        "idle threads spin": spinning.predict_logits}
                for batch in a.batches:
                    x = rng.normal(size=(batch, 3, a.size, a.size)).astype(np.float32)
                    rate = _rates(pair, x, a.rounds, a.seconds)
                    print(f"onnxruntime thread pool, batch {batch}: "
                          + ", ".join(f"{name} {r:.1f} images/s" for name, r in rate.items()))

def chunk_table(model, arch: str, size: int, thread_counts: list[int], rounds: int, seconds: float,
                rng: np.random.Generator) -> None:
    """ONNX Runtime's milliseconds per image for a batch of 64 cut into chunks of 1-64, per thread count, with
    and without the memory arena; and the chunk :func:`chunk_size` picks."""
    x = rng.normal(size=(64, 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / f"{arch}.onnx", (3, size, size))
        for threads in thread_counts:
            for arena in (True, False):
                clfs = {n: OnnxClassifier(path, threads=threads, batch_size=n, arena=arena).predict_logits
                        for n in (1, 2, 4, 8, 16, 32, 64)}
                rate = _rates(clfs, x, rounds, seconds)
                best = max(rate, key=rate.get)
                print(f"{arch} {size} px, {threads} thread(s), arena {'on' if arena else 'off'} (load "
                      f"{os.getloadavg()[0]:.2f}): ms per image by chunk "
                      + ", ".join(f"{n}: {1000 / r:.2f}" for n, r in rate.items())
                      + f"; fastest {best}, chunk_size picks {chunk_size(size * size, threads)}")


if __name__ == "__main__":
    main()

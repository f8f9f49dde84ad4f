"""HD95 + ASSD timing on a 512 x 512 x 40 pair of tumour-like masks (anisotropic spacing).

Compares sarcomri.stats.segmentation with MONAI and MedPy when they are installed, printing the values side
by side. Same definition: MONAI's HD95 and ASSD, MedPy's ASSD. MedPy's hd95 pools both directions before
taking the 95th percentile, so its HD95 is printed for reference only.

Run: ``.venv/bin/python benchmarks/stats_seg.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from sarcomri.stats.segmentation import segmentation_metrics

SHAPE_ZYX = (40, 512, 512)
SPACING_ZYX = (3.3, 0.7, 0.7)


def tumour_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A lobulated tumour (about 6 x 6 x 5 cm) and a slightly shifted, smoothed-differently prediction."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    centre = np.array([20, 250, 270])
    radii = np.array([8.0, 45.0, 40.0])  # voxels: semi-axes of about 26 x 32 x 28 mm before lobulation
    r2 = ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2
    noise = ndimage.gaussian_filter(rng.standard_normal(SHAPE_ZYX), (2, 12, 12))
    noise /= np.abs(noise).max()
    ref = r2 + 0.8 * noise < 1.0
    noise2 = ndimage.gaussian_filter(rng.standard_normal(SHAPE_ZYX), (1.5, 8, 8))
    noise2 /= np.abs(noise2).max()
    pred = np.roll(r2, (1, 4, -3), axis=(0, 1, 2)) + 0.6 * noise + 0.5 * noise2 < 1.05
    pred[30:33, 400:410, 100:112] = True  # a small false-positive island far away
    return pred, ref


def timed(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pred, ref = tumour_pair()
    print(f"masks {SHAPE_ZYX} (z, y, x), spacing {SPACING_ZYX} mm; pred {pred.sum()} voxels, ref {ref.sum()}")
    rows = []

    def ours():
        m = segmentation_metrics(pred, ref, SPACING_ZYX)
        return m["hd95_mm"], m["assd_mm"]

    rows.append(("sarcomri", *timed(ours, args.repeats)))
    try:
        import torch
        from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

        y_pred = torch.from_numpy(np.stack([~pred, pred])[None])
        y = torch.from_numpy(np.stack([~ref, ref])[None])

        def monai():
            hd95 = compute_hausdorff_distance(y_pred, y, percentile=95, spacing=list(SPACING_ZYX)).item()
            assd = compute_average_surface_distance(y_pred, y, symmetric=True, spacing=list(SPACING_ZYX)).item()
            return hd95, assd

        rows.append(("MONAI", *timed(monai, args.repeats)))
    except ImportError:
        print("MONAI not installed: skipped")
    try:
        from medpy.metric import binary

        def medpy():
            return (binary.hd95(pred, ref, voxelspacing=SPACING_ZYX),
                    binary.assd(pred, ref, voxelspacing=SPACING_ZYX))

        rows.append(("MedPy (hd95 pooled)", *timed(medpy, max(1, args.repeats // 3))))
    except ImportError:
        print("MedPy not installed: skipped")
    base = rows[0][1]
    print(f"{'tool':<22}{'seconds':>9}{'x sarcomri':>12}{'HD95 mm':>12}{'ASSD mm':>12}")
    for name, seconds, (hd95, assd) in rows:
        print(f"{name:<22}{seconds:>9.3f}{seconds / base:>12.1f}{hd95:>12.4f}{assd:>12.4f}")


if __name__ == "__main__":
    main()

"""HD95 + ASSD timing on two pairs of tumour-like masks on a 40 x 512 x 512 grid (anisotropic spacing).

* ``small``: one lobulated tumour of about 60k voxels and a shifted, differently smoothed prediction with a
  small false-positive island (spacing 3.3 x 0.7 x 0.7 mm);
* ``large``: two tumours of about 0.55M voxels each (reference and prediction) and a false-positive blob far
  from them, so the bounding box of the union is most of the volume (spacing 3.0 x 0.7 x 0.7 mm).

Compares sarcomri.stats.segmentation with MONAI and MedPy when they are installed, printing the values side
by side and the ratio MONAI / sarcomri against its target (sarcomri at least 3x faster than MONAI). Same
definition: MONAI's HD95 and ASSD, MedPy's ASSD. MedPy's hd95 pools both directions before taking the 95th
percentile, so its HD95 is printed for reference only. Times are the best of ``--repeats`` runs; the load
average is printed because the ratios, not the seconds, are what compares across machines.

Run: ``.venv/bin/python benchmarks/stats_seg.py [--repeats 3] [--case small|large|all]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from sarcomri.stats.segmentation import segmentation_metrics

SHAPE_ZYX = (40, 512, 512)
SPACING_ZYX = (3.3, 0.7, 0.7)  # the small case
LARGE_SPACING_ZYX = (3.0, 0.7, 0.7)
#: MONAI's time divided by ours must reach this (issue 15).
TARGET_RATIO = 3.0


def _lobulated(centre: tuple[int, int, int], radii: tuple[float, float, float],
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised squared radius of an ellipsoid and two smooth noise fields (coarse, finer) on the grid."""
    z, y, x = np.ogrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip((z, y, x), centre, radii, strict=True))
    noise = ndimage.gaussian_filter(rng.standard_normal(SHAPE_ZYX), (2, 12, 12))
    noise /= np.abs(noise).max()
    noise2 = ndimage.gaussian_filter(rng.standard_normal(SHAPE_ZYX), (1.5, 8, 8))
    noise2 /= np.abs(noise2).max()
    return r2, noise, noise2


def tumour_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A lobulated tumour (about 6 x 6 x 5 cm) and a slightly shifted, smoothed-differently prediction."""
    rng = np.random.default_rng(seed)
    # voxels: semi-axes of about 26 x 32 x 28 mm before lobulation
    r2, noise, noise2 = _lobulated((20, 250, 270), (8.0, 45.0, 40.0), rng)
    ref = r2 + 0.8 * noise < 1.0
    pred = np.roll(r2, (1, 4, -3), axis=(0, 1, 2)) + 0.6 * noise + 0.5 * noise2 < 1.05
    pred[30:33, 400:410, 100:112] = True  # a small false-positive island far away
    return pred, ref


def large_tumour_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two large lobulated tumours (about 0.55M voxels, 7 x 14 x 14 cm) and a false-positive blob in a corner
    of the volume, some 15 cm from them: the union's bounding box covers over a third of the volume."""
    rng = np.random.default_rng(seed)
    r2, noise, noise2 = _lobulated((18, 230, 250), (12.0, 100.0, 100.0), rng)
    ref = r2 + 0.8 * noise < 1.0
    pred = np.roll(r2, (1, 4, -3), axis=(0, 1, 2)) + 0.6 * noise + 0.5 * noise2 < 1.05
    pred[33:37, 470:490, 20:45] = True  # a false-positive blob far from both tumours
    return pred, ref


CASES: dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], tuple[float, float, float]]] = {
    "small": (tumour_pair, SPACING_ZYX),
    "large": (large_tumour_pair, LARGE_SPACING_ZYX),
}


def timed(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def run_case(name: str, pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, float, float],
             repeats: int) -> None:
    """Time every installed tool on one pair and print the table."""
    print(f"-- {name}: masks {pred.shape} (z, y, x), spacing {spacing} mm; pred {int(pred.sum())} voxels, "
          f"ref {int(ref.sum())}")
    rows = []

    def ours():
        m = segmentation_metrics(pred, ref, spacing)
        return m["hd95_mm"], m["assd_mm"]

    rows.append(("sarcomri", *timed(ours, repeats)))
    try:
        import torch
        from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

        y_pred = torch.from_numpy(np.stack([~pred, pred])[None])
        y = torch.from_numpy(np.stack([~ref, ref])[None])

        def monai():
            hd95 = compute_hausdorff_distance(y_pred, y, percentile=95, spacing=list(spacing)).item()
            assd = compute_average_surface_distance(y_pred, y, symmetric=True, spacing=list(spacing)).item()
            return hd95, assd

        rows.append(("MONAI", *timed(monai, repeats)))
    except ImportError:
        print("MONAI not installed: skipped")
    try:
        from medpy.metric import binary

        def medpy():
            return (binary.hd95(pred, ref, voxelspacing=spacing),
                    binary.assd(pred, ref, voxelspacing=spacing))

        rows.append(("MedPy (hd95 pooled)", *timed(medpy, max(1, repeats // 3))))
    except ImportError:
        print("MedPy not installed: skipped")
    base = rows[0][1]
    print(f"{'tool':<22}{'seconds':>9}{'x sarcomri':>12}{'HD95 mm':>14}{'ASSD mm':>14}")
    for tool, seconds, (hd95, assd) in rows:
        print(f"{tool:<22}{seconds:>9.3f}{seconds / base:>12.1f}{hd95:>14.6f}{assd:>14.6f}")
    for tool, seconds, _ in rows:
        if tool == "MONAI":
            ratio = seconds / base
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(f"MONAI / sarcomri = {ratio:.1f}x (target >= {TARGET_RATIO:g}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    args = parser.parse_args()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1, 5, 15 min) at start: {load} on {os.cpu_count()} CPUs")
    for name, (make, spacing) in CASES.items():
        if args.case in (name, "all"):
            pred, ref = make()
            run_case(name, pred, ref, spacing, args.repeats)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average at the end: {load}")


if __name__ == "__main__":
    main()

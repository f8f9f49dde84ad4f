"""Timing of the fast DeLong (Sun & Xu 2014) on large samples: AUC + variance, paired test, and the
O(n^2) definition on a smaller sample for comparison. Prints figures; asserts nothing.

Run: .venv/bin/python benchmarks/stats_roc.py [n_cases]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from sarcomri.stats import roc


def best_of(fn: Callable[[], object], repeats: int = 7) -> float:
    """Best wall time in milliseconds over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def quadratic_delong(cases: np.ndarray, controls: np.ndarray) -> float:
    psi = (cases[:, None] > controls[None, :]) + 0.5 * (cases[:, None] == controls[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(v10.var(ddof=1) / cases.size + v01.var(ddof=1) / controls.size)


def main(n: int = 10_000) -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, n)
    s1 = np.round(rng.normal(truth * 0.8, 1.0), 2)  # rounded: realistic ties
    s2 = np.round(s1 + rng.normal(0, 0.7, n), 2)

    t_ci = best_of(lambda: roc.auc_ci(truth, s1, positive=1))
    t_paired = best_of(lambda: roc.delong_test(truth, s1, s2, positive=1))
    print(f"n = {n} cases ({int(truth.sum())} positive), best of 7 runs")
    print(f"DeLong AUC + variance + CI : {t_ci:8.2f} ms   (target < 50 ms)")
    print(f"paired DeLong test         : {t_paired:8.2f} ms")

    small = 2_000
    cases, controls = roc.cases_and_controls(truth[:small], s1[:small], positive=1)
    t_fast = best_of(lambda: roc.delong_covariance(cases, controls), repeats=5)
    t_slow = best_of(lambda: quadratic_delong(cases, controls), repeats=3)
    print(f"n = {small}: fast DeLong {t_fast:.2f} ms vs O(n^2) definition {t_slow:.2f} ms")

    t_boot = best_of(lambda: roc.auc_ci(truth[:1000], s1[:1000], 1, method="bootstrap", n_boot=2000), repeats=3)
    print(f"stratified bootstrap CI, n = 1000, 2000 resamples: {t_boot:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

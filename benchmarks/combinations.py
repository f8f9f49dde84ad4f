"""Time the exhaustive sequence-combination search: 15 sequences (32,767 subsets) x 300 patients.

Run: .venv/bin/python benchmarks/combinations.py  (target: under 2 s on a 2-core CPU)
"""

import time

import numpy as np
import pandas as pd

from sarcomri.analysis.combinations import search_combinations


def main() -> None:
    rng = np.random.default_rng(0)
    n, s = 300, 15
    y = pd.Series((rng.random(n) < 0.24).astype(int), index=[f"P{i:03d}" for i in range(n)])
    correct = rng.random((n, s)) < 0.8
    v = np.where(correct, np.where(y.to_numpy()[:, None] == 1, 1, -1), np.where(y.to_numpy()[:, None] == 1, -1, 1))
    v[rng.random((n, s)) < 0.3] = 0
    table = pd.DataFrame(v, index=y.index, columns=[f"seq{j:02d}" for j in range(s)])
    search_combinations(table.iloc[:, :4], y)  # warm-up
    t0 = time.perf_counter()
    res = search_combinations(table, y)
    dt = time.perf_counter() - t0
    print(f"combination search: {len(res)} subsets x {n} patients in {dt:.2f} s (target < 2 s)")
    print(res.head(5).to_string(index=False))


if __name__ == "__main__":
    main()

"""All statistics benchmarks of the statistics issue: DeLong on 10,000 cases, HD95 + ASSD on 512 x 512 x 40.

Run: .venv/bin/python benchmarks/stats.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stats_roc  # noqa: E402
import stats_seg  # noqa: E402

if __name__ == "__main__":
    print("== ROC / DeLong ==")
    stats_roc.main()
    print("\n== Segmentation surface distances ==")
    stats_seg.main()

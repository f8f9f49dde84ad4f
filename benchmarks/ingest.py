"""Time to ingest the real ProstateX-0000 study (164 DICOM files, 9 series) into a cohort.

Reports the header scan alone and the whole ingestion (scan, naming, reading 8 volumes, fitting ADC with
--compute-adc, writing compressed NIfTI), best and median of several runs.
Run: .venv/bin/python benchmarks/ingest.py [--src ../shared/data/dicom/prostatex-0000] [--repeat 3]
(target: under 30 s)
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.dicom import scan_dicom, walk_files
from sarcomri.io.ingest import ingest

DEFAULT_SRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom" / "prostatex-0000"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if not a.src.is_dir():
        raise SystemExit(f"{a.src} not found (the real test data lives in ../shared/data)")
    files = list(walk_files(a.src))
    scans, totals = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        scan_dicom(files, a.src)
        scans.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = ingest(a.src, Path(tmp) / "cohort", pseudonymizer=Pseudonymizer.from_key("bench"),
                            compute_adc=True)
            totals.append(time.perf_counter() - t0)
    print(f"source: {len(files)} files; cohort: {report.patients} patient(s), {report.volumes} volumes, "
          f"{len(report.unmapped)} series kept aside")
    print(f"header scan : best {min(scans):.2f} s, median {statistics.median(scans):.2f} s "
          f"({len(files) / min(scans):.0f} files/s)")
    print(f"ingestion   : best {min(totals):.2f} s, median {statistics.median(totals):.2f} s (target < 30 s)")


if __name__ == "__main__":
    main()

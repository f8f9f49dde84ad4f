"""Time the synthetic cohort: 60 patients at the default grid, then their DICOM export.

Run: .venv/bin/python benchmarks/synth.py  (target: synthesis under 60 s on a 2-core CPU)
Prints the time of the ideal-observer Monte Carlo (paid once per process), of synthesising 60 sarcoma
patients with the default sequences (T2axi, T2sag, DWI_b0, DWI_b1000, ADC, fsT1CEaxi; 128 x 128 x 24 at
2.2 x 2.2 x 5 mm) including NIfTI writing, and of writing them as DICOM (MR series + DICOM-SEG).
"""

import tempfile
import time
import warnings
from pathlib import Path

from sarcomri.synth import latent
from sarcomri.synth.cohort import synthesise_cohort
from sarcomri.synth.dicom import write_dicom


def main(n: int = 60) -> None:
    t0 = time.perf_counter()
    auc = latent.ideal_observer("sarcoma").auc
    t_mc = time.perf_counter() - t0
    print(f"ideal observer (Monte Carlo, {latent.MC_PER_CLASS} per class): AUC {auc:.3f} in {t_mc:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cohort = synthesise_cohort(Path(tmp) / "cohort", "sarcoma", n, seed=0)
        t_syn = time.perf_counter() - t0
        n_series = len(cohort.series)
        print(f"synthesis: {n} patients, {n_series} series with masks in {t_syn:.1f} s "
              f"({t_syn / n:.2f} s per patient; target < 60 s)")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            report = write_dicom(cohort, Path(tmp) / "dicom")
        t_dcm = time.perf_counter() - t0
        print(f"DICOM export: {report.series} series, {report.files} files in {t_dcm:.1f} s "
              f"({t_dcm / n:.2f} s per patient)")


if __name__ == "__main__":
    main()

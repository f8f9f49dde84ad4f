"""Pull speed from a local Orthanc (issue 18): instances per second over DICOMweb (WADO-RS) and DIMSE (C-GET),
into the staging folder (each instance de-identified and written) and on to the cohort, with the bottleneck named.

A synthetic hospital (``--patients`` patients: T2axi, DWI b0 and b1000 at ``--size`` px x ``--slices`` slices, and
a DICOM-SEG each) is written as DICOM and loaded into a fresh Orthanc (Debian's orthanc + orthanc-dicomweb). For
each protocol: the retrieval alone (every series fetched and parsed, nothing written), the pull to the staging
folder (:func:`sarcomri.pacs.pull.pull_to_staging`) and the whole pull (:func:`sarcomri.pacs.pull.pull_cohort`,
with folder ingestion). One profiled staging pull per protocol gives the share of the time spent in the retrieval,
the de-identification and the writing. The machine's load is printed with the figures.
Run: .venv/bin/python benchmarks/pull.py [--patients 8] [--size 256] [--slices 24]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import Pseudonymizer
from sarcomri.pacs.address import parse_address
from sarcomri.pacs.orthanc import start_orthanc
from sarcomri.pacs.pull import open_pacs, pull_cohort, pull_to_staging, staging_key
from sarcomri.pacs.query import StudyQuery
from sarcomri.pacs.staging import Staging
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import synthesise_cohort
from sarcomri.synth.dicom import write_dicom

KEY = Pseudonymizer.from_key("benchmark")
QUERY = StudyQuery(dates="19000101-")


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def retrieve_only(address: str) -> int:
    """Fetch and parse every instance of every study; returns how many."""
    pacs = open_pacs(parse_address(address))
    n = 0

    def count(_):
        nonlocal n
        n += 1

    for study in pacs.find_studies(QUERY.searches()[0][1]):
        for series in pacs.find_series(study.study_uid):
            pacs.retrieve(study.study_uid, series.series_uid, None, count)
    return n


def shares(profile: cProfile.Profile) -> dict[str, float]:
    """Seconds of a staging pull (under the profiler) in the searches, in the retrieval itself (the transfer and
    the parsing of the instances), in their de-identification and in their writing."""
    stats = pstats.Stats(profile)

    def cumulative(function: str, module: str) -> float:
        return sum(v[3] for k, v in stats.stats.items() if k[2] == function and k[0].endswith(module))

    deid, write = cumulative("deidentify", "staging.py"), cumulative("save_as", "dataset.py")
    searches = sum(cumulative(f, "dicomweb.py") + cumulative(f, "dimse.py")
                   for f in ("find_studies", "find_series", "find_instances"))
    retrieve = cumulative("retrieve", "dicomweb.py") + cumulative("retrieve", "dimse.py") - deid - write
    return {"searches": searches, "retrieval": retrieve, "de-identification": deid, "writing": write}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--slices", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cohort = synthesise_cohort(root / "synthetic", task="sarcoma", n_patients=args.patients, seed=3,
                                   sequences=["T2axi", "DWI_b0", "DWI_b1000"],
                                   protocol=Protocol(size=args.size, slices=args.slices))
        write_dicom(Cohort.load(cohort.root), root / "dicom")
        server = start_orthanc(root / "orthanc")
        try:
            t0 = time.perf_counter()
            total = server.upload(root / "dicom")
            print(f"{total} instances ({args.patients} patients, {args.size} px x {args.slices} slices) loaded into "
                  f"Orthanc in {time.perf_counter() - t0:.1f} s ({load()})")
            for name, address in (("DICOMweb (WADO-RS)", server.dicomweb), ("DIMSE (C-GET)", server.dimse)):
                t0 = time.perf_counter()
                n = retrieve_only(address)
                fetch = time.perf_counter() - t0
                staging = Staging(root / f"staging-{len(name)}", staging_key(KEY))
                profile = cProfile.Profile()
                t0 = time.perf_counter()
                profile.enable()
                pull_to_staging(open_pacs(parse_address(address)), QUERY, staging, KEY, progress=False)
                profile.disable()
                staged = time.perf_counter() - t0
                t0 = time.perf_counter()
                pull_cohort(parse_address(address), QUERY, root / f"cohort-{len(name)}", pseudonymizer=KEY,
                            progress=False)
                whole = time.perf_counter() - t0
                part = shares(profile)
                top = max(part, key=part.get)
                split = ", ".join(f"{k} {v:.1f} s" for k, v in part.items())
                print(f"{name}: retrieval alone {n / fetch:.0f} instances/s; pull to staging {total / staged:.0f} "
                      f"instances/s ({staged:.1f} s under the profiler: {split}; bottleneck: {top}); whole pull "
                      f"with ingestion {whole:.1f} s, {total / whole:.0f} instances/s ({load()})")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

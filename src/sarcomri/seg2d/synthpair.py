"""A synthetic source/target pair for the transfer study: one segmentation cohort (DWI b0/b1000, ADC with
tumour masks) holding a chosen number of cervix-like and uterine-corpus-like tumours.

The synthetic segmentation task draws the site per patient (cervix in about 20%); here patients are drawn
in index order and kept until each site has its quota (a patient whose tumour is too small to reach a voxel
of every series is passed over). Every patient is exactly the one :func:`sarcomri.synth.cohort.synthesise_cohort`
would make with the same seed and protocol (same id, same images), so the pair is a subset of an ordinary
synthetic cohort.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import SimpleITK as sitk

from sarcomri import __version__
from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.errors import InputError
from sarcomri.synth.acquisition import Lattice, Protocol, grid_for
from sarcomri.synth.cohort import UNITS, make_patient, resolve_sequences
from sarcomri.synth.tasks import TASKS

SITES = ("cervix", "corpus")


def synthesise_pair(out: str | Path, counts: dict[str, int], seed: int = 0, protocol: Protocol | None = None,
                    sequences: list[str] | None = None, overwrite: bool = False, max_scan: int = 5000) -> Cohort:
    """Write a synthetic segmentation cohort at ``out`` with ``counts[site]`` patients of each site
    (``cervix``, ``corpus``) and return it loaded; ``patients.csv`` has the ``site`` column."""
    unknown = set(counts) - set(SITES)
    if unknown:
        raise InputError(None, f"synthetic sites are {', '.join(SITES)}; got {sorted(unknown)}")
    spec = TASKS["segmentation"]
    protocol = protocol or spec.protocol
    seqs = resolve_sequences(spec, sequences)
    lattice = Lattice.covering([grid_for(s, protocol) for s in seqs], protocol.fov_mm / protocol.size)
    meta = {"task": "segmentation",
            "provenance": {"generator": "sarcomri.seg2d.synthpair", "version": __version__, "seed": int(seed),
                           "site_counts": dict(counts), "sequences_requested": list(seqs),
                           "protocol": asdict(protocol)},
            "units": UNITS}
    left = dict(counts)
    chosen: list[int] = []
    with CohortWriter(out, labels=list(spec.labels), positive_label=None, overwrite=overwrite, meta=meta) as w:
        for i in range(max_scan):
            if not any(left.values()):
                break
            site = make_patient(spec, i, seed, seqs, protocol, lattice, images=False).clinical["site"]
            if left.get(site, 0) <= 0:
                continue
            p = make_patient(spec, i, seed, seqs, protocol, lattice)
            if not all(sitk.GetArrayViewFromImage(mask).any() for _, mask in p.series.values()):
                continue  # a tumour too small to reach a voxel of some series
            w.add_patient(p.patient_id, p.label, **p.clinical)
            for seq in seqs:
                if seq in p.series:
                    w.add_series(p.patient_id, seq, *p.series[seq])
            chosen.append(i)
            left[site] -= 1
        if any(left.values()):
            raise InputError(None, f"could not find {counts} patients by site in {max_scan} synthetic patients")
        w.meta["provenance"]["patient_indices"] = chosen
    return Cohort.load(out)

"""Orchestrate a synthetic cohort: patients, latent variables, images, masks, readers; write it atomically.

Determinism: the cohort's entropy is ``(seed, task code)``; patient ``i`` draws from child seed sequences
``SeedSequence(entropy, spawn_key=(i, stream))`` (one stream for its latent variables, its anatomy, its
texture, its clinical columns, each sequence's availability and each sequence's noise), so a patient's data
do not depend on the number of patients or on which other sequences were requested, and the same seed
gives byte-identical arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sarcomri import __version__
from sarcomri.cohort.manifest import READERS_CSV, Cohort, CohortWriter
from sarcomri.cohort.sequences import STS_SEQUENCES, group_name
from sarcomri.errors import InputError
from sarcomri.io import atomic
from sarcomri.synth import anatomy, appearance, latent, readers
from sarcomri.synth.acquisition import Grid, Lattice, Protocol, family_of, grid_for
from sarcomri.synth.tasks import (
    DWI_GROUP,
    SCANNERS,
    TASKS,
    UTERINE_SEQUENCES,
    Task,
    clinical,
    draw_availability,
    draw_centre,
    is_positive,
    placement,
    segmentation_patient,
    sts_patient,
)

STREAM_LATENT, STREAM_ANATOMY, STREAM_TEXTURE, STREAM_CLINICAL, STREAM_CENTRE = range(5)
STREAM_AVAILABILITY, STREAM_NOISE, STREAM_READERS = 100, 200, 300
ID_PREFIX = {"sarcoma": "SARC", "carcinosarcoma": "CSEC", "segmentation": "SEG", "sts": "STS"}
UNITS = {"ADC": "1e-6 mm2/s", "diffusion_b_values": "s/mm2", "other": "arbitrary scanner units (float32)"}


@dataclass
class PatientData:
    """One synthetic patient: manifest row, latent row and its series (SimpleITK image and mask)."""

    patient_id: str
    label: str
    clinical: dict[str, Any]
    latent: dict[str, Any]
    series: dict[str, tuple[sitk.Image, sitk.Image]] = field(default_factory=dict)


def _rng(entropy: Sequence[int], *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(entropy), spawn_key=tuple(key)))


#: Every sequence the generator can draw (the order fixes each sequence's random streams: append only).
VOCABULARY = (*UTERINE_SEQUENCES, "DWI", *STS_SEQUENCES)


def _vocab_index(name: str) -> int:
    return VOCABULARY.index(name)


def resolve_sequences(task: Task, sequences: Sequence[str] | None) -> tuple[str, ...]:
    """The requested sequences (default: the task's), checked against the synthetic vocabulary."""
    seqs = tuple(sequences) if sequences else task.default_sequences
    known = (*UTERINE_SEQUENCES, *STS_SEQUENCES)
    bad = [s for s in seqs if s not in known]
    if bad:
        raise InputError(None, f"no synthetic model for {', '.join(bad)}; choose from {', '.join(known)}")
    return tuple(dict.fromkeys(seqs))


def class_phase(entropy: Sequence[int]) -> float:
    """The cohort's phase of the class sequence (see :func:`sarcomri.synth.tasks.is_positive`)."""
    return float(_rng(entropy).random())


def make_patient(task: Task, index: int, seed: int, sequences: tuple[str, ...], protocol: Protocol,
                 lattice: Lattice | None = None, images: bool = True, id_prefix: str | None = None) -> PatientData:
    """Generate patient ``index`` of a cohort (pure: the same arguments give the same arrays). Its id is
    ``<id_prefix>-<index + 1>`` (the task's prefix by default); the id draws nothing, so the data do not depend
    on it."""
    ent = (int(seed), task.code)
    pid = f"{id_prefix or ID_PREFIX[task.name]}-{index + 1:04d}"
    centre = draw_centre(_rng(ent, index, STREAM_CENTRE))
    if task.name == "sts":
        lat, clin = sts_patient(index, _rng(ent, index, STREAM_LATENT))
        label, positive, comp_name, attrs = task.labels[0], False, clin["histology"], {}
    elif task.positive_label is None:
        lat, clin = segmentation_patient(_rng(ent, index, STREAM_LATENT))
        label, positive, comp_name, attrs = task.labels[0], False, "", {}
    else:
        positive = is_positive(index, task.prevalence, class_phase(ent))
        label = task.labels[0] if positive else task.labels[1]
        model = latent.model_for(task.name)
        comp, lat = latent.draw_patient(model, positive, _rng(ent, index, STREAM_LATENT))
        comp_name, attrs = comp.name, comp.attrs
        clin = clinical(task.name, positive, attrs, lat, _rng(ent, index, STREAM_CLINICAL))
    arng = _rng(ent, index, STREAM_ANATOMY)
    if task.name == "sts":
        anat = anatomy.draw_sts_anatomy(arng, clin["site"], lat["diameter_mm"] / 2.0, clin["depth"] == "superficial")
        where = f"{clin['site']}, {clin['depth']}"
        shape = anatomy.draw_sts_tumour(arng, lat["diameter_mm"] / 2.0, lat["margin"], anat["tumour_centre"])
    else:
        anat = anatomy.draw_anatomy(arng)
        where = placement(task.name, positive, lat, arng, clin.get("site"))
        shape, uterus = anatomy.draw_tumour(arng, lat["diameter_mm"] / 2.0, lat["margin"], where, anat["uterus"])
    have = draw_availability(task, centre, sequences,
                             lambda key: _rng(ent, index, STREAM_AVAILABILITY + _vocab_index(key)))
    row = {"patient_id": pid, "label": label, "component": comp_name, "placement": where, "center": centre,
           **{k: v for k, v in attrs.items() if k != "histology"}, **lat, "sequences": group_name(have)}
    data = PatientData(pid, label, {"center": centre, **clin}, row)
    if not images:
        return data
    lat_grid = lattice or Lattice.covering([grid_for(s, protocol) for s in sequences], protocol.fov_mm / protocol.size)
    texture_rng = _rng(ent, index, STREAM_TEXTURE)
    if task.name == "sts":
        phantom = anatomy.paint_sts(lat_grid, anat, shape, lat["necrosis"], texture_rng)
    else:
        phantom = anatomy.paint(lat_grid, anat, uterus, shape, lat["necrosis"], texture_rng)
    reference = appearance.MUSCLE if task.name == "sts" else appearance.MYOMETRIUM
    row["tumour_volume_cm3"] = round(phantom.tumour_mm3 / 1000.0, 3)
    if task.positive_label is None:
        data.clinical["volume_cm3"] = row["tumour_volume_cm3"]
    gain, noise, bias = SCANNERS[centre]
    gain *= float(_rng(ent, index, STREAM_NOISE).uniform(0.9, 1.1))
    dwi = None
    for seq in have:
        grid = grid_for(seq, protocol)
        if seq in DWI_GROUP:
            if dwi is None:
                dwi = appearance.diffusion(phantom, lat, grid, gain, noise * 0.8, bias,
                                           _rng(ent, index, STREAM_NOISE + _vocab_index("DWI")))
            array = dwi[seq]
        else:
            clean = appearance.clean_image(phantom, family_of(seq), lat, grid, reference)
            array = appearance.acquire(clean, grid, gain, noise, bias,
                                       _rng(ent, index, STREAM_NOISE + _vocab_index(seq)))
        data.series[seq] = (_image(array, grid), _image(appearance.tumour_mask(phantom, grid), grid))
    return data


def _image(array: np.ndarray, grid: Grid) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    ref = grid.reference()
    img.CopyInformation(ref)
    return img


def ideal_observer_meta(task: Task, sequences: tuple[str, ...]) -> dict[str, Any]:
    """cohort.json entries of the ideal observer (None for a task without classes)."""
    if task.positive_label is None:
        return {"ideal_observer_auc": None}
    full = latent.ideal_observer(task.name)
    by_seq = {s: round(latent.ideal_observer(task.name, readers.visible_latents(s, task.name)).auc, 4)
              for s in sequences}
    return {
        "ideal_observer_auc": round(full.auc, 4),
        "ideal_observer_auc_by_sequence": by_seq,
        "ideal_observer_auc_with_age": round(latent.ideal_auc_with_age(task.name), 4),
        "ideal_observer": (
            "AUC of the exact likelihood ratio of the class-conditional densities of the latent variables "
            f"(mixtures summed over hidden components), by Monte Carlo with {latent.MC_PER_CLASS} patients per "
            f"class (seed {latent.MC_SEED}); per sequence: the latent variables that sequence shows; "
            "see docs/synthetic.md"),
    }


def synthesise_cohort(out: str | Path, task: str = "sarcoma", n_patients: int = 60, seed: int = 0,
                      sequences: Sequence[str] | None = None, protocol: Protocol | None = None,
                      overwrite: bool = False, progress: bool = False, reader_groups=None,
                      id_prefix: str | None = None) -> Cohort:
    """Generate a synthetic cohort folder at ``out`` and return it loaded; ``id_prefix`` replaces the task's
    patient id prefix (``SARC``, ...), e.g. to keep a separate cohort's ids apart from a study's.

    Writes cohort.json (with ``ideal_observer_auc``), patients.csv, series.csv, images/, masks/ and, in the same
    atomic step, latent.csv (the ground truth), readers.csv and ai.csv (simulated readers; binary tasks only).
    """
    if task not in TASKS:
        raise InputError(None, f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if n_patients < 1:
        raise InputError(None, f"--patients must be at least 1, got {n_patients}")
    spec = TASKS[task]
    protocol = protocol or spec.protocol
    seqs = resolve_sequences(spec, sequences)
    lattice = Lattice.covering([grid_for(s, protocol) for s in seqs], protocol.fov_mm / protocol.size)
    meta = {
        "task": task,
        "provenance": {"generator": "sarcomri.synth", "version": __version__, "seed": int(seed),
                       "n_patients": int(n_patients), "sequences_requested": list(seqs),
                       "protocol": asdict(protocol)},
        "units": UNITS,
        **ideal_observer_meta(spec, seqs),
    }
    indices = range(n_patients)
    if progress:
        from rich.progress import track

        indices = track(indices, description=f"synthesising {n_patients} {task} patients")
    latents = []
    with CohortWriter(out, labels=list(spec.labels), positive_label=spec.positive_label, overwrite=overwrite,
                      meta=meta) as writer:
        for i in indices:
            p = make_patient(spec, i, seed, seqs, protocol, lattice, id_prefix=id_prefix)
            writer.add_patient(p.patient_id, p.label, **p.clinical)
            for seq in seqs:
                if seq in p.series:
                    writer.add_series(p.patient_id, seq, *p.series[seq])
            latents.append(p.latent)
        table = pd.DataFrame(latents)
        assert writer.tmp is not None
        if spec.positive_label is not None:
            table["ideal_llr"] = latent.log_likelihood_ratio(latent.model_for(task), {
                k: table[k].to_numpy(float) for k in latent.model_for(task).latents})
            reads, ai = readers.simulate(table, task, seed, groups=reader_groups)
            atomic.write_csv(writer.tmp / READERS_CSV, reads)
            atomic.write_csv(writer.tmp / "ai.csv", ai)
            writer.meta["readers"] = readers.describe(task, reader_groups)
        atomic.write_csv(writer.tmp / "latent.csv", table)
    return Cohort.load(out)

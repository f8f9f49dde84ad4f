"""The demo (``sarcomri demo``, ``make demo``): the demo study preset on a freshly synthesised cohort, then one
new patient, never seen in training, through ``sarcomri predict``.

1. ``<out>/study/``: ``sarcomri study run`` of ``presets/demo-study.yaml`` (synthetic cohort written as DICOM
   and ingested back de-identified; per-sequence CNNs over folds x repeats, ensembles, votes, combination
   search; synthetic readers with an AI-assisted second read; a 3D segmentation model; the report);
2. ``<out>/study/read/``: a reader study through the reader workstation (:func:`reader_study`): the study's
   synthetic readers read its test cases through the same store as the reading page (unaided, then AI-assisted
   after the washout, on a simulated clock); the reads exported as ``reads.csv``, each reader's token in
   ``tokens.tsv`` (readable by its owner only), so ``sarcomri read serve <out>/study`` shows the reading page;
3. ``<out>/new-patient/``: a new synthetic patient written as DICOM *without* its tumour masks, so the
   segmentation model has to find the tumour before the classifiers read it; ``prediction/`` holds the result.
   Its id (``NEW-SARC-0001``) comes from a range no study patient's id is in, so neither the id nor its
   pseudonym under the study's key can be a study patient's (:func:`check_new_patient` refuses one that is).

Every stage is skipped when its outputs exist, so a rerun after a crash continues where it stopped.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sarcomri.runs import StudyRun
from sarcomri.study_config import StudyConfig

Log = Callable[[str], None]
NEW_PATIENT_SEED_OFFSET = 1000  # the new patient's cohort seed: never one of the study's patients
#: Put before the task's prefix in the new patient's id (``NEW-SARC-0001``): a study's synthetic ids are
#: ``SARC-0001``..., so the new patient's id, and its pseudonym under the study's key, are never a study patient's.
NEW_PATIENT_ID_PREFIX = "NEW"


def preset_path() -> Path:
    """The demo study preset shipped with the package."""
    return Path(str(resources.files("sarcomri") / "presets" / "demo-study.yaml"))


def demo_config(patients: int | None = None, seed: int | None = None) -> StudyConfig:
    """The demo preset, with the cohort size and seed optionally changed."""
    raw: dict[str, Any] = yaml.safe_load(preset_path().read_text())
    if patients is not None:
        raw["synth"]["patients"] = patients
    if seed is not None:
        raw["synth"]["seed"] = seed
        raw["seed"] = seed
    return StudyConfig.model_validate(raw)


def new_patient(out: Path, cfg: StudyConfig, log: Log, study: StudyRun | None = None) -> tuple[Path, str]:
    """A new synthetic patient as a DICOM folder without masks; returns (folder, true label). With ``study``
    (the finished demo study), a patient that would share an id or pseudonym with it is refused."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.synth.cohort import ID_PREFIX, synthesise_cohort
    from sarcomri.synth.dicom import write_dicom

    s = cfg.synth
    synthetic = out / "synthetic"
    if not (synthetic / "cohort.json").is_file():
        synthesise_cohort(synthetic, task=s.task, n_patients=1, seed=s.seed + NEW_PATIENT_SEED_OFFSET,
                          sequences=s.sequences, protocol=s.protocol(),
                          id_prefix=f"{NEW_PATIENT_ID_PREFIX}-{ID_PREFIX[s.task]}")
    cohort = Cohort.load(synthetic)
    if study is not None:
        check_new_patient(cohort.patient_ids[0], study, out)
    dicom = out / "dicom"
    if not dicom.is_dir():
        write_dicom(cohort, dicom)
        for seg in dicom.glob("*/*_SEG_*"):
            shutil.rmtree(seg)
    folder = next(p for p in dicom.iterdir() if p.is_dir())
    label = str(cohort.patients["label"].iloc[0])
    log(f"new patient: {folder} (DICOM without masks)")
    return folder, label


def reader_study(study: StudyRun, log: Log) -> dict[str, Any] | None:
    """The study's synthetic readers (``<study>/readers/readers.csv``) read its test cases through the reader
    workstation's store (the sarcoma paper's design: a call and its certainty, unaided and then AI-assisted after
    the 14-day washout, on a simulated clock), in the study's default reading database; the reads are exported
    to ``<study>/read/reads.csv``. Returns the counts, or None for a study without simulated readers. A finished
    reader study is kept; one stopped midway continues where it stopped."""
    import pandas as pd

    from sarcomri.io.atomic import write_csv
    from sarcomri.read.design import PRESETS, Reader
    from sarcomri.read.export import reads_table
    from sarcomri.read.plan import DB_NAME, classification_of, create_plan, default_db, write_tokens
    from sarcomri.read.simulate import simulate_reads
    from sarcomri.read.store import ReadingStore

    if not study.readers_csv.is_file():
        return None
    out = study.path / "read" / "reads.csv"
    if not out.is_file():
        simulated = pd.read_csv(study.readers_csv, dtype={"patient_id": str})
        if (study.path / "read" / DB_NAME).is_file():
            store = ReadingStore(default_db(study.path))
        else:
            people = simulated.drop_duplicates("reader")
            store, issued = create_plan(study.path, PRESETS["sarcoma"],
                                        [Reader(name=r.reader, group=r.group) for r in people.itertuples()])
            write_tokens(study.path / "read" / "tokens.tsv", issued)
        simulate_reads(store, simulated)
        write_csv(out, reads_table(store, classification_of(study.path).cohort(check_files=False)),
                  overwrite=True)
    reads = pd.read_csv(out, dtype={"patient_id": str})
    summary = {"reads": len(reads), "readers": int(reads["reader"].nunique()),
               "cases": int(reads["patient_id"].nunique()), "csv": str(out)}
    log(f"reader study through the reader workstation: {summary['readers']} synthetic readers read "
        f"{summary['cases']} cases unaided, then AI-assisted after the washout: {summary['reads']} reads in {out}")
    log(f"the reading page: sarcomri read serve {study.path} (the readers' tokens: "
        f"{study.path / 'read' / 'tokens.tsv'})")
    return summary


def check_new_patient(patient_id: str, study: StudyRun, folder: Path | None = None) -> None:
    """Refuse a new patient whose id, or whose pseudonym under the study's round-trip key (the key the demo
    predicts with), is a study patient's: its page would carry a study patient's pseudonym."""
    from sarcomri.errors import SarcomriError
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.study_cohort import ROUNDTRIP_KEY, id_map

    ids = id_map(study.path)
    taken = set(study.cohort(check_files=False).patient_ids) | set(ids) | set(ids.values())
    if patient_id in taken or Pseudonymizer.from_key(ROUNDTRIP_KEY)(patient_id) in taken:
        where = f"; delete {folder} and rerun the demo" if folder is not None else ""
        raise SarcomriError(f"the new patient {patient_id} would share its id or pseudonym with a patient of the "
                            f"study {study.path}{where}")


def mask_against_truth(new_patient_dir: Path, predicted_mask: Path, sequence: str) -> dict[str, float]:
    """How well the segmentation model found the new patient's tumour: Dice, HD95 (mm) and both volumes (mL)
    of ``predicted_mask`` against the synthetic truth of ``sequence`` (which the demo alone knows; the
    prediction never sees it). The prediction is taken onto the truth's grid (nearest neighbour)."""
    import numpy as np
    import SimpleITK as sitk

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.errors import InputError
    from sarcomri.io.niftifile import read_image
    from sarcomri.stats.segmentation import segmentation_metrics

    cohort = Cohort.load(new_patient_dir / "synthetic")
    truth = cohort.read_mask(cohort.patient_ids[0], sequence)
    if truth is None:
        raise InputError(new_patient_dir, f"the synthetic patient has no {sequence} mask")
    pred = sitk.Resample(read_image(predicted_mask), truth, sitk.Transform(), sitk.sitkNearestNeighbor,
                         0, sitk.sitkUInt8)
    m = segmentation_metrics(sitk.GetArrayFromImage(pred) > 0, sitk.GetArrayFromImage(truth) > 0,
                             truth.GetSpacing()[::-1])
    ml = float(np.prod(truth.GetSpacing())) / 1000.0
    return {"dice": float(m["dice"]), "hd95_mm": float(m["hd95_mm"]),
            "predicted_ml": m["pred_voxels"] * ml, "true_ml": m["ref_voxels"] * ml}

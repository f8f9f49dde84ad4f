"""The study's first stage, its cohort (``sarcomri study run``, :mod:`sarcomri.study`): the configured folder
checked, a hospital's export ingested and de-identified, or a synthetic cohort made (and round-tripped through
DICOM); sampled when the study sets ``patients``; and the keys that tell the later stages the cohort changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.atomic import write_csv
from sarcomri.runs import StudyRun
from sarcomri.stages import Stage
from sarcomri.study_config import StudyConfig

Log = Callable[[str], None]
#: Pseudonym key of a synthetic cohort's DICOM round trip (synthetic patients; use your own secret on real data).
ROUNDTRIP_KEY = "sarcomri-demo-key"


def cohort_dir(cfg: StudyConfig, run: Path) -> Path:
    """The folder of the study's cohort (:attr:`sarcomri.runs.StudyRun.cohort_dir`)."""
    return StudyRun(run, cfg).cohort_dir


def make_cohort(cfg: StudyConfig, run: Path, log: Log, progress: bool = True) -> None:
    """Check the configured cohort, ingest the configured source, or synthesise (and round-trip through DICOM)
    the cohort; then, when the study sets ``patients``, write its stratified sample."""
    study = StudyRun(run, cfg)
    if cfg.cohort:
        Cohort.load(cfg.cohort)
    elif cfg.source is not None:
        ingest_source(cfg, run, log)
    else:
        synthesise(cfg, run, log, progress)
    if cfg.samples():
        from sarcomri.cohort.sample import sample_ids, write_sample

        full = Cohort.load(study.full_cohort_dir)
        ids = sample_ids(full.patients, cfg.patients, seed=cfg.seed)
        write_sample(full, ids, study.sample_dir, overwrite=True)
        log(f"sample: {len(ids)} of the cohort's {len(full.patients)} patients (stratified by label)")


def synthesise(cfg: StudyConfig, run: Path, log: Log, progress: bool = True) -> None:
    """The synthetic cohort of the study's ``synth`` section (and its DICOM round trip)."""
    from sarcomri.synth.cohort import synthesise_cohort

    s = cfg.synth
    synthetic = StudyRun(run, cfg).synthetic_dir
    if not (synthetic / "cohort.json").is_file():
        synthesise_cohort(synthetic, task=s.task, n_patients=s.patients, seed=s.seed, sequences=s.sequences,
                          protocol=s.protocol(), progress=progress)
    meta = Cohort.load(synthetic).meta
    auc = meta.get("ideal_observer_auc")
    log(f"synthetic cohort: {synthetic} ({s.patients} patients"
        + (f", ideal-observer AUC {auc:.3f})" if isinstance(auc, float) else ")"))
    if cfg.dicom_roundtrip:
        roundtrip(synthetic, run, log)


def ingest_source(cfg: StudyConfig, run: Path, log: Log) -> None:
    """Ingest the study's ``source`` (a hospital's DICOM or NIfTI export and its labels) into ``<run>/cohort``,
    de-identified with the key in ``$SARCOMRI_DEID_KEY``."""
    from sarcomri.io.deid import KEY_ENV, Pseudonymizer
    from sarcomri.io.ingest import ingest
    from sarcomri.io.labels import read_labels

    src = cfg.source
    pseudonym = Pseudonymizer.from_key(None)
    if not pseudonym.reproducible:
        log(f"warning: ${KEY_ENV} is not set: the pseudonyms are random and differ from any other ingestion")
    labels = read_labels(src.labels, positive=src.positive) if src.labels else None
    report = ingest(src.folder, StudyRun(run, cfg).ingested_dir, labels=labels, pseudonymizer=pseudonym,
                    sequence_map=src.sequence_map, compute_adc=src.compute_adc, sequence=src.sequence,
                    overwrite=True, log=log, warn=lambda text: log(f"warning: {text}"))
    log(f"ingested: {report.patients} patients, {report.volumes} volumes, {report.masks} masks")


def source_listing(folder: str | Path) -> str:
    """A key of a source folder's files (relative path, size and modification time of each): a changed export
    ingests again, without reading every file."""
    import hashlib

    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def roundtrip(synthetic: Path, run: Path, log: Log) -> None:
    """Write the synthetic cohort as DICOM and ingest it back de-identified; ``cohort/id_map.csv`` maps the
    synthetic ids to the pseudonyms (synthetic patients only: real mappings never go into a cohort)."""
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.io.ingest import ingest
    from sarcomri.io.labels import read_labels
    from sarcomri.synth.dicom import write_dicom

    study = StudyRun(run)
    cohort = Cohort.load(synthetic)
    dicom = study.dicom_dir
    if not (dicom / "labels.csv").is_file():
        exp = write_dicom(cohort, dicom)
        log(f"DICOM: {dicom} ({exp.series} series, {exp.files} files)")
    target = study.ingested_dir
    pseudonym = Pseudonymizer.from_key(ROUNDTRIP_KEY)
    if not (target / "cohort.json").is_file():
        report = ingest(dicom, target, labels=read_labels(dicom / "labels.csv", positive=cohort.positive_label),
                        pseudonymizer=pseudonym)
        log(f"ingested: {target} ({report.patients} patients, {report.volumes} volumes, {report.masks} masks)")
    ids = cohort.patients["patient_id"].astype(str)
    write_csv(study.id_map_path, pd.DataFrame({"synthetic_id": ids, "patient_id": [pseudonym(i) for i in ids]}),
              overwrite=True)


def id_map(run: Path) -> dict[str, str]:
    """Synthetic id -> study cohort id (identity without a DICOM round trip)."""
    path = StudyRun(run).id_map_path
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str)
    return dict(zip(table["synthetic_id"], table["patient_id"], strict=True))


def content_key(folder: str | Path | None, extra: tuple[str, ...] = ()) -> str | None:
    """The key of a cohort folder's content (:mod:`sarcomri.fingerprint`) and of its optional ``extra`` files
    (e.g. readers.csv); None without a folder. Only the tables are checked here: hashing reads every file, and
    the stage that then runs loads the cohort with its full checks."""
    from sarcomri.fingerprint import cohort_fingerprint, key, optional_file_digest

    if not folder:
        return None
    content = cohort_fingerprint(Cohort.load(folder, check_files=False)).key()
    return key(content, [optional_file_digest(Path(folder) / e) for e in extra])


def cohort_stage(cfg: StudyConfig, run: Path, log: Log, progress: bool = True) -> Stage:
    """The first stage: the study's cohort (checked, ingested or synthesised; sampled when ``patients`` is set).
    Its key is the cohort's source (folder, source section and its files' listing, or synth section)."""
    study = StudyRun(run, cfg)
    rel = study.relative
    if cfg.cohort:
        source: Any = cfg.cohort
        folders: list[Path] = []
    elif cfg.source is not None:
        source = {"source": cfg.source.model_dump(), "files": source_listing(cfg.source.folder)}
        folders = [study.ingested_dir]
    else:
        source = {"synth": cfg.synth.model_dump(), "dicom": cfg.dicom_roundtrip}
        folders = [study.synthetic_dir, study.dicom_dir, study.ingested_dir, study.id_map_path]
    if cfg.samples():
        source = {"cohort": source, "patients": cfg.patients, "seed": cfg.seed}
        folders.append(study.sample_dir)
    made = bool(folders)
    sampled = functools.partial(content_key, cfg.cohort) if cfg.cohort and cfg.samples() else None
    return Stage("cohort", source, lambda: make_cohort(cfg, run, log, progress), folders=[rel(p) for p in folders],
                 outputs=[rel(study.cohort_dir / "cohort.json")] if made else [],
                 inputs=sampled)  # a sample of a folder is drawn again when the folder's tables change

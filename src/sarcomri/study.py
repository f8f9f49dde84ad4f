"""A whole study from one YAML (``sarcomri study run``): cohort, classification, readers, segmentation,
transfer learning and the report, each a stage of :mod:`sarcomri.stages` (skipped when current).

Run folder::

    <run>/config.yaml  versions.json  seeds.json  stages.json
    <run>/synthetic/        the synthetic cohort (when the config synthesises one)
    <run>/dicom/            the same written as DICOM (``dicom_roundtrip``)
    <run>/cohort/           the DICOM ingested back, de-identified (``dicom_roundtrip``); ``id_map.csv``
    <run>/classification/   a classification run folder (``sarcomri classify run``)
    <run>/readers/          readers.csv, ai.csv (re-simulated with the model as the AI), tables/*.csv
    <run>/segmentation/     a 3D segmentation run folder (``sarcomri segment train``)
    <run>/transfer/         a transfer-learning study (``sarcomri segment transfer-study``)
    <run>/report/           report.html (its figures embedded) and model_card.md

The study's cohort is the configured folder, else the ingested DICOM round trip, else the synthetic cohort
(its stage: :mod:`sarcomri.study_cohort`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import dump_config
from sarcomri.errors import InputError, SarcomriError
from sarcomri.io.atomic import write_csv, write_json, write_text
from sarcomri.runrecord import prepare_run_folder
from sarcomri.runs import READERS, StudyRun, negative_label
from sarcomri.stages import Stage, run_stages
from sarcomri.study_cohort import Log, cohort_stage, content_key, id_map
from sarcomri.study_config import StudyConfig


def open_study(cfg: StudyConfig, run_dir: str | Path) -> Path:
    """Create the run folder (removing the temporaries a killed run left in it); write the resolved config,
    package versions and seeds."""
    from sarcomri.classification import versions

    run = prepare_run_folder(run_dir)
    study = StudyRun(run, cfg)
    write_text(study.config_path, dump_config(cfg), overwrite=True)
    write_json(study.versions_path, versions(), overwrite=True)
    write_json(study.seeds_path, seeds(cfg), overwrite=True)
    return run


def seeds(cfg: StudyConfig) -> dict[str, Any]:
    """Every seed the study uses, by stage."""
    out: dict[str, Any] = {"study": cfg.seed}
    if cfg.synth:
        out["synthetic_cohort"] = cfg.synth.seed
    if cfg.classification is not None:
        c = cfg.classification_config("cohort")
        out["classification"] = {"splits": c.splits.seed, "training": c.train.seed}
    if cfg.segmentation is not None:
        s = cfg.segmentation_config("cohort")
        out["segmentation"] = {"splits": s.seed, "training": s.train.seed}
    if cfg.transfer is not None:
        t = cfg.transfer_config()
        out["transfer"] = {"splits": t.split_seed, "training": t.train.seed,
                           "synthetic_pair": t.synth.seed if t.synth else None}
    return out


def classify(cfg: StudyConfig, run: Path, log: Log, progress: bool = True) -> None:
    """The classification grid, ensembles, votes, combination search and clinical model."""
    from sarcomri import classification as cls

    study = StudyRun(run, cfg)
    ccfg = study.classification_config()
    out = cls.open_run(ccfg, study.classification.path)
    cohort = cls.resolve_cohort(ccfg, out, progress=progress)
    cls.run_classification(ccfg, out, cohort, progress=progress, rerun_changed=True)
    tables = cls.ensemble_tables(out, ccfg.slices.test_aggregation)
    cls.combine_tables(out)
    if ccfg.clinical_columns:
        cls.clinical_tables(out, cohort, ccfg.clinical_columns)
    best = tables["per_sequence"].sort_values("auc", ascending=False).iloc[0]
    log(f"classification: best sequence {best['sequence']} AUC {best['auc']:.3f}")


def ai_probability(likelihood: pd.DataFrame) -> pd.Series:
    """The AI's per-patient probability for the assisted read: the mean ensemble likelihood over the
    sequences the patient has."""
    return likelihood.groupby(likelihood["patient_id"].astype(str))["likelihood"].mean()


def readers(cfg: StudyConfig, run: Path, log: Log) -> None:
    """Reads of the cohort's radiologists (re-simulated with the model as AI for a synthetic cohort) and the
    model-vs-readers tables."""
    from sarcomri.classification import reader_report_tables
    from sarcomri.runs import TABLES
    from sarcomri.synth.readers import simulate

    study = StudyRun(run, cfg)
    cohort = Cohort.load(study.cohort_dir)
    likelihood = pd.read_csv(study.classification.table_path("likelihood"), dtype={"patient_id": str})
    synthetic = study.synthetic_dir
    if cfg.synth and cfg.readers.simulate_with_model and not cfg.readers.reads:
        forward = id_map(run)
        back = {v: k for k, v in forward.items()}
        p = ai_probability(likelihood)
        p.index = [back.get(i, i) for i in p.index]
        meta = json.loads((synthetic / "cohort.json").read_text())
        latent = pd.read_csv(synthetic / "latent.csv", dtype={"patient_id": str})
        scored = latent[latent["patient_id"].isin(p.index)].reset_index(drop=True)
        log(f"readers: re-simulated on the {len(scored)} of {len(latent)} patients the model scored")
        reads, ai = simulate(scored, meta["task"], int(meta["provenance"]["seed"]), ai_probability=p)
        for frame in (reads, ai):
            frame["patient_id"] = frame["patient_id"].astype(str).map(lambda i: forward.get(i, i))
    elif reads_source(cfg, study) is not None:
        reads, ai = read_reads(reads_source(cfg, study), cohort), None
    else:
        raise SarcomriError(f"{cohort.root} has no readers.csv: remove the readers section or add the reads")
    write_csv(study.readers_csv, reads, overwrite=True)
    if ai is not None:
        write_csv(study.ai_csv, ai, overwrite=True)
    positive = study.positive_label(cohort)
    negative = negative_label(positive, cohort.meta)
    tables = reader_report_tables(study.classification.path, study.readers_csv, study.readers_dir / TABLES, positive,
                                  negative, cfg.readers.cut)  # the tables the report renders, at the study's cut
    if "accuracy" not in tables:
        tested = likelihood.loc[likelihood["patient_id"].isin(reads["patient_id"].astype(str))]
        raise SarcomriError(
            f"the reads cover {tested['patient_id'].nunique()} of the {likelihood['patient_id'].nunique()} patients "
            f"the model tested, {tested['label'].nunique()} of the 2 classes: the "
            "model-vs-readers tables need read patients of both classes among them; are these the study's reads?")
    log(f"readers: {reads['reader'].nunique()} readers, tables {', '.join(tables)}")


def reads_source(cfg: StudyConfig, study: StudyRun) -> Path | None:
    """The radiologists' reads the study uses: the configured file (``--readers``), else the cohort's own."""
    if cfg.readers.reads:
        return Path(cfg.readers.reads)
    return study.cohort_readers_csv if study.cohort_readers_csv.is_file() else None


def read_reads(path: Path, cohort: Cohort) -> pd.DataFrame:
    """A readers.csv checked against the cohort: its columns, and patients the cohort has (an error), except
    that a sampled cohort keeps only the reads of its own patients (the others may be the full cohort's)."""
    from sarcomri.io.tables import read_csv_table
    from sarcomri.report.sources import READER_COLUMNS

    reads = read_csv_table(path, READER_COLUMNS, dtype={"patient_id": str})
    known = set(cohort.patient_ids)
    sample = cohort.meta.get("sample")
    unknown = sorted(set(reads["patient_id"]) - known)
    if unknown and not sample:
        raise InputError(path, f"{len(unknown)} patient(s) not in the cohort, e.g. {unknown[0]}")
    return reads[reads["patient_id"].isin(known)].reset_index(drop=True)


def paper_tables(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The classification paper's tables (``paper.name``: carcinosarcoma or sarcoma) into ``<run>/paper/``, from
    the classification run's likelihoods and votes, the readers' reads and the cohort's clinical columns."""
    from sarcomri.analysis.paper_carcinosarcoma import write_carcinosarcoma_tables
    from sarcomri.analysis.paper_sarcoma import write_sarcoma_tables

    study = StudyRun(run, cfg)
    cohort = Cohort.load(study.cohort_dir, check_files=False)
    cls = study.classification
    likelihood = pd.read_csv(cls.table_path("likelihood"), dtype={"patient_id": str})
    reads = pd.read_csv(study.readers_csv, dtype={"patient_id": str}) if study.readers_csv.is_file() else None
    positive = study.positive_label(cohort)
    negative = negative_label(positive, cohort.meta)
    common = dict(likelihood=likelihood, reads=reads, patients=cohort.patients, out_dir=study.paper_dir,
                  positive=positive, negative=negative, cut=cfg.readers.cut)
    if cfg.paper.name == "carcinosarcoma":
        columns = [c for c in cfg.paper.characteristics if c in cohort.patients.columns]
        numeric = [c for c in columns if pd.api.types.is_numeric_dtype(cohort.patients[c])]
        names = write_carcinosarcoma_tables(**common, printed_positive=cfg.paper.printed_positive,
                                            continuous=numeric or None,
                                            categorical=[c for c in columns if c not in numeric] or None)
    else:
        def table(name: str) -> pd.DataFrame | None:
            path = cls.table_path(name)
            return pd.read_csv(path, dtype={"patient_id": str}) if path.is_file() else None

        names = write_sarcoma_tables(**common, summed=table("summed_score"), combinations=table("combinations"))
    log(f"paper: {len(names)} table(s) as published ({', '.join(names)})")


def export_nnunet(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The segmentation's cohort as nnU-Net v2 raw datasets on the segmentation run's own folds."""
    from sarcomri.io.nnunet import export_run_folds

    study = StudyRun(run, cfg)
    done = export_run_folds(study.segmentation.path, study.nnunet_dir, cfg.nnunet.dataset_id, cfg.nnunet.name,
                            overwrite=True)
    log(f"nnU-Net: {len(done)} dataset(s) in {study.nnunet_dir} with the segmentation's folds")


def segment(cfg: StudyConfig, run: Path, log: Log) -> None:
    """Cross-validated 3D segmentation on the study's cohort."""
    from sarcomri.seg3d.crossval import run_crossval

    study = StudyRun(run, cfg)
    per_case = run_crossval(study.segmentation_config(), study.segmentation.path, rerun_changed=True)
    log(f"segmentation: {len(per_case)} cases, median Dice {per_case['dice'].median():.3f}")


def transfer(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The transfer-learning study of 2D DWI segmentation (its own source and target cohorts)."""
    from sarcomri.seg2d.transfer import run_transfer_study

    tables = run_transfer_study(transfer_config(cfg, run), StudyRun(run, cfg).transfer.path)
    log(f"transfer: {len(tables['per_case'])} evaluated cases")


def transfer_config(cfg: StudyConfig, run: Path):
    """The transfer section's config: its own cohorts, else the study's cohort (when the study has one)."""
    return cfg.transfer_config(str(StudyRun(run, cfg).cohort_dir.resolve()) if cfg.has_cohort() else None)


def stages(cfg: StudyConfig, run: Path, log: Log, progress: bool = True) -> list[Stage]:
    """The study's stages in order, with the config section each depends on. Every stage that reads a cohort
    has the cohort's content in its key: a changed cohort reruns the stages that read it (and what follows)."""
    study = StudyRun(run, cfg)
    rel = study.relative
    cohort_key = functools.partial(content_key, study.cohort_dir)  # called once the cohort stage ran
    out = [cohort_stage(cfg, run, log, progress)] if cfg.has_cohort() else []
    cls = study.classification
    if cfg.classification is not None:
        out.append(Stage("classification", cfg.seeded("classification"), lambda: classify(cfg, run, log, progress),
                         folders=[rel(cls.path)], after=["cohort"], inputs=cohort_key,
                         outputs=[rel(cls.predictions_path), rel(cls.table_path("likelihood")),
                                  rel(cls.table_path("summed_score"))]))
        if cfg.synth is not None or cfg.readers.reads or (cfg.cohort and study.cohort_readers_csv.is_file()):
            out.append(Stage("readers", cfg.readers.model_dump(), lambda: readers(cfg, run, log),
                             folders=[rel(study.readers_dir)], after=["classification"],
                             outputs=[rel(study.readers_csv), rel(study.readers_table("accuracy"))],
                             inputs=lambda: [content_key(study.cohort_dir, (READERS,)),
                                             file_key(cfg.readers.reads)]))
        if cfg.paper is not None and cfg.paper.name in ("carcinosarcoma", "sarcoma"):
            after = ["classification"] + (["readers"] if out[-1].name == "readers" else [])
            out.append(Stage("paper", cfg.paper.model_dump(mode="json"), lambda: paper_tables(cfg, run, log),
                             folders=[rel(study.paper_dir)], after=after, inputs=cohort_key,
                             outputs=[rel(study.paper_dir / "index.json")]))
    if cfg.segmentation is not None:
        out.append(Stage("segmentation", cfg.seeded("segmentation"), lambda: segment(cfg, run, log),
                         folders=[rel(study.segmentation.path)], after=["cohort"],
                         outputs=[rel(study.segmentation.table_path("per_case"))], inputs=cohort_key))
        if cfg.nnunet is not None:
            out.append(Stage("nnunet", cfg.nnunet.model_dump(), lambda: export_nnunet(cfg, run, log),
                             folders=[rel(study.nnunet_dir)], after=["segmentation"],
                             outputs=[rel(study.nnunet_dir)]))
    if cfg.transfer is not None:
        out.append(Stage("transfer", cfg.seeded("transfer"), lambda: transfer(cfg, run, log),
                         folders=[rel(study.transfer.path)], outputs=[rel(study.transfer.table_path("paper"))],
                         after=["cohort"] if cfg.has_cohort() else [],
                         inputs=lambda: [content_key(transfer_config(cfg, run).cohort),
                                         content_key(transfer_config(cfg, run).target_cohort)]))
    if cfg.report:
        done = [st.name for st in out]
        out.append(Stage("report", {"report": True}, lambda: report(cfg, run, log), folders=[rel(study.report_dir)],
                         after=done, outputs=[rel(study.report_html)],
                         inputs=cohort_key if cfg.has_cohort() else None))
    return out


def file_key(path: str | None) -> str | None:
    """The SHA-256 of an optional file given in the config (None without one)."""
    from sarcomri.fingerprint import optional_file_digest

    return optional_file_digest(Path(path)) if path else None


def report(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The HTML report of everything the study produced."""
    from sarcomri.report.html import build_report

    path = build_report(run, cohort=StudyRun(run, cfg).cohort(check_files=False) if cfg.has_cohort() else None)
    log(f"report: {path}")


def run_study(cfg: StudyConfig, run_dir: str | Path, log: Log = print, progress: bool = True) -> dict[str, str]:
    """Run every stage of the study that is not current; returns each stage's status. ``progress``: the
    progress bars of the synthetic cohort and the classification grid."""
    missing = cfg.missing_cohort()
    if missing:
        raise InputError(None, f"{cfg.name}: {missing}")
    run = open_study(cfg, run_dir)
    status = run_stages(run, stages(cfg, run, log, progress), log)
    write_json(StudyRun(run, cfg).summary_path, summary(cfg, run), overwrite=True)
    return status


def summary(cfg: StudyConfig, run: Path) -> dict[str, Any]:
    """Where the study's results are, and the headline figures, for the report and the console."""
    study = StudyRun(run, cfg)
    out: dict[str, Any] = {"name": cfg.name, "cohort": str(study.cohort_dir)}
    synthetic = study.synthetic_dir / "cohort.json"
    if synthetic.is_file():
        out["ideal_observer_auc"] = json.loads(synthetic.read_text()).get("ideal_observer_auc")
    per_seq = study.classification.table_path("per_sequence")
    if per_seq.is_file():
        out["per_sequence_auc"] = pd.read_csv(per_seq).set_index("sequence")["auc"].round(4).to_dict()
    threshold = study.classification.table_path("summed_threshold")
    if threshold.is_file():
        out["summed_threshold"] = pd.read_csv(threshold).iloc[0].to_dict()
    return out

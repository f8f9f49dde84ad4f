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
    <run>/report/           report.html and its figures

The study's cohort is the configured folder, else the ingested DICOM round trip, else the synthetic cohort.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import StudyConfig, dump_config
from sarcomri.errors import SarcomriError
from sarcomri.io.atomic import write_csv, write_json, write_text
from sarcomri.runrecord import prepare_run_folder
from sarcomri.stages import Stage, run_stages

Log = Callable[[str], None]
#: Pseudonym key of a synthetic cohort's DICOM round trip (synthetic patients; use your own secret on real data).
ROUNDTRIP_KEY = "sarcomri-demo-key"


def open_study(cfg: StudyConfig, run_dir: str | Path) -> Path:
    """Create the run folder (removing the temporaries a killed run left in it); write the resolved config,
    package versions and seeds."""
    from sarcomri.classification import versions

    run = prepare_run_folder(run_dir)
    write_text(run / "config.yaml", dump_config(cfg), overwrite=True)
    write_json(run / "versions.json", versions(), overwrite=True)
    write_json(run / "seeds.json", seeds(cfg), overwrite=True)
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


def cohort_dir(cfg: StudyConfig, run: Path) -> Path:
    """The folder of the study's cohort."""
    if cfg.cohort:
        return Path(cfg.cohort)
    return run / ("cohort" if cfg.dicom_roundtrip else "synthetic")


def make_cohort(cfg: StudyConfig, run: Path, log: Log) -> None:
    """Synthesise (and round-trip through DICOM) the cohort, or check the configured one."""
    if cfg.cohort:
        Cohort.load(cfg.cohort)
        return
    from sarcomri.synth.cohort import synthesise_cohort

    s = cfg.synth
    synthetic = run / "synthetic"
    if not (synthetic / "cohort.json").is_file():
        synthesise_cohort(synthetic, task=s.task, n_patients=s.patients, seed=s.seed, sequences=s.sequences,
                          protocol=s.protocol(), progress=True)
    meta = Cohort.load(synthetic).meta
    log(f"synthetic cohort: {synthetic} ({s.patients} patients, ideal-observer AUC "
        f"{meta.get('ideal_observer_auc', float('nan')):.3f})")
    if cfg.dicom_roundtrip:
        roundtrip(synthetic, run, log)


def roundtrip(synthetic: Path, run: Path, log: Log) -> None:
    """Write the synthetic cohort as DICOM and ingest it back de-identified; ``cohort/id_map.csv`` maps the
    synthetic ids to the pseudonyms (synthetic patients only: real mappings never go into a cohort)."""
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.io.ingest import ingest
    from sarcomri.io.labels import read_labels
    from sarcomri.synth.dicom import write_dicom

    cohort = Cohort.load(synthetic)
    dicom = run / "dicom"
    if not (dicom / "labels.csv").is_file():
        exp = write_dicom(cohort, dicom)
        log(f"DICOM: {dicom} ({exp.series} series, {exp.files} files)")
    target = run / "cohort"
    pseudonym = Pseudonymizer.from_key(ROUNDTRIP_KEY)
    if not (target / "cohort.json").is_file():
        report = ingest(dicom, target, labels=read_labels(dicom / "labels.csv", positive=cohort.positive_label),
                        pseudonymizer=pseudonym)
        log(f"ingested: {target} ({report.patients} patients, {report.volumes} volumes, {report.masks} masks)")
    ids = cohort.patients["patient_id"].astype(str)
    write_csv(run / "id_map.csv", pd.DataFrame({"synthetic_id": ids, "patient_id": [pseudonym(i) for i in ids]}),
              overwrite=True)


def id_map(run: Path) -> dict[str, str]:
    """Synthetic id -> study cohort id (identity without a DICOM round trip)."""
    path = run / "id_map.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str)
    return dict(zip(table["synthetic_id"], table["patient_id"], strict=True))


def classify(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The classification grid, ensembles, votes, combination search and clinical model."""
    from sarcomri import classification as cls

    ccfg = cfg.classification_config(str(cohort_dir(cfg, run).resolve()))
    out = cls.open_run(ccfg, run / "classification")
    cohort = cls.resolve_cohort(ccfg, out)
    cls.run_classification(ccfg, out, cohort, rerun_changed=True)
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
    from sarcomri.analysis.readers import reader_tables
    from sarcomri.synth.readers import simulate

    cohort = Cohort.load(cohort_dir(cfg, run))
    likelihood = pd.read_csv(run / "classification" / "tables" / "likelihood.csv", dtype={"patient_id": str})
    folder = run / "readers"
    synthetic = run / "synthetic"
    if cfg.synth and cfg.readers.simulate_with_model:
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
    elif (cohort.root / "readers.csv").is_file():
        reads, ai = pd.read_csv(cohort.root / "readers.csv", dtype={"patient_id": str}), None
    else:
        raise SarcomriError(f"{cohort.root} has no readers.csv: remove the readers section or add the reads")
    write_csv(folder / "readers.csv", reads, overwrite=True)
    if ai is not None:
        write_csv(folder / "ai.csv", ai, overwrite=True)
    positive = cfg.classification_config("cohort").positive_label or cohort.positive_label
    negative = next(label for label in cohort.meta["labels"] if label != positive)
    tables = reader_tables(likelihood, reads, positive, negative, cfg.readers.cut)
    for name, table in tables.items():
        write_csv(folder / "tables" / f"{name}.csv", table, overwrite=True)
    log(f"readers: {reads['reader'].nunique()} readers, tables {', '.join(tables)}")


def segment(cfg: StudyConfig, run: Path, log: Log) -> None:
    """Cross-validated 3D segmentation on the study's cohort."""
    from sarcomri.seg3d.crossval import run_crossval

    scfg = cfg.segmentation_config(str(cohort_dir(cfg, run).resolve()))
    per_case = run_crossval(scfg, run / "segmentation", rerun_changed=True)
    log(f"segmentation: {len(per_case)} cases, median Dice {per_case['dice'].median():.3f}")


def transfer(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The transfer-learning study of 2D DWI segmentation (its own source and target cohorts)."""
    from sarcomri.seg2d.transfer import run_transfer_study

    tables = run_transfer_study(cfg.transfer_config(), run / "transfer")
    log(f"transfer: {len(tables['per_case'])} evaluated cases")


def content_key(folder: str | Path | None, extra: tuple[str, ...] = ()) -> str | None:
    """The key of a cohort folder's content (:mod:`sarcomri.fingerprint`) and of its optional ``extra`` files
    (e.g. readers.csv); None without a folder."""
    from sarcomri.fingerprint import cohort_fingerprint, key, optional_file_digest

    if not folder:
        return None
    return key(cohort_fingerprint(Cohort.load(folder)).key(), [optional_file_digest(Path(folder) / e) for e in extra])


def stages(cfg: StudyConfig, run: Path, log: Log) -> list[Stage]:
    """The study's stages in order, with the config section each depends on. Every stage that reads a cohort
    has the cohort's content in its key: a changed cohort reruns the stages that read it (and what follows)."""
    source = cfg.cohort if cfg.cohort else {"synth": cfg.synth.model_dump(), "dicom": cfg.dicom_roundtrip}
    cohort_key = functools.partial(content_key, cohort_dir(cfg, run))  # called once the cohort stage ran
    cohort_out = "cohort/cohort.json" if cfg.cohort is None and cfg.dicom_roundtrip else (
        "synthetic/cohort.json" if cfg.cohort is None else "")
    out = [Stage("cohort", source, lambda: make_cohort(cfg, run, log),
                 folders=[] if cfg.cohort else ["synthetic", "dicom", "cohort", "id_map.csv"],
                 outputs=[cohort_out] if cohort_out else [])]
    if cfg.classification is not None:
        out.append(Stage("classification", cfg.classification, lambda: classify(cfg, run, log),
                         folders=["classification"], after=["cohort"], inputs=cohort_key,
                         outputs=["classification/predictions.parquet", "classification/tables/likelihood.csv",
                                  "classification/tables/summed_score.csv"]))
        has_reads = cfg.synth is not None or (cfg.cohort and (Path(cfg.cohort) / "readers.csv").is_file())
        if has_reads:
            out.append(Stage("readers", cfg.readers.model_dump(), lambda: readers(cfg, run, log), folders=["readers"],
                             after=["classification"], outputs=["readers/readers.csv", "readers/tables/accuracy.csv"],
                             inputs=functools.partial(content_key, cohort_dir(cfg, run), ("readers.csv",))))
    if cfg.segmentation is not None:
        out.append(Stage("segmentation", cfg.segmentation, lambda: segment(cfg, run, log), folders=["segmentation"],
                         after=["cohort"], outputs=["segmentation/tables/per_case.csv"], inputs=cohort_key))
    if cfg.transfer is not None:
        tcfg = cfg.transfer_config()
        out.append(Stage("transfer", cfg.transfer, lambda: transfer(cfg, run, log), folders=["transfer"],
                         outputs=["transfer/tables/paper.csv"],
                         inputs=lambda: [content_key(tcfg.cohort), content_key(tcfg.target_cohort)]))
    if cfg.report:
        done = [st.name for st in out]
        out.append(Stage("report", {"report": True}, lambda: report(cfg, run, log), folders=["report"],
                         after=done, outputs=["report/report.html"], inputs=cohort_key))
    return out


def report(cfg: StudyConfig, run: Path, log: Log) -> None:
    """The HTML report of everything the study produced."""
    from sarcomri.report.html import build_report

    path = build_report(run, cohort=Cohort.load(cohort_dir(cfg, run), check_files=False))
    log(f"report: {path}")


def run_study(cfg: StudyConfig, run_dir: str | Path, log: Log = print) -> dict[str, str]:
    """Run every stage of the study that is not current; returns each stage's status."""
    run = open_study(cfg, run_dir)
    status = run_stages(run, stages(cfg, run, log), log)
    write_json(run / "study.json", summary(cfg, run), overwrite=True)
    return status


def summary(cfg: StudyConfig, run: Path) -> dict[str, Any]:
    """Where the study's results are, and the headline figures, for the report and the console."""
    out: dict[str, Any] = {"name": cfg.name, "cohort": str(cohort_dir(cfg, run))}
    synthetic = run / "synthetic" / "cohort.json"
    if synthetic.is_file():
        out["ideal_observer_auc"] = json.loads(synthetic.read_text()).get("ideal_observer_auc")
    per_seq = run / "classification" / "tables" / "per_sequence.csv"
    if per_seq.is_file():
        out["per_sequence_auc"] = pd.read_csv(per_seq).set_index("sequence")["auc"].round(4).to_dict()
    threshold = run / "classification" / "tables" / "summed_threshold.csv"
    if threshold.is_file():
        out["summed_threshold"] = pd.read_csv(threshold).iloc[0].to_dict()
    return out

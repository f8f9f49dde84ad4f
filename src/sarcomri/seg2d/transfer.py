"""The transfer-learning study of 2D tumour segmentation from a source to a target cancer.

Design: a patient-level hold-out in each domain (``test_ratio``); nested subsets of the target training
patients at each fraction (each smaller set inside the larger, at least one patient); then

* ``source``: trained on every source training patient (the network every transfer model starts from);
* ``target``: trained from scratch on the target subset;
* ``transfer-Lk``: the source model fine-tuned on the target subset, frozen up to level Lk;
* ``aggregated``: trained from scratch on the source training patients plus the target subset;

each evaluated on the source, the target and the combined test patients. A model's seed depends on its
kind and level, not on the fraction; fractions that give the same patients (2% and 5% of a small cohort)
share one model folder, which is exactly what training them twice would give.

Run folder (every stage skipped when its outputs exist, so an interrupted run resumes)::

    <run>/config.yaml, versions.json, cohort/ (synthetic, when no cohort is given)
    <run>/splits.csv                          domain, patient_id, repeat, fold, role (train/test)
    <run>/subsets.csv                         patient_id, fraction (nested target training subsets)
    <run>/models/<model>/n<k>/                model.pt, history.csv (checkpoint.pt while training); k target
                                              training patients (models/source/ for the source model)
    <run>/predictions/<model>/n<k>/<domain>/<patient>.nii.gz, metrics.csv
    <run>/tables/models.csv, per_case.csv, summary.csv, paper.csv, anova.csv, tukey.csv, reliability.csv
    <run>/figures/learning_curve.png
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from sarcomri.classification import open_run, versions
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import LeakageError, check_no_leakage, holdout, nested_subsets
from sarcomri.errors import InputError
from sarcomri.io.atomic import write_csv
from sarcomri.seg2d.config import LEVELS, MODEL_KINDS, TransferStudyConfig
from sarcomri.seg2d.data import CaseSlices, eligible_patients, load_case, on_grid, slice_data
from sarcomri.seg2d.infer import predict_case, write_mask
from sarcomri.seg2d.model import build_network, resolve_device
from sarcomri.seg2d.tables import anova_by_fraction, learning_curve_figure, paper_table, summarise
from sarcomri.seg2d.train import (
    CHECKPOINT,
    WEIGHTS,
    fit_segmenter,
    is_model_folder,
    load_network,
    model_spec,
    save_model,
)
from sarcomri.seg3d.evaluate import case_metrics

Progress = Callable[[dict[str, Any]], None]
_versions = functools.cache(versions)
DOMAINS = ("source", "target")
METRIC_COLUMNS = ["dice", "f2", "sensitivity", "precision", "hd95_mm", "assd_mm", "pred_volume_mm3",
                  "ref_volume_mm3", "empty_pred", "empty_ref"]


@dataclass
class Domain:
    """The patients of one domain: their cohort and the eligible patient ids."""

    name: str
    cohort: Cohort
    patients: list[str]


@dataclass
class Job:
    """One model to train: its name, kind and level, its training patients as (domain, patient) keys, the
    model it starts from, its folder (relative to the run) and seed; ``fractions`` it stands for."""

    model: str
    kind: str
    level: str
    n_target: int
    train: list[tuple[str, str]]
    folder: str
    seed: int
    init: str | None = None
    fractions: list[float] = field(default_factory=list)


def _emit(progress: Progress | None, **event: Any) -> None:
    if progress is not None:
        progress(event)


# ------------------------------------------------------------------------------------------------ inputs
def resolve_domains(cfg: TransferStudyConfig, run_dir: Path, progress: Progress | None = None) -> dict[str, Domain]:
    """The source and target patients: from two cohorts, from one cohort split by ``domain.column``, or from
    a synthetic pair generated once into ``<run>/cohort``."""
    if cfg.cohort and cfg.target_cohort:
        cohorts = {"source": Cohort.load(cfg.cohort), "target": Cohort.load(cfg.target_cohort)}
        return {d: Domain(d, c, eligible_patients(c, cfg.data)) for d, c in cohorts.items()}
    if cfg.cohort:
        cohort = Cohort.load(cfg.cohort)
    else:
        from sarcomri.seg2d.synthpair import synthesise_pair
        from sarcomri.synth.acquisition import Protocol

        s, dom = cfg.synth, cfg.domain
        if s is None:
            raise InputError(None, "give 'cohort' (and optionally 'target_cohort') or 'synth'")
        if dom.column != "site" or {dom.source, dom.target} != {"cervix", "corpus"}:
            raise InputError(None, "a synthetic pair splits by domain.column 'site' into 'cervix' and 'corpus'")
        target = run_dir / "cohort"
        if not (target / "cohort.json").is_file():
            _emit(progress, event="stage", stage="synthesising the source/target cohort")
            synthesise_pair(target, {dom.source: s.source_patients, dom.target: s.target_patients}, seed=s.seed,
                            protocol=Protocol(fov_mm=s.fov_mm, size=s.size, slices=s.slices),
                            sequences=sorted(set(cfg.data.sequences) | {cfg.radiomics.sequence}))
        cohort = Cohort.load(target)
    col = cfg.domain.column
    if col not in cohort.patients.columns:
        raise InputError(cohort.root, f"patients.csv has no column {col!r} to split source from target")
    eligible = set(eligible_patients(cohort, cfg.data))
    values = cohort.patients.set_index("patient_id")[col].astype(str)
    out = {}
    for d in DOMAINS:
        value = getattr(cfg.domain, d)
        ids = [p for p in cohort.patient_ids if p in eligible and values[p] == value]
        out[d] = Domain(d, cohort, ids)
    return out


def study_splits(cfg: TransferStudyConfig, domains: dict[str, Domain], run_dir: Path) -> pd.DataFrame:
    """A patient-level hold-out per domain (``domain, patient_id, repeat, fold, role``); read back when
    already written. Leakage is checked per domain, and a patient of one cohort never sits in both domains."""
    path = run_dir / "splits.csv"
    if path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
    else:
        parts = []
        for d, dom in domains.items():
            need = max(2, int(np.ceil(1 / cfg.test_ratio)))
            if len(dom.patients) < need:
                raise InputError(dom.cohort.root, f"the {d} domain has {len(dom.patients)} eligible patient(s) "
                                                  f"(sequences {cfg.data.sequences} with a mask): too few")
            pats = dom.cohort.patients[dom.cohort.patients["patient_id"].isin(dom.patients)]
            split = holdout(pats, test_ratio=cfg.test_ratio, seed=cfg.split_seed, val_ratio=0.0,
                            stratify_by=cfg.stratify_by or ["label"])
            parts.append(split.assign(domain=d))
        table = pd.concat(parts, ignore_index=True)[["domain", "patient_id", "repeat", "fold", "role"]]
        write_csv(path, table)
    for _, sub in table.groupby("domain"):
        check_no_leakage(sub.drop(columns="domain"), kfold_complete=False)
    if domains["source"].cohort is domains["target"].cohort:
        both = set(table.loc[table["domain"] == "source", "patient_id"]) & set(
            table.loc[table["domain"] == "target", "patient_id"])
        if both:
            raise LeakageError(f"patients {sorted(both)[:5]} are in both the source and the target domain")
    return table


def target_subsets(cfg: TransferStudyConfig, domains: dict[str, Domain], splits: pd.DataFrame,
                   run_dir: Path) -> pd.DataFrame:
    """Nested subsets of the target training patients (``patient_id, fraction``); read back when written."""
    path = run_dir / "subsets.csv"
    if path.is_file():
        return pd.read_csv(path, dtype={"patient_id": str})
    train = splits[(splits["domain"] == "target") & (splits["role"] == "train")]["patient_id"]
    pats = domains["target"].cohort.patients
    table = nested_subsets(pats[pats["patient_id"].isin(set(train))], cfg.fractions, seed=cfg.split_seed,
                           stratify_by=cfg.stratify_by or ["label"])
    write_csv(path, table)
    return table


def model_seed(seed: int, kind: str, level: str) -> int:
    """The seed of a model: a function of the study seed, its kind and its level (not of the fraction)."""
    return int(np.random.SeedSequence([seed, MODEL_KINDS.index(kind), LEVELS.index(level) if level else 9])
               .generate_state(1)[0] % 2**31)


def plan_jobs(cfg: TransferStudyConfig, splits: pd.DataFrame, subsets: pd.DataFrame) -> list[Job]:
    """Every model of the study in training order (the source model first), sharing folders between
    fractions with the same target patients."""
    src = sorted(splits[(splits["domain"] == "source") & (splits["role"] == "train")]["patient_id"])
    src_keys = [("source", p) for p in src]
    jobs = [Job("source", "source", "", 0, src_keys, "models/source", model_seed(cfg.train.seed, "source", ""),
                fractions=[0.0])] if {"source", "transfer"} & set(cfg.models) else []
    sets: dict[int, list[tuple[str, str]]] = {}
    frac_of: dict[int, list[float]] = {}
    for f in cfg.fractions:
        ids = sorted(subsets.loc[np.isclose(subsets["fraction"], f), "patient_id"])
        sets[len(ids)] = [("target", p) for p in ids]
        frac_of.setdefault(len(ids), []).append(f)
    for kind in MODEL_KINDS[1:]:
        if kind not in cfg.models:
            continue
        for level in (cfg.levels if kind == "transfer" else [""]):
            name = f"transfer-{level}" if kind == "transfer" else kind
            for n, keys in sets.items():
                train = src_keys + keys if kind == "aggregated" else keys
                jobs.append(Job(name, kind, level, n, train, f"models/{name}/n{n:03d}",
                                model_seed(cfg.train.seed, kind, level), "source" if kind == "transfer" else None,
                                frac_of[n]))
    return jobs


# ------------------------------------------------------------------------------------------------ stages
class CaseStore:
    """Prepared cases, read once per run: ``(domain, patient) -> CaseSlices``."""

    def __init__(self, cfg: TransferStudyConfig, domains: dict[str, Domain]) -> None:
        self.cfg, self.domains, self._cache = cfg, domains, {}

    def __getitem__(self, key: tuple[str, str]) -> CaseSlices:
        if key not in self._cache:
            d, pid = key
            self._cache[key] = load_case(self.domains[d].cohort, pid, self.cfg.data, case_id=f"{d}/{pid}")
        return self._cache[key]


def train_job(cfg: TransferStudyConfig, job: Job, cases: CaseStore, run_dir: Path,
              progress: Progress | None = None) -> torch.nn.Module:
    """Train one model (resuming from its checkpoint), save its folder and return the network."""
    folder = run_dir / job.folder
    data = slice_data([cases[k] for k in job.train], cfg.data.background_ratio, seed=cfg.train.seed)
    torch.manual_seed(job.seed)
    net = build_network(cfg.network, data.channels)
    settings = cfg.train.model_copy(update={"seed": job.seed})
    if job.kind == "transfer":
        source = torch.load(run_dir / "models" / "source" / WEIGHTS, map_location="cpu", weights_only=False)
        net.load_state_dict(source["model"])
        settings = settings.model_copy(update={"epochs": cfg.finetune.epochs, "lr": cfg.finetune.lr})
    n_aug = 6 if cfg.data.augmentation == "paper" else 1
    steps = settings.epochs * max(1, (len(data) * n_aug) // settings.batch_size)
    _emit(progress, event="model_start", model=job.model, n_target=job.n_target, steps=steps, slices=len(data),
          fractions=job.fractions)
    res = fit_segmenter(net, data, settings, cfg.network.arch, job.level or "L0", cfg.data.augmentation,
                        checkpoint_dir=folder,
                        progress=(lambda e: _emit(progress, event="step", **e)) if progress else None)
    spec = model_spec(cfg.network, cfg.data, kind=job.kind, level=job.level, init=job.init)
    save_model(folder, res.network, spec, res.history,
               meta={"model": job.model, "seed": job.seed, "train": [f"{d}/{p}" for d, p in job.train],
                     "n_target_train": job.n_target, "fractions": job.fractions, "versions": _versions()})
    (folder / CHECKPOINT).unlink(missing_ok=True)
    return res.network


def predict_job(cfg: TransferStudyConfig, job: Job, cases: CaseStore, test: list[tuple[str, str]],
                run_dir: Path, progress: Progress | None = None,
                network: torch.nn.Module | None = None) -> pd.DataFrame:
    """Masks of every test patient and their metrics (``metrics.csv``; read back when already written).
    ``network``: the model just trained (otherwise it is read from its folder)."""
    clash = set(job.train) & set(test)
    if clash:
        raise LeakageError(f"{job.model} n{job.n_target} was trained on test patient(s) {sorted(clash)[:5]}")
    pred_dir = run_dir / job.folder.replace("models/", "predictions/", 1)
    table_path = pred_dir / "metrics.csv"
    if table_path.is_file():
        return pd.read_csv(table_path, dtype={"patient_id": str})
    net = network
    if net is None:
        net, _, meta = load_network(run_dir / job.folder)
        if set(meta.get("train", [])) & {f"{d}/{p}" for d, p in test}:
            raise LeakageError(f"the saved model {job.folder} lists a test patient among its training patients")
    device = resolve_device(cfg.train.device)
    rows = []
    for d, pid in test:
        case = cases[(d, pid)]
        out = pred_dir / d / f"{pid}.nii.gz"
        if out.is_file():
            mask = sitk.ReadImage(str(out))
        else:
            mask, _ = predict_case(net, case, cfg.infer, device)
            write_mask(mask, out)
        metrics = case_metrics(mask, case.mask, f"{job.model} {pid}")
        rows.append({"test_set": d, "patient_id": pid, **{k: metrics[k] for k in METRIC_COLUMNS}})
    _emit(progress, event="predicted", model=job.model, n_target=job.n_target, cases=len(rows))
    table = pd.DataFrame(rows)
    write_csv(table_path, table)
    return table


def reliability_stage(cfg: TransferStudyConfig, jobs: list[Job], cases: CaseStore, test: list[tuple[str, str]],
                      domains: dict[str, Domain], run_dir: Path) -> pd.DataFrame:
    """ICC(2,1) per first-order feature of ``radiomics.sequence`` between manual and automatic masks, per
    model at the chosen fractions and per test set (source, target, combined)."""
    from sarcomri.radiomics.reliability import feature_icc, paired_features

    r = cfg.radiomics
    fractions = r.fractions or [max(cfg.fractions)]
    images: dict[tuple[str, str], np.ndarray] = {}
    for key in test:
        d, pid = key
        img = on_grid(domains[d].cohort.read_image(pid, r.sequence), cases[key].reference)
        images[key] = sitk.GetArrayFromImage(img)
    out = []
    for job in jobs:
        fr = [0.0] if job.kind == "source" else [f for f in job.fractions if any(np.isclose(f, fractions))]
        if not fr:
            continue
        pred_dir = run_dir / job.folder.replace("models/", "predictions/", 1)
        per_case = []
        for key in test:
            d, pid = key
            auto = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_dir / d / f"{pid}.nii.gz"))) > 0
            manual = sitk.GetArrayFromImage(cases[key].mask) > 0
            spacing = cases[key].reference.GetSpacing()[::-1]
            per_case.append((d, f"{d}/{pid}", images[key], manual, auto, spacing))
        for ts in ("source", "target", "combined"):
            chosen = [c[1:] for c in per_case if ts == "combined" or c[0] == ts]
            long = paired_features(chosen, scale=r.scale, bin_width=r.bin_width)
            table = feature_icc(long)
            for f in fr:
                out.append(table.assign(model=job.model, level=job.level, fraction=f, n_target_train=job.n_target,
                                        test_set=ts, sequence=r.sequence))
    if not out:
        return pd.DataFrame()
    table = pd.concat(out, ignore_index=True)
    first = ["model", "level", "fraction", "n_target_train", "test_set", "sequence"]
    return table[first + [c for c in table.columns if c not in first]]


def per_case_table(jobs: list[Job], metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (model, fraction, test patient), in the column order of :mod:`sarcomri.seg2d.tables`."""
    parts = []
    for job in jobs:
        for f in job.fractions:
            parts.append(metrics[job.folder].assign(model=job.model, kind=job.kind, level=job.level, fraction=f,
                                                    n_target_train=job.n_target,
                                                    n_source_train=sum(d == "source" for d, _ in job.train)))
    table = pd.concat(parts, ignore_index=True)
    first = ["model", "kind", "level", "fraction", "n_target_train", "n_source_train", "test_set", "patient_id"]
    return table[first + [c for c in table.columns if c not in first]]


# ------------------------------------------------------------------------------------------------ runner
def run_transfer_study(cfg: TransferStudyConfig, run_dir: str | Path,
                       progress: Progress | None = None) -> dict[str, pd.DataFrame]:
    """Run (or resume) the whole study; returns its tables by name: ``splits``, ``subsets``, ``models``,
    ``per_case``, ``summary``, ``paper``, ``anova``, ``tukey`` and ``reliability`` (empty when disabled).

    ``progress`` receives dicts with ``event`` in ``stage``, ``model_start``, ``step``, ``model_skipped``,
    ``predicted``."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    run_dir = open_run(cfg, run_dir)
    domains = resolve_domains(cfg, run_dir, progress)
    splits = study_splits(cfg, domains, run_dir)
    subsets = target_subsets(cfg, domains, splits, run_dir)
    jobs = plan_jobs(cfg, splits, subsets)
    cases = CaseStore(cfg, domains)
    test = [(d, p) for d, p in splits.loc[splits["role"] == "test", ["domain", "patient_id"]].itertuples(index=False)]
    metrics: dict[str, pd.DataFrame] = {}
    _emit(progress, event="stage", stage=f"{len(jobs)} models, {len(test)} test patients", models=len(jobs))
    for job in jobs:
        net = None
        if is_model_folder(run_dir / job.folder):
            _emit(progress, event="model_skipped", model=job.model, n_target=job.n_target)
        else:
            net = train_job(cfg, job, cases, run_dir, progress)
        metrics[job.folder] = predict_job(cfg, job, cases, test, run_dir, progress, network=net)
    shown = [j for j in jobs if j.kind in cfg.models]
    models = pd.DataFrame([{"model": j.model, "kind": j.kind, "level": j.level, "n_target_train": j.n_target,
                            "n_source_train": sum(d == "source" for d, _ in j.train),
                            "fractions": " ".join(f"{f:g}" for f in j.fractions), "folder": j.folder, "seed": j.seed}
                           for j in jobs])
    tables = {"splits": splits, "subsets": subsets, "models": models}
    labels = cfg.model_labels()
    out = run_dir / "tables"
    tables["per_case"] = _stage(out / "per_case.csv", lambda: per_case_table(shown, metrics))
    tables["summary"] = _stage(out / "summary.csv", lambda: summarise(tables["per_case"], "dice", labels))
    tables["paper"] = _stage(out / "paper.csv", lambda: paper_table(tables["summary"]))
    if not (out / "anova.csv").is_file() or not (out / "tukey.csv").is_file():
        anova, tukey = anova_by_fraction(tables["per_case"], cfg.anova_metric)
        write_csv(out / "tukey.csv", tukey)
        write_csv(out / "anova.csv", anova)
    tables["anova"], tables["tukey"] = pd.read_csv(out / "anova.csv"), pd.read_csv(out / "tukey.csv")
    write_csv(out / "models.csv", models)
    figure = run_dir / "figures" / "learning_curve.png"
    if not figure.is_file():
        learning_curve_figure(tables["summary"], figure, labels)
    tables["reliability"] = pd.DataFrame()
    if cfg.radiomics.enabled:
        _emit(progress, event="stage", stage="radiomics reliability")
        tables["reliability"] = _stage(out / "reliability.csv",
                                       lambda: reliability_stage(cfg, shown, cases, test, domains, run_dir))
    return tables


def _stage(path: Path, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Read a table back when it exists; otherwise compute and write it atomically."""
    if path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
        return table.assign(level=table["level"].fillna("")) if "level" in table.columns else table
    table = make()
    write_csv(path, table)
    return table

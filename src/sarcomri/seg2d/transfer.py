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
    <run>/inputs.json                         the key of everything below: config, domains' patients and cohort
                                              content (a change stops the run, or with rerun_changed redoes it)
    <run>/splits.csv                          domain, patient_id, repeat, fold, role (train/test)
    <run>/subsets.csv                         patient_id, fraction (nested target training subsets)
    <run>/models/<model>/n<k>/                model.json, weights.pt, history.csv (checkpoint.pt while
                                              training; model.pt before the one model format); k target
                                              training patients (models/source/ for the source model)
    <run>/predictions/<model>/n<k>/<domain>/<patient>.nii.gz, metrics.csv
    <run>/models/<model>/n<k>/cv/fold<i>/     with ``cv``: the fold models (and val_metrics.csv); cv.csv and
                                              cv_folds.csv beside the chosen model (:func:`train_job_cv`)
    <run>/tables/models.csv, per_case.csv, summary.csv, paper.csv, anova.csv, tukey.csv, reliability.csv
                                              (cv_folds.csv, cv_stability.csv with ``cv``)
    <run>/figures/learning_curve.png
    <run>/paper/                              the paper-format tables (:func:`write_paper_tables`)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from sarcomri.classification import open_run, versions
from sarcomri.cohort.splits import LeakageError
from sarcomri.io.atomic import write_csv
from sarcomri.io.niftifile import read_image
from sarcomri.models.folder import is_model_folder, read_weights, save_model
from sarcomri.report.papertables import PaperTable, write_paper_table
from sarcomri.runs import TransferRun
from sarcomri.seg2d.config import TransferStudyConfig
from sarcomri.seg2d.crossval import (
    FOLD_COLUMNS,
    choose_fold,
    cv_folds,
    fold_patients,
    fold_stability,
    key_id,
    n_folds,
)
from sarcomri.seg2d.data import CaseSlices, load_case, on_grid, slice_data
from sarcomri.seg2d.design import (
    Domain,
    Job,
    Progress,
    check_inputs,
    emit,
    plan_jobs,
    resolve_domains,
    study_splits,
    target_subsets,
)
from sarcomri.seg2d.infer import predict_case, write_mask
from sarcomri.seg2d.model import build_network, resolve_device
from sarcomri.seg2d.tables import (
    anova_by_fraction,
    icc_paper_table,
    learning_curve_figure,
    level_comparison,
    paper_dice_table,
    paper_table,
    summarise,
)
from sarcomri.seg2d.train import CHECKPOINT, fit_segmenter, load_network, model_spec
from sarcomri.seg3d.evaluate import case_metrics
from sarcomri.train.threads import torch_threads

_versions = functools.cache(versions)
METRIC_COLUMNS = ["dice", "f2", "sensitivity", "precision", "hd95_mm", "assd_mm", "pred_volume_mm3",
                  "ref_volume_mm3", "empty_pred", "empty_ref"]


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
        net.load_state_dict(read_weights(run_dir / TransferRun.model_rel("source")))
        settings = settings.model_copy(update={"epochs": cfg.finetune.epochs, "lr": cfg.finetune.lr})
    n_aug = 6 if cfg.data.augmentation == "paper" else 1
    steps = settings.epochs * max(1, (len(data) * n_aug) // settings.batch_size)
    emit(progress, event="model_start", model=job.model, n_target=job.n_target, steps=steps, slices=len(data),
          fractions=job.fractions)
    res = fit_segmenter(net, data, settings, cfg.network.arch, job.level or "L0", cfg.data.augmentation,
                        checkpoint_dir=folder,
                        progress=(lambda e: emit(progress, event="step", **e)) if progress else None)
    spec = model_spec(cfg.network, cfg.data, kind=job.kind, level=job.level, init=job.init)
    save_model(res.network, spec, folder, history=res.history,
               meta={"model": job.model, "seed": job.seed, "train": [f"{d}/{p}" for d, p in job.train],
                     "n_target_train": job.n_target, "fractions": job.fractions, "versions": _versions()})
    (folder / CHECKPOINT).unlink(missing_ok=True)
    return res.network


def validation_dice(network: torch.nn.Module, cfg: TransferStudyConfig, cases: CaseStore,
                    patients: list[tuple[str, str]]) -> pd.DataFrame:
    """Dice of ``network``'s mask of every validation patient (``patient_id`` as ``domain/patient``, ``dice``)."""
    device = resolve_device(cfg.train.device)
    rows = []
    for key in patients:
        mask, _ = predict_case(network, cases[key], cfg.infer, device)
        rows.append({"patient_id": key_id(key), "dice": case_metrics(mask, cases[key].mask, key_id(key))["dice"]})
    return pd.DataFrame(rows, columns=["patient_id", "dice"])


def train_job_cv(cfg: TransferStudyConfig, job: Job, cases: CaseStore, run_dir: Path,
                 progress: Progress | None = None) -> torch.nn.Module:
    """Cross-validate one model (``cfg.cv``): a model per fold in ``<model folder>/cv/fold<k>/`` trained on the
    other folds' patients and its validation Dice on its fold (``val_metrics.csv``), every fold resumable; then
    ``cv.csv`` (:data:`~sarcomri.seg2d.crossval.FOLD_COLUMNS`) and, as the model itself, the fold model of best
    mean validation Dice (its ``model.json`` meta says which fold). Below two training patients the model is
    trained once (:func:`train_job`)."""
    cv = cfg.cv
    assert cv is not None
    if n_folds(len(job.train), cv.folds) == 0:
        return train_job(cfg, job, cases, run_dir, progress)
    folder = run_dir / job.folder
    folds = cv_folds(job.train, cv.folds, seed=cv.seed)
    rows = []
    for k in sorted(set(folds["fold"])):
        fjob = dataclasses.replace(job, train=fold_patients(folds, k, "train"), folder=f"{job.folder}/cv/fold{k}",
                                   seed=int(np.random.SeedSequence([job.seed, k + 1]).generate_state(1)[0] % 2**31))
        val = fold_patients(folds, k, "val")
        emit(progress, event="stage", stage=f"{job.model} n{job.n_target}: fold {k + 1}/{folds['fold'].nunique()}")
        fdir = run_dir / fjob.folder
        vpath = fdir / "val_metrics.csv"
        if vpath.is_file() and is_model_folder(fdir):
            metrics = pd.read_csv(vpath, dtype={"patient_id": str})
        else:
            net = load_network(fdir)[0] if is_model_folder(fdir) else train_job(cfg, fjob, cases, run_dir, progress)
            metrics = validation_dice(net, cfg, cases, val)
            write_csv(vpath, metrics, overwrite=True)
        rows.append({"model": job.model, "n_target_train": job.n_target, "fold": k, "n_train": len(fjob.train),
                     "n_val": len(val), "val_dice": float(metrics["dice"].mean()),
                     "val_dice_sd": float(metrics["dice"].std(ddof=1)) if len(metrics) > 1 else np.nan})
    per_fold = pd.DataFrame(rows).assign(chosen=False)
    best = choose_fold(per_fold)
    per_fold["chosen"] = per_fold["fold"] == best
    write_csv(folder / "cv.csv", per_fold[FOLD_COLUMNS], overwrite=True)
    write_csv(folder / "cv_folds.csv", folds, overwrite=True)
    best_dir = folder / "cv" / f"fold{best}"
    net, spec, meta = load_network(best_dir)
    history = pd.read_csv(best_dir / "history.csv").to_dict("records") if (best_dir / "history.csv").is_file() \
        else None
    chosen = per_fold[per_fold["chosen"]].iloc[0]
    save_model(net, spec, folder, history=history,
               meta={**meta, "model": job.model, "fractions": job.fractions, "n_target_train": job.n_target,
                     "cv": {"folds": len(per_fold), "chosen_fold": best, "choose": cv.choose,
                            "val_dice": float(chosen["val_dice"]), "seed": cv.seed}})
    return net


def predict_job(cfg: TransferStudyConfig, job: Job, cases: CaseStore, test: list[tuple[str, str]],
                run_dir: Path, progress: Progress | None = None,
                network: torch.nn.Module | None = None) -> pd.DataFrame:
    """Masks of every test patient and their metrics (``metrics.csv``; read back when already written).
    ``network``: the model just trained (otherwise it is read from its folder)."""
    clash = set(job.train) & set(test)
    if clash:
        raise LeakageError(f"{job.model} n{job.n_target} was trained on test patient(s) {sorted(clash)[:5]}")
    pred_dir = run_dir / TransferRun.predictions_rel(job.folder)
    table_path = pred_dir / "metrics.csv"
    if table_path.is_file():
        emit(progress, event="predicted", model=job.model, n_target=job.n_target, cases=len(test), cached=True)
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
            mask = read_image(out)
        else:
            mask, _ = predict_case(net, case, cfg.infer, device)
            write_mask(mask, out)
        metrics = case_metrics(mask, case.mask, f"{job.model} {pid}")
        rows.append({"test_set": d, "patient_id": pid, **{k: metrics[k] for k in METRIC_COLUMNS}})
    emit(progress, event="predicted", model=job.model, n_target=job.n_target, cases=len(rows), cached=False)
    table = pd.DataFrame(rows)
    write_csv(table_path, table, overwrite=True)
    return table


def reliability_stage(cfg: TransferStudyConfig, jobs: list[Job], cases: CaseStore, test: list[tuple[str, str]],
                      domains: dict[str, Domain], run_dir: Path) -> pd.DataFrame:
    """The ICC (``radiomics.icc_form``, default ICC(2,1)) per first-order feature of ``radiomics.sequence``
    between manual and automatic masks, per model at the chosen fractions and per test set (source, target,
    combined)."""
    from sarcomri.radiomics.reliability import feature_icc, paired_features

    r = cfg.radiomics
    fractions = r.fractions or [max(cfg.fractions)]
    images: dict[tuple[str, str], np.ndarray] = {}
    for key in test:
        d, pid = key
        try:
            img = domains[d].cohort.read_image(pid, r.sequence)
        except KeyError:  # the patient has no such series: left out of the reliability analysis
            continue
        images[key] = sitk.GetArrayFromImage(on_grid(img, cases[key].reference))
    out = []
    for job in jobs:
        fr = [0.0] if job.kind == "source" else [f for f in job.fractions if any(np.isclose(f, fractions))]
        if not fr:
            continue
        pred_dir = run_dir / TransferRun.predictions_rel(job.folder)
        per_case = []
        for key in (k for k in test if k in images):
            d, pid = key
            auto = sitk.GetArrayFromImage(read_image(pred_dir / d / f"{pid}.nii.gz")) > 0
            manual = sitk.GetArrayFromImage(cases[key].mask) > 0
            spacing = cases[key].reference.GetSpacing()[::-1]
            per_case.append((f"{d}/{pid}", images[key], manual, auto, spacing))
        long = paired_features(per_case, scale=r.scale, bin_width=r.bin_width)
        for ts in ("source", "target", "combined"):
            table = feature_icc(long if ts == "combined" else long[long["case"].str.startswith(f"{ts}/")],
                                form=r.icc_form)
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
def run_transfer_study(cfg: TransferStudyConfig, run_dir: str | Path, progress: Progress | None = None,
                       rerun_changed: bool = False) -> dict[str, pd.DataFrame]:
    """Run (or resume) the whole study; returns its tables by name: ``splits``, ``subsets``, ``models``,
    ``per_case``, ``summary``, ``paper``, ``anova``, ``tukey`` and ``reliability`` (empty when disabled).
    Results made from other cohort content stop the run saying what changed, unless ``rerun_changed``:
    then they are deleted and made again (:func:`sarcomri.seg2d.design.check_inputs`).

    ``progress`` receives dicts with ``event`` in ``stage``, ``model_start``, ``step``, ``model_skipped``,
    ``predicted``."""
    with torch_threads(cfg.train.threads):
        return _run_transfer_study(cfg, run_dir, progress, rerun_changed)


def _run_transfer_study(cfg: TransferStudyConfig, run_dir: str | Path, progress: Progress | None,
                        rerun_changed: bool) -> dict[str, pd.DataFrame]:
    """The body of :func:`run_transfer_study`, under its thread count."""
    run_dir = open_run(cfg, run_dir)
    domains = resolve_domains(cfg, run_dir, progress)
    check_inputs(cfg, domains, run_dir, rerun_changed)
    splits = study_splits(cfg, domains, run_dir)
    subsets = target_subsets(cfg, domains, splits, run_dir)
    jobs = plan_jobs(cfg, splits, subsets)
    cases = CaseStore(cfg, domains)
    test = [(d, p) for d, p in splits.loc[splits["role"] == "test", ["domain", "patient_id"]].itertuples(index=False)]
    metrics: dict[str, pd.DataFrame] = {}
    emit(progress, event="stage", stage=f"{len(jobs)} models, {len(test)} test patients", models=len(jobs))
    for job in jobs:
        net = None
        if is_model_folder(run_dir / job.folder):
            emit(progress, event="model_skipped", model=job.model, n_target=job.n_target)
        else:
            net = (train_job_cv if cfg.cv else train_job)(cfg, job, cases, run_dir, progress)
        metrics[job.folder] = predict_job(cfg, job, cases, test, run_dir, progress, network=net)
    shown = [j for j in jobs if j.kind in cfg.models]
    models = pd.DataFrame([{"model": j.model, "kind": j.kind, "level": j.level, "n_target_train": j.n_target,
                            "n_source_train": sum(d == "source" for d, _ in j.train),
                            "fractions": " ".join(f"{f:g}" for f in j.fractions), "folder": j.folder, "seed": j.seed}
                           for j in jobs])
    tables = {"splits": splits, "subsets": subsets, "models": models}
    labels = cfg.model_labels()
    out = TransferRun(run_dir).tables_dir
    tables["per_case"] = _stage(out / "per_case.csv", lambda: per_case_table(shown, metrics))
    tables["summary"] = _stage(out / "summary.csv", lambda: summarise(tables["per_case"], "dice", labels))
    tables["paper"] = _stage(out / "paper.csv", lambda: paper_table(tables["summary"]))
    if not (out / "anova.csv").is_file() or not (out / "tukey.csv").is_file():
        anova, tukey = anova_by_fraction(tables["per_case"], cfg.anova_metric)
        write_csv(out / "tukey.csv", tukey, overwrite=True)
        write_csv(out / "anova.csv", anova, overwrite=True)
    tables["anova"] = pd.read_csv(out / "anova.csv", dtype={"note": object}).fillna({"note": ""})
    tables["tukey"] = pd.read_csv(out / "tukey.csv")
    write_csv(out / "models.csv", models, overwrite=True)
    figure = TransferRun(run_dir).learning_curve_path
    if not figure.is_file():
        learning_curve_figure(tables["summary"], figure, labels, domains=cfg.domain_names())
    tables["reliability"] = pd.DataFrame()
    if cfg.radiomics.enabled:
        emit(progress, event="stage", stage="radiomics reliability")
        tables["reliability"] = _stage(out / "reliability.csv",
                                       lambda: reliability_stage(cfg, shown, cases, test, domains, run_dir))
    tables["cv_folds"], tables["cv_stability"] = cv_tables(jobs, run_dir)
    if cfg.cv:
        write_csv(out / "cv_folds.csv", tables["cv_folds"], overwrite=True)
        write_csv(out / "cv_stability.csv", tables["cv_stability"], overwrite=True)
    write_paper_tables(cfg, tables, run_dir)
    return tables


def cv_tables(jobs: list[Job], run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-fold validation Dice of every cross-validated model (each model folder's ``cv.csv``) and their
    stability (:func:`sarcomri.seg2d.crossval.fold_stability`); empty without cross-validation."""
    parts = [pd.read_csv(run_dir / j.folder / "cv.csv") for j in jobs if (run_dir / j.folder / "cv.csv").is_file()]
    folds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FOLD_COLUMNS)
    return folds, fold_stability(folds)


#: Where the paper-format tables come from (Lin et al., Insights into Imaging 2023, doi:10.1186/s13244-022-01356-8).
PAPER = "Lin et al. 2023 (transfer learning, cervical to uterine cancer DWI)"


def write_paper_tables(cfg: TransferStudyConfig, tables: dict[str, pd.DataFrame], run_dir: Path) -> None:
    """The run's tables in the paper's layouts, into ``TransferRun(run_dir).paper_dir``
    (:mod:`sarcomri.report.papertables`): DSC with 95% CI by model x training size x test set; the freezing
    levels compared; the k-fold stability (with ``cv``); the ICC of the ADC first-order features."""
    folder = TransferRun(run_dir).paper_dir
    sizes = ", ".join(f"{round(100 * f, 1):g}% (n={int(n)})" for f, n in
                      tables["summary"].loc[tables["summary"]["fraction"] > 0, ["fraction", "n_target_train"]]
                      .drop_duplicates().sort_values("fraction").itertuples(index=False))
    write_paper_table(folder, PaperTable(
        "transfer_dice", f"{PAPER}: DSC, mean with 95% CI, by model, target training size and test set",
        f"t-interval over the test patients of each set (combined = source + target); target training sizes "
        f"{sizes}, rounded {cfg.subset_rounding}; the source model (no target patient) under 0%.", order=1),
        paper_dice_table(tables["summary"]))
    if cfg.levels and "transfer" in cfg.models:
        write_paper_table(folder, PaperTable(
            "transfer_levels", f"{PAPER}: fine-tuning levels compared, mean DSC of the transfer models",
            "L1 backbone frozen (ASPP and decoder retrained), L2 backbone and ASPP frozen, L3 whole encoder frozen "
            "(decoder retrained); one-way ANOVA across the levels per test set and training size.", order=2),
            level_comparison(tables["per_case"], cfg.anova_metric))
    if cfg.cv:
        write_paper_table(folder, PaperTable(
            "transfer_cv_stability", f"{PAPER}: {cfg.cv.folds}-fold stability of the models (validation DSC)",
            "per model and training size: mean, SD, minimum and maximum of the folds' mean validation DSC; the "
            "fold model of best validation DSC is the model evaluated on the test patients.", order=3),
            tables["cv_stability"])
    if not tables["reliability"].empty:
        from sarcomri.radiomics.reliability import PAPER_ADC_FEATURES

        write_paper_table(folder, PaperTable(
            "transfer_adc_icc", f"{PAPER}: {cfg.radiomics.sequence} first-order features, {cfg.radiomics.icc_form} "
                                "between manual and automatic masks, with 95% CI",
            f"the {len(PAPER_ADC_FEATURES)} first-order features (pyradiomics names; the paper's list assumed, see "
            f"docs/segmentation2d.md); bin width {cfg.radiomics.bin_width:g} for entropy.", order=4),
            icc_paper_table(tables["reliability"]))


def _stage(path: Path, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Read a table back when it exists; otherwise compute and write it atomically."""
    if path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
        return table.assign(level=table["level"].fillna("")) if "level" in table.columns else table
    table = make()
    write_csv(path, table, overwrite=True)
    return table

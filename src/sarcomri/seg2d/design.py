"""The design of the transfer study: source and target patients, the patient-level hold-out per domain,
the nested target training subsets, and the list of models to train (see :mod:`sarcomri.seg2d.transfer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import LeakageError, check_no_leakage, holdout, nested_subsets, stratified_order
from sarcomri.errors import InputError
from sarcomri.fingerprint import cohort_fingerprint, key, merge_fingerprints, part_of
from sarcomri.io.atomic import write_csv
from sarcomri.runrecord import RunRecord
from sarcomri.runs import TransferRun
from sarcomri.runs.base import FIGURES, MODELS, PAPER, PREDICTIONS_DIR, SPLITS, TABLES
from sarcomri.seg2d.config import LEVELS, MODEL_KINDS, TransferStudyConfig
from sarcomri.seg2d.data import eligible_patients

Progress = Callable[[dict[str, Any]], None]
DOMAINS = ("source", "target")


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


def emit(progress: Progress | None, **event: Any) -> None:
    """Send one progress event (a dict with ``event``) when a callback is given."""
    if progress is not None:
        progress(event)


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
            emit(progress, event="stage", stage="synthesising the source/target cohort")
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


#: The version of the transfer study's code: bump it when the code changes its results, so that run folders
#: made before are recomputed (or stop) instead of mixing old and new results.
STUDY_FORMAT = "transfer-2"
#: Everything a transfer run folder makes from its cohorts; all of it hangs on the hold-out splits, so a change
#: of the domains' patients or content makes all of it stale.
ARTIFACTS = (SPLITS, "subsets.csv", MODELS, PREDICTIONS_DIR, TABLES, FIGURES, PAPER)


def check_inputs(cfg: TransferStudyConfig, domains: dict[str, Domain], run_dir: Path,
                 rerun_changed: bool = False) -> None:
    """Key the run folder's artifacts by the config, the domains' patients and their cohorts' content
    (:mod:`sarcomri.runrecord`): after a change, stop saying what changed, or (``rerun_changed``) delete them."""
    record = RunRecord.load(run_dir)
    cohorts = {d: dom.cohort for d, dom in domains.items()}
    if cohorts["source"] is cohorts["target"]:
        fp = cohort_fingerprint(cohorts["source"], previous=record.cohort)
    else:
        fp = merge_fingerprints({d: cohort_fingerprint(c, previous=part_of(record.cohort, d))
                                 for d, c in cohorts.items()})
    k = key(STUDY_FORMAT, cfg.model_dump(mode="json", exclude={"name"}), fp.key(),
            {d: dom.patients for d, dom in domains.items()})
    record.reconcile(fp, dict.fromkeys(ARTIFACTS, k), rerun_changed)


def study_splits(cfg: TransferStudyConfig, domains: dict[str, Domain], run_dir: Path) -> pd.DataFrame:
    """A patient-level hold-out per domain (``domain, patient_id, repeat, fold, role``); read back when
    already written. Leakage is checked per domain, and a patient of one cohort never sits in both domains."""
    path = TransferRun(run_dir).splits_path
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
        write_csv(path, table, overwrite=True)
    for _, sub in table.groupby("domain"):
        check_no_leakage(sub.drop(columns="domain"), kfold_complete=False)
    if domains["source"].cohort is domains["target"].cohort:
        both = set(table.loc[table["domain"] == "source", "patient_id"]) & set(
            table.loc[table["domain"] == "target", "patient_id"])
        if both:
            raise LeakageError(f"patients {sorted(both)[:5]} are in both the source and the target domain")
    return table


def subset_size(fraction: float, n: int, rounding: str = "nearest") -> int:
    """The number of patients at ``fraction`` of ``n``: ``nearest`` rounds half up (the paper's 2, 5, 10, 20,
    50 and 100% of 256 are 5, 13, 26, 51, 128 and 256), ``ceil`` rounds up; at least one, at most ``n``."""
    if not 0 < fraction <= 1 or n < 1:
        raise InputError(None, f"a fraction in (0, 1] of at least one patient, not {fraction} of {n}")
    x = round(fraction * n, 9)  # 0.1 x 30 is 3.0000000000000004: not a reason to round up
    k = math.ceil(x) if rounding == "ceil" else math.floor(x + 0.5)
    return min(n, max(1, k))


def nested_target_subsets(patients: pd.DataFrame, fractions: list[float], seed: int = 0,
                          stratify_by: list[str] | None = None, rounding: str = "nearest") -> pd.DataFrame:
    """Nested subsets of ``patients`` (``patient_id, fraction``): one stratified random order
    (:func:`sarcomri.cohort.splits.stratified_order`, the order ``nested_subsets`` uses) and its first
    :func:`subset_size` patients at each fraction."""
    by = stratify_by or ["label"]
    if rounding == "ceil":
        return nested_subsets(patients, fractions, seed=seed, stratify_by=by)
    order = stratified_order(patients, seed, by)
    rows = [(pid, f) for f in sorted({float(f) for f in fractions})
            for pid in order[:subset_size(f, len(order), rounding)]]
    return pd.DataFrame(rows, columns=["patient_id", "fraction"])


def target_subsets(cfg: TransferStudyConfig, domains: dict[str, Domain], splits: pd.DataFrame,
                   run_dir: Path) -> pd.DataFrame:
    """Nested subsets of the target training patients (``patient_id, fraction``; sizes by
    ``cfg.subset_rounding``); read back when written."""
    path = run_dir / "subsets.csv"
    if path.is_file():
        return pd.read_csv(path, dtype={"patient_id": str})
    train = splits[(splits["domain"] == "target") & (splits["role"] == "train")]["patient_id"]
    pats = domains["target"].cohort.patients
    table = nested_target_subsets(pats[pats["patient_id"].isin(set(train))], cfg.fractions, seed=cfg.split_seed,
                                  stratify_by=cfg.stratify_by, rounding=cfg.subset_rounding)
    write_csv(path, table, overwrite=True)
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
    source = Job("source", "source", "", 0, src_keys, TransferRun.model_rel("source"),
                 model_seed(cfg.train.seed, "source", ""), fractions=[0.0])
    jobs = [source] if {"source", "transfer"} & set(cfg.models) else []
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
                jobs.append(Job(name, kind, level, n, train, TransferRun.model_rel(name, n),
                                model_seed(cfg.train.seed, kind, level), "source" if kind == "transfer" else None,
                                frac_of[n]))
    return jobs

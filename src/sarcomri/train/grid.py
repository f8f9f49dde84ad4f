"""The grid of a classification study: sequences x folds x repeats, each job one model.

:func:`prepare_run` writes the run folder's splits and slice caches; :func:`run_grid` runs the jobs not yet
done and gathers every job's predictions into ``predictions.parquet`` (one row per model, patient, sequence
and slice). Killing a grid and rerunning it redoes only unfinished work and gives the same table.

Every artifact is keyed by what it is made from (:func:`artifact_keys`, recorded in ``<run>/inputs.json`` by
:mod:`sarcomri.runrecord`): ``splits.csv`` by the splits section and the patients' ids, labels and
stratification columns; ``cache/<seq>.npz`` by the slice settings, every patient's label and the content of
the sequence's series files; ``models/<seq>/`` by the splits, the cache, the train and model sections. A rerun
after a change stops and says what changed, or (``rerun_changed``) recomputes what depends on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sarcomri.cohort import splits as sp
from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import SarcomriError
from sarcomri.fingerprint import CohortFingerprint, cohort_fingerprint, key
from sarcomri.io.atomic import write_csv, write_parquet
from sarcomri.prep.prepare2d import prepare_cohort
from sarcomri.runrecord import RunRecord
from sarcomri.runs import JOB_PREDICTIONS, ClassificationRun
from sarcomri.train.executors import make_executor
from sarcomri.train.jobs import PREDICTION_COLUMNS, Job, run_job

if TYPE_CHECKING:
    from sarcomri.config import ClassificationConfig, SplitConfig


def make_splits(cohort: Cohort, s: SplitConfig) -> pd.DataFrame:
    """Patient-level splits of the cohort under a config's ``splits`` section, checked for leakage."""
    if s.scheme == "kfold":
        table = sp.kfold(cohort.patients, s.folds, s.repeats, s.seed, s.val_ratio, s.stratify_by)
    elif s.scheme == "holdout":
        table = sp.holdout(cohort.patients, s.test_ratio, s.seed, s.val_ratio, s.stratify_by)
    else:
        table = sp.leave_group_out(cohort.patients, s.group, s.val_ratio, s.seed)
    sp.check_no_leakage(table)
    return table


#: Versions of the code that makes a slice cache and a model: bump one when that code changes its output, so
#: that run folders made before are recomputed (or stop) instead of mixing old and new results.
SLICE_FORMAT, MODEL_FORMAT = "slices-1", "classifier-1"


def artifact_keys(cohort: Cohort, fp: CohortFingerprint, config: ClassificationConfig) -> dict[str, str]:
    """The key of every artifact of a classification run folder (path relative to the run: key); each slice
    cache is keyed by its :meth:`~sarcomri.runs.ClassificationRun.slice_spec`. Sections are keyed as their JSON
    dumps (:func:`sarcomri.fingerprint.key`)."""
    rel = ClassificationRun(Path(), config)
    s = config.splits
    columns = [c for c in dict.fromkeys(["label", *s.stratify_by, s.group]) if c in cohort.patients.columns]
    splits = key("splits", s, cohort.patients[["patient_id", *columns]].astype(str).to_numpy().tolist())
    labels = cohort.labels_binary().to_dict()
    out = {str(rel.splits_path): splits}
    for i, seq in enumerate(config.sequences):
        spec = rel.slice_spec(seq)
        cache = key(SLICE_FORMAT, spec, labels, fp.series_key(cohort.patient_ids, spec.sequences))
        out[str(rel.cache_path(seq))] = out[str(rel.skipped_path(seq))] = cache
        out[str(rel.model_dir(seq))] = key(MODEL_FORMAT, splits, cache, config.train, config.model, i)
    return out


def prepare_run(run_dir: str | Path, cohort: Cohort, config: ClassificationConfig, progress: bool = True,
                rerun_changed: bool = False) -> None:
    """Check the run folder's artifacts against the cohort and config (:mod:`sarcomri.runrecord`: stop on a
    change, or with ``rerun_changed`` remove what it makes stale), then write ``splits.csv`` and one slice
    cache per sequence (skipped when already there)."""
    run = ClassificationRun(run_dir, config)
    record = RunRecord.load(run_dir)
    fp = cohort_fingerprint(cohort, previous=record.cohort)
    record.reconcile(fp, artifact_keys(cohort, fp, config), rerun_changed)
    if not run.splits_path.is_file():
        write_csv(run.splits_path, make_splits(cohort, config.splits), overwrite=True)
    labels = cohort.labels_binary().to_dict()
    for seq in config.sequences:
        path = run.cache_path(seq)
        if path.is_file():
            continue
        slices, skipped = prepare_cohort(cohort, run.slice_spec(seq), labels, progress=progress)
        write_csv(run.skipped_path(seq), skipped, overwrite=True)
        if len(skipped) and progress:
            no_tumour = int((skipped["reason"] != "lacks a sequence").sum())
            Console().print(f"[yellow]{seq}: {len(skipped)} patients left out ({no_tumour} with no tumour in "
                            f"the series); see {run.skipped_path(seq)}")
        slices.save(path)


def plan_jobs(run_dir: str | Path, sequences: list[str]) -> list[Job]:
    """Every (sequence, repeat, fold) job of the run, in a fixed order."""
    splits = pd.read_csv(ClassificationRun(run_dir).splits_path, dtype={"patient_id": str})
    folds = splits[["repeat", "fold"]].drop_duplicates().sort_values(["repeat", "fold"])
    return [Job(seq, int(r), int(k)) for seq in sequences for r, k in folds.itertuples(index=False)]


def run_grid(run_dir: str | Path, config: ClassificationConfig, progress: bool = True) -> pd.DataFrame:
    """Run the unfinished jobs and gather ``predictions.parquet``; returns the predictions table. The config goes
    to each job as it is (worker processes receive it pickled)."""
    run_dir = Path(run_dir)
    sequences = config.sequences
    jobs = plan_jobs(run_dir, sequences)
    todo = [j for j in jobs if not j.is_done(run_dir)]
    ex = config.executor
    executor = make_executor(ex.kind, ex.workers, ex.ray_address)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not progress, transient=False) as bar:
        overall = bar.add_task("models", total=len(jobs), completed=len(jobs) - len(todo))
        inner = bar.add_task("epochs", total=config.train.epochs, visible=executor.kind == "local")

        def on_epoch(epoch: int, logs: dict) -> None:
            bar.update(inner, completed=epoch + 1,
                       description=f"epoch {epoch + 1} loss {logs['train_loss']:.3f} val {logs.get('val_loss', 0):.3f}")

        calls = []
        for job in todo:
            kwargs: dict[str, Any] = {"sequence_index": sequences.index(job.sequence)}
            if executor.kind == "local":
                kwargs["progress"] = on_epoch
            calls.append(((job, str(run_dir), config), kwargs))
        for name in executor.map(run_job, calls):
            bar.update(overall, advance=1, description=f"models (last: {name})")
            bar.reset(inner, total=config.train.epochs)
    return gather_predictions(run_dir, jobs)


def gather_predictions(run_dir: str | Path, jobs: list[Job]) -> pd.DataFrame:
    """Concatenate the finished jobs' predictions in job order and write ``predictions.parquet``."""
    run_dir = Path(run_dir)
    missing = [j.name for j in jobs if not j.is_done(run_dir)]
    if missing:
        raise SarcomriError(f"{len(missing)} jobs are unfinished (first: {missing[0]}); rerun the grid")
    frames = [pd.read_parquet(j.folder(run_dir) / JOB_PREDICTIONS) for j in jobs]  # plan order
    preds = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    run = ClassificationRun(run_dir)
    splits = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    sp.check_predictions_against_splits(preds, splits)
    write_parquet(run.predictions_path, preds, overwrite=True)
    return preds

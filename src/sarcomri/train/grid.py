"""The grid of a classification study: sequences x folds x repeats, each job one model.

:func:`prepare_run` writes the run folder's splits and slice caches; :func:`run_grid` runs the jobs not yet
done and gathers every job's predictions into ``predictions.parquet`` (one row per model, patient, sequence
and slice). Killing a grid and rerunning it redoes only unfinished work and gives the same table.

Every artifact is keyed by what it is made from (:func:`artifact_keys`, recorded in ``<run>/inputs.json`` by
:mod:`sarcomri.runrecord`): ``splits.csv`` by the splits section and the patients' ids, labels and
stratification columns; ``cache/<seq>.npz`` by the slice settings, every patient's label and the content of
the sequence's series files; ``models/<seq>/`` by the splits, the cache, the train and model sections and the
sequence's own protocol (``per_sequence``; with an ablation, the ablation's key); ``splits/<seq>.csv`` (a
sequence's own validation patients) and ``ablation/<seq>/`` likewise. A rerun after a change stops and says
what changed, or (``rerun_changed``) recomputes what depends on it.
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
from sarcomri.prep.prepare2d import prepare_cohort, tumour_slice_counts
from sarcomri.prep.profile import cohort_profile
from sarcomri.runrecord import RunRecord
from sarcomri.runs import JOB_PREDICTIONS, ClassificationRun
from sarcomri.train.executors import make_executor
from sarcomri.train.jobs import PREDICTION_COLUMNS, Job, job_splits_path, run_job

if TYPE_CHECKING:
    from sarcomri.config import ClassificationConfig, SplitConfig


def make_splits(cohort: Cohort, s: SplitConfig, slice_counts: dict[str, int] | None = None) -> pd.DataFrame:
    """Patient-level splits of the cohort under a config's ``splits`` section, checked for leakage;
    ``slice_counts`` (patient_id: tumour slices) for ``balance: slices``."""
    if s.scheme == "kfold":
        table = sp.kfold(cohort.patients, s.folds, s.repeats, s.seed, s.val_ratio, s.stratify_by, s.balance,
                         slice_counts)
    elif s.scheme == "holdout":
        table = sp.holdout(cohort.patients, s.test_ratio, s.seed, s.val_ratio, s.stratify_by)
    else:
        table = sp.leave_group_out(cohort.patients, s.group, s.val_ratio, s.seed)
    sp.check_no_leakage(table)
    return table


#: Versions of the code that makes a slice cache and a model: bump one when that code changes its output, so
#: that run folders made before are recomputed (or stop) instead of mixing old and new results.
SLICE_FORMAT, MODEL_FORMAT = "slices-1", "classifier-1"
#: The format of the intensity profiles (``cache/<sequence>.profile.csv``, :mod:`sarcomri.prep.profile`).
PROFILE_FORMAT = "intensity-profile-1"


def artifact_keys(cohort: Cohort, fp: CohortFingerprint, config: ClassificationConfig) -> dict[str, str]:
    """The key of every artifact of a classification run folder (path relative to the run: key); each slice
    cache is keyed by its :meth:`~sarcomri.runs.ClassificationRun.slice_spec`. Sections are keyed as their JSON
    dumps (:func:`sarcomri.fingerprint.key`)."""
    rel = ClassificationRun(Path(), config)
    s = config.splits
    columns = [c for c in dict.fromkeys(["label", *s.stratify_by, s.group, sp.SUBJECT]) if c in cohort.patients.columns]
    parts: list[Any] = ["splits", s, cohort.patients[["patient_id", *columns]].astype(str).to_numpy().tolist()]
    if s.balance == "slices":  # the folds follow the tumour slice counts: the masks' content
        parts.append(fp.series_key(cohort.patient_ids, _mask_sequences(config)))
    splits = key(*parts)
    labels = cohort.labels_binary().to_dict()
    out = {str(rel.splits_path): splits}
    for i, seq in enumerate(config.sequences):
        spec = rel.slice_spec(seq)
        cache = key(SLICE_FORMAT, spec, labels, fp.series_key(cohort.patient_ids, spec.sequences))
        out[str(rel.cache_path(seq))] = out[str(rel.skipped_path(seq))] = cache
        out[str(rel.profile_path(seq))] = key(PROFILE_FORMAT, cache)
        model = [MODEL_FORMAT, splits, cache, config.train, config.model, i]
        if config.ablation is not None:  # the protocol is the ablation's choice: keyed by what the ablation is
            ablation = key(ABLATION_FORMAT, splits, cache, config.train, config.model, config.ablation, i)
            out[str(rel.ablation_folder(seq))] = ablation
            model.append(ablation)
            out[str(rel.sequence_splits_path(seq))] = key("sequence-splits", splits, ablation)
        elif seq in config.per_sequence:
            model.append(config.per_sequence[seq])
            if config.own_val_ratio(seq) is not None:
                out[str(rel.sequence_splits_path(seq))] = key("sequence-splits", splits, config.own_val_ratio(seq))
        out[str(rel.model_dir(seq))] = key(*model)
    return out


#: The format of the ablation models' folders (see :data:`SLICE_FORMAT`).
ABLATION_FORMAT = "ablation-1"


def _mask_sequences(config: ClassificationConfig) -> list[str]:
    """The single sequences of the config's models (their masks give the tumour slice counts)."""
    return list(dict.fromkeys(name for group in config.channel_groups() for name in group))


def prepare_sequence_splits(run_dir: str | Path, cohort: Cohort, config: ClassificationConfig) -> None:
    """Write ``splits/<sequence>.csv`` for every sequence with its own validation ratio (skipped when there):
    :func:`sarcomri.cohort.splits.resplit_validation` of ``splits.csv``, checked for leakage and against it
    (the same test patients in every fold)."""
    run = ClassificationRun(run_dir)
    base = None
    for seq in config.sequences:
        ratio, path = config.own_val_ratio(seq), run.sequence_splits_path(seq)
        if ratio is None or path.is_file():
            continue
        if base is None:
            base = pd.read_csv(run.splits_path, dtype={"patient_id": str, sp.SUBJECT: str})
        s = config.splits
        table = sp.resplit_validation(base, cohort.patients, ratio, s.seed, s.stratify_by)
        sp.check_no_leakage(table)
        test = ["repeat", "fold", "patient_id"]
        same = table[table["role"] == "test"][test].reset_index(drop=True)
        if not same.equals(base[base["role"] == "test"][test].reset_index(drop=True)):
            raise sp.LeakageError(f"the {seq} splits do not test the patients of {run.splits_path.name}")
        write_csv(path, table, overwrite=True)


def prepare_run(run_dir: str | Path, cohort: Cohort, config: ClassificationConfig, progress: bool = True,
                rerun_changed: bool = False) -> None:
    """Check the run folder's artifacts against the cohort and config (:mod:`sarcomri.runrecord`: stop on a
    change, or with ``rerun_changed`` remove what it makes stale), then write ``splits.csv``, and per sequence
    its intensity profile (what ``sarcomri predict`` compares a new patient with) and its slice cache (each
    skipped when already there)."""
    run = ClassificationRun(run_dir, config)
    record = RunRecord.load(run_dir)
    fp = cohort_fingerprint(cohort, previous=record.cohort)
    record.reconcile(fp, artifact_keys(cohort, fp, config), rerun_changed)
    if not run.splits_path.is_file():
        counts = tumour_slice_counts(cohort, _mask_sequences(config)) if config.splits.balance == "slices" else None
        write_csv(run.splits_path, make_splits(cohort, config.splits, counts), overwrite=True)
    if config.ablation is None:  # with an ablation, the sequences' validation ratios come after it
        prepare_sequence_splits(run_dir, cohort, config)
    labels = cohort.labels_binary().to_dict()
    for seq in config.sequences:
        if not run.profile_path(seq).is_file():
            write_csv(run.profile_path(seq), cohort_profile(cohort, run.slice_spec(seq)), overwrite=True)
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


def class_gaps(slices_patients: pd.Series, splits: pd.DataFrame) -> str | None:
    """Why a sequence cannot be trained on these splits: the first (repeat, fold) whose training patients with
    the sequence hold a single class (``slices_patients``: label by patient_id of the patients with slices)."""
    for (repeat, fold), part in splits.groupby(["repeat", "fold"]):
        train = part.loc[part["role"] == "train", "patient_id"]
        classes = slices_patients.reindex(train).dropna().unique()
        if len(classes) < 2:
            return (f"repeat {repeat} fold {fold}: the {len(slices_patients.reindex(train).dropna())} training "
                    f"patient(s) with the sequence hold {len(classes)} class(es)")
    return None


def left_out_sequences(run_dir: Path, config: ClassificationConfig, progress: bool = True) -> list[str]:
    """The sequences the grid can train; those it cannot (a training fold with one class among the patients who
    have the sequence) are listed with the reason in ``tables/sequences_left_out.csv`` and said."""
    from sarcomri.data.sliceset import SliceSet

    run = ClassificationRun(run_dir)
    kept, left = [], []
    for seq in config.sequences:
        slices = SliceSet.load(run.cache_path(seq))
        labels = pd.Series(slices.labels, index=slices.patient_ids.astype(str)).groupby(level=0).first()
        path = run.sequence_splits_path(seq)
        splits = pd.read_csv(path if path.is_file() else run.splits_path, dtype={"patient_id": str})
        reason = class_gaps(labels, splits)
        if reason is None:
            kept.append(seq)
        else:
            left.append({"sequence": seq, "patients": len(labels), "positives": int(labels.sum()), "reason": reason})
    write_csv(run.left_out_path, pd.DataFrame(left, columns=["sequence", "patients", "positives", "reason"]),
              overwrite=True)
    if left and progress:
        Console().print(f"[yellow]left out (too few patients of a class to train every fold): "
                        f"{', '.join(r['sequence'] for r in left)}; see {run.left_out_path}")
    if not kept:
        raise SarcomriError(f"no sequence can be trained on these folds: {left[0]['sequence']}: {left[0]['reason']}")
    return kept


def run_grid(run_dir: str | Path, config: ClassificationConfig, progress: bool = True) -> pd.DataFrame:
    """Run the unfinished jobs and gather ``predictions.parquet``; returns the predictions table. The config goes
    to each job as it is (worker processes receive it pickled)."""
    run_dir = Path(run_dir)
    sequences = left_out_sequences(run_dir, config, progress)
    if config.ablation is not None and not set(sequences) <= set(config.per_sequence):
        raise SarcomriError("the config has an ablation: run the grid with the protocols it chose "
                            "(sarcomri.classification.classification_protocol, or run_classification)")
    jobs = plan_jobs(run_dir, sequences)
    todo = [j for j in jobs if not j.is_done(run_dir)]
    ex = config.executor
    executor = make_executor(ex.kind, ex.workers, ex.ray_address)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not progress, transient=False) as bar:
        epochs = max(config.train_for(seq).epochs for seq in sequences)
        overall = bar.add_task("models", total=len(jobs), completed=len(jobs) - len(todo))
        inner = bar.add_task("epochs", total=epochs, visible=executor.kind == "local")

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
            bar.reset(inner, total=epochs)
    return gather_predictions(run_dir, jobs, config)


def gather_predictions(run_dir: str | Path, jobs: list[Job],
                       config: ClassificationConfig | None = None) -> pd.DataFrame:
    """Concatenate the finished jobs' predictions in job order and write ``predictions.parquet``; every test
    prediction is checked against ``splits.csv`` and, with ``config``, each sequence's against its own splits."""
    run_dir = Path(run_dir)
    missing = [j.name for j in jobs if not j.is_done(run_dir)]
    if missing:
        raise SarcomriError(f"{len(missing)} jobs are unfinished (first: {missing[0]}); rerun the grid")
    frames = [pd.read_parquet(j.folder(run_dir) / JOB_PREDICTIONS) for j in jobs]  # plan order
    preds = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    run = ClassificationRun(run_dir)
    splits = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    sp.check_predictions_against_splits(preds, splits)
    for seq in (config.sequences if config is not None else []):
        path = job_splits_path(run_dir, config, seq)
        if path != run.splits_path:
            own = pd.read_csv(path, dtype={"patient_id": str})
            sp.check_predictions_against_splits(preds[preds["sequence"] == seq], own)
    write_parquet(run.predictions_path, preds, overwrite=True)
    return preds

"""A reading plan from a finished study (``sarcomri read create``): its cases (the classification run's test
patients of the first repeat, or every patient), the sequences shown (the run's), and the database, by default
``<study>/read/reads.sqlite``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path
from sarcomri.read.design import Reader, ReadingDesign
from sarcomri.read.store import ReadingStore
from sarcomri.runs import ClassificationRun, StudyRun, open_run

DB_NAME = "reads.sqlite"


def classification_of(study: str | Path) -> ClassificationRun:
    """The classification run of a study folder, or the run itself."""
    run = open_run(study)
    run = run.classification if isinstance(run, StudyRun) else run
    if not isinstance(run, ClassificationRun):
        raise InputError(Path(study), "is neither a study nor a classification run")
    return run


def default_db(study: str | Path) -> str:
    """``sqlite:///<study>/read/reads.sqlite`` (the folder made when missing)."""
    folder = Path(study).resolve() / "read"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / DB_NAME}"


def plan_cases(run: ClassificationRun, design: ReadingDesign, sequences: list[str]) -> list[str]:
    """The cases of the plan: patients with every shown sequence, of the first repeat's test set (``test``) or
    all of them (``all``), in the cohort's order; only those the model scored (a likelihood in
    ``tables/likelihood.csv``, when the run has one): the readers are compared with the model, and every case can
    be read with the AI."""
    cohort = run.cohort(check_files=False)
    have = cohort.series.groupby("patient_id")["sequence"].apply(set)
    cases = [p for p in cohort.patient_ids if set(sequences) <= have.get(p, set())]
    if design.cases == "test":
        splits = pd.read_csv(run.splits_path, dtype={"patient_id": str})
        first = splits[(splits["repeat"] == splits["repeat"].min()) & (splits["role"] == "test")]
        tested = set(first["patient_id"])
        cases = [p for p in cases if p in tested]
    if run.table_path("likelihood").is_file():
        scored = set(pd.read_csv(run.table_path("likelihood"), dtype={"patient_id": str})["patient_id"])
        cases = [p for p in cases if p in scored]
    if not cases:
        raise InputError(run.path, f"no patient has every shown sequence ({', '.join(sequences)})"
                         + (" among the test patients" if design.cases == "test" else ""))
    return cases


def create_plan(study: str | Path, design: ReadingDesign, readers: list[Reader],
                db: str | None = None) -> tuple[ReadingStore, dict[str, str]]:
    """The reading plan of ``study`` in ``db`` (default :func:`default_db`); returns the store and each reader's
    token (shown once: only its hash is kept)."""
    run = classification_of(study)
    sequences = design.sequences or list(dict.fromkeys(q for g in run.config.channel_groups() for q in g))
    missing = set(sequences) - set(run.cohort(check_files=False).series["sequence"])
    if missing:
        raise InputError(run.path, f"the cohort has no {', '.join(sorted(missing))} series")
    return ReadingStore.create(db or default_db(study), run.name, design, readers,
                               plan_cases(run, design, sequences), sequences)


def write_tokens(path: str | Path, issued: dict[str, str]) -> Path:
    """Write each reader's token (``name<TAB>token`` lines) to ``path``, readable by its owner only before it
    appears under its name; returns the path."""
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{name}\t{token}\n" for name, token in issued.items()))
        os.chmod(tmp, 0o600)
    return Path(path)

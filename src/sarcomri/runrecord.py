"""The record of what a run folder's artifacts were made from (``<run>/inputs.json``), and what a rerun does
when that changed.

A command lists every artifact it relies on (a path relative to the run folder: a file, or a folder such as
``models/T2axi``) with its *key*: :func:`sarcomri.fingerprint.key` of what the artifact is made from (its config
section, the cohort content it reads, the keys of the artifacts it reads, a format version of the code that
makes it). :meth:`RunRecord.reconcile` compares that list with the record. An artifact on disk is *stale* when
its recorded key differs, when nothing records its key (a run folder made before records existed), or when the
command no longer wants it (the prediction of a patient removed from the cohort). Then:

- by default the command stops with :class:`InputsChangedError`, which says what changed in the cohort and
  which artifacts that makes stale (nothing is touched);
- with ``rerun_changed`` the stale artifacts are removed, and the command makes them again.

The record (the current cohort fingerprint and every wanted key) is rewritten only after the stale artifacts
are gone and before anything new is made, so a run killed at any point leaves each artifact either missing
(made on the next run) or made with the key the record gives it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sarcomri import __version__
from sarcomri.errors import SarcomriError, few
from sarcomri.fingerprint import CohortFingerprint, describe_changes
from sarcomri.io.atomic import clean_temporaries, is_temporary, write_json

RECORD = "inputs.json"


def prepare_run_folder(run_dir: str | Path) -> Path:
    """Create a run folder, or reopen one: a new or empty folder, or one a sarcomri command made (it holds
    ``config.yaml``); any other non-empty folder is refused, so that a mistyped ``--run-dir`` never gets its
    files mixed with a run's, nor its temporaries cleaned. Removes the temporaries a killed run left in it."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise SarcomriError(f"{run_dir} is a file, not a run folder")
    if run_dir.is_dir() and not (run_dir / "config.yaml").is_file() and any(
            not is_temporary(entry.name) for entry in run_dir.iterdir()):
        raise SarcomriError(f"{run_dir} is a non-empty folder that is not a sarcomri run folder (it has no "
                            "config.yaml): choose a new or empty run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(run_dir)
    return run_dir


class InputsChangedError(SarcomriError):
    """A run folder holds results made from other inputs (cohort content, settings or code) than the current."""


@dataclass
class RunRecord:
    """``<run>/inputs.json``: the cohort fingerprint and each artifact's key, as last recorded."""

    run_dir: Path
    cohort: CohortFingerprint | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    exists: bool = False

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """The record of ``run_dir`` (empty when there is none yet)."""
        run_dir = Path(run_dir)
        path = run_dir / RECORD
        if not path.is_file():
            return cls(run_dir)
        data = json.loads(path.read_text())
        cohort = CohortFingerprint.from_json(data["cohort"]) if data.get("cohort") else None
        return cls(run_dir, cohort, dict(data.get("artifacts", {})), exists=True)

    def matches(self, name: str, key: str) -> bool:
        """True when ``name`` exists and was recorded with ``key``."""
        return (self.run_dir / name).exists() and self.artifacts.get(name) == key

    def stale(self, wanted: dict[str, str]) -> list[str]:
        """The artifacts on disk that ``wanted`` does not vouch for (see the module docstring)."""
        out = [n for n, k in wanted.items() if (self.run_dir / n).exists() and self.artifacts.get(n) != k]
        return out + [n for n in self.artifacts if n not in wanted and (self.run_dir / n).exists()]

    def reconcile(self, cohort: CohortFingerprint, wanted: dict[str, str], rerun_changed: bool = False) -> list[str]:
        """Stop on stale artifacts (or remove them with ``rerun_changed``), then record ``wanted``; returns
        the removed artifacts."""
        stale = self.stale(wanted)
        if stale and not rerun_changed:
            raise InputsChangedError(self.explain(cohort, stale))
        for name in stale:
            path = self.run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self.cohort, self.artifacts, self.exists = cohort, dict(wanted), True
        write_json(self.run_dir / RECORD, {"sarcomri": __version__, "artifacts": self.artifacts,
                                           "cohort": cohort.to_json()}, overwrite=True)
        return stale

    def explain(self, cohort: CohortFingerprint, stale: list[str]) -> str:
        """Why ``stale`` are out of date, what they are, and the ways on."""
        if not self.exists:
            why = ["it has no record of the inputs its results were made from (made by an earlier sarcomri)"]
        else:
            why = (describe_changes(self.cohort, cohort) if self.cohort is not None else []) or [
                "the settings, or the version of the code that makes them, changed"]
        return (f"{self.run_dir} holds results made from other inputs than now: {'; '.join(why)}. "
                f"Out of date: {few(stale, 6)}. Use a new run folder, or rerun with --rerun-changed to recompute "
                "what the change affects (the out-of-date results are deleted first).")

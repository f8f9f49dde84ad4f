"""The stage ledger of a study run: which stages finished, with which inputs, so a rerun redoes only what changed.

Each stage has a *key*: a hash of its own config section, of its ``inputs`` (the content of what it reads from
outside the run, e.g. the cohort's fingerprint, evaluated when the stage comes up, after the stages before it
ran) and of the keys of the stages it reads. The ledger
(``<run>/stages.json``) records, per stage, the key it is running with (``started``) and the key it finished
with (``finished``) plus the outputs it promised. A stage is skipped when it finished with the current key
and its outputs still exist. A stage whose key changed since it started (a config change, or a changed
upstream stage) has its folder cleared before it runs again; a stage that crashed with the same key runs again
on top of what it left, so its own resumable steps (finished grid jobs, checkpoints) are kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sarcomri.io.atomic import write_json

LEDGER = "stages.json"


def stage_key(section: Any, upstream: Iterable[str] = ()) -> str:
    """A stable hash of a stage's config section (JSON-able) and its upstream stages' keys."""
    text = json.dumps({"section": section, "upstream": list(upstream)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Stage:
    """One step of a study: ``run()`` writes into ``folders`` (relative to the run folder) the ``outputs``.

    ``inputs``, when given, returns the key of what the stage reads from outside the run folder's stages (the
    cohort content); it is part of the stage's key."""

    name: str
    section: Any
    run: Callable[[], Any]
    folders: Sequence[str]
    outputs: Sequence[str] = ()
    after: Sequence[str] = ()
    inputs: Callable[[], Any] | None = None
    key: str = field(default="", init=False)


class Ledger:
    """``<run>/stages.json``: read on open, rewritten atomically after every change."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        path = self.run_dir / LEDGER
        self.entries: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}

    def _save(self) -> None:
        write_json(self.run_dir / LEDGER, self.entries, overwrite=True)

    def is_current(self, stage: Stage) -> bool:
        """Finished with this key, and every promised output is still on disk."""
        entry = self.entries.get(stage.name, {})
        return entry.get("finished") == stage.key and all((self.run_dir / o).exists() for o in stage.outputs)

    def start(self, stage: Stage) -> None:
        """Record the start; clear the stage's folders when it was last started with another key."""
        entry = self.entries.get(stage.name, {})
        if entry.get("started") not in (None, stage.key):
            for name in stage.folders:
                folder = self.run_dir / name
                if folder.resolve() == self.run_dir.resolve():
                    raise ValueError(f"stage {stage.name!r} names the run folder itself as its folder")
                if folder.is_dir():
                    shutil.rmtree(folder)
                elif folder.exists():
                    folder.unlink()
        self.entries[stage.name] = {"started": stage.key, "finished": None}
        self._save()

    def finish(self, stage: Stage, seconds: float) -> None:
        self.entries[stage.name] = {"started": stage.key, "finished": stage.key, "seconds": round(seconds, 1),
                                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                                    "outputs": list(stage.outputs)}
        self._save()


def run_stages(run_dir: str | Path, stages: Sequence[Stage], log: Callable[[str], None] = print) -> dict[str, str]:
    """Run the stages in order, skipping current ones; returns each stage's status ('skipped' or 'ran')."""
    import time

    ledger = Ledger(run_dir)
    keys: dict[str, str] = {}
    status: dict[str, str] = {}
    for stage in stages:
        missing = [a for a in stage.after if a not in keys]
        if missing:
            raise ValueError(f"stage {stage.name!r} comes after {missing}, which are not earlier in the list")
        section = stage.section if stage.inputs is None else {"section": stage.section, "inputs": stage.inputs()}
        stage.key = stage_key(section, [keys[a] for a in stage.after])
        keys[stage.name] = stage.key
        if ledger.is_current(stage):
            log(f"stage {stage.name}: up to date, skipped")
            status[stage.name] = "skipped"
            continue
        ledger.start(stage)
        t0 = time.perf_counter()
        stage.run()
        seconds = time.perf_counter() - t0
        lost = [o for o in stage.outputs if not (Path(run_dir) / o).exists()]
        if lost:
            raise RuntimeError(f"stage {stage.name!r} did not write {lost}")
        ledger.finish(stage, seconds)
        log(f"stage {stage.name}: done in {seconds:.0f} s")
        status[stage.name] = "ran"
    return status

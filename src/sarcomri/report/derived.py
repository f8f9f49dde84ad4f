"""The analysis tables a report renders, and what the report does when a run folder lacks them.

The report computes nothing: every number on the page is a cell of a table an analysis stage wrote
(:mod:`sarcomri.analysis.published`), the classification run's ``tables/`` and the readers' ``tables/``.

A folder made before those tables existed, or whose tables are stale (their ``definition.csv`` does not match
the tables and reads they are made from now, or the reader cut asked for), gets them computed once by the
analysis stage's own function and written where that stage writes them; the report then renders them, and a
later report (or anyone) reads the same tables:

* ``<run>/tables/``: :func:`sarcomri.classification.report_tables`, as ``combine_tables`` calls it;
* the readers' tables: :func:`sarcomri.classification.reader_report_tables`, as the study's readers stage
  calls it, into the study's ``readers/tables/`` (a study folder) or the run's ``readers/tables/`` (a bare
  classification run, whose reads come from the run, the cohort or ``--readers``).

The reader cut is the study's ``readers.cut`` (its config.yaml), else the config's default
(:class:`sarcomri.config.ReadersSection`): never a constant of the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sarcomri.runs import StudyRun

logger = logging.getLogger("sarcomri.report")


def default_reader_cut() -> float:
    """The reader cut of a study config that does not set one (``readers.cut``'s default)."""
    from sarcomri.study_config import ReadersSection

    return float(ReadersSection.model_fields["cut"].default)


def study_reader_cut(study_dir: str | Path) -> float:
    """The ``readers.cut`` of a study folder's config.yaml (its default when the folder has no config)."""
    cut = ((StudyRun(study_dir).raw_config() or {}).get("readers") or {}).get("cut")
    return default_reader_cut() if cut is None else float(cut)


def ensure_model_tables(run_dir: str | Path) -> bool:
    """Write the classification run's report tables when they are missing or stale; True when written."""
    from sarcomri.analysis.published import is_current, model_cutoff
    from sarcomri.classification import read_definition, report_inputs_key, report_sources, report_tables
    from sarcomri.runs import ClassificationRun

    run = ClassificationRun(run_dir)
    found = report_sources(run)
    if found["likelihood"] is None:
        return False
    settings = {"cutoff": model_cutoff(found["per_sequence"], found["summed_threshold"])}
    if is_current(read_definition(run.tables_dir), settings, report_inputs_key(run_dir)):
        return False
    logger.info("report: %s lacks current report tables: computing them (sarcomri.classification.report_tables)",
                run.tables_dir)
    report_tables(run_dir)
    return True


def ensure_reader_tables(run_dir: str | Path, reads_path: str | Path, folder: str | Path, positive: str,
                         negative: str, cut: float) -> list[str]:
    """Write the model-vs-readers tables of ``reads_path`` into ``folder`` when they are missing or stale (other
    reads, run tables or cut); returns the names of the tables there (its ``definition.csv``'s list)."""
    from sarcomri.analysis.published import is_current
    from sarcomri.classification import read_definition, reader_report_tables, reader_settings, report_inputs_key

    settings = reader_settings(run_dir, cut, positive, negative)
    found = read_definition(folder)
    if not is_current(found, settings, report_inputs_key(run_dir, reads_path)):
        logger.info("report: %s lacks current readers tables (reader cut %g): computing them "
                    "(sarcomri.classification.reader_report_tables)", folder, cut)
        reader_report_tables(run_dir, reads_path, folder, positive, negative, cut)
        found = read_definition(folder)
    return [name for name in str(found["tables"].iloc[0]).split("+") if name] if found is not None else []

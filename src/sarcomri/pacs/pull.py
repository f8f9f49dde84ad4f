"""A cohort from a PACS (``sarcomri ingest dicomweb+http://HOST/dicom-web --study UID -o COHORT``).

1. The query's searches (:class:`~sarcomri.pacs.query.StudyQuery`) list the studies; a study UID or accession
   number that matches nothing is an error naming which one (``--study #2``), never the value.
2. Each study's series and instances are listed and every instance not yet staged is retrieved (a whole series in
   one request when none of it is staged, else only the missing instances), de-identified as it arrives and
   written whole (:class:`~sarcomri.pacs.staging.Staging`). Every exchange is retried with back-off
   (:mod:`sarcomri.pacs.retry`); a series that still lacks instances, or lists none, is an error naming the
   patient's pseudonym and the series number.
3. Folder ingestion (:func:`sarcomri.io.ingest.ingest`) makes the cohort from the staging folder, under the
   pseudonyms the pull gave, so a pulled cohort equals the folder ingestion of the same studies with the same
   key; then the staging folder is removed.

Nothing is written to the cohort until every study is in: an error leaves no cohort, and the rerun of the same
command retrieves only what is missing (a complete study is not asked for again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from tqdm import tqdm

from sarcomri.cohort.manifest import is_cohort_folder
from sarcomri.errors import InputError
from sarcomri.io.atomic import check_folder_replaceable, clean_temporaries
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import IngestReport, ingest
from sarcomri.io.labels import Labels
from sarcomri.pacs.address import PacsAddress
from sarcomri.pacs.model import Pacs, StudyRef
from sarcomri.pacs.query import StudyQuery
from sarcomri.pacs.retry import Backoff, PacsError, with_retries
from sarcomri.pacs.staging import Staging

Log = Callable[[str], None]


@dataclass
class PullReport:
    """What a pull found and fetched (counts only)."""

    studies: int = 0
    series: int = 0
    instances: int = 0
    retrieved: int = 0
    already_staged: int = 0  # complete studies a previous run had staged


def open_pacs(address: PacsAddress, timeout: float = 30.0) -> Pacs:
    """The :class:`~sarcomri.pacs.model.Pacs` of ``address``."""
    if address.kind == "dicomweb":
        from sarcomri.pacs.dicomweb import DicomWebPacs

        return DicomWebPacs(address, timeout=timeout)
    from sarcomri.pacs.dimse import DimsePacs

    return DimsePacs(address, timeout=timeout)


def staging_key(pseudonymizer: Pseudonymizer) -> bytes:
    """The key that names staged files: the de-identification key, or a digest of the pseudonym mapping."""
    if pseudonymizer.key is not None:
        return pseudonymizer.key
    assert pseudonymizer.mapping is not None
    return hashlib.sha256(repr(sorted(pseudonymizer.mapping.items())).encode()).digest()


def find_studies(pacs: Pacs, query: StudyQuery, pseudonym_of: Callable[[str], str], backoff: Backoff,
                 sleep: Callable[[float], None] = time.sleep) -> list[StudyRef]:
    """The studies ``query`` asks for, each once."""
    found: dict[str, StudyRef] = {}
    for what, filters in query.searches():
        studies = with_retries(lambda filters=filters: pacs.find_studies(filters), f"the study search of {what}",
                               pacs.where, backoff, sleep)
        studies = [s for s in studies if query.keep(s, pseudonym_of)]
        if not studies and what.startswith(("--study", "--accession")):
            raise PacsError(f"{pacs.where}: no study matches {what}")
        for s in studies:
            if not s.patient_id:
                raise PacsError(f"{pacs.where}: a study found by {what} has no PatientID: cannot tell whose it is")
            found.setdefault(s.study_uid, s)
    if not found:
        raise PacsError(f"{pacs.where}: no study matches the query")
    return list(found.values())


def pull_to_staging(pacs: Pacs, query: StudyQuery, staging: Staging, pseudonymizer: Pseudonymizer,
                    backoff: Backoff = Backoff(), log: Log | None = None, progress: bool = True,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[PullReport, list[str]]:
    """Stage every study of ``query`` from ``pacs``; returns the report and the StudyInstanceUIDs staged."""
    staging.create()
    clean_temporaries(staging.root)
    studies = find_studies(pacs, query, pseudonymizer, backoff, sleep)
    pseudonyms = {s.study_uid: pseudonymizer(s.patient_id, where=f"a study of {pacs.where}") for s in studies}
    report = PullReport(studies=len(studies))
    bar = tqdm(total=0, unit="instance", desc="pulling", disable=not progress, leave=False)
    try:
        for study in sorted(studies, key=lambda s: (pseudonyms[s.study_uid], s.study_date)):
            pid = pseudonyms[study.study_uid]
            done = staging.completed(study.study_uid)
            if done is not None:
                report.already_staged += 1
                report.series += int(done["series"])
                report.instances += int(done["instances"])
                if log:
                    log(f"{pid}: already pulled")
                continue
            series_list = with_retries(lambda study=study: pacs.find_series(study.study_uid),
                                       f"the series search of {pid}", pacs.where, backoff, sleep)
            if not series_list:
                raise PacsError(f"{pacs.where}: the PACS lists no series in a study of {pid}")
            n_instances = n_new = 0
            for series in sorted(series_list, key=lambda s: (s.number or 0, s.series_uid)):
                sops = with_retries(lambda series=series, study=study: pacs.find_instances(study.study_uid,
                                                                                                series.series_uid),
                                    f"the instance search of series {series.number} of {pid}", pacs.where,
                                    backoff, sleep)
                if not sops:
                    raise PacsError(f"{pacs.where}: series {series.number} of {pid} lists no instance")
                bar.total += len(sops)
                bar.refresh()
                new = _retrieve_series(pacs, staging, study, series.series_uid, series.number, sops, pid, backoff,
                                       sleep, bar)
                n_instances += len(sops)
                n_new += new
            staging.mark_complete(study.study_uid, pid, len(series_list), n_instances)
            report.series += len(series_list)
            report.instances += n_instances
            report.retrieved += n_new
            if log:
                log(f"{pid}: {len(series_list)} series, {n_instances} instances ({n_new} retrieved now)")
    finally:
        bar.close()
        getattr(pacs, "close", lambda: None)()  # a DIMSE node's search association
    return report, [s.study_uid for s in studies]


def _retrieve_series(pacs: Pacs, staging: Staging, study: StudyRef, series_uid: str, number: int | None,
                     sops: list[str], pid: str, backoff: Backoff, sleep: Callable[[float], None], bar) -> int:
    """Retrieve the instances of a series not yet staged; returns how many were written."""
    wanted = set(sops)
    bar.update(sum(staging.has(study.study_uid, series_uid, s) for s in sops))
    written = 0

    def sink(ds: pydicom.Dataset) -> None:
        nonlocal written
        sop = str(ds.get("SOPInstanceUID", ""))
        if str(ds.get("SeriesInstanceUID", "")) != series_uid or sop not in wanted:
            return  # not asked for (a PACS may send more): never staged
        if str(ds.get("PatientID", "") or "").strip() != study.patient_id:
            raise PacsError(f"{pacs.where}: an instance of series {number} of {pid} names another patient")
        if staging.has(study.study_uid, series_uid, sop):
            return
        staging.write(ds, pid)
        written += 1
        bar.update(1)

    def attempt() -> None:
        missing = [s for s in sops if not staging.has(study.study_uid, series_uid, s)]
        if missing:
            pacs.retrieve(study.study_uid, series_uid, None if len(missing) == len(sops) else missing, sink)

    with_retries(attempt, f"the retrieval of series {number} of {pid}", pacs.where, backoff, sleep)
    left = [s for s in sops if not staging.has(study.study_uid, series_uid, s)]
    if left:
        raise PacsError(f"{pacs.where}: series {number} of {pid}: {len(left)} of {len(sops)} instance(s) were not "
                        "sent; rerun the command to try again")
    return written


def require_key(pseudonymizer: Pseudonymizer) -> None:
    """Refuse a pull under a random key: a rerun would name the same patients differently."""
    if not pseudonymizer.reproducible:
        raise InputError(None, "a pull from a PACS needs a de-identification key (--deid-key or $SARCOMRI_DEID_KEY) "
                         "or --pseudonyms, so that a rerun continues a pull under the same pseudonyms")


def staged_pseudonymizer(pseudonymizer: Pseudonymizer, pseudonyms: list[str]) -> Pseudonymizer:
    """What ingests a staging folder: each staged pseudonym stays itself, with ``pseudonymizer``'s provenance."""
    return Pseudonymizer(mapping={p: p for p in pseudonyms},
                         method=f"{pseudonymizer.method} (given at the pull from the PACS)",
                         reproducible=pseudonymizer.reproducible, source=pseudonymizer.source)


def stage_study(pacs: Pacs, study_uid: str, root: str | Path, pseudonymizer: Pseudonymizer,
                backoff: Backoff = Backoff(), log: Log | None = None,
                progress: bool = True) -> tuple[Path, Pseudonymizer]:
    """Stage one study under ``root`` (``sarcomri predict`` from a PACS); returns the folder of its de-identified
    instances and the pseudonymizer that ingests them."""
    require_key(pseudonymizer)
    staging = Staging(root, staging_key(pseudonymizer))
    pull_to_staging(pacs, StudyQuery(study_uids=(study_uid,)), staging, pseudonymizer, backoff, log, progress)
    return staging.study_dir(study_uid), staged_pseudonymizer(pseudonymizer, staging.pseudonyms())


def pull_cohort(address: PacsAddress, query: StudyQuery, out: str | Path, *, pseudonymizer: Pseudonymizer,
                labels: Labels | None = None, sequence_map: str | Path | None = None,
                compute_adc: bool | None = None, overwrite: bool = False, log: Log | None = None,
                warn: Log | None = None, progress: bool = True, timeout: float = 30.0,
                backoff: Backoff = Backoff(), pacs: Pacs | None = None) -> tuple[PullReport, IngestReport]:
    """Pull the studies of ``query`` from the PACS at ``address`` into the new cohort folder ``out`` (see the
    module's notes); returns the pull's and the ingestion's reports."""
    out = Path(out)
    require_key(pseudonymizer)
    check_folder_replaceable(out, overwrite, replaceable=is_cohort_folder)
    staging = Staging(out.parent / f".{out.name}.pull", staging_key(pseudonymizer))
    pacs = pacs or open_pacs(address, timeout)
    pulled, studies = pull_to_staging(pacs, query, staging, pseudonymizer, backoff, log, progress)
    removed = staging.keep_only(studies)  # studies an earlier pull with another query staged: not this cohort's
    if removed and log:
        log(f"{removed} stud{'y' if removed == 1 else 'ies'} staged by an earlier pull and not asked for now: removed")
    staged = staged_pseudonymizer(pseudonymizer, staging.pseudonyms())
    if labels is not None and labels.source:
        labels = dataclasses.replace(labels, table=labels.table.rename(index=lambda i: _pseudonym(pseudonymizer, i)))
    ingested = ingest(staging.dicom, out, labels=labels, pseudonymizer=staged, sequence_map=sequence_map,
                      compute_adc=compute_adc, overwrite=overwrite, log=log, warn=warn)
    shutil.rmtree(staging.root, ignore_errors=True)
    return pulled, ingested


def _pseudonym(pseudonymizer: Pseudonymizer, source_id: str) -> str:
    """A labels row's pseudonym (rows the mapping lacks keep their id: they match no pulled patient)."""
    if pseudonymizer.mapping is not None:
        return pseudonymizer.mapping.get(str(source_id).strip(), str(source_id))
    return pseudonymizer(str(source_id))

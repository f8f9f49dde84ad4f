"""A PACS over DICOMweb (dicomweb-client): QIDO-RS to find, WADO-RS to retrieve, STOW-RS to store.

Failures are sorted for the pull's retries: a refused or reset connection, a timeout, an answer of 5xx or 429, or
a multipart answer cut short are :class:`TransientError`; any other 4xx answer is a :class:`PacsError` at once
(404 on a search or a retrieval: the PACS has no such study or series).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TypeVar

import pydicom
import requests

from sarcomri.pacs.address import PASSWORD_ENV, TOKEN_ENV, USER_ENV, PacsAddress
from sarcomri.pacs.model import STUDY_ATTRIBUTES, SeriesRef, Sink, StudyRef, check_filters
from sarcomri.pacs.retry import PacsError, TransientError

T = TypeVar("T")
#: Results asked for per QIDO request.
PAGE = 1000
_STUDY_FIELDS = ["StudyInstanceUID", "PatientID", "StudyDate"]
_SERIES_FIELDS = ["SeriesInstanceUID", "SeriesNumber", "Modality", "NumberOfSeriesRelatedInstances"]


class _TimeoutSession(requests.Session):
    """A session whose every request has a timeout (requests has none by default)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, **kwargs):  # noqa: D102 - requests' own
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


class DicomWebPacs:
    """The DICOMweb service at ``address.url``; ``timeout`` seconds for each request to answer (and between two
    chunks of a retrieval)."""

    def __init__(self, address: PacsAddress, timeout: float = 30.0):
        from dicomweb_client.api import DICOMwebClient

        self.where = str(address)
        self.timeout = timeout
        session = _TimeoutSession(timeout)
        if os.environ.get(TOKEN_ENV):
            session.headers["Authorization"] = f"Bearer {os.environ[TOKEN_ENV]}"
        elif os.environ.get(USER_ENV):
            session.auth = (os.environ[USER_ENV], os.environ.get(PASSWORD_ENV, ""))
        self.client = DICOMwebClient(address.url, session=session, timeout=timeout)
        self.client.set_http_retry_params(retry=False)  # retries are the pull's (sarcomri.pacs.retry)

    def find_studies(self, filters: dict[str, str]) -> list[StudyRef]:
        check_filters(filters)
        found = self._pages(lambda limit, offset: self.client.search_for_studies(
            search_filters=filters, fields=_STUDY_FIELDS, limit=limit, offset=offset), "a study search",
            "0020000D")
        studies = [StudyRef.of(_from_json(item)) for item in found]
        return [s for s in studies if s.study_uid]

    def find_series(self, study_uid: str) -> list[SeriesRef]:
        found = self._pages(lambda limit, offset: self.client.search_for_series(
            study_uid, fields=_SERIES_FIELDS, limit=limit, offset=offset), "a series search", "0020000E")
        series = [SeriesRef.of(_from_json(item)) for item in found]
        return [s for s in series if s.series_uid]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        found = self._pages(lambda limit, offset: self.client.search_for_instances(
            study_uid, series_uid, fields=["SOPInstanceUID"], limit=limit, offset=offset), "an instance search",
            "00080018")
        uids = [str((item.get("00080018") or {}).get("Value", [""])[0]) for item in found]
        return [uid for uid in uids if uid]

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str] | None, sink: Sink) -> None:
        if sop_uids is None:
            self._call(lambda: [sink(ds) for ds in self.client.iter_series(study_uid, series_uid)],
                       "a series retrieval")
            return
        for sop in sop_uids:
            sink(self._call(lambda sop=sop: self.client.retrieve_instance(study_uid, series_uid, sop),
                            "an instance retrieval"))

    def study_attributes(self, study_uid: str) -> pydicom.Dataset | None:
        found = self._call(lambda: self.client.search_for_studies(
            search_filters={"StudyInstanceUID": study_uid}, fields=list(STUDY_ATTRIBUTES)), "a study search")
        return _from_json(found[0]) if found else None

    def store(self, datasets: list[pydicom.Dataset]) -> None:
        answer = self._call(lambda: self.client.store_instances(datasets), "storing")
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            raise PacsError(f"{self.where}: the PACS refused {len(failed.value)} of {len(datasets)} instance(s)")

    def _pages(self, search: Callable[[int, int], list[dict]], what: str, uid_tag: str) -> list[dict]:
        """Every result of a QIDO search, asked for in pages of :data:`PAGE` (``search(limit, offset)``); each
        result once (by its UID, tag ``uid_tag``). A page shorter than asked for, or one that brings nothing new
        (a server that ignores ``offset``), is the last."""
        results: dict[str, dict] = {}
        offset = 0
        while True:
            page = self._call(lambda offset=offset: search(PAGE, offset), what)
            new = 0
            for item in page:
                uid = str((item.get(uid_tag) or {}).get("Value", [""])[0])
                if uid and uid not in results:
                    results[uid] = item
                    new += 1
            if len(page) < PAGE or new == 0:
                return list(results.values())
            offset += len(page)

    def _call(self, call: Callable[[], T], what: str) -> T:
        """``call()`` with its failures sorted into :class:`TransientError` and :class:`PacsError`."""
        try:
            return call()
        except requests.HTTPError as err:
            response = err.response
            code = response.status_code if response is not None else 0
            text = f"the PACS answered {code} {getattr(response, 'reason', '') or ''}".rstrip()
            if code >= 500 or code == 429:
                raise TransientError(text) from None
            if code == 404:
                raise PacsError(f"{self.where}: {what}: nothing found ({text})") from None
            raise PacsError(f"{self.where}: {what}: {text}") from None
        except requests.Timeout:
            raise TransientError(f"no answer within {self.timeout:g} s") from None
        except requests.ConnectionError as err:
            raise TransientError(f"cannot connect ({_reason(err)})") from None
        except requests.exceptions.ChunkedEncodingError as err:
            raise TransientError(f"the answer was cut short ({_reason(err)})") from None
        except (ValueError, EOFError, pydicom.errors.InvalidDicomError) as err:
            if "multipart" in str(err).lower() or isinstance(err, EOFError | pydicom.errors.InvalidDicomError):
                raise TransientError(f"an unreadable or truncated instance ({type(err).__name__})") from None
            raise


def _reason(err: Exception) -> str:
    """The innermost reason of a requests error, on one line (e.g. 'Connection refused')."""
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out",
                   "Remote end closed connection"):
        if marker in text:
            return marker
    return type(err).__name__


def _from_json(item: dict) -> pydicom.Dataset:
    """A QIDO result as a dataset, without pydicom's warnings about values longer than their VR allows (PACS
    data often holds them; only UIDs, numbers and dates are read from it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pydicom.Dataset.from_json(item)

"""A PACS over DIMSE (pynetdicom): C-FIND to find (study root), C-GET to retrieve, C-STORE to store.

C-GET brings the instances back over the association the pull opened, so no port has to be opened on this
machine and the PACS needs to know only the calling AE title (C-MOVE would need it to know this machine's
address and port). Failures are sorted for the pull's retries: a refused, rejected, aborted or timed-out
association is a :class:`TransientError`; a C-FIND/C-GET failure status, or instances the PACS reports as failed,
is a :class:`PacsError` (with the status in hexadecimal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset

from sarcomri.pacs.address import PacsAddress
from sarcomri.pacs.model import STUDY_ATTRIBUTES, SeriesRef, Sink, StudyRef, check_filters
from sarcomri.pacs.retry import PacsError, TransientError

#: The storage classes a pull accepts over C-GET (an MR study and its masks) and a push may send.
STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR Storage
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR Storage
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR Storage
)
_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
_GET = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Query/Retrieve Information Model - GET
_PENDING = (0xFF00, 0xFF01)
_TRANSFER_SYNTAXES = [pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian,
                      pydicom.uid.DeflatedExplicitVRLittleEndian, pydicom.uid.JPEG2000Lossless,
                      pydicom.uid.JPEGLSLossless, pydicom.uid.RLELossless, pydicom.uid.JPEGLosslessSV1,
                      pydicom.uid.JPEG2000, pydicom.uid.JPEGBaseline8Bit]


class DimsePacs:
    """The DICOM node of ``address``; ``timeout`` seconds for the association and for each message."""

    def __init__(self, address: PacsAddress, timeout: float = 30.0):
        self.address = address
        self.where = str(address)
        self.timeout = timeout
        self._finder = None  # one association kept for the searches (opening one per C-FIND is the slow part)

    def close(self) -> None:
        """Release the association kept for the searches."""
        finder, self._finder = self._finder, None
        if finder is not None:
            assoc, ae = finder
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def find_studies(self, filters: dict[str, str]) -> list[StudyRef]:
        check_filters(filters)
        found = self._find("STUDY", {"StudyInstanceUID": "", "PatientID": "", "StudyDate": "", **filters},
                           "a study search")
        studies = [StudyRef.of(d) for d in found]
        return [s for s in studies if s.study_uid]

    def find_series(self, study_uid: str) -> list[SeriesRef]:
        found = self._find("SERIES", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "SeriesNumber": "",
                                      "Modality": "", "NumberOfSeriesRelatedInstances": ""}, "a series search")
        series = [SeriesRef.of(d) for d in found]
        return [s for s in series if s.series_uid]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        found = self._find("IMAGE", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
                                     "SOPInstanceUID": ""}, "an instance search")
        return [str(d.SOPInstanceUID) for d in found if d.get("SOPInstanceUID")]

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str] | None, sink: Sink) -> None:
        from pynetdicom import evt

        errors: list[BaseException] = []

        def on_store(event) -> int:
            try:
                ds = event.dataset
                ds.file_meta = FileMetaDataset(event.file_meta)
                sink(ds)
            except Exception as err:  # noqa: BLE001 - reported after the C-GET, with its own type
                errors.append(err)
                return 0xC211  # refused: the PACS counts it as failed
            return 0x0000

        query = {"QueryRetrieveLevel": "SERIES" if sop_uids is None else "IMAGE", "StudyInstanceUID": study_uid,
                 "SeriesInstanceUID": series_uid}
        if sop_uids is not None:
            query["SOPInstanceUID"] = list(sop_uids)
        with self._association(get=True, handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            last = None
            for status, _ in assoc.send_c_get(_dataset(query), _GET):
                if not status:
                    raise TransientError("the C-GET was interrupted (no status: association aborted or timed out)")
                last = status
            if errors:
                err = errors[0]
                if isinstance(err, PacsError | TransientError):
                    raise err
                raise TransientError(f"an unreadable instance ({type(err).__name__})")
            code = int(last.Status) if last is not None else None
            if code not in (0x0000, 0xB000):
                failed = int(last.get("NumberOfFailedSuboperations", 0) or 0) if last is not None else 0
                raise PacsError(f"{self.where}: the C-GET ended with status 0x{code or 0:04X}"
                                + (f" ({failed} instance(s) failed)" if failed else ""))

    def study_attributes(self, study_uid: str) -> Dataset | None:
        found = self._find("STUDY", {"StudyInstanceUID": study_uid, **{k: "" for k in STUDY_ATTRIBUTES}},
                           "a study search")
        return found[0] if found else None

    def store(self, datasets: list[Dataset]) -> None:
        with self._association(store=True) as assoc:
            refused = 0
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if not status:
                    raise TransientError("the C-STORE was interrupted (association aborted or timed out)")
                if int(status.Status) not in (0x0000, 0xB000, 0xB007, 0xB006):
                    refused += 1
            if refused:
                raise PacsError(f"{self.where}: the PACS refused {refused} of {len(datasets)} instance(s)")

    def _find(self, level: str, keys: dict, what: str) -> list[Dataset]:
        if self._finder is None or not self._finder[0].is_established:
            self.close()
            self._finder = self._open()
        assoc = self._finder[0]
        out = []
        try:
            for status, identifier in assoc.send_c_find(_dataset({"QueryRetrieveLevel": level, **keys}), _FIND):
                if not status:
                    raise TransientError(f"{what} was interrupted (association aborted or timed out)")
                code = int(status.Status)
                if code in _PENDING:
                    if identifier is not None:
                        out.append(identifier)
                elif code != 0x0000:
                    raise PacsError(f"{self.where}: {what} failed with C-FIND status 0x{code:04X}")
        except BaseException:
            self.close()  # the next search opens a fresh association
            raise
        return out

    @contextmanager
    def _association(self, get: bool = False, store: bool = False, handlers=()) -> Iterator:
        """An association with the node for finding (and getting or storing), released afterwards."""
        assoc, ae = self._open(get, store, handlers)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def _open(self, get: bool = False, store: bool = False, handlers=()) -> tuple:
        """(association, application entity): an established association for finding (and getting or
        storing)."""
        from pynetdicom import AE, build_role

        ae = AE(ae_title=self.address.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        roles = []
        if store:
            for uid in STORAGE_CLASSES:
                ae.add_requested_context(uid, _TRANSFER_SYNTAXES[:2])
        else:
            ae.add_requested_context(_FIND)
        if get:
            ae.add_requested_context(_GET)
            for uid in STORAGE_CLASSES:
                ae.add_requested_context(uid, _TRANSFER_SYNTAXES)
                roles.append(build_role(uid, scp_role=True))
        try:
            assoc = ae.associate(self.address.host, self.address.port, ae_title=self.address.called_aet,
                                 ext_neg=roles or None, evt_handlers=list(handlers))
        except OSError as err:
            raise TransientError(f"cannot connect ({err.strerror or type(err).__name__})") from None
        if not assoc.is_established:
            ae.shutdown()
            if assoc.is_rejected:
                raise PacsError(f"{self.where}: the PACS rejected the association (calling AE title "
                                f"{self.address.calling_aet!r}: is it known to the PACS?)")
            raise TransientError("cannot connect (no association: refused, aborted or timed out)")
        return assoc, ae


def _dataset(keys: dict) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds

"""PACS addresses as the command line takes them.

* ``dicomweb+http://HOST[:PORT]/PATH`` (or ``dicomweb+https://``): a DICOMweb service root (QIDO-RS, WADO-RS,
  STOW-RS under it), e.g. ``dicomweb+http://pacs.local:8042/dicom-web``;
* ``dimse://CALLED_AET@HOST:PORT``: a DICOM node (C-FIND, C-GET, C-MOVE, C-STORE); the calling AE title is
  ``SARCOMRI`` unless the address ends with ``?calling=AET``.

User names and passwords are never taken from an address (an address is printed in messages and logs); a
DICOMweb server that needs them gets a bearer token or basic credentials from the environment
(:data:`TOKEN_ENV`, :data:`USER_ENV` and :data:`PASSWORD_ENV`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sarcomri.errors import InputError

DICOMWEB_SCHEMES = ("dicomweb+http", "dicomweb+https")
DIMSE_SCHEME = "dimse"
DEFAULT_CALLING_AET = "SARCOMRI"
TOKEN_ENV = "SARCOMRI_PACS_TOKEN"
USER_ENV = "SARCOMRI_PACS_USER"
PASSWORD_ENV = "SARCOMRI_PACS_PASSWORD"
_AET = re.compile(r"^[\x20-\x7e]{1,16}$")


@dataclass(frozen=True)
class PacsAddress:
    """Where a PACS answers: a DICOMweb root (``url``) or a DICOM node (``host``, ``port``, AE titles)."""

    kind: str  # "dicomweb" or "dimse"
    url: str = ""
    host: str = ""
    port: int = 0
    called_aet: str = ""
    calling_aet: str = DEFAULT_CALLING_AET

    def __str__(self) -> str:
        if self.kind == "dicomweb":
            return f"dicomweb+{self.url}"
        suffix = "" if self.calling_aet == DEFAULT_CALLING_AET else f"?calling={self.calling_aet}"
        return f"dimse://{self.called_aet}@{self.host}:{self.port}{suffix}"


def is_pacs_address(text: str) -> bool:
    """True when ``text`` names a PACS rather than a folder."""
    return text.startswith(tuple(f"{s}://" for s in (*DICOMWEB_SCHEMES, DIMSE_SCHEME)))


def parse_address(text: str) -> PacsAddress:
    """The :class:`PacsAddress` of ``text``; :class:`InputError` saying what is wrong otherwise."""
    parts = urlsplit(text)
    if parts.scheme in DICOMWEB_SCHEMES:
        if not parts.hostname:
            raise InputError(None, f"{text}: a DICOMweb address needs a host, e.g. dicomweb+http://HOST/dicom-web")
        if parts.username or parts.password:
            raise InputError(None, "a PACS address must not hold a user name or password (addresses are printed); "
                             f"set {TOKEN_ENV}, or {USER_ENV} and {PASSWORD_ENV}")
        if parts.query or parts.fragment:
            raise InputError(None, f"{text}: a DICOMweb address takes no query or fragment")
        _port(parts, text)
        url = f"{parts.scheme.removeprefix('dicomweb+')}://{parts.netloc}{parts.path.rstrip('/')}"
        return PacsAddress(kind="dicomweb", url=url)
    if parts.scheme == DIMSE_SCHEME:
        if not parts.username or not parts.hostname or parts.password:
            raise InputError(None, f"{text}: a DICOM node is dimse://CALLED_AET@HOST:PORT")
        port = _port(parts, text)
        if port is None:
            raise InputError(None, f"{text}: a DICOM node needs its port, e.g. dimse://ORTHANC@pacs.local:4242")
        if parts.path not in ("", "/") or parts.fragment:
            raise InputError(None, f"{text}: a DICOM node address has no path")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"calling"}
        if unknown:
            raise InputError(None, f"{text}: unknown option {sorted(unknown)[0]!r} (only calling=AET)")
        calling = query.get("calling", [DEFAULT_CALLING_AET])[-1]
        for aet in (parts.username, calling):
            if not _AET.match(aet) or aet.strip() != aet or "\\" in aet:
                raise InputError(None, f"{text}: {aet!r} is not an AE title (1-16 printable characters, no "
                                 "backslash, no leading or trailing space)")
        return PacsAddress(kind="dimse", host=parts.hostname, port=port, called_aet=parts.username,
                           calling_aet=calling)
    raise InputError(None, f"{text}: not a PACS address (dicomweb+http://HOST/PATH or dimse://AET@HOST:PORT)")


def _port(parts, text: str) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise InputError(None, f"{text}: the port is not a number from 1 to 65535") from None

"""A local Orthanc PACS (Debian's ``orthanc`` with its DICOMweb plugin ``orthanc-dicomweb``) started in a folder on
free ports: what the tests and ``benchmarks/pull.py`` pull from and push to, and a way to try the commands of
docs/hospital.md on one machine."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from sarcomri.errors import SarcomriError

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
#: The calling AE title Orthanc is told about (allowed to find, get, move and store).
CALLING_AET = "SARCOMRI"


class OrthancUnavailable(SarcomriError):
    """Orthanc or its DICOMweb plugin is not installed, or the server did not start (the message says which)."""


@dataclass
class Orthanc:
    """A running Orthanc: its REST root, its DICOMweb and DIMSE addresses as sarcomri takes them."""

    process: subprocess.Popen
    base: str
    dicom_port: int
    folder: Path

    @property
    def dicomweb(self) -> str:
        return f"dicomweb+{self.base}/dicom-web"

    @property
    def dimse(self) -> str:
        return f"dimse://ORTHANC@127.0.0.1:{self.dicom_port}"

    def upload(self, folder: Path) -> int:
        """POST every DICOM file under ``folder`` (REST API); returns how many instances Orthanc holds after."""
        from sarcomri.io.dicom import is_dicom_file, walk_files

        with requests.Session() as session:
            for path in walk_files(Path(folder)):
                if is_dicom_file(path):
                    session.post(f"{self.base}/instances", data=path.read_bytes(), timeout=60).raise_for_status()
            return int(session.get(f"{self.base}/statistics", timeout=60).json()["CountInstances"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_orthanc(folder: str | Path, wait: float = 60.0) -> Orthanc:
    """Start Orthanc with its storage under ``folder``; :class:`OrthancUnavailable` when it cannot run here."""
    if not Path(ORTHANC).is_file():
        raise OrthancUnavailable("no Orthanc server (Debian's orthanc package): `apt-get install orthanc "
                                 "orthanc-dicomweb` (.ci/run does)")
    if not DICOMWEB_PLUGIN.is_file():
        raise OrthancUnavailable(f"no Orthanc DICOMweb plugin at {DICOMWEB_PLUGIN}: `apt-get install "
                                 "orthanc-dicomweb`")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    http, dicom = free_port(), free_port()
    config = {
        "Name": "sarcomri", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "DicomCheckCalledAet": False, "SaveJobs": False,
        "HttpCompressionEnabled": False,
        "DicomModalities": {"sarcomri": {"AET": CALLING_AET, "Host": "127.0.0.1", "Port": free_port(),
                                         "AllowGet": True, "AllowMove": True, "AllowFind": True,
                                         "AllowStore": True, "AllowEcho": True}},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    with (folder / "orthanc.log").open("w") as log:
        process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{base}/system", timeout=2).ok:
                return Orthanc(process, base, dicom, folder)
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    tail = (folder / "orthanc.log").read_text().strip().splitlines()[-3:]
    raise OrthancUnavailable(f"Orthanc did not start: {' | '.join(tail)}")

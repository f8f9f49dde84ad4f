"""`sarcomri read serve` as a real server (uvicorn in its own process): a reader logs in over HTTP and reads; the
server is killed (SIGKILL) mid-session and started again; every read it confirmed is there, and the reader
resumes at the next unread case."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sarcomri.read.store import ReadingStore


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run: Path, db: str, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("sarcomri")
    proc = subprocess.Popen([str(exe), "read", "serve", str(run), "--db", db, "--port", str(port),
                             "--owner-token", "owner"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/me").status_code == 401:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(f"the server stopped: {proc.stderr.read()}")
    proc.kill()
    raise AssertionError("the server did not answer within 60 s")


def test_killing_the_server_loses_no_confirmed_read(reading_run):
    run, db, tokens = reading_run
    port = _port()
    base = f"http://127.0.0.1:{port}"
    server = _start(run, db, port)
    try:
        said = server.stderr.readline()
        assert f"http://127.0.0.1:{port}/" in said and "this computer" in said  # localhost unless told otherwise
        client = httpx.Client(base_url=base)
        assert client.post("/api/login", json={"name": "r1", "token": tokens["r1"]}).status_code == 200
        confirmed = []
        for _ in range(2):
            case = client.get("/api/next/first").json()["case"]
            client.post("/api/open", json={"session": "first", "case": case})
            res = client.post("/api/read", json={"session": "first", "case": case, "call_positive": True,
                                                 "certainty": "medium"})
            assert res.status_code == 200
            confirmed.append(case)
        upcoming = client.get("/api/next/first").json()["case"]
    finally:
        server.kill()
        server.wait()
    assert sorted(r["patient_id"] for r in ReadingStore(db).reads()) == sorted(confirmed)
    server = _start(run, db, port)
    try:
        client = httpx.Client(base_url=base)
        assert client.get("/api/next/first").status_code == 401  # a new server: log in again
        client.post("/api/login", json={"name": "r1", "token": tokens["r1"]})
        assert client.get("/api/next/first").json()["case"] == upcoming
        assert [r["patient_id"] for r in client.get("/api/reads").json()["reads"]] == confirmed
    finally:
        server.kill()
        server.wait()

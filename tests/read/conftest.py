"""A real PostgreSQL server for the reading store's tests: Debian's postgresql binaries (``.ci/run`` installs
them) run a throw-away cluster in a temporary folder; as root the server runs as the ``postgres`` user. Tests
that need it skip with the reason only when no server can start."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a fresh PostgreSQL server (a database of its own per test: see ``pg_database``)."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): `apt-get install postgresql` (.ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="sarcomri-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an ordinary user")
        shutil.chown(folder, "postgres", "postgres")
        run_as = [runuser, "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    init = subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "sarcomri", "--no-sync"],
                          capture_output=True, text=True)
    if init.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    start = subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
                            f"-p {port} -h 127.0.0.1 -k {folder} -F", "start"], capture_output=True, text=True)
    if start.returncode:
        log = (folder / "log").read_text() if (folder / "log").is_file() else start.stderr
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {log.strip().splitlines()[-1:]}")
    try:
        yield f"postgresql://sarcomri@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_url, request):
    """A new, empty database on the server for one test; its URL."""
    import psycopg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_url}/{name}"


@pytest.fixture
def reading_run(tiny_cohort, tmp_path):
    """(run folder, database URL, tokens) of a sarcoma-design reading plan (readers r1, r2) over a tiny
    classification run: T2axi, every third patient a test patient, the model's tables written by hand."""
    import pandas as pd
    import yaml

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.read.design import PRESETS, Reader
    from sarcomri.read.plan import create_plan

    cohort = Cohort.load(tiny_cohort)
    run = tmp_path / "run"
    (run / "tables").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "tiny", "cohort": str(tiny_cohort),
                                                     "positive_label": "sarcoma", "sequences": ["T2axi"]}))
    ids = cohort.patient_ids
    pd.DataFrame({"patient_id": ids, "repeat": 0, "fold": 0,
                  "role": ["test" if k % 3 == 0 else "train" for k in range(len(ids))]}).to_csv(run / "splits.csv",
                                                                                              index=False)
    labels = cohort.labels_binary()
    lik = pd.DataFrame({"sequence": "T2axi", "patient_id": ids, "label": [labels[p] for p in ids],
                        "likelihood": [0.2 + 0.05 * k for k in range(len(ids))]})
    lik.to_csv(run / "tables" / "likelihood.csv", index=False)
    pd.DataFrame({"patient_id": ids, "T2axi": [1 if v >= 0.5 else -1 for v in lik["likelihood"]]}).to_csv(
        run / "tables" / "votes.csv", index=False)
    pd.DataFrame({"patient_id": ids, "label": lik["label"], "summed_score": [1 if v >= 0.5 else -1 for v in
                                                                             lik["likelihood"]]}).to_csv(
        run / "tables" / "summed_score.csv", index=False)
    pd.DataFrame([{"threshold": 1, "vote_cutoff": 0.5}]).to_csv(run / "tables" / "summed_threshold.csv", index=False)
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    _, tokens = create_plan(run, PRESETS["sarcoma"], [Reader(name="r1", group="specialist"),
                                                      Reader(name="r2", group="practitioner")], db)
    return run, db, tokens


def login(page, base: str, name: str, token: str) -> None:
    """Log ``name`` in on the reading page at ``base`` and wait for the session list."""
    page.goto(base + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("#sessions:not([hidden])")

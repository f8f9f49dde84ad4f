"""`sarcomri read`: the reader workstation's plan, progress and export (the web app itself: ``read serve``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sarcomri.cli.options import emit_json, json_option, out_option

app = typer.Typer(help="Reader studies: radiologists read the study's cases without and with the AI.",
                  no_args_is_help=True)

STUDY_ARG = typer.Argument(..., help="The study run folder (or its classification run).")
DB_OPT = typer.Option(None, "--db", help="Database URL: sqlite:///FILE or postgresql://USER@HOST/DB (default: "
                      "<study>/read/reads.sqlite).")


def _store(study: Path, db: str | None):
    from sarcomri.read.plan import DB_NAME
    from sarcomri.read.store import ReadingStore

    if db is None:
        path = study.resolve() / "read" / DB_NAME
        if not path.is_file():
            from sarcomri.errors import InputError

            raise InputError(path, "no reading plan here: `sarcomri read create` first (or give --db)")
        db = f"sqlite:///{path}"
    return ReadingStore(db)


@app.command("create")
def create(
    study: Path = STUDY_ARG,
    readers: Path = typer.Option(..., "--readers", help="YAML file: readers: [{name: specialist1, group: "
                                 "specialist}, ...]."),
    design: str = typer.Option("sarcoma", "--design", help="A design preset (sarcoma: unaided then AI-assisted "
                               "after a 14-day washout, call + certainty; carcinosarcoma: one unaided session on "
                               "the 6-point scale) or a YAML file of design fields."),
    db: str | None = DB_OPT,
    tokens: Path | None = typer.Option(None, "--tokens", help="Also write each reader's token to this file "
                                       "(readable by its owner only); tokens are shown once and kept hashed."),
    as_json: bool = json_option("study, cases, sequences, sessions, washout_days, readers (name, group, token)"),
) -> None:
    """Create a reading plan: the study's cases (test patients, pseudonyms only), the sequences shown, each
    reader's own case order per session, and a token per reader (shown once)."""
    from sarcomri.read.design import load_design, load_readers
    from sarcomri.read.plan import create_plan, write_tokens

    plan = load_design(design)
    people = load_readers(readers)
    store, issued = create_plan(study, plan, people, db)
    if tokens is not None:
        write_tokens(tokens, issued)
    cases = len(store.cases())
    result = {"study": store.study, "cases": cases, "sequences": store.sequences, "sessions": plan.sessions,
              "washout_days": plan.washout_days,
              "readers": [{"name": r.name, "group": r.group, "token": issued[r.name]} for r in people]}
    if as_json:
        emit_json(result)
        return
    con = Console()
    con.print(f"reading plan of {store.study}: {cases} cases, sequences {', '.join(store.sequences)}, sessions "
              f"{' then '.join(plan.sessions)}" + (f" ({plan.washout_days:g}-day washout)" if len(plan.sessions) > 1
                                                  else ""))
    table = Table("reader", "group", "token (shown once)")
    for r in result["readers"]:
        table.add_row(r["name"], r["group"], r["token"])
    con.print(table)


@app.command("serve")
def serve(
    study: Path = STUDY_ARG,
    db: str | None = DB_OPT,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on: 127.0.0.1 (this computer only) or "
                             "0.0.0.0 (the local network)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port."),
    owner_token: str | None = typer.Option(None, "--owner-token", envvar="SARCOMRI_OWNER_TOKEN",
                                           help="Token of the study owner's progress view (a new one is made and "
                                                "shown when not given)."),
) -> None:
    """Serve the reader workstation: readers log in with their token and read the study's cases (their reads are
    committed one by one to the plan's database)."""
    import secrets

    import uvicorn

    from sarcomri.read.server import check_host, create_app

    store = _store(study, db)
    owner = owner_token or secrets.token_urlsafe(12)
    con = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the terminal's width
    con.print(f"reader workstation of {store.study}: http://{host}:{port}/ ({check_host(host)})")
    if owner_token is None:
        con.print(f"the study owner's progress view: GET /api/progress with header X-Owner-Token: {owner}")
    uvicorn.run(create_app(study, store, owner_token=owner), host=host, port=port, log_level="warning")


@app.command("simulate")
def simulate(
    study: Path = STUDY_ARG,
    db: str | None = DB_OPT,
    as_json: bool = json_option("reads (how many were given), readers (the plan's readers who read)"),
) -> None:
    """Let the study's synthetic readers (<study>/readers/readers.csv) read the plan through the store, both
    sessions, on a simulated clock (a minute per case, the design's washout between the sessions): a reader study
    end to end without radiologists, for demonstrations and tests."""
    import pandas as pd

    from sarcomri.errors import InputError
    from sarcomri.read.simulate import simulate_reads
    from sarcomri.runs import StudyRun, open_run

    run = open_run(study)
    if not isinstance(run, StudyRun) or not run.readers_csv.is_file():
        raise InputError(study, "no simulated reads here (<study>/readers/readers.csv): a study run with readers")
    reads = pd.read_csv(run.readers_csv, dtype={"patient_id": str})
    store = _store(study, db)
    given = simulate_reads(store, reads)
    readers = sorted({r["reader"] for r in store.reads()})
    if as_json:
        emit_json({"reads": given, "readers": readers})
        return
    Console().print(f"{given} reads given by {len(readers)} synthetic reader(s): {', '.join(readers)}")


@app.command("progress")
def progress(
    study: Path = STUDY_ARG,
    db: str | None = DB_OPT,
    as_json: bool = json_option("progress (reader, group, session, read, cases, open, reason)"),
) -> None:
    """Each reader's progress per session (the study owner's view; no reads are shown)."""
    rows = _store(study, db).progress()
    if as_json:
        emit_json({"progress": rows})
        return
    table = Table("reader", "group", "session", "read", "open")
    for r in rows:
        table.add_row(r["reader"], r["group"], r["session"], f"{r['read']} of {r['cases']}",
                      "yes" if r["open"] else f"no: {r['reason']}")
    Console().print(table)


@app.command("export")
def export(
    study: Path = STUDY_ARG,
    out: Path = out_option(..., help="CSV of the reads: one row per reader x case x session (docs/reading.md)."),
    db: str | None = DB_OPT,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write the reads in the long format the study's reader stage (`study run --readers`) and `sarcomri stats
    agreement|mrmc` read, with each case's label from the study's cohort (truth) for `stats mrmc`."""
    from sarcomri.io.atomic import write_csv
    from sarcomri.read.export import reads_table
    from sarcomri.read.plan import classification_of

    store = _store(study, db)
    table = reads_table(store, classification_of(study).cohort(check_files=False))
    write_csv(out, table, overwrite=overwrite)
    Console().print(f"{len(table)} reads by {table['reader'].nunique()} reader(s): {out}")

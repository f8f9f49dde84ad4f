"""The reader workstation's web server (``sarcomri read serve``): an ASGI app (FastAPI) over a reading plan.

A reader logs in with their name and token and gets a session cookie (HttpOnly, SameSite=Strict, held in the
server's memory: a restarted server asks again; the reads are in the database). Every call acts as that reader
only; the rules of the design are the store's (:mod:`sarcomri.read.store`), so the browser cannot go around them.

* ``POST /api/login`` ``{name, token}``; ``POST /api/logout``
* ``GET /api/me``: the reader, the study's sequences, scale and class names, and each session's state
* ``GET /api/next/{session}``: the reader's next unread case (``null`` when the session is done) and the one
  after it (``after``: the page fetches its volumes ahead)
* ``POST /api/open`` ``{session, case}``: the case is on screen (its reading time starts)
* ``GET /api/volume/{case}/{sequence}``: the case's image (NIfTI, from the study's de-identified cohort), cached
  by the browser (``Cache-Control: private, max-age``, with an ETag)
* ``GET /api/ai/{case}``: the model's outputs for the case, only in an open AI-assisted session, with the overlays
  there are for it (``overlays``: the study's segmentation model's out-of-fold tumour mask, per sequence group)
* ``GET /api/overlay/{case}/{group}``: one such mask (NIfTI), under the same condition
* ``GET /api/gradcam/{case}/{sequence}``: the Grad-CAM volume of a sequence's first model
  (:mod:`sarcomri.read.gradcam`), under the same condition
* ``POST /api/read`` ``{session, case, confidence | call_positive + certainty[, sequence]}``: one read of the
  whole case, or of one sequence in ``per_sequence`` designs (``/api/me``'s ``rated`` lists what a case needs)
* ``GET /api/reads``: the reader's own reads
* ``GET /api/progress``: every reader's progress, for the study owner (header ``X-Owner-Token``)

Errors are JSON ``{"detail": ...}``: 401 not logged in, 403 a session not open, 404 no such case or sequence,
409 a read the design does not allow, 422 a malformed request. No patient identifier other than the
pseudonym is ever sent.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from sarcomri.errors import InputError
from sarcomri.read.ai import ModelOutputs
from sarcomri.read.design import AI_ASSISTED
from sarcomri.read.gradcam import gradcam_overlay, gradcam_sequences
from sarcomri.read.plan import classification_of
from sarcomri.read.store import ReadingError, ReadingStore
from sarcomri.runs import SegmentationRun, StudyRun, open_run

STATIC = Path(__file__).parent / "static"
COOKIE = "sarcomri_read"
#: How long the browser keeps a case's volumes (they never change for a plan).
VOLUME_MAX_AGE = 7 * 86400


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    token: str


class Opened(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str
    case: str


class Read(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str
    case: str
    confidence: int | None = None
    call_positive: bool | None = None
    certainty: str | None = None
    sequence: str = "all"  # the sequence rated, in per_sequence designs


def create_app(study: str | Path, store: ReadingStore, owner_token: str | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The app of ``study``'s reading plan in ``store``; ``owner_token`` opens ``/api/progress``; ``clock`` gives
    the time (a test moves it past a washout)."""
    run = classification_of(study)
    cohort = run.cohort(check_files=False)
    segmentation = segmentation_of(study)
    cases = set(store.cases())
    sessions: dict[str, tuple[int, str]] = {}  # cookie -> (reader id, name)
    groups = {r["name"]: r["group"] for r in store.readers()}
    positive, negative = run.class_names(cohort)
    outputs = ModelOutputs(run, (positive, negative))
    explained = gradcam_sequences(run, store.sequences) if AI_ASSISTED in store.design.sessions else []
    gradcam_cache = Path(study).resolve() / "read" / "gradcam"
    app = FastAPI(title="sarcomri reader workstation", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ReadingError)
    async def _reading(_: Request, err: ReadingError) -> JSONResponse:
        status = 403 if "is not open" in str(err) else 409
        return JSONResponse({"detail": str(err)}, status_code=status)

    def who(request: Request) -> tuple[int, str]:
        found = sessions.get(request.cookies.get(COOKIE, ""))
        if found is None:
            raise HTTPException(401, "log in first")
        return found

    def reader(request: Request) -> int:
        return who(request)[0]

    def known_case(case: str) -> str:
        if case not in cases:
            raise HTTPException(404, "no such case in this reading plan")
        return case

    @app.post("/api/login")
    def login(body: Login, response: Response) -> dict[str, Any]:
        try:
            rid = store.authenticate(body.name, body.token)
        except ReadingError:
            raise HTTPException(401, "unknown reader or wrong token") from None
        key = secrets.token_urlsafe(24)
        sessions[key] = (rid, body.name)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
        return {"reader": body.name}

    @app.post("/api/logout")
    def logout(request: Request, response: Response) -> dict[str, bool]:
        sessions.pop(request.cookies.get(COOKIE, ""), None)
        response.delete_cookie(COOKIE)
        return {"ok": True}

    @app.get("/api/me")
    def me(found: tuple[int, str] = Depends(who)) -> dict[str, Any]:
        rid, name = found
        states = [store.state(rid, s, clock()).__dict__ for s in store.design.sessions]
        return {"reader": name, "group": groups[name], "study": store.study, "sequences": store.sequences,
                "scale": store.design.scale, "rated": store.rated(), "positive": positive, "negative": negative,
                "sessions": states}

    @app.get("/api/next/{session}")
    def next_case(session: str, rid: int = Depends(reader)) -> dict[str, Any]:
        upcoming = store.upcoming(rid, session, 2, clock())
        return {"case": upcoming[0] if upcoming else None, "after": upcoming[1] if len(upcoming) > 1 else None,
                "state": store.state(rid, session, clock()).__dict__}

    @app.post("/api/open")
    def open_case(body: Opened, rid: int = Depends(reader)) -> dict[str, bool]:
        store.open_case(rid, body.session, known_case(body.case), clock())
        return {"ok": True}

    @app.get("/api/volume/{case}/{sequence}")
    def volume(case: str, sequence: str, request: Request, rid: int = Depends(reader)) -> Response:
        known_case(case)
        if sequence not in store.sequences:
            raise HTTPException(404, "no such sequence in this reading plan")
        rel = cohort.series_row(case, sequence).get("image")
        path = cohort.root / rel
        etag = f'"{path.stat().st_size:x}-{path.stat().st_mtime_ns:x}"'
        headers = {"Cache-Control": f"private, max-age={VOLUME_MAX_AGE}", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(path, media_type="application/gzip", headers=headers,
                            filename=f"{case}_{sequence}.nii.gz")

    def ai_open(case: str, rid: int) -> None:
        known_case(case)
        if AI_ASSISTED not in store.design.sessions:
            raise HTTPException(404, "this reading plan has no AI-assisted session")
        state = store.state(rid, AI_ASSISTED, clock())
        if not state.open:
            raise HTTPException(403, f"the AI is shown in the AI-assisted session only: {state.reason}")

    @app.get("/api/ai/{case}")
    def ai(case: str, rid: int = Depends(reader)) -> dict[str, Any]:
        ai_open(case, rid)
        found = outputs.of(case) or {"sequences": [], "summed_score": None, "threshold": None, "decision": None,
                                     "note": "the model has no output for this case"}
        masks = overlay_masks(segmentation, case)
        found["overlays"] = [{"group": g, "kind": "mask", "name": f"predicted tumour ({g} model)",
                              "url": f"/api/overlay/{case}/{g}"} for g in masks]
        found["overlays"] += [{"group": q, "kind": "gradcam", "name": f"Grad-CAM ({q}, evidence for {positive})",
                               "url": f"/api/gradcam/{case}/{q}"} for q in explained]
        return found

    @app.get("/api/gradcam/{case}/{sequence}")
    def gradcam_map(case: str, sequence: str, rid: int = Depends(reader)) -> Response:
        ai_open(case, rid)
        if sequence not in explained:
            raise HTTPException(404, "no classifier of this sequence to explain")
        path = gradcam_overlay(run, cohort, case, sequence, gradcam_cache)
        if path is None:
            raise HTTPException(404, "no tumour slice of this case to explain on this sequence")
        return FileResponse(path, media_type="application/gzip", headers={"Cache-Control": "private, max-age=3600"},
                            filename=f"{case}_{sequence}_gradcam.nii.gz")

    @app.get("/api/overlay/{case}/{group}")
    def overlay(case: str, group: str, rid: int = Depends(reader)) -> Response:
        ai_open(case, rid)
        path = overlay_masks(segmentation, case).get(group)
        if path is None:
            raise HTTPException(404, "no such overlay for this case")
        return FileResponse(path, media_type="application/gzip", headers={"Cache-Control": "private, max-age=3600"},
                            filename=f"{case}_{group}_mask.nii.gz")

    @app.post("/api/read")
    def read(body: Read, rid: int = Depends(reader)) -> dict[str, int]:
        confidence = store.submit(rid, body.session, known_case(body.case), body.confidence, body.call_positive,
                                  body.certainty, clock(), body.sequence)
        return {"confidence": confidence}

    @app.get("/api/reads")
    def reads(rid: int = Depends(reader)) -> dict[str, Any]:
        return {"reads": store.reads(rid)}

    @app.get("/api/progress")
    def progress(request: Request) -> dict[str, Any]:
        given = request.headers.get("x-owner-token", "")
        if not owner_token or not hmac.compare_digest(given.encode(), owner_token.encode()):
            raise HTTPException(401, "the study owner's token is needed")
        return {"progress": store.progress(clock())}

    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="app")
    return app


@contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread of this process on a free port; yields its base URL and stops it
    on leaving (for tests and benchmarks; ``sarcomri read serve`` runs uvicorn in the foreground)."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the reader workstation's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def segmentation_of(study: str | Path) -> SegmentationRun | None:
    """The study's segmentation run (a study folder's ``segmentation/``), None for a bare classification run."""
    run = open_run(study)
    if isinstance(run, StudyRun) and run.segmentation.path.is_dir():
        return run.segmentation
    return None


def overlay_masks(segmentation: SegmentationRun | None, case: str) -> dict[str, Path]:
    """The segmentation run's out-of-fold tumour mask of ``case`` per sequence group (``predictions/<group>/``)."""
    if segmentation is None:
        return {}
    found = {}
    for group in segmentation.model_groups():
        path = segmentation.predictions_dir(group) / f"{case}.nii.gz"
        if path.is_file():
            found[group] = path
    return found


def check_host(host: str) -> str:
    """What ``read serve`` says about where it listens: local only, or the network (then the reads travel
    unencrypted unless a TLS proxy is put in front)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"listening on {host} only (this computer); --host 0.0.0.0 serves the local network"
    if not host:
        raise InputError(None, "--host is empty")
    return (f"listening on {host}: readers on the network can reach it; the traffic is not encrypted (put a TLS "
            "proxy in front for anything but a trusted network)")

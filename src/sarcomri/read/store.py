"""The reads of a reader study in a real database: SQLite in the run folder by default, or PostgreSQL by URL.

Every read is committed in its own transaction the moment it is given, so a crash or a closed browser loses
nothing and a reader resumes at their first unread case. The rules of the design are enforced here, where the
reads are written, not only in the browser:

* a reader opens the AI-assisted session only once they have read every case unaided and the washout since
  their last unaided read has passed (changing an unaided read is reading the case again: the washout restarts);
* once a reader has opened the AI-assisted session, their unaided reads can no longer be changed;
* a reader sees and writes only their own reads; a token (set at creation, shown once) authenticates them and
  is stored only as a salted scrypt hash.

Times are seconds since the epoch (UTC); every operation takes ``now`` so that a washout can be tested without
waiting. The time a reader spent on a case is from first opening it to the read (``seconds``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sarcomri.errors import InputError, SarcomriError
from sarcomri.read.design import AI_ASSISTED, CERTAINTIES, SCALE, UNAIDED, Reader, ReadingDesign, case_order, to_scale

META = sa.MetaData()
PLAN = sa.Table("plan", META, sa.Column("id", sa.Integer, primary_key=True), sa.Column("study", sa.String(200)),
                sa.Column("design", sa.Text, nullable=False), sa.Column("sequences", sa.Text, nullable=False),
                sa.Column("created", sa.Float, nullable=False))
READERS = sa.Table("readers", META, sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("name", sa.String(40), unique=True, nullable=False),
                   sa.Column("group", sa.String(40), nullable=False),
                   sa.Column("salt", sa.LargeBinary(16), nullable=False),
                   sa.Column("token_hash", sa.LargeBinary(64), nullable=False))
CASES = sa.Table("cases", META, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("patient_id", sa.String(64), unique=True, nullable=False))
ORDERS = sa.Table("orders", META, sa.Column("reader_id", sa.ForeignKey("readers.id"), primary_key=True),
                  sa.Column("session", sa.String(20), primary_key=True),
                  sa.Column("position", sa.Integer, primary_key=True),
                  sa.Column("case_id", sa.ForeignKey("cases.id"), nullable=False))
SESSIONS = sa.Table("sessions", META, sa.Column("reader_id", sa.ForeignKey("readers.id"), primary_key=True),
                    sa.Column("session", sa.String(20), primary_key=True), sa.Column("started", sa.Float),
                    sa.Column("finished", sa.Float))
OPENED = sa.Table("opened", META, sa.Column("reader_id", sa.ForeignKey("readers.id"), primary_key=True),
                  sa.Column("session", sa.String(20), primary_key=True),
                  sa.Column("case_id", sa.ForeignKey("cases.id"), primary_key=True),
                  sa.Column("opened", sa.Float, nullable=False))
READS = sa.Table("reads", META, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("reader_id", sa.ForeignKey("readers.id"), nullable=False),
                 sa.Column("case_id", sa.ForeignKey("cases.id"), nullable=False),
                 sa.Column("session", sa.String(20), nullable=False),
                 sa.Column("sequence", sa.String(40), nullable=False),  # 'all', or the sequence rated
                 sa.Column("confidence", sa.Integer, nullable=False),
                 sa.Column("call_positive", sa.Boolean), sa.Column("certainty", sa.String(10)),
                 sa.Column("read_at", sa.Float, nullable=False), sa.Column("seconds", sa.Float, nullable=False),
                 sa.UniqueConstraint("reader_id", "case_id", "session", "sequence"))

#: The ``sequence`` of a read of the whole case.
WHOLE_CASE = "all"


class ReadingError(SarcomriError):
    """A read or a session the design does not allow (the message says why)."""


@dataclass(frozen=True)
class SessionState:
    """Where a reader stands in one session: cases read of all, whether they may read now, and if not why."""

    session: str
    read: int
    cases: int
    open: bool
    reason: str = ""
    opens_at: float | None = None  # the end of the washout, when that is what keeps the session closed


def _hash(token: str, salt: bytes) -> bytes:
    return hashlib.scrypt(token.encode(), salt=salt, n=2**14, r=8, p=1, dklen=64)


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql://...``; psycopg 3 drives PostgreSQL)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # a read on disk before the call returns; foreign keys checked
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()
    return engine


class ReadingStore:
    """The reads of one reader study (see the module notes)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = engine_for(url)
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("plan"):
                raise InputError(None, "no reading plan in this database: `sarcomri read create` first")
            row = conn.execute(sa.select(PLAN)).one()
        self.study = row.study
        self.design = ReadingDesign.model_validate_json(row.design)
        self.sequences: list[str] = json.loads(row.sequences)

    # ------------------------------------------------------------------------------------------ creation
    @classmethod
    def create(cls, url: str, study: str, design: ReadingDesign, readers: list[Reader], cases: list[str],
               sequences: list[str], now: float | None = None) -> tuple[ReadingStore, dict[str, str]]:
        """A new reading plan: the readers (each with a fresh token, returned once), the cases and each reader's
        order per session. Refuses a database that already holds a plan."""
        if not cases:
            raise InputError(None, "the reading plan has no cases")
        engine = engine_for(url)
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("plan"):
                raise InputError(None, "this database already holds a reading plan; use another --db")
            META.create_all(conn)
            conn.execute(PLAN.insert().values(study=study, design=design.model_dump_json(),
                                              sequences=json.dumps(sequences), created=now or time.time()))
            ids = {}
            for pid in cases:
                ids[pid] = conn.execute(CASES.insert().values(patient_id=pid)).inserted_primary_key[0]
            tokens = {}
            for r in readers:
                token, salt = secrets.token_urlsafe(12), secrets.token_bytes(16)
                rid = conn.execute(READERS.insert().values(name=r.name, group=r.group, salt=salt,
                                                           token_hash=_hash(token, salt))).inserted_primary_key[0]
                tokens[r.name] = token
                for session in design.sessions:
                    conn.execute(ORDERS.insert(), [{"reader_id": rid, "session": session, "position": k,
                                                    "case_id": ids[pid]}
                                                   for k, pid in enumerate(case_order(cases, design.seed, r.name,
                                                                                      session))])
        engine.dispose()
        return cls(url), tokens

    # ------------------------------------------------------------------------------------------ readers
    def authenticate(self, name: str, token: str) -> int:
        """The reader's id when ``token`` is theirs; :class:`ReadingError` otherwise (without saying which)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(READERS).where(READERS.c.name == name)).one_or_none()
        salt = row.salt if row is not None else b"\0" * 16
        given = _hash(token, salt)  # hashed either way: the time does not tell whether the name exists
        if row is None or not hmac.compare_digest(given, row.token_hash):
            raise ReadingError("unknown reader or wrong token")
        return int(row.id)

    def reader_id(self, name: str) -> int:
        """The id of reader ``name`` (for the study owner's tools, e.g. the synthetic readers; the web app
        identifies readers by their token only)."""
        with self.engine.connect() as conn:
            rid = conn.execute(sa.select(READERS.c.id).where(READERS.c.name == name)).scalar_one_or_none()
        if rid is None:
            raise ReadingError(f"no reader {name!r} in this reading plan")
        return int(rid)

    def cases(self) -> list[str]:
        """The cases' pseudonyms, in the plan's order."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(CASES.c.patient_id).order_by(CASES.c.id)).scalars())

    def readers(self) -> list[dict[str, Any]]:
        """Every reader's name and group (no token, no hash)."""
        with self.engine.connect() as conn:
            return [dict(name=r.name, group=r.group) for r in conn.execute(sa.select(READERS).order_by(READERS.c.id))]

    # ------------------------------------------------------------------------------------------ sessions
    def state(self, reader: int, session: str, now: float | None = None) -> SessionState:
        """Where ``reader`` stands in ``session`` (see :class:`SessionState`)."""
        now = time.time() if now is None else now
        if session not in self.design.sessions:
            raise ReadingError(f"this study has no {session!r} session (its sessions: {self.design.sessions})")
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(CASES)).scalar_one()
            done = self._count(conn, reader, session)
            if session == UNAIDED:
                return SessionState(session, done, total, True)
            first = self._count(conn, reader, UNAIDED)
            if first < total:
                return SessionState(session, done, total, False, f"read every case unaided first ({first} of "
                                                                 f"{total} read)")
            last = conn.execute(sa.select(sa.func.max(READS.c.read_at)).where(
                READS.c.reader_id == reader, READS.c.session == UNAIDED)).scalar_one()
        opens = float(last) + self.design.washout_days * 86400.0
        if now < opens:
            days = (opens - now) / 86400.0
            return SessionState(session, done, total, False, f"the washout ends in {days:.1f} days", opens)
        return SessionState(session, done, total, True)

    def rated(self) -> list[str]:
        """What a read rates: every sequence apart (``per_sequence`` designs) or the whole case."""
        return list(self.sequences) if self.design.per_sequence else [WHOLE_CASE]

    def _read_cases(self, reader: int, session: str) -> sa.Select:
        """The ids of the cases the reader has read completely in ``session`` (every rated sequence)."""
        return (sa.select(READS.c.case_id).where(READS.c.reader_id == reader, READS.c.session == session)
                .group_by(READS.c.case_id).having(sa.func.count() >= len(self.rated())))

    def _count(self, conn: sa.Connection, reader: int, session: str) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(self._read_cases(reader, session).subquery())
                            ).scalar_one()

    def _require_open(self, reader: int, session: str, now: float) -> None:
        state = self.state(reader, session, now)
        if not state.open:
            raise ReadingError(f"the {session} session is not open: {state.reason}")

    def next_case(self, reader: int, session: str, now: float | None = None) -> str | None:
        """The reader's first unread case of ``session`` in their own order; None when every case is read."""
        upcoming = self.upcoming(reader, session, 1, now)
        return upcoming[0] if upcoming else None

    def upcoming(self, reader: int, session: str, n: int, now: float | None = None) -> list[str]:
        """The reader's next ``n`` unread cases of ``session`` in their own order (fewer near the end)."""
        now = time.time() if now is None else now
        self._require_open(reader, session, now)
        read = self._read_cases(reader, session)
        query = (sa.select(CASES.c.patient_id).join(ORDERS, ORDERS.c.case_id == CASES.c.id)
                 .where(ORDERS.c.reader_id == reader, ORDERS.c.session == session, ORDERS.c.case_id.not_in(read))
                 .order_by(ORDERS.c.position).limit(n))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def open_case(self, reader: int, session: str, patient_id: str, now: float | None = None) -> None:
        """Record that the reader opened a case (the start of its reading time; kept from the first opening).
        Opening the AI-assisted session freezes the reader's unaided reads."""
        now = time.time() if now is None else now
        self._require_open(reader, session, now)
        with self.engine.begin() as conn:
            case = self._case(conn, patient_id)
            if conn.execute(sa.select(OPENED).where(OPENED.c.reader_id == reader, OPENED.c.session == session,
                                                    OPENED.c.case_id == case)).first() is None:
                conn.execute(OPENED.insert().values(reader_id=reader, session=session, case_id=case, opened=now))
            if conn.execute(sa.select(SESSIONS).where(SESSIONS.c.reader_id == reader,
                                                      SESSIONS.c.session == session)).first() is None:
                conn.execute(SESSIONS.insert().values(reader_id=reader, session=session, started=now))

    @staticmethod
    def _case(conn: sa.Connection, patient_id: str) -> int:
        case = conn.execute(sa.select(CASES.c.id).where(CASES.c.patient_id == patient_id)).scalar_one_or_none()
        if case is None:
            raise ReadingError(f"{patient_id} is not a case of this reading plan")
        return int(case)

    # ------------------------------------------------------------------------------------------ reads
    def submit(self, reader: int, session: str, patient_id: str, confidence: int | None = None,
               call_positive: bool | None = None, certainty: str | None = None, now: float | None = None,
               sequence: str = WHOLE_CASE) -> int:
        """Commit one read (or replace the reader's earlier read of the case in the same session, while allowed);
        the rating is a 6-point ``confidence`` (six_point designs) or a call with its ``certainty``
        (call_confidence designs), of the whole case or, in ``per_sequence`` designs, of one ``sequence``.
        Returns the read's confidence on the 6-point scale."""
        now = time.time() if now is None else now
        self._require_open(reader, session, now)
        if sequence not in self.rated():
            raise ReadingError(f"a read rates {' or '.join(self.rated())} in this study, not {sequence!r}")
        confidence = self._rating(confidence, call_positive, certainty)
        with self.engine.begin() as conn:
            case = self._case(conn, patient_id)
            if session == UNAIDED and AI_ASSISTED in self.design.sessions and conn.execute(
                    sa.select(SESSIONS).where(SESSIONS.c.reader_id == reader,
                                              SESSIONS.c.session == AI_ASSISTED)).first() is not None:
                raise ReadingError("unaided reads cannot change once the AI-assisted session has been opened")
            opened = conn.execute(sa.select(OPENED.c.opened).where(
                OPENED.c.reader_id == reader, OPENED.c.session == session, OPENED.c.case_id == case)).scalar()
            values = dict(reader_id=reader, case_id=case, session=session, sequence=sequence, confidence=confidence,
                          call_positive=call_positive, certainty=certainty, read_at=now,
                          seconds=max(0.0, now - opened) if opened is not None else 0.0)
            where = ((READS.c.reader_id == reader) & (READS.c.case_id == case) & (READS.c.session == session)
                     & (READS.c.sequence == sequence))
            if conn.execute(sa.select(READS.c.id).where(where)).first() is not None:
                conn.execute(READS.update().where(where).values(**values))
            else:
                try:
                    conn.execute(READS.insert().values(**values))
                except IntegrityError:  # the same read given twice at once: the other one stands
                    raise ReadingError(f"{patient_id} was read in this session just now") from None
        return confidence

    def _rating(self, confidence: int | None, call_positive: bool | None, certainty: str | None) -> int:
        if self.design.scale == "six_point":
            if confidence is None or int(confidence) != confidence or int(confidence) not in SCALE:
                raise ReadingError(f"a rating on the 6-point scale is a whole number 0-5, not {confidence!r}")
            return int(confidence)
        if call_positive is None or certainty not in CERTAINTIES:
            raise ReadingError(f"a read is a call (positive or negative) with a certainty ({', '.join(CERTAINTIES)})")
        return to_scale(bool(call_positive), str(certainty))

    def reads(self, reader: int | None = None) -> list[dict[str, Any]]:
        """The reads, of one reader (what that reader may see) or of all (the owner's export), in read order."""
        query = (sa.select(READERS.c.name.label("reader"), READERS.c.group, CASES.c.patient_id, READS.c.session,
                           READS.c.sequence, READS.c.confidence, READS.c.call_positive, READS.c.certainty,
                           READS.c.read_at, READS.c.seconds)
                 .join(READERS, READERS.c.id == READS.c.reader_id).join(CASES, CASES.c.id == READS.c.case_id)
                 .order_by(READS.c.read_at, READS.c.id))
        if reader is not None:
            query = query.where(READS.c.reader_id == reader)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def progress(self, now: float | None = None) -> list[dict[str, Any]]:
        """The owner's view: per reader and session, cases read of all and whether the session is open."""
        out = []
        with self.engine.connect() as conn:
            readers = conn.execute(sa.select(READERS.c.id, READERS.c.name, READERS.c.group)).all()
        for r in readers:
            for session in self.design.sessions:
                s = self.state(r.id, session, now)
                out.append({"reader": r.name, "group": r.group, "session": session, "read": s.read,
                            "cases": s.cases, "open": s.open, "reason": s.reason})
        return out

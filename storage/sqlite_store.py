"""The event log in one SQLite file: `SQLiteEventStore` implements `collabvr.store.EventStore`.

Besides the events it keeps, for the session list and audits, one row per session (title, status,
cost, ...), the artifacts each session references, and the latest reliability label per annotator.
Those are derived from the events in the same transaction that appends them, so they never disagree.

Threads: every thread gets its own sqlite3 connection, opened on first use (a connection must not cross
threads; Gradio runs handlers in worker threads). Processes: WAL mode lets readers run beside one
writer; writers queue on `BEGIN IMMEDIATE` with a busy timeout and a bounded retry, so callers see
`SequenceConflict` or success, never "database is locked" (after about a minute of waiting they see
`StoreBusy`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from sqlite_utils import Database

from collabvr.events import (
    Annotated, Artifact, Event, EventBase, SessionFinished, SessionStarted, artifacts_in, event_from_json,
    event_to_json,
)
from collabvr.status import status_after
from collabvr.store import SequenceConflict, SessionNotFound, StoreError, check_new_session
from storage.schema import apply_migrations


BUSY_TIMEOUT_MS = 10_000
LOCK_RETRIES = 6  # each waits up to BUSY_TIMEOUT_MS inside SQLite, then backs off briefly

T = TypeVar("T")


MAX_SEARCH_CHARS = 500  # SQLite refuses LIKE patterns past 50,000 bytes; a title search needs far less


class SearchTooLong(StoreError, ValueError):
    """A session search longer than MAX_SEARCH_CHARS."""


class StoreBusy(StoreError):
    """Other writers held the database for longer than the store is willing to wait."""


@dataclass(frozen=True)
class SessionRow:
    """One line of the session list. Times are unix seconds; `cost` is the last SessionFinished's
    CostSummary as a dict, or {} while the session has not finished."""

    id: str
    title: str
    created: float
    updated: float
    task: dict[str, Any]
    config: dict[str, Any]
    backends: dict[str, Any]
    status: str  # collabvr.status: new, running, stopped, failed or finished
    parent_session: str | None
    fork_seq: int | None
    cost: dict[str, Any]
    n_events: int


@dataclass(frozen=True)
class AnnotationRow:
    """The latest `label` an annotator gave `target` in a session; `seq` is the Annotated event's index."""

    session_id: str
    target: str
    annotator: str
    label: str
    value: int | str
    reason: str
    seq: int
    at: float


@dataclass(frozen=True)
class BenchRunRow:
    """A recorded benchmark run: its id, times, what it ran, and its results document (see
    collabvr.eval.report.bench_document)."""

    id: str
    created: float
    updated: float
    spec: dict[str, Any]
    document: dict[str, Any]


_SESSION_COLUMNS = ("id, title, created_at, updated_at, task, config, backends, status, parent_session, "
                    "fork_seq, cost, n_events")


class SQLiteEventStore:
    """An EventStore in a SQLite file, safe to share between threads and processes.

    Limits, plainly: one writer at a time per database (appends are short, so this is rarely felt);
    `list_sessions(search=...)` scans the sessions table (not the events); `close()` closes only the
    calling thread's connection, the others close when their threads end.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self.db
        # WAL is a property of the file: set once, it holds for every later connection.
        db.enable_wal()
        apply_migrations(db)

    # ----- connections --------------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        """This thread's connection, opened on first use. For inspection and bulk tools: writes made
        through it bypass the sequence check and the derived tables."""
        db = getattr(self._local, "db", None)
        if db is None:
            # check_same_thread stays on: a connection used from a second thread is a bug, and should fail.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            db = Database(conn)
            db.execute("PRAGMA foreign_keys = ON")  # per connection; SQLite's default is off
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # In WAL mode NORMAL survives a crash of the process; a power cut may lose the last commits.
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    def close(self) -> None:
        """Close the calling thread's connection (a later call opens a new one)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _write(self, work: Callable[[Database], T]) -> T:
        """Run `work` in one BEGIN IMMEDIATE transaction; commit, or roll back and re-raise.

        IMMEDIATE takes the write lock before the first read, so two writers serialise at the start and a
        check-then-insert inside `work` cannot race. A lock error (after SQLite's own busy wait) reruns the
        whole transaction, a bounded number of times.
        """
        for attempt in range(LOCK_RETRIES):
            db = self.db
            try:
                db.conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db)
                    db.conn.execute("COMMIT")
                except BaseException:
                    db.rollback()
                    raise
                return result
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc):
                    raise
                time.sleep(0.02 * (attempt + 1))
        raise StoreBusy(f"{self.path} stayed locked by other writers through {LOCK_RETRIES} waits of "
                        f"{BUSY_TIMEOUT_MS / 1000:.0f} s")

    def _read(self, work: Callable[[Database], T]) -> T:
        """Run a read; in WAL mode readers rarely wait, but a checkpoint or recovery can still say busy."""
        for attempt in range(LOCK_RETRIES):
            try:
                return work(self.db)
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc):
                    raise
                time.sleep(0.02 * (attempt + 1))
        raise StoreBusy(f"{self.path} could not be read: locked through {LOCK_RETRIES} waits")

    # ----- the EventStore protocol ----------------------------------------------------------------------
    def create(self, started: SessionStarted) -> None:
        """Insert the session's row and its event 0 in one transaction. Raises StoreError if the id exists,
        InvalidSessionId if it (or a fork's parent id) is not a valid id.

        A fork records its parent and fork point; if the parent is not in this database (deleted, or the
        log came from elsewhere) parent_session is left empty, while the event still names it.
        """
        check_new_session(started)
        session_id = started.session_id

        def work(db: Database) -> None:
            if _session_exists(db, session_id):
                raise StoreError(f"session {session_id} already exists")
            parent = started.fork.parent_session if started.fork else None
            if parent is not None and not _session_exists(db, parent):
                parent = None
            db.conn.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, started.title, started.at, time.time(),
                 _json(started.task.model_dump(mode="json")), _json(started.config.model_dump(mode="json")),
                 _json({"vlm": started.vlm.model_dump(mode="json"), "vgm": started.vgm.model_dump(mode="json")}),
                 "new", parent, started.fork.at_seq if started.fork else None, "{}", 1))
            db.conn.execute("INSERT INTO events (session_id, seq, type, actor, at, payload) VALUES (?, ?, ?, ?, ?, ?)",
                            _event_row(session_id, 0, started))
            _record_references(db, session_id, 0, [started])

        self._write(work)

    def append(self, session_id: str, events: Sequence[Event], expected_seq: int) -> int:
        """Append `events` as seq expected_seq, expected_seq + 1, ... in one transaction; returns the new
        count. Raises SequenceConflict (and writes nothing) if the session does not hold exactly
        `expected_seq` events, SessionNotFound if there is no such session."""
        events = list(events)
        rows = [_event_row(session_id, expected_seq + i, e) for i, e in enumerate(events)]

        def work(db: Database) -> int:
            status = db.conn.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if status is None:
                raise SessionNotFound(session_id)
            actual = _event_count(db, session_id)
            if actual != expected_seq:
                raise SequenceConflict(session_id, expected_seq, actual)
            try:
                db.conn.executemany(
                    "INSERT INTO events (session_id, seq, type, actor, at, payload) VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError as exc:
                # Only reachable if a writer got past the check above (one that bypassed this method): the
                # primary key still refuses to overwrite or interleave, and the caller hears a conflict.
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise
                raise SequenceConflict(session_id, expected_seq, _event_count(db, session_id)) from exc
            count = expected_seq + len(events)
            finished = _last(events, SessionFinished)
            db.conn.execute(
                "UPDATE sessions SET updated_at = ?, status = ?, n_events = ?, cost = COALESCE(?, cost) WHERE id = ?",
                (time.time(), status_after(status[0], events), count,
                 _json(finished.cost.model_dump(mode="json")) if finished else None, session_id))
            _record_references(db, session_id, expected_seq, events)
            return count

        return self._write(work)

    def read(self, session_id: str, since: int = 0) -> list[Event]:
        """The session's events from index `since` on, by primary-key range: the cost is this session's
        size, not the database's."""

        def work(db: Database) -> list[Event]:
            rows = db.conn.execute("SELECT payload FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq",
                                   (session_id, since)).fetchall()
            if not rows and not _session_exists(db, session_id):
                raise SessionNotFound(session_id)
            return [event_from_json(payload) for (payload,) in rows]

        return self._read(work)

    def session_ids(self) -> list[str]:
        """Every session, oldest first (by its SessionStarted time, ties in insertion order)."""
        return self._read(lambda db: [row[0] for row in db.conn.execute(
            "SELECT id FROM sessions ORDER BY created_at, rowid")])

    # ----- sessions -------------------------------------------------------------------------------------
    def list_sessions(self, search: str | None = None, status: str | None = None, limit: int = 50,
                      offset: int = 0) -> list[SessionRow]:
        """A page of sessions, most recently updated first.

        Without `search` this walks an index and stops after `offset + limit` rows. `search` matches the
        title or the task prompt, case-insensitively for ASCII, by LIKE: that reads the sessions table
        (never the events) until the page is full, so a rare term costs a full pass over the sessions.
        """
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if search and len(search) > MAX_SEARCH_CHARS:
            raise SearchTooLong(f"a search has at most {MAX_SEARCH_CHARS} characters, not {len(search)}")
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(title LIKE ? ESCAPE '\\' OR json_extract(task, '$.prompt') LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        sql = (f"SELECT {_SESSION_COLUMNS} FROM sessions"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?")
        params += [limit, offset]
        return self._read(lambda db: [_session_row(r) for r in db.conn.execute(sql, params)])

    def get_session(self, session_id: str) -> SessionRow:
        def work(db: Database) -> SessionRow:
            row = db.conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise SessionNotFound(session_id)
            return _session_row(row)

        return self._read(work)

    def delete_session(self, session_id: str) -> list[Artifact]:
        """Delete a session with its events, annotations and artifact references. Its forks stay (their
        parent_session becomes empty). Returns the artifacts no other session references any more: their
        rows are gone, and their files may be removed by whoever owns the artifact folder."""

        def work(db: Database) -> list[Artifact]:
            if not _session_exists(db, session_id):
                raise SessionNotFound(session_id)
            referenced = _artifacts_of(db, session_id)
            db.conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))  # events etc. cascade
            orphans = [a for a in referenced if db.conn.execute(
                "SELECT 1 FROM session_artifacts WHERE sha256 = ? LIMIT 1", (a.sha256,)).fetchone() is None]
            db.conn.executemany("DELETE FROM artifacts WHERE sha256 = ?", [(a.sha256,) for a in orphans])
            return orphans

        return self._write(work)

    # ----- artifacts and annotations -------------------------------------------------------------------
    def record_artifact(self, artifact: Artifact, session_id: str | None = None) -> None:
        """Record an artifact (once per hash), and that `session_id` uses it if given. Appends record the
        artifacts their events name by themselves; this is for files known before any event names them."""

        def work(db: Database) -> None:
            if session_id is not None and not _session_exists(db, session_id):
                raise SessionNotFound(session_id)
            _insert_artifacts(db, session_id, [artifact])

        self._write(work)

    def artifacts_of(self, session_id: str) -> list[Artifact]:
        """The artifacts the session's events reference, ordered by hash."""

        def work(db: Database) -> list[Artifact]:
            if not _session_exists(db, session_id):
                raise SessionNotFound(session_id)
            return _artifacts_of(db, session_id)

        return self._read(work)

    def annotations(self, session_id: str | None = None) -> list[AnnotationRow]:
        """The latest label per (session, target, annotator, label), by session then event order. Without
        `session_id` this reads every annotation in the database (meant for exports)."""
        sql = "SELECT session_id, target, annotator, label, value, reason, seq, at FROM annotations"
        params: tuple = ()
        if session_id is not None:
            sql += " WHERE session_id = ?"
            params = (session_id,)
        sql += " ORDER BY session_id, seq, target, annotator, label"
        return self._read(lambda db: [AnnotationRow(*row) for row in db.conn.execute(sql, params)])


    # ----- benchmark runs ----------------------------------------------------------------------------------
    def save_bench_run(self, run_id: str, spec: dict[str, Any], document: dict[str, Any]) -> None:
        """Record a benchmark run's results, replacing an earlier record of the same run (a re-run)."""
        now = time.time()

        def work(db: Database) -> None:
            db.conn.execute(
                "INSERT INTO bench_runs (id, created_at, updated_at, spec, document) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, spec = excluded.spec, "
                "document = excluded.document", (run_id, now, now, _json(spec), _json(document)))

        self._write(work)

    def bench_runs(self) -> list[BenchRunRow]:
        """Every recorded benchmark run, most recently updated first."""
        sql = "SELECT id, created_at, updated_at, spec, document FROM bench_runs ORDER BY updated_at DESC, id"
        return self._read(lambda db: [_bench_row(r) for r in db.conn.execute(sql)])

    def bench_run(self, run_id: str) -> BenchRunRow:
        """One benchmark run; KeyError naming it when there is none."""
        def work(db: Database) -> BenchRunRow:
            row = db.conn.execute("SELECT id, created_at, updated_at, spec, document FROM bench_runs WHERE id = ?",
                                  (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"no benchmark run {run_id!r} in {self.path}")
            return _bench_row(row)

        return self._read(work)


# ----- derived state ----------------------------------------------------------------------------------

def _bench_row(row: Sequence[Any]) -> BenchRunRow:
    return BenchRunRow(id=row[0], created=row[1], updated=row[2], spec=json.loads(row[3]), document=json.loads(row[4]))


def _record_references(db: Database, session_id: str, first_seq: int, events: Sequence[Event]) -> None:
    _insert_artifacts(db, session_id, [a for event in events for a in artifacts_in(event)])
    labels = [(session_id, e.target, e.actor, e.label, e.value, e.reason, first_seq + i, e.at)
              for i, e in enumerate(events) if isinstance(e, Annotated)]
    # A later label by the same annotator for the same target replaces the earlier one; the events keep both.
    db.conn.executemany(
        "INSERT INTO annotations (session_id, target, annotator, label, value, reason, seq, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, target, annotator, label) DO UPDATE SET "
        "value = excluded.value, reason = excluded.reason, seq = excluded.seq, at = excluded.at", labels)


def _insert_artifacts(db: Database, session_id: str | None, artifacts: list[Artifact]) -> None:
    now = time.time()
    db.conn.executemany(
        "INSERT INTO artifacts (sha256, path, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (sha256) DO NOTHING",
        [(a.sha256, a.path, a.kind, a.bytes, now) for a in artifacts])
    if session_id is not None:
        db.conn.executemany("INSERT INTO session_artifacts (session_id, sha256) VALUES (?, ?) "
                            "ON CONFLICT DO NOTHING", [(session_id, a.sha256) for a in artifacts])


def _artifacts_of(db: Database, session_id: str) -> list[Artifact]:
    rows = db.conn.execute(
        "SELECT a.sha256, a.path, a.kind, a.bytes FROM session_artifacts s JOIN artifacts a ON a.sha256 = s.sha256 "
        "WHERE s.session_id = ? ORDER BY s.sha256", (session_id,))
    return [Artifact(sha256=sha, path=path, kind=kind, bytes=size) for sha, path, kind, size in rows]


# ----- small helpers ----------------------------------------------------------------------------------

def _event_row(session_id: str, seq: int, event: EventBase) -> tuple:
    return (session_id, seq, event.type, event.actor, event.at, event_to_json(event))  # type: ignore[attr-defined]


def _event_count(db: Database, session_id: str) -> int:
    # MAX on the primary key is one index probe; the sessions row's n_events is a copy kept for the list.
    (top,) = db.conn.execute("SELECT MAX(seq) FROM events WHERE session_id = ?", (session_id,)).fetchone()
    return 0 if top is None else top + 1


def _session_exists(db: Database, session_id: str) -> bool:
    return db.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None


def _session_row(row: Sequence[Any]) -> SessionRow:
    (id_, title, created, updated, task, config, backends, status, parent, fork_seq, cost, n_events) = row
    return SessionRow(id=id_, title=title, created=created, updated=updated, task=json.loads(task),
                      config=json.loads(config), backends=json.loads(backends), status=status,
                      parent_session=parent, fork_seq=fork_seq, cost=json.loads(cost), n_events=n_events)


def _last(events: Sequence[Event], kind: type[T]) -> T | None:
    for event in reversed(events):
        if isinstance(event, kind):
            return event
    return None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "locked" in message or "busy" in message

"""The database schema, as an ordered registry of sqlite-utils migrations (one transaction each).

Add a change as a new function at the end; never edit one that has shipped, because databases that
already applied it will not run it again. The applied names are recorded in `_sqlite_migrations`.
"""

from __future__ import annotations

import sqlite3
import textwrap
import time

from sqlite_utils import Database, Migrations


MIGRATIONS = Migrations("collabvr")


@MIGRATIONS()
def m001_sessions_events_artifacts_annotations(db: Database) -> None:
    statements = [
        # JSON columns hold TEXT written by json.dumps; times are unix seconds (REAL), as in the events.
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            task TEXT NOT NULL,
            config TEXT NOT NULL,
            backends TEXT NOT NULL,
            status TEXT NOT NULL,
            parent_session TEXT REFERENCES sessions(id) ON DELETE SET NULL,
            fork_seq INTEGER,
            cost TEXT NOT NULL DEFAULT '{}',
            n_events INTEGER NOT NULL
        )
        """,
        # The session list pages by recency, with or without a status filter: both walk an index in
        # order and stop at LIMIT, so a page costs the same on 10 or 10,000 sessions.
        "CREATE INDEX sessions_by_updated ON sessions (updated_at, id)",
        "CREATE INDEX sessions_by_status_updated ON sessions (status, updated_at, id)",
        # Deleting a parent sets its forks' parent_session to NULL; without this index that is a scan.
        "CREATE INDEX sessions_by_parent ON sessions (parent_session)",
        """
        CREATE TABLE events (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        )
        """,
        """
        CREATE TABLE artifacts (
            sha256 TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            kind TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        # Which sessions reference which artifact: a fork shares its parent's files without copying rows.
        """
        CREATE TABLE session_artifacts (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
            PRIMARY KEY (session_id, sha256)
        )
        """,
        # Deleting a session asks "does anyone else still use this hash?": an index lookup, not a scan.
        "CREATE INDEX session_artifacts_by_sha256 ON session_artifacts (sha256)",
        # The latest label per (session, target, annotator, label). `value` has no declared type on
        # purpose: a column without affinity keeps a D1/D3 rating an integer and a note text.
        """
        CREATE TABLE annotations (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            annotator TEXT NOT NULL,
            label TEXT NOT NULL,
            value,
            reason TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (session_id, target, annotator, label)
        )
        """,
    ]
    for statement in statements:
        db.execute(textwrap.dedent(statement).strip())


@MIGRATIONS()
def m002_bench_runs(db: Database) -> None:
    # A benchmark run (python -m collabvr bench): what it ran (`spec`) and its results document (per-sample
    # rows naming each sample's session, summaries, paired comparisons), both JSON, written by the driver.
    db.execute(textwrap.dedent("""
        CREATE TABLE bench_runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            spec TEXT NOT NULL,
            document TEXT NOT NULL
        )
    """).strip())


@MIGRATIONS()
def m003_studies(db: Database) -> None:
    """Reliability studies (collabvr.study): their definition, their frozen items, who holds which item open,
    and adjudicated labels. The labels themselves stay Annotated events carrying the study's name; the index
    on that name lets a study read its labels without scanning other events."""
    statements = [
        "CREATE TABLE studies (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at REAL NOT NULL)",
        # No foreign key to sessions: deleting a session leaves its items, which the study then reports missing.
        """
        CREATE TABLE study_items (
            study TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            session_id TEXT NOT NULL,
            target TEXT NOT NULL,
            label TEXT NOT NULL,
            PRIMARY KEY (study, session_id, target, label)
        )
        """,
        "CREATE INDEX study_items_in_order ON study_items (study, ord)",
        # One open item per annotator and study; a hold past `until` counts as released.
        """
        CREATE TABLE study_holds (
            study TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            session_id TEXT NOT NULL,
            target TEXT NOT NULL,
            label TEXT NOT NULL,
            since REAL NOT NULL,
            until REAL NOT NULL,
            PRIMARY KEY (study, annotator)
        )
        """,
        # Every adjudication is kept; the latest per item is the final label. `value` has no declared type, as
        # in annotations: a rating stays an integer and a verdict text.
        """
        CREATE TABLE study_adjudications (
            study TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
            session_id TEXT NOT NULL,
            target TEXT NOT NULL,
            label TEXT NOT NULL,
            value,
            reason TEXT NOT NULL,
            adjudicator TEXT NOT NULL,
            at REAL NOT NULL
        )
        """,
        "CREATE INDEX study_adjudications_by_study ON study_adjudications (study, at)",
        "CREATE INDEX events_annotated_by_study ON events (json_extract(payload, '$.study')) WHERE type = 'Annotated'",
    ]
    for statement in statements:
        db.execute(textwrap.dedent(statement).strip())


def apply_migrations(db: Database, attempts: int = 5) -> None:
    """Bring the schema up to date. Safe when several processes open a new database at once.

    `Migrations.apply` decides what is pending before it opens each migration's transaction, so a
    second process can try to re-run a migration the first one just committed ("table ... already
    exists") or find the file locked. Either way the migration table tells the truth once the other
    process is done, so we look again, a bounded number of times.
    """
    for attempt in range(attempts):
        try:
            MIGRATIONS.apply(db)
            return
        except sqlite3.OperationalError as exc:
            message = str(exc)
            racing = "already exists" in message or "locked" in message or "busy" in message
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))

"""What the SQLite store adds to the EventStore contract: concurrency, derived tables, query plans, the data folder."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from collabvr.events import (
    Annotated, BackendFailed, BreakpointsSet, CostSummary, ForkOrigin, SessionFinished, StepPlanned, TaskSpec,
)
from collabvr.state import fold
from collabvr.store import SequenceConflict, SessionNotFound
from storage import DATA_DIR_ENV, SQLiteEventStore, StoreBusy, open_data_dir
from storage import sqlite_store
from storage.schema import MIGRATIONS

from scripted import plan
from test_store_contract import artifact, one_step, started


@pytest.fixture
def store(tmp_path):
    db = SQLiteEventStore(tmp_path / "events.sqlite")
    yield db
    db.close()


def label(target: str, name: str, value: int | str, actor: str = "alice") -> Annotated:
    return Annotated(target=target, label=name, value=value, actor=actor)  # type: ignore[arg-type]


def seqs(store: SQLiteEventStore, session_id: str) -> list[int]:
    return [row[0] for row in store.db.conn.execute(
        "SELECT seq FROM events WHERE session_id = ? ORDER BY seq", (session_id,))]


# ----- connections --------------------------------------------------------------------------------------

def test_wal_and_foreign_keys_are_on_in_every_threads_connection(store):
    def settings() -> tuple:
        db = store.db
        return (db.journal_mode, db.execute("PRAGMA foreign_keys").fetchone()[0],
                db.execute("PRAGMA busy_timeout").fetchone()[0], id(db))

    here = settings()
    there: list[tuple] = []
    worker = threading.Thread(target=lambda: there.append(settings()))
    worker.start()
    worker.join()
    assert here[:3] == there[0][:3] == ("wal", 1, sqlite_store.BUSY_TIMEOUT_MS)
    assert here[3] != there[0][3], "each thread must get its own connection"


def test_a_connection_refuses_to_be_used_from_another_thread(store):
    db = store.db
    errors: list[Exception] = []

    def misuse() -> None:
        try:
            db.execute("SELECT 1")
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    worker = threading.Thread(target=misuse)
    worker.start()
    worker.join()
    assert len(errors) == 1


# ----- concurrent writers -------------------------------------------------------------------------------

def test_racing_writers_lose_nothing_leave_no_gap_and_only_ever_see_sequence_conflicts(store):
    own_threads, shared_threads, appends = 4, 4, 50
    for n in range(own_threads):
        store.create(started(f"own-{n}"))
    store.create(started("shared"))
    start_together = threading.Barrier(own_threads + shared_threads)
    first_round = threading.Barrier(shared_threads)
    conflicts = Counter()
    errors: list[BaseException] = []

    def writer(name: str, session_id: str, racing: bool) -> None:
        try:
            start_together.wait()
            for i in range(appends):
                first = True
                while True:
                    expected = store.get_session(session_id).n_events
                    if racing and i == 0 and first:
                        # Everyone has read the same count before anyone appends: all but one must conflict.
                        first_round.wait()
                    first = False
                    try:
                        store.append(session_id, [label("session", "note", f"{name}:{i}", actor=name)], expected)
                        break
                    except SequenceConflict:
                        conflicts[name] += 1
        except BaseException as exc:  # anything but a SequenceConflict is a failure of the store
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(f"own{n}", f"own-{n}", False)) for n in range(own_threads)]
    threads += [threading.Thread(target=writer, args=(f"shared{n}", "shared", True)) for n in range(shared_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(conflicts.values()) >= shared_threads - 1
    assert not any(name.startswith("own") for name in conflicts), "writers on their own session never conflict"
    for n in range(own_threads):
        assert seqs(store, f"own-{n}") == list(range(appends + 1))
    assert seqs(store, "shared") == list(range(1 + shared_threads * appends))
    notes = [e.value for e in store.read("shared")[1:]]
    assert sorted(notes) == sorted(f"shared{t}:{i}" for t in range(shared_threads) for i in range(appends))
    for t in range(shared_threads):  # each writer's own appends stay in its order
        mine = [v for v in notes if v.startswith(f"shared{t}:")]
        assert mine == [f"shared{t}:{i}" for i in range(appends)]
    assert store.get_session("shared").n_events == 1 + shared_threads * appends


def test_a_primary_key_collision_surfaces_as_a_sequence_conflict_not_an_overwrite(store, monkeypatch):
    store.create(started())
    store.append("s1", one_step(1), expected_seq=1)
    before = store.read("s1")
    # Pretend a writer got past the count check with a stale count: the primary key must still refuse.
    monkeypatch.setattr(sqlite_store, "_event_count", lambda db, session_id: 3)
    with pytest.raises(SequenceConflict):
        store.append("s1", one_step(2), expected_seq=3)
    monkeypatch.undo()
    assert store.read("s1") == before
    assert store.get_session("s1").n_events == 5


def test_a_writer_waits_for_a_held_write_lock_instead_of_failing(store):
    store.create(started())
    other = sqlite3.connect(store.path, timeout=0, check_same_thread=False)  # the timer thread commits
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, other.commit)
    releaser.start()
    try:
        assert store.append("s1", one_step(1), expected_seq=1) == 5
    finally:
        releaser.join()
        other.close()


def test_a_lock_held_past_every_retry_raises_store_busy_not_operational_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(sqlite_store, "LOCK_RETRIES", 2)
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    store.create(started())
    other = sqlite3.connect(store.path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy, match="stayed locked by other writers through 2 waits"):
            store.append("s1", one_step(1), expected_seq=1)
    finally:
        other.rollback()
        other.close()
    assert store.append("s1", one_step(1), expected_seq=1) == 5


# ----- derived tables ------------------------------------------------------------------------------------

def test_annotations_keep_the_latest_label_per_target_annotator_and_label(store):
    store.create(started())
    store.append("s1", one_step(1), expected_seq=1)
    target = "step:1/attempt:1"
    store.append("s1", [label(target, "D2", "accept"), label(target, "D2", "reject"), label("session", "D1", 3)], 5)
    store.append("s1", [label(target, "D2", "accept", actor="bob"), label("session", "D1", 2)], 8)
    rows = {(r.target, r.annotator, r.label): r for r in store.annotations("s1")}
    assert set(rows) == {(target, "alice", "D2"), (target, "bob", "D2"), ("session", "alice", "D1")}
    assert rows[(target, "alice", "D2")].value == "reject" and rows[(target, "alice", "D2")].seq == 6
    assert rows[("session", "alice", "D1")].value == 2 and rows[("session", "alice", "D1")].seq == 9
    assert isinstance(rows[("session", "alice", "D1")].value, int)
    assert len(fold(store.read("s1")).annotations) == 5, "the log keeps every label"


def test_annotations_without_a_session_list_every_sessions_labels(store):
    store.create(started("a"))
    store.create(started("b"))
    store.append("a", [label("session", "D1", 1)], 1)
    store.append("b", [label("session", "note", "odd clip")], 1)
    assert [(r.session_id, r.value) for r in store.annotations()] == [("a", 1), ("b", "odd clip")]


def test_a_forks_shared_artifacts_are_recorded_once_and_listed_for_both_sessions(store):
    store.create(started("parent"))
    store.append("parent", one_step(1), expected_seq=1)
    fork_start = started("child").model_copy(update={"fork": ForkOrigin(parent_session="parent", at_seq=5)})
    store.create(fork_start)
    store.append("child", one_step(1), expected_seq=1)
    hashes = [a.sha256 for a in store.artifacts_of("parent")]
    assert len(hashes) == 3  # the input image (also the start frame), the clip (also the candidate), the last frame
    assert store.artifacts_of("child") == store.artifacts_of("parent")
    rows = store.db.execute("SELECT sha256, COUNT(*) FROM artifacts GROUP BY sha256").fetchall()
    assert sorted(rows) == sorted((h, 1) for h in hashes)
    child = store.get_session("child")
    assert (child.parent_session, child.fork_seq) == ("parent", 5)


def test_record_artifact_is_idempotent_and_may_name_a_session(store):
    store.create(started())
    extra = artifact(77, "video")
    store.record_artifact(extra)
    store.record_artifact(extra, session_id="s1")
    assert extra in store.artifacts_of("s1")
    assert store.db.execute("SELECT COUNT(*) FROM artifacts WHERE sha256 = ?", [extra.sha256]).fetchone()[0] == 1
    with pytest.raises(SessionNotFound):
        store.record_artifact(extra, session_id="nope")


# ----- the session list ----------------------------------------------------------------------------------

def finished(cost: float = 6.0) -> SessionFinished:
    return SessionFinished(reason="done", final_video=artifact(90, "video"), n_frames=49,
                           cost=CostSummary(vgm_seconds=cost, clips=2, vlm_calls=4))


def failed() -> BackendFailed:
    return BackendFailed(role="generate", step=1, attempt=1, error="TimeoutError", message="slow", retryable=True)


def test_the_session_row_follows_the_log_status_and_cost(store):
    store.create(started())
    cancelled = failed().model_copy(update={"error": "BackendCancelled"})
    history = [([], "new"), ([one_step(1)[0]], "running"), ([failed()], "failed"),
               ([label("session", "D1", 2)], "failed"),  # people's events change nothing
               (one_step(1)[1:], "running"), ([cancelled], "stopped"), (one_step(2)[:1], "running"),
               ([finished()], "finished"), ([label("session", "note", "after the end")], "finished")]
    count = 1
    for batch, status in history:
        count = store.append("s1", batch, count)
        row = store.get_session("s1")
        assert row.status == fold(store.read("s1")).status == status, f"after {[e.type for e in batch]}"
        assert row.n_events == count
    row = store.get_session("s1")
    assert row.status == "finished" and row.cost == finished().cost.model_dump(mode="json")
    assert row.task == started().task.model_dump() and row.config["n_max"] == 2
    assert row.backends == {"vlm": {"name": "scripted-vlm", "simulated": True, "spec": {}},
                            "vgm": {"name": "scripted-vgm", "simulated": True, "spec": {}}}
    assert row.created == 1_000.0 and row.updated > row.created and row.parent_session is None


def make_session(store: SQLiteEventStore, session_id: str, prompt: str, title: str, events: list) -> None:
    first = started(session_id).model_copy(update={"title": title, "task": TaskSpec(prompt=prompt, source="upload")})
    store.create(first)
    if events:
        store.append(session_id, events, 1)


def test_list_sessions_pages_newest_first_and_filters_by_status_and_search(store):
    make_session(store, "a", "Stack the blue block", "blocks run", [StepPlanned(step=1, max_steps=3, plan=plan())])
    make_session(store, "b", "Solve the maze", "maze 100%", [StepPlanned(step=1, max_steps=3, plan=plan()), failed()])
    make_session(store, "c", "Sort the shapes", "shapes", [finished()])
    make_session(store, "d", "Stack the red block", "STACK again", [])
    store.append("a", [BreakpointsSet(breakpoints=(), actor="alice")], 2)  # "a" is now the latest update

    assert [r.id for r in store.list_sessions()] == ["a", "d", "c", "b"]
    assert [r.id for r in store.list_sessions(limit=2, offset=1)] == ["d", "c"]
    assert [r.id for r in store.list_sessions(status="failed")] == ["b"]
    assert [r.id for r in store.list_sessions(status="new")] == ["d"]
    assert [r.id for r in store.list_sessions(search="stack")] == ["a", "d"]  # prompt or title, any case
    assert [r.id for r in store.list_sessions(search="stack", status="running")] == ["a"]
    assert [r.id for r in store.list_sessions(search="100%")] == ["b"]  # % is a character, not a wildcard
    assert [r.id for r in store.list_sessions(search="_")] == []
    assert store.list_sessions(search="nothing like this") == []


def test_get_session_of_an_unknown_id_raises_session_not_found(store):
    with pytest.raises(SessionNotFound):
        store.get_session("nope")


# ----- deletion ------------------------------------------------------------------------------------------

def test_delete_session_cascades_and_keeps_artifacts_another_session_uses(store):
    store.create(started("parent"))
    store.append("parent", one_step(1) + [label("session", "D1", 2), finished()], expected_seq=1)
    store.create(started("child").model_copy(update={"fork": ForkOrigin(parent_session="parent", at_seq=3)}))
    store.append("child", one_step(1)[:2], expected_seq=1)

    orphans = store.delete_session("parent")

    assert sorted(a.sha256 for a in orphans) == sorted(
        a.sha256 for a in [artifact(21), artifact(90, "video")])  # last frame and final video: parent's alone
    with pytest.raises(SessionNotFound):
        store.read("parent")
    for table in ("events", "annotations", "session_artifacts"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = 'parent'").fetchone()[0] == 0
    remaining = {row[0] for row in store.db.execute("SELECT sha256 FROM artifacts")}
    assert remaining == {a.sha256 for a in store.artifacts_of("child")}
    child = store.get_session("child")
    assert child.parent_session is None and child.fork_seq == 3
    assert store.session_ids() == ["child"]
    with pytest.raises(SessionNotFound):
        store.delete_session("parent")


# ----- durability and query plans ------------------------------------------------------------------------

def test_a_new_store_on_the_same_file_reads_the_same_events(tmp_path):
    path = tmp_path / "events.sqlite"
    first = SQLiteEventStore(path)
    first.create(started())
    first.append("s1", one_step(1), expected_seq=1)
    written = first.read("s1")
    first.close()

    again = SQLiteEventStore(path)
    assert again.read("s1") == written
    assert again.session_ids() == ["s1"]
    applied = again.db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0]
    registered = len(MIGRATIONS._migrations)  # m001, m002 (bench runs), m003 (studies), ...
    assert applied == registered >= 2, "migrations run once per database, not once per open"


def traced_plans(store: SQLiteEventStore, call) -> list[str]:
    """The query-plan lines of every SELECT, UPDATE and DELETE that `call` runs on this thread's connection."""
    statements: list[str] = []
    conn = store.db.conn
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))]
    assert selects, "the call ran no query"
    return [row[3] for s in selects for row in conn.execute("EXPLAIN QUERY PLAN " + s)]


def fill(store: SQLiteEventStore, sessions: int) -> None:
    for n in range(sessions):
        store.create(started(f"s{n}", at=1_000.0 + n))
        store.append(f"s{n}", one_step(1), expected_seq=1)
    store.db.execute("ANALYZE")


def test_reading_a_session_uses_the_primary_key_and_scans_nothing(store):
    fill(store, 30)
    plans = traced_plans(store, lambda: store.read("s7", since=2))
    assert plans and not any(line.startswith("SCAN") for line in plans), plans
    assert any("events USING INDEX sqlite_autoindex_events_1 (session_id=? AND seq>?)" in line for line in plans)
    missing = traced_plans(store, lambda: pytest.raises(SessionNotFound, store.read, "nope"))
    assert not any(line.startswith("SCAN") for line in missing), missing


def test_appending_getting_and_deleting_a_session_scan_nothing(store):
    fill(store, 30)
    plans = traced_plans(store, lambda: store.append("s3", [label("session", "D1", 2)], 5))
    plans += traced_plans(store, lambda: store.get_session("s3"))
    plans += traced_plans(store, lambda: store.delete_session("s3"))  # the trace includes the cascades
    assert not any(line.startswith("SCAN") for line in plans), plans


def test_listing_sessions_walks_an_index_in_order_instead_of_sorting_the_table(store):
    fill(store, 30)
    for kwargs, index in [({}, "sessions_by_updated"), ({"status": "running"}, "sessions_by_status_updated")]:
        plans = traced_plans(store, lambda: store.list_sessions(**kwargs))
        assert not any("TEMP B-TREE" in line for line in plans), plans
        assert any(index in line for line in plans), plans


# ----- the data folder ----------------------------------------------------------------------------------

def test_open_data_dir_defaults_to_data_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    store, artifacts = open_data_dir()
    assert store.path.resolve() == tmp_path / "data" / "collabvr.sqlite" and store.path.exists()
    assert artifacts.root == tmp_path / "data" / "artifacts"
    store.close()


def test_open_data_dir_follows_the_environment_and_an_explicit_folder_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    store, _ = open_data_dir()
    assert store.path == tmp_path / "from-env" / "collabvr.sqlite"
    store.close()
    explicit, artifacts = open_data_dir(Path(tmp_path / "explicit"))
    assert explicit.path == tmp_path / "explicit" / "collabvr.sqlite"
    assert artifacts.root == (tmp_path / "explicit" / "artifacts").resolve()
    explicit.close()

"""Reliability studies in the SQLite store: their definition and frozen items, the holds of the queue, and
adjudications (migration m003). The rules (which item comes next, what a hold means) are collabvr.study's;
this module makes them durable and atomic: opening the next item reads the labels and holds and writes the
new hold in one write transaction, so two annotators asking at the same moment never get the same item.

The labels are `Annotated` events in the sessions' logs carrying the study's name (the event log stays the
one truth); they are read through an index on that name, never copied here.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Callable, Iterable

from sqlite_utils import Database

from collabvr.events import Annotated, Event, event_from_json
from collabvr.state import fold
from collabvr.store import SessionNotFound, StoreError
from collabvr.study import (
    Adjudication, Hold, ItemKey, QueueAnswer, StudyError, StudyItem, StudyLabel, StudyNote, StudySnapshot,
    StudySpec, check_study_name, make_adjudication, d2_truths, next_item, study_items, study_labels,
)
from storage.sqlite_store import SQLiteEventStore


# Records one label: (session id, target, label, value, actor, study=...) -> the appended event (Studio.annotate).
Annotate = Callable[..., Event]


class StudyNotFound(StudyError, KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no study {name!r}")

    def __str__(self) -> str:
        return self.args[0]


class StudyStore:
    """The studies of one SQLiteEventStore (same file, same connections, same write discipline)."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.store = store

    # ----- creating and reading --------------------------------------------------------------------------------
    def create(self, spec: StudySpec) -> list[StudyItem]:
        """Record the study and freeze its items (the sessions' verified attempts as they are now). StudyError
        if the name is taken, a session is missing, or the sessions hold no item for the labels asked."""
        check_study_name(spec.name)
        states = {}
        for session_id in spec.sessions:
            try:
                states[session_id] = fold(self.store.read(session_id))
            except SessionNotFound:
                raise StudyError(f"no session {session_id!r} in this database") from None
        items = study_items(spec, states)
        if not items:
            raise StudyError(f"the sessions hold nothing to label for {', '.join(spec.kinds)} "
                             "(D2 and D3 need verified attempts, D3 a suggestion)")

        def work(db: Database) -> None:
            if db.conn.execute("SELECT 1 FROM studies WHERE name = ?", (spec.name,)).fetchone():
                raise StudyError(f"a study named {spec.name!r} exists already; pick another name")
            db.conn.execute("INSERT INTO studies (name, spec, created_at) VALUES (?, ?, ?)",
                            (spec.name, json.dumps(asdict(spec)), spec.created_at))
            db.conn.executemany(
                "INSERT INTO study_items (study, ord, session_id, target, label) VALUES (?, ?, ?, ?, ?)",
                [(spec.name, i.order, i.session_id, i.target, i.label) for i in items])

        self.store._write(work)
        return items

    def names(self) -> list[str]:
        """Every study, newest first."""
        return self.store._read(lambda db: [r[0] for r in db.conn.execute(
            "SELECT name FROM studies ORDER BY created_at DESC, name")])

    def spec(self, name: str) -> StudySpec:
        return self.store._read(lambda db: _spec(db, name))

    def items(self, name: str) -> list[StudyItem]:
        return self.store._read(lambda db: _items(db, name))

    def labels(self, name: str) -> tuple[list[StudyLabel], list[StudyNote]]:
        return self.store._read(lambda db: _labels(db, name))

    def holds(self, name: str) -> list[Hold]:
        return self.store._read(lambda db: _holds(db, name))

    def adjudications(self, name: str) -> list[Adjudication]:
        return self.store._read(lambda db: _adjudications(db, name))

    def snapshot(self, name: str, with_truth: bool = True) -> StudySnapshot:
        """The study and its sessions' states, read now. Sessions deleted since it was made are listed in
        `missing` and their items left out of views and figures."""
        spec = self.spec(name)
        items = self.items(name)
        labels, notes = self.labels(name)
        events, missing = {}, []
        for session_id in spec.sessions:
            try:
                events[session_id] = self.store.read(session_id)
            except SessionNotFound:
                missing.append(session_id)
        states = {sid: fold(log) for sid, log in events.items()}
        truths = d2_truths(items, events) if with_truth else {}
        return StudySnapshot(spec, items, labels, notes, self.holds(name), self.adjudications(name), states,
                             truths, missing)

    # ----- the queue ------------------------------------------------------------------------------------------
    def open_next(self, name: str, annotator: str, now: float | None = None,
                  skip: Iterable[ItemKey] = ()) -> QueueAnswer:
        """Give `annotator` their next item and hold it for them (collabvr.study.next_item), in one write
        transaction; with no item, their hold (if any) is released."""
        now = time.time() if now is None else now
        skipped = list(skip)

        def work(db: Database) -> QueueAnswer:
            spec = _spec(db, name)
            labels, _ = _labels(db, name)
            answer = next_item(spec, _items(db, name), labels, _holds(db, name), annotator, now, skipped)
            if answer.item is None:
                _release(db, name, annotator)
            elif not answer.resumed:
                _hold(db, name, annotator, answer.item.key, now, now + spec.hold_s)
            return answer

        return self.store._write(work)

    def release(self, name: str, annotator: str, key: ItemKey | None = None) -> None:
        """End `annotator`'s hold (only if it is on `key`, when given)."""

        def work(db: Database) -> None:
            if key is None:
                _release(db, name, annotator)
            else:
                db.conn.execute("DELETE FROM study_holds WHERE study = ? AND annotator = ? AND session_id = ? "
                                "AND target = ? AND label = ?", (name, annotator, *key))

        self.store._write(work)

    # ----- labelling -------------------------------------------------------------------------------------------
    def label(self, name: str, key: ItemKey, value: object, annotator: str, annotate: Annotate) -> Event:
        """Record `annotator`'s label of an item of the study as an Annotated event carrying the study's name
        (through `annotate`, e.g. Studio.annotate, which checks the value), then end their hold on it."""
        who = self._check_annotator(name, annotator)
        if key not in {i.key for i in self.items(name)}:
            raise StudyError(f"{'|'.join(key)} is not an item of study {name}")
        event = annotate(key[0], key[1], key[2], value, who, study=name)
        self.release(name, who, key)
        return event

    def note(self, name: str, session_id: str, target: str, text: str, annotator: str, annotate: Annotate) -> Event:
        """A note on an item's target, given in the study (when the study collects notes)."""
        who = self._check_annotator(name, annotator)
        if "note" not in self.spec(name).labels:
            raise StudyError(f"study {name} does not collect notes")
        return annotate(session_id, target, "note", text, who, study=name)

    def _check_annotator(self, name: str, annotator: str) -> str:
        who = (annotator or "").strip()
        if not who:
            raise StudyError("enter your name first: every label of a study is attributed")
        spec = self.spec(name)
        if not spec.may_label(who):
            raise StudyError(f"{who} is not an annotator of study {name} (its annotators: {', '.join(spec.annotators)})")
        return who

    # ----- adjudication -----------------------------------------------------------------------------------------
    def adjudicate(self, name: str, key: ItemKey, value: object, reason: str, adjudicator: str,
                   now: float | None = None) -> Adjudication:
        """Record the final label of an item of the study, with the adjudicator's reason (both required)."""
        item = next((i for i in self.items(name) if i.key == key), None)
        if item is None:
            raise StudyError(f"{'|'.join(key)} is not an item of study {name}")
        row = make_adjudication(item, value, reason, adjudicator, time.time() if now is None else now)

        def work(db: Database) -> None:
            db.conn.execute("INSERT INTO study_adjudications (study, session_id, target, label, value, reason, "
                            "adjudicator, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (name, *key, row.value, row.reason, row.adjudicator, row.at))

        self.store._write(work)
        return row

    def delete(self, name: str) -> None:
        """Forget the study's records (its labels stay in the sessions' logs)."""

        def work(db: Database) -> None:
            if db.conn.execute("DELETE FROM studies WHERE name = ?", (name,)).rowcount == 0:
                raise StudyNotFound(name)

        self.store._write(work)


# ----- queries -------------------------------------------------------------------------------------------------

def _spec(db: Database, name: str) -> StudySpec:
    row = db.conn.execute("SELECT spec FROM studies WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise StudyNotFound(name)
    data = json.loads(row[0])
    for key in ("sessions", "labels", "annotators"):
        data[key] = tuple(data[key])
    return StudySpec(**data)


def _items(db: Database, name: str) -> list[StudyItem]:
    return [StudyItem(session_id, target, label, order) for order, session_id, target, label in db.conn.execute(
        "SELECT ord, session_id, target, label FROM study_items WHERE study = ? ORDER BY ord", (name,))]


def _labels(db: Database, name: str) -> tuple[list[StudyLabel], list[StudyNote]]:
    # The expression and the WHERE clause match the partial index of migration m003.
    rows = db.conn.execute(
        "SELECT session_id, payload FROM events WHERE type = 'Annotated' AND json_extract(payload, '$.study') = ? "
        "ORDER BY session_id, seq", (name,))
    pairs = []
    for session_id, payload in rows:
        event = event_from_json(payload)
        if isinstance(event, Annotated):
            pairs.append((session_id, event))
    return study_labels(name, pairs)


def _holds(db: Database, name: str) -> list[Hold]:
    return [Hold((s, t, lab), who, since, until) for who, s, t, lab, since, until in db.conn.execute(
        "SELECT annotator, session_id, target, label, since, until FROM study_holds WHERE study = ?", (name,))]


def _adjudications(db: Database, name: str) -> list[Adjudication]:
    return [Adjudication((s, t, lab), value, reason, who, at) for s, t, lab, value, reason, who, at in db.conn.execute(
        "SELECT session_id, target, label, value, reason, adjudicator, at FROM study_adjudications WHERE study = ? "
        "ORDER BY at, rowid", (name,))]


def _hold(db: Database, name: str, annotator: str, key: ItemKey, since: float, until: float) -> None:
    db.conn.execute(
        "INSERT INTO study_holds (study, annotator, session_id, target, label, since, until) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study, annotator) DO UPDATE SET session_id = excluded.session_id, "
        "target = excluded.target, label = excluded.label, since = excluded.since, until = excluded.until",
        (name, annotator, *key, since, until))


def _release(db: Database, name: str, annotator: str) -> None:
    db.conn.execute("DELETE FROM study_holds WHERE study = ? AND annotator = ?", (name, annotator))


__all__ = ["StoreError", "StudyNotFound", "StudyStore"]

"""Where events live: the `EventStore` protocol and an in-memory implementation.

The SQLite store in `storage/` implements the same protocol. Appends are optimistic: the caller says how
many events it has seen (`expected_seq`); if another writer appended in between, the append fails with
`SequenceConflict` instead of silently interleaving two histories.
"""

from __future__ import annotations

import re
import threading
from typing import Protocol, Sequence, runtime_checkable

from collabvr.events import Event, SessionStarted


class StoreError(RuntimeError):
    """Base class of event-store errors."""


SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidSessionId(StoreError, ValueError):
    """A session id that is not 1 to 64 ASCII letters, digits, "_" or "-". Ids name folders and files in
    exports and archives, so anything else (a "/", "..", a very long name) is refused wherever one enters."""


def check_session_id(session_id: object) -> str:
    """`session_id` itself if it matches SESSION_ID; InvalidSessionId with a readable reason otherwise. The
    one check for every place an id comes in: the stores, import, export, the command line and the UI."""
    if isinstance(session_id, str) and SESSION_ID.fullmatch(session_id):
        return session_id
    shown = repr(session_id) if len(repr(session_id)) <= 80 else repr(session_id)[:77] + "..."
    raise InvalidSessionId(f"{shown} is not a valid session id: use 1 to 64 letters, digits, '_' or '-'")


class SessionNotFound(StoreError, KeyError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id

    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return self.args[0]


class SequenceConflict(StoreError):
    """Another writer appended to the session since the caller last read it."""

    def __init__(self, session_id: str, expected: int, actual: int) -> None:
        super().__init__(f"session {session_id} has {actual} events, the writer expected {expected}: "
                         "someone else appended in between; reload and decide again")
        self.session_id = session_id
        self.expected = expected
        self.actual = actual


def check_new_session(started: SessionStarted) -> None:
    """What every store checks before it creates a session: its id, and its parent's if it is a fork."""
    check_session_id(started.session_id)
    if started.fork is not None:
        check_session_id(started.fork.parent_session)


@runtime_checkable
class EventStore(Protocol):
    def create(self, started: SessionStarted) -> None:
        """Start a new session whose first event is `started`. Raises StoreError if the id exists,
        InvalidSessionId (a StoreError) if it is not a valid id (check_new_session)."""

    def append(self, session_id: str, events: Sequence[Event], expected_seq: int) -> int:
        """Append `events` atomically after exactly `expected_seq` events; returns the new count."""

    def read(self, session_id: str, since: int = 0) -> list[Event]:
        """The session's events from index `since` on (0 = all)."""

    def session_ids(self) -> list[str]:
        """Every session, oldest first."""


class MemoryEventStore:
    """Events in a dict, guarded by a lock. For tests, the CLI without --db, and anything short-lived."""

    def __init__(self) -> None:
        self._events: dict[str, list[Event]] = {}
        self._lock = threading.Lock()

    def create(self, started: SessionStarted) -> None:
        check_new_session(started)
        with self._lock:
            if started.session_id in self._events:
                raise StoreError(f"session {started.session_id} already exists")
            self._events[started.session_id] = [started]

    def append(self, session_id: str, events: Sequence[Event], expected_seq: int) -> int:
        with self._lock:
            log = self._log(session_id)
            if len(log) != expected_seq:
                raise SequenceConflict(session_id, expected_seq, len(log))
            log.extend(events)
            return len(log)

    def read(self, session_id: str, since: int = 0) -> list[Event]:
        with self._lock:
            return list(self._log(session_id)[since:])

    def session_ids(self) -> list[str]:
        with self._lock:
            return list(self._events)

    def _log(self, session_id: str) -> list[Event]:
        try:
            return self._events[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None

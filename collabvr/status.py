"""A session's status, by one rule that the fold (SessionState.status), the SQLite store's session list and
the UI all use.

    new       no engine event yet
    running   the engine has done something and the session is not finished (also: waiting for a person)
    failed    the latest engine event is a failure (a backend's, or the engine's own command)
    stopped   the same, when that failure is a generation a person cancelled
    finished  a SessionFinished is in the log

People's events (decisions, labels) change nothing: a status says what the engine last did. Nor does a
discarded stale result: it is neither progress nor a failure.
"""

from __future__ import annotations

from typing import Iterable

from collabvr.backends import BackendCancelled
from collabvr.events import BackendFailed, CommandFailed, Event, ResultDiscarded, SessionFinished, SessionStarted


STATUSES = ("new", "running", "stopped", "failed", "finished")
CANCELLED = BackendCancelled.__name__  # the error a cancelled generation is recorded with


def status_after(status: str, events: Iterable[Event]) -> str:
    """The status of a session that had `status` once `events` are appended to it."""
    for event in events:
        if isinstance(event, SessionFinished):
            status = "finished"
        elif status == "finished" or event.actor != "engine" or isinstance(event, (SessionStarted, ResultDiscarded)):
            continue
        elif isinstance(event, (BackendFailed, CommandFailed)):
            status = "stopped" if event.error == CANCELLED else "failed"
        else:
            status = "running"
    return status


def session_status(events: Iterable[Event]) -> str:
    """The status of a whole log."""
    return status_after("new", events)

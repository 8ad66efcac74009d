"""The sessions view: list (with search and status), delete with the files no other session uses, export,
and the final video."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from collabvr.store import StoreError
from storage import delete_session_and_files
from storage.data_dir import EXPORTS_NAME
from storage.sqlite_store import MAX_SEARCH_CHARS
from ui import render
from ui.handlers.common import Services, guarded, need_session, ok, plain, problem
from ui.handlers.view import SHOWN_STATUSES, fork_step, session_view, shown_status


STATUS_FILTERS = ("all", *SHOWN_STATUSES)
LIST_LIMIT = 200

SESSION_COLUMNS = ["id", "title", "status", "updated", "parent", "events"]

# The logged statuses (collabvr.status) a shown status can come from: the store filters on what the log
# says, the page on what a person sees. A worker can drive a session of any logged status but finished.
_LOGGED = {"finished": ("finished",), "interrupted": ("running",), "held": ("running", "failed", "stopped"),
           "failed": ("failed", "stopped", "running"), "idle": ("new", "running", "stopped", "failed"),
           "working": ("new", "running", "stopped", "failed")}


def list_sessions(svc: Services, search: str | None, status: str | None) -> tuple[list[list[Any]], list[str]]:
    """Rows of the sessions table (most recently updated first) and their ids; `status` filters by the
    status a person sees (shown_status: the same word as the status badge), "all" or nothing keeps every
    session. A fork's title and parent say the step it was forked at."""
    wanted = None if status in (None, "", "all") else status
    if len((search or "").strip()) > MAX_SEARCH_CHARS:
        return [], []  # the search box takes at most MAX_SEARCH_CHARS (it says so); an API caller gets nothing
    found = svc.store.list_sessions(search=(search or "").strip() or None, limit=LIST_LIMIT) if wanted is None \
        else [row for logged in _LOGGED.get(wanted, ()) for row in
              svc.store.list_sessions(search=(search or "").strip() or None, status=logged, limit=LIST_LIMIT)]
    found.sort(key=lambda row: (row.updated, row.id), reverse=True)
    table, ids = [], []
    for row in found:
        shown = shown_status(svc, row.id, row.status)
        if wanted is not None and shown != wanted:
            continue
        title, parent = row.title, ""
        if row.parent_session:
            step = _fork_step(svc, row.id)
            title = render.list_title(row.title, step)
            parent = row.parent_session + (f" (step {step})" if step is not None else "")
        table.append([row.id, title, shown, render.when(row.updated), parent, row.n_events])
        ids.append(row.id)
        if len(ids) == LIST_LIMIT:
            break
    return table, ids


def _fork_step(svc: Services, sid: str) -> int | None:
    try:
        return fork_step(svc.store.read(sid))
    except StoreError:
        return None


def delete_session(svc: Services, sid: str | None, confirmed: bool) -> str:
    missing = need_session(sid)
    if missing:
        return missing
    if not confirmed:
        return problem(f"tick 'yes, delete' to delete session {sid}: this cannot be undone")

    def work() -> str:
        svc.studio.forget(sid)
        orphans = delete_session_and_files(svc.store, svc.artifacts, sid, svc.links.cache_dir)
        return ok(f"deleted session {sid} and {len(orphans)} file(s) no other session used")
    return guarded(work)


def export_session(svc: Services, sid: str | None) -> tuple[list[str], str]:
    missing = need_session(sid)
    if missing:
        return [], missing
    from storage.export import export_sessions

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = svc.data_dir / EXPORTS_NAME / f"session-{sid}-{stamp}.jsonl"
    try:
        result = export_sessions(svc.store, svc.artifacts, [sid], out)
    except (StoreError, FileNotFoundError, ValueError) as exc:
        return [], problem(plain(exc))
    return ([str(result.jsonl_path), str(result.zip_path)],
            ok(f"exported {result.attempts} attempt(s) of {sid}: JSONL rows and a zip with the full log and clips"))


def final_video(svc: Services, sid: str | None) -> str | None:
    if not sid:
        return None
    try:
        return session_view(svc, sid).final_video
    except StoreError:
        return None

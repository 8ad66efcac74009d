"""The sessions view: list (with search and status), delete with the files no other session uses, export,
and the final video."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from collabvr.status import STATUSES
from collabvr.store import StoreError
from storage import delete_session_and_files
from storage.data_dir import EXPORTS_NAME
from ui import render
from ui.handlers.common import Services, guarded, need_session, ok, plain, problem
from ui.handlers.view import INTERRUPTED, session_view, shown_status


STATUS_FILTERS = ("all", *STATUSES, INTERRUPTED)

SESSION_COLUMNS = ["id", "title", "status", "updated", "parent", "events"]


def list_sessions(svc: Services, search: str | None, status: str | None) -> tuple[list[list[Any]], list[str]]:
    """Rows of the sessions table (most recently updated first) and their ids; `status` filters by the
    status a person sees (shown_status), "all" or nothing keeps every session."""
    wanted = None if status in (None, "", "all") else status
    # An interrupted session is logged as running; the store filters on what the log says.
    logged = "running" if wanted == INTERRUPTED else wanted
    rows = svc.store.list_sessions(search=(search or "").strip() or None, status=logged, limit=200)
    table, ids = [], []
    for row in rows:
        shown = shown_status(svc, row.id, row.status)
        if wanted == INTERRUPTED and shown != INTERRUPTED:
            continue
        parent = f"{row.parent_session} @{row.fork_seq}" if row.parent_session else ""
        table.append([row.id, row.title, shown, render.when(row.updated), parent, row.n_events])
        ids.append(row.id)
    return table, ids


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

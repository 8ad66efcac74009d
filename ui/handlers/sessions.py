"""The sessions view: list (with search and status), delete with the files no other session uses, export,
and the final video."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from collabvr.store import StoreError
from ui import render
from ui.handlers.common import Services, guarded, need_session, ok, plain, problem
from ui.handlers.view import interrupted, session_view


STATUS_FILTERS = ("all", "new", "running", "interrupted", "stopped", "failed", "finished")

SESSION_COLUMNS = ["id", "title", "status", "updated", "parent", "events"]


def list_sessions(svc: Services, search: str | None, status: str | None) -> tuple[list[list[Any]], list[str]]:
    wanted = None if status in (None, "", "all", "interrupted") else status
    if status == "interrupted":
        wanted = "running"
    rows = svc.store.list_sessions(search=(search or "").strip() or None, status=wanted, limit=200)
    table, ids = [], []
    for row in rows:
        shown = "interrupted" if interrupted(svc, row.id, row.status) else row.status
        if svc.studio.is_running(row.id):
            shown = "working"
        if status == "interrupted" and shown != "interrupted":
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
        orphans = svc.store.delete_session(sid)
        for artifact in orphans:
            svc.artifacts.path(artifact).unlink(missing_ok=True)
            for cached in svc.links.cache_dir.glob(f"frames/{artifact.sha256}_*.png"):
                cached.unlink(missing_ok=True)
        return ok(f"deleted session {sid} and {len(orphans)} file(s) no other session used")
    return guarded(work)


def export_session(svc: Services, sid: str | None) -> tuple[list[str], str]:
    missing = need_session(sid)
    if missing:
        return [], missing
    from storage.export import export_sessions

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = svc.data_dir / "exports" / f"session-{sid}-{stamp}.jsonl"
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

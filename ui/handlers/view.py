"""The view of one open session: the timeline, the status line and the choices the panels offer, from a
fresh fold of its log; rebuilt only when the log grew or the worker's activity changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from collabvr.events import BackendFailed, CommandFailed, attempt_target
from collabvr.loop import Kind, next_command
from collabvr.state import SessionState, fold
from collabvr.store import StoreError
from ui import render
from ui.handlers.common import Services, need_session, ok, plain, problem


WORKING = "working"  # beside collabvr.status.STATUSES: what only this process can know
INTERRUPTED = "interrupted"

@dataclass
class SessionView:
    """Everything the page shows about one session, computed from a fresh fold of its log."""

    session_id: str
    seq: int
    timeline: str
    status: str
    current_step: int | None
    instruction: str
    decision_attempts: list[str]  # verified attempts of the current step
    failed_attempt: str | None  # the latest rejected attempt of the current step (regen source)
    attempts: list[str]  # every verified attempt of the session (annotation targets)
    steps: list[int]
    breakpoints: list[str]
    finished: bool
    final_video: str | None
    activity_key: str = ""
    extra: dict = field(default_factory=dict)


def activity_key(svc: Services, sid: str) -> str:
    a = svc.studio.activity(sid)
    return f"{a.running}|{a.command}|{a.done}|{a.total}|{a.error}"


def shown_status(svc: Services, sid: str, logged: str, state: SessionState | None = None) -> str:
    """The status a person sees, for the status line and the sessions list alike: "working" while a worker
    of this process drives the session; "interrupted" for one an earlier process left mid-run (the log says
    running, no worker here has driven it since the start, and nothing holds it); else the logged status
    (collabvr.status). `state` saves a fold when the caller has one."""
    activity = svc.studio.activity(sid)
    if activity.running:
        return WORKING
    if logged != "running" or activity.started_at != 0.0:
        return logged
    state = state if state is not None else fold(svc.store.read(sid))
    fork = state.started.fork
    if fork is not None and state.seq == fork.at_seq:
        return logged  # a fresh fork waits for its first command; nothing was interrupted
    if next_command(state).kind is Kind.WAIT:
        return logged  # held at a breakpoint or by a person's decision: paused, not interrupted
    return INTERRUPTED


def session_view(svc: Services, sid: str) -> SessionView:
    events = svc.store.read(sid)
    state = fold(events)
    activity = svc.studio.activity(sid)
    command = next_command(state)
    failures = [e for e in events if isinstance(e, (BackendFailed, CommandFailed))]
    current = state.current_step
    decision: list[str] = []
    failed = None
    if current is not None:
        for a in current.attempts:
            if a.verified is not None:
                target = attempt_target(current.number, a.number)
                decision.append(target)
                if a.effective_verdict == "reject":
                    failed = target
    every = [attempt_target(s.number, a.number) for s in state.steps for a in s.attempts if a.verified is not None]
    final = None
    if state.finished is not None and state.finished.final_video is not None:
        path = svc.artifacts.path(state.finished.final_video)
        final = str(path) if path.is_file() else None
    return SessionView(
        session_id=sid, seq=state.seq,
        timeline=render.render_timeline(state, svc.links, failures),
        status=render.render_status(state, command, activity, shown=shown_status(svc, sid, state.status, state)),
        current_step=current.number if current else None,
        instruction=current.instruction if current else "",
        decision_attempts=decision, failed_attempt=failed, attempts=every,
        steps=[s.number for s in state.steps if s.attempts],
        breakpoints=list(state.breakpoints), finished=state.finished is not None, final_video=final,
        activity_key=activity_key(svc, sid))


def open_session(svc: Services, sid: str | None) -> tuple[SessionView | None, str]:
    missing = need_session(sid)
    if missing:
        return None, missing
    try:
        return session_view(svc, sid.strip()), ok(f"opened session {sid.strip()}")
    except StoreError as exc:
        return None, problem(plain(exc))


def refresh(svc: Services, sid: str | None, last_seq: int | None, last_activity: str | None
            ) -> tuple[SessionView | None, bool]:
    """(view, changed): the view is rebuilt only when the log grew or the worker's activity changed, so
    that a polling timer does not re-render (and flicker) an idle page."""
    if not sid:
        return None, False
    try:
        n_events = svc.store.get_session(sid).n_events
    except StoreError:
        return None, False
    if n_events == last_seq and activity_key(svc, sid) == last_activity:
        return None, False
    return session_view(svc, sid), True

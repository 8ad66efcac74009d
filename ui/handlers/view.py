"""The view of one open session: the timeline, the status line and the choices the panels offer, from a
fresh fold of its log; rebuilt only when the log grew or the worker's activity changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from collabvr.events import (
    BackendFailed, CommandFailed, Event, ResultDiscarded, StepPlanned, attempt_target, parse_attempt_target,
)
from collabvr.loop import Command, Kind, next_command
from collabvr.state import SessionState, fold
from collabvr.store import StoreError
from ui import render
from ui.handlers.common import Services, need_session, ok, plain, problem


WORKING = "working"  # a worker of this process drives the session: only this process can know
INTERRUPTED = "interrupted"
SHOWN_STATUSES = tuple(render.BADGE_HINTS)  # idle, working, held, failed, interrupted, finished

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
    focus_attempt: str | None  # the one the loop is on (render.focus_attempt): decisions act on it by default
    focus_lines: dict[str, tuple[str, str, str]]  # per decision attempt: its line and the two buttons' labels
    attempts: list[str]  # every verified attempt of the session (annotation targets)
    steps: list[int]
    breakpoints: list[str]
    finished: bool
    final_video: str | None
    activity_key: str = ""
    worker_ended_at: float = 0.0  # when this process's worker last returned (0: it never ran here)
    worker_note: str = ""  # why it returned, as the control panel's message says it (render.worker_message)
    extra: dict = field(default_factory=dict)


def activity_key(svc: Services, sid: str) -> str:
    a = svc.studio.activity(sid)
    gpu = svc.studio.gpu_queue(sid) if a.running else None  # the status line follows the GPU queue while it runs
    return f"{a.running}|{a.command}|{a.done}|{a.total}|{a.error}|{a.finished_at}|{gpu}"


def was_running(key: str | None) -> bool:
    """Whether an activity_key was taken while a worker ran."""
    return bool(key) and key.startswith("True|")


def interrupted(svc: Services, sid: str, state: SessionState) -> bool:
    """An earlier process left the session mid-run: the log says running, no worker here has driven it
    since this process started, and neither a breakpoint nor a failure holds it."""
    activity = svc.studio.activity(sid)
    if activity.running or state.status != "running" or activity.started_at != 0.0:
        return False
    fork = state.started.fork
    if fork is not None and state.seq == (fork.inherited_events or fork.at_seq):
        return False  # a fresh fork waits for its first command; nothing was interrupted
    return next_command(state).kind is not Kind.WAIT


def shown_status(svc: Services, sid: str, logged: str, state: SessionState | None = None) -> str:
    """The status a person sees, for the status badge and the sessions list alike: one of SHOWN_STATUSES,
    by render.badge (never "running" while nothing runs). `logged` (collabvr.status) spares a fold where
    it decides alone; `state` saves one when the caller has it."""
    activity = svc.studio.activity(sid)
    if activity.running:
        return WORKING
    if logged == "finished":
        return "finished"
    if logged == "new":
        return "idle"
    state = state if state is not None else fold(svc.store.read(sid))
    return render.badge(state, next_command(state), activity, interrupted=interrupted(svc, sid, state)).word


def fork_step(events: list[Event]) -> int | None:
    """For a fork, the step it was forked at: the last step planned in what it inherited (None for a
    session that is not a fork, or a fork made before any plan)."""
    fork = getattr(events[0], "fork", None) if events else None
    if fork is None:
        return None
    inherited = events[:fork.inherited_events or fork.at_seq]
    planned = [e.step for e in inherited if isinstance(e, StepPlanned)]
    return planned[-1] if planned else None


def session_view(svc: Services, sid: str) -> SessionView:
    events = svc.store.read(sid)
    state = fold(events)
    activity = svc.studio.activity(sid)
    command = next_command(state)
    failures = [e for e in events if isinstance(e, (BackendFailed, CommandFailed))]
    discarded = [e for e in events if isinstance(e, ResultDiscarded)]
    current = state.current_step
    decision = [attempt_target(current.number, a.number) for a in current.attempts if a.verified is not None] \
        if current is not None else []
    every = [attempt_target(s.number, a.number) for s in state.steps for a in s.attempts if a.verified is not None]
    final = None
    if state.finished is not None and state.finished.final_video is not None:
        path = svc.artifacts.path(state.finished.final_video)
        final = str(path) if path.is_file() else None
    return SessionView(
        session_id=sid, seq=state.seq,
        timeline=render.render_timeline(state, svc.links, failures, discarded, fork_step(events)),
        status=render.render_status(state, command, activity,
                                    shown=INTERRUPTED if interrupted(svc, sid, state) else None,
                                    gpu=svc.studio.gpu_queue(sid)),
        current_step=current.number if current else None,
        instruction=current.instruction if current else "",
        decision_attempts=decision, focus_attempt=render.focus_attempt(state, command),
        focus_lines={t: focus_line(state, command, t) for t in decision},
        attempts=every,
        steps=[s.number for s in state.steps if s.attempts],
        breakpoints=list(state.breakpoints), finished=state.finished is not None, final_video=final,
        activity_key=activity_key(svc, sid),
        worker_ended_at=0.0 if activity.running else activity.finished_at,
        worker_note="" if activity.running or not activity.finished_at else render.worker_message(activity))


def focus_line(state: SessionState, command: Command, target: str | None) -> tuple[str, str, str]:
    """(the line that says which attempt accept/reject act on, the accept button's label, the reject
    button's label): a decision names its attempt before it is made."""
    html = render.decision_focus(state, command, target)
    try:
        step_number, attempt = parse_attempt_target(target)
    except ValueError:
        return html, "accept", "reject"
    where = f"step {step_number} · attempt {attempt}"
    return html, f"accept {where}", f"reject {where}"


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

"""What each button does, as plain functions of the services and the inputs (testable without a browser).

Each handler asks the Studio, the store, collabvr.report or collabvr.agreement and returns plain values:
messages, HTML, lists, file paths. People's mistakes and refused decisions come back as a message that
starts with "⚠"; nothing here raises for those. The Gradio wiring (ui/wiring.py) turns the values into
component updates.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from collabvr.backends import registry
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.engine import MAX_PROMPT_CHARS, DecisionError
from collabvr.events import BackendFailed, Event, attempt_target
from collabvr.loop import Command, Kind, next_command
from collabvr.state import SessionState
from collabvr.store import StoreError
from collabvr.studio import MAX_IMAGE_SIDE, NewSimSession, SessionBusy, Studio
from storage import SQLiteEventStore
from ui import render
from ui.media import MediaLinks


BREAKPOINT_LABELS = {
    "before_generate": "before generation",
    "after_verify": "after verification",
    "on_reject": "on reject",
    "on_route": "on route",
}
STATUS_FILTERS = ("all", "new", "running", "interrupted", "stopped", "failed", "finished")
SCOPES = ("this session", "all sessions")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


@dataclass
class Services:
    """Everything the handlers touch, built once by app.py."""

    studio: Studio
    store: SQLiteEventStore
    data_dir: Path
    links: MediaLinks
    default_latency: float = 0.0

    @property
    def artifacts(self):
        return self.studio.artifacts

    @classmethod
    def create(cls, studio: Studio, store: SQLiteEventStore, data_dir: Path | str,
               default_latency: float = 0.0) -> "Services":
        data_dir = Path(data_dir).resolve()
        return cls(studio, store, data_dir, MediaLinks(studio.artifacts, data_dir / "cache"), default_latency)


def ok(text: str) -> str:
    return f"✔ {text}"


def problem(text: str) -> str:
    return f"⚠ {text}"


def is_problem(message: str) -> bool:
    return message.startswith("⚠")


def _guarded(work: Callable[[], str]) -> str:
    """Run a decision; the engine's and store's refusals become messages, never tracebacks."""
    try:
        return work()
    except SessionBusy as exc:
        return problem(str(exc))
    except (DecisionError, registry.BackendUnavailable, StoreError, KeyError) as exc:
        return problem(_plain(exc))
    except ValidationError as exc:
        return problem(_validation(exc))
    except ValueError as exc:
        return problem(str(exc))


def _plain(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    return text


def _validation(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


def _need_session(sid: str | None) -> str | None:
    return None if sid and sid.strip() else problem("no session is open: start one, or open one in the Sessions tab")


def _need_name(actor: str | None) -> str | None:
    if actor and actor.strip():
        return None
    return problem("enter your name in the Annotator box first (it is kept in this browser)")


def _not_running(svc: Services, sid: str) -> None:
    activity = svc.studio.activity(sid)
    if activity.running:
        raise SessionBusy(f"the session is working ({activity.command or activity.mode}); pause or stop it "
                          "first, then decide")


def parse_target(target: str | None) -> tuple[int, int]:
    """(step, attempt) of "step:t/attempt:j"."""
    try:
        step_part, attempt_part = str(target).split("/")
        return int(step_part.removeprefix("step:")), int(attempt_part.removeprefix("attempt:"))
    except ValueError:
        raise DecisionError(f"pick an attempt (like {attempt_target(1, 1)!r}), not {target!r}") from None


# ----- the new-session panel --------------------------------------------------------------------------------

def families() -> list[str]:
    from collabvr.sim import FAMILIES
    return list(FAMILIES)


def difficulties() -> list[str]:
    from collabvr.sim import DIFFICULTIES
    return list(DIFFICULTIES)


def preview_task(family: str, difficulty: str, seed: float | int | None) -> tuple[np.ndarray | None, str]:
    """The input image and task prompt a simulated task would start from."""
    from collabvr.sim import get_family, make_task

    try:
        task = make_task(family, difficulty, int(seed or 0))
        return get_family(family).render(task.initial), task.prompt
    except (ValueError, TypeError) as exc:
        return None, problem(str(exc))


def backend_choices(role: str) -> list[tuple[str, str]]:
    """(label, key) pairs for a dropdown; backends that cannot run here say so in their label."""
    pairs = []
    for c in registry.choices():
        if c.role == role:
            pairs.append((c.label if c.available else f"{c.label} (unavailable)", c.key))
    return pairs


def availability_markdown() -> str:
    lines = []
    for c in registry.choices():
        mark = "✔ available" if c.available else f"✘ {c.why_not}"
        sim = " · simulated" if c.simulated else ""
        lines.append(f"- **{c.role.upper()}** {render.esc(c.label)}{sim}: {render.esc(mark)}")
    return "\n".join(lines)


def _choice(role: str, key: str | None) -> registry.BackendChoice:
    for c in registry.choices():
        if c.role == role and c.key == key:
            return c
    raise registry.BackendUnavailable(f"pick a {role.upper()} backend (unknown: {key!r})")


def _sim_profile(role: str, key: str | None) -> str:
    choice = _choice(role, key)
    if not choice.available:
        raise registry.BackendUnavailable(f"{choice.label} cannot run here: {choice.why_not}")
    if not choice.simulated:
        raise registry.BackendUnavailable(f"{choice.label} cannot run simulated tasks; pick a simulated "
                                          f"{role.upper()} or upload an image")
    return choice.key.removeprefix("sim:")


def loop_config(n_max: Any, m: Any, first_seconds: Any, later_seconds: Any,
                breakpoints: list[str] | None) -> LoopConfig:
    return LoopConfig(n_max=int(n_max), m=int(m), first_step_seconds=float(first_seconds),
                      later_seconds=float(later_seconds),
                      breakpoints=tuple(b for b in BREAKPOINTS if b in (breakpoints or [])))


def load_upload(path: str | None) -> np.ndarray:
    """An uploaded file as an RGB array; a clear DecisionError for anything that is not a usable picture."""
    if not path:
        raise DecisionError("choose an image file to upload")
    file = Path(path)
    if not file.is_file():
        raise DecisionError("the uploaded file is gone; upload it again")
    if file.stat().st_size > MAX_UPLOAD_BYTES:
        raise DecisionError(f"the file has {file.stat().st_size / 1e6:.0f} MB; at most "
                            f"{MAX_UPLOAD_BYTES // 1_000_000} MB are accepted")
    try:
        with Image.open(file) as image:
            width, height = image.size  # read from the header: a huge picture is refused before decoding
            if max(width, height) > MAX_IMAGE_SIDE:
                raise DecisionError(f"the image is {width}x{height}; each side must be at most {MAX_IMAGE_SIDE} px")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise DecisionError(f"{file.name} is not an image this app can read (PNG or JPEG)") from None


def new_session(svc: Services, source: str, family: str, difficulty: str, seed: Any, upload_path: str | None,
                upload_prompt: str, vlm_key: str, vgm_key: str, n_max: Any, m: Any, first_seconds: Any,
                later_seconds: Any, breakpoints: list[str] | None, latency: Any, title: str = "") -> tuple[str, str]:
    """Start a session; returns (session id or "", message)."""
    created: list[str] = []

    def work() -> str:
        config = loop_config(n_max, m, first_seconds, later_seconds, breakpoints)
        if source == "upload":
            image = load_upload(upload_path)
            prompt = (upload_prompt or "").strip()
            if not prompt:
                raise DecisionError("the task prompt is empty")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise DecisionError(f"the task prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
            created.append(svc.studio.new_upload_session(image, prompt, vlm_key, vgm_key, config, title))
        else:
            spec = NewSimSession(family=family, difficulty=difficulty, seed=int(seed or 0),
                                 vlm_profile=_sim_profile("vlm", vlm_key), vgm_profile=_sim_profile("vgm", vgm_key),
                                 latency_s=float(latency if latency is not None else svc.default_latency),
                                 config=config, title=title)
            created.append(svc.studio.new_sim_session(spec))
        return ok(f"session {created[0]} started; press Step or Run")

    message = _guarded(work)
    return (created[0] if created else ""), message


# ----- the view of one session ----------------------------------------------------------------------------

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


def interrupted(svc: Services, sid: str, status: str) -> bool:
    """A session left mid-run by an earlier process: the log says running, but no worker in this process
    has driven it since the start."""
    activity = svc.studio.activity(sid)
    if status != "running" or activity.running or activity.started_at != 0.0:
        return False
    state = _fold(svc.store.read(sid))
    fork = state.started.fork
    if fork is not None and state.seq == fork.at_seq:
        return False  # a fresh fork waits for its first command; nothing was interrupted
    return _next_command(state).kind is not Kind.WAIT  # held at a breakpoint is paused, not interrupted


def session_view(svc: Services, sid: str) -> SessionView:
    events = svc.store.read(sid)
    state = _fold(events)
    activity = svc.studio.activity(sid)
    command = _next_command(state)
    failures = [e for e in events if isinstance(e, BackendFailed)]
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
        status=render.render_status(state, command, activity, interrupted=interrupted(svc, sid, state.status)),
        current_step=current.number if current else None,
        instruction=current.instruction if current else "",
        decision_attempts=decision, failed_attempt=failed, attempts=every,
        steps=[s.number for s in state.steps if s.attempts],
        breakpoints=list(state.breakpoints), finished=state.finished is not None, final_video=final,
        activity_key=activity_key(svc, sid))


def _fold(events: list[Event]) -> SessionState:
    from collabvr.state import fold
    return fold(events)


def _next_command(state: SessionState) -> Command:
    return next_command(state)


def open_session(svc: Services, sid: str | None) -> tuple[SessionView | None, str]:
    missing = _need_session(sid)
    if missing:
        return None, missing
    try:
        return session_view(svc, sid.strip()), ok(f"opened session {sid.strip()}")
    except StoreError as exc:
        return None, problem(_plain(exc))


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


# ----- driving ---------------------------------------------------------------------------------------------

def step(svc: Services, sid: str | None) -> str:
    missing = _need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.studio.start_step(sid)
        return ok("running one command")
    return _guarded(work)


def run(svc: Services, sid: str | None) -> str:
    missing = _need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.studio.start_run(sid)
        return ok("running until the end, a breakpoint or a failure")
    return _guarded(work)


def pause(svc: Services, sid: str | None) -> str:
    missing = _need_session(sid)
    if missing:
        return missing

    def work() -> str:
        if not svc.studio.is_running(sid):
            return ok("the session is not running")
        svc.studio.pause(sid)
        return ok("pausing after the command in flight")
    return _guarded(work)


def stop(svc: Services, sid: str | None) -> str:
    missing = _need_session(sid)
    if missing:
        return missing

    def work() -> str:
        if not svc.studio.is_running(sid):
            return ok("the session is not running")
        svc.studio.stop(sid)
        return ok("stopping: a generation in flight is cancelled (Run resumes it)")
    return _guarded(work)


def set_breakpoints(svc: Services, sid: str | None, breakpoints: list[str] | None, actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        svc.studio.set_breakpoints(sid, list(breakpoints or []), actor)
        names = ", ".join(BREAKPOINT_LABELS[b] for b in BREAKPOINTS if b in (breakpoints or [])) or "none"
        return ok(f"breakpoints: {names}")
    return _guarded(work)


# ----- people's decisions on the current step ---------------------------------------------------------------

def override(svc: Services, sid: str | None, target: str | None, verdict: str, reason: str, suggestion: str,
             actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _not_running(svc, sid)
        step_number, attempt = parse_target(target)
        svc.studio.override_verdict(sid, step_number, attempt, verdict, actor, reason or "", suggestion or "")
        return ok(f"{target} overridden to {verdict}; Step or Run to continue")
    return _guarded(work)


def edit_action(svc: Services, sid: str | None, text: str, actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _not_running(svc, sid)
        current = svc.studio.state(sid).current_step
        if current is None:
            raise DecisionError("there is no step yet: Step once to let the planner propose one")
        svc.studio.edit_action(sid, current.number, text or "", actor)
        return ok(f"the next generation of step {current.number} will use the edited action")
    return _guarded(work)


def regen_source(svc: Services, sid: str | None, target: str | None) -> tuple[int, int]:
    """(last frame index, suggested frame) of the attempt a regen would start from: the suggestion is the
    verifier's first failing frame."""
    if not sid or not target:
        return 0, 0
    try:
        step_number, attempt = parse_target(target)
        a = svc.studio.state(sid).step(step_number).attempt(attempt)
    except (DecisionError, KeyError, StoreError):
        return 0, 0
    last = a.candidate_frames - 1
    failing = a.verified.first_failing_frame if a.verified else None
    return last, min(failing if failing is not None else 0, last)


def regen_preview(svc: Services, sid: str | None, target: str | None, frame: Any) -> str | None:
    """A full-size PNG of frame `frame` of the attempt's candidate clip (None when there is nothing to show)."""
    if not sid or not target:
        return None
    try:
        step_number, attempt = parse_target(target)
        a = svc.studio.state(sid).step(step_number).attempt(attempt)
        index = min(max(int(frame or 0), 0), a.candidate_frames - 1)
        return str(svc.links.full_frame(a.generated.candidate, index))
    except (DecisionError, KeyError, StoreError, OSError, ValueError):
        return None


def route_regen(svc: Services, sid: str | None, target: str | None, frame: Any, suggestion: str,
                actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _not_running(svc, sid)
        _routable(svc, sid)
        step_number, attempt = parse_target(target)
        svc.studio.request_route(sid, step_number, "regen", actor, attempt=attempt, frame_index=int(frame or 0),
                                 suggestion=suggestion or "", reason="regen from a frame picked by a person")
        return ok(f"step {step_number} will regenerate from frame {int(frame or 0)} of attempt {attempt}")
    return _guarded(work)


def route_split(svc: Services, sid: str | None, sub_steps: Any, actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _not_running(svc, sid)
        _routable(svc, sid)
        current = _current_step(svc, sid)
        svc.studio.request_route(sid, current, "split", actor, estimated_steps=int(sub_steps or 0),
                                 reason="split requested by a person")
        return ok(f"step {current} will be re-planned as {int(sub_steps)} sub-steps")
    return _guarded(work)


def route_fallback(svc: Services, sid: str | None, actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _not_running(svc, sid)
        _routable(svc, sid)
        current = _current_step(svc, sid)
        svc.studio.request_route(sid, current, "fallback", actor, reason="fallback requested by a person")
        return ok(f"step {current} falls back to generating the whole remaining task")
    return _guarded(work)


def _current_step(svc: Services, sid: str) -> int:
    current = svc.studio.state(sid).current_step
    if current is None:
        raise DecisionError("there is no step yet: Step once to let the planner propose one")
    return current.number


def _routable(svc: Services, sid: str) -> None:
    """The loop follows an accepted latest attempt before any route, so a route on it would be ignored:
    say so instead of recording a decision that does nothing."""
    current = svc.studio.state(sid).current_step
    last = current.last_attempt if current else None
    if last is not None and last.effective_verdict == "accept":
        raise DecisionError(f"attempt {last.number} of step {current.number} is accepted; override it to reject "
                            "first, then route")


def fork(svc: Services, sid: str | None, step_number: Any) -> tuple[str, str]:
    missing = _need_session(sid)
    if missing:
        return "", missing
    created: list[str] = []

    def work() -> str:
        if step_number in (None, ""):
            raise DecisionError("pick the step to fork from")
        number = int(str(step_number).removeprefix("step ").strip())
        created.append(svc.studio.fork_at_step(sid, number))
        return ok(f"forked {sid} at the start of step {number} into {created[0]}; it is open now")
    message = _guarded(work)
    return (created[0] if created else ""), message


# ----- annotation --------------------------------------------------------------------------------------------

def annotate(svc: Services, sid: str | None, target: str | None, label: str, value: Any, actor: str | None) -> str:
    missing = _need_session(sid) or _need_name(actor)
    if missing:
        return missing

    def work() -> str:
        where = "session" if label == "D1" else (target or "")
        if label != "D1" and label != "note" and not target:
            raise DecisionError("pick an attempt to label")
        if label == "note" and not target:
            where = "session"
        svc.studio.annotate(sid, where, label, value if isinstance(value, str) else _whole(value), actor)
        return ok(f"{label} = {value} recorded for {where} by {actor.strip()}")
    return _guarded(work)


def _whole(value: Any) -> int | str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return int(number) if number == int(number) else str(value)


def neighbour(targets: list[str], current: str | None, delta: int) -> str | None:
    """The attempt before (-1) or after (+1) `current` in `targets`, staying at the ends."""
    if not targets:
        return None
    if current not in targets:
        return targets[0] if delta > 0 else targets[-1]
    index = min(max(targets.index(current) + delta, 0), len(targets) - 1)
    return targets[index]


def attempt_targets(svc: Services, sid: str | None) -> list[str]:
    if not sid:
        return []
    try:
        state = svc.studio.state(sid)
    except StoreError:
        return []
    return [attempt_target(s.number, a.number) for s in state.steps for a in s.attempts if a.verified is not None]


@dataclass
class AgreementView:
    table: list[list[Any]]
    report: Any
    figures: tuple[Any, Any, Any]
    message: str


def agreement(svc: Services, sid: str | None, scope: str) -> AgreementView:
    """Human-vs-VLM agreement over this session or every session, with the three charts."""
    empty = AgreementView([], None, (None, None, None), "")
    try:
        from collabvr.agreement import agreement as compute
    except ImportError:
        empty.message = problem("agreement figures are not available in this build (collabvr.agreement missing)")
        return empty
    try:
        if scope == "all sessions":
            states = [svc.studio.state(i) for i in svc.store.session_ids()]
        else:
            missing = _need_session(sid)
            if missing:
                empty.message = missing
                return empty
            states = [svc.studio.state(sid)]
        report = compute(states)
    except (StoreError, ValueError) as exc:
        empty.message = problem(_plain(exc))
        return empty
    table = agreement_table(report)
    figures = _charts(states[0] if scope != "all sessions" and states else None, report, states)
    n = _get(report, "d2", "n")
    notes = [str(x) for x in (getattr(report, "notes", None) or [])]
    text = f"agreement over {len(states)} session(s), {n or 0} D2 label(s)"
    if notes:
        text += " — " + "; ".join(render.esc(x) for x in notes[:5])
    return AgreementView(table, report, figures, ok(text))


def _get(report: Any, part: str, key: str) -> Any:
    section = getattr(report, part, None) or {}
    if isinstance(section, dict):
        return section.get(key)
    return getattr(section, key, None)


def _fmt(value: Any) -> Any:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return round(value, 3)
    return value


def agreement_table(report: Any) -> list[list[Any]]:
    rows = [
        ["D2 human vs VLM verdict", "labels", _get(report, "d2", "n")],
        ["D2 human vs VLM verdict", "confusion (human → VLM)", _confusion_text(_get(report, "d2", "confusion"))],
        ["D2 human vs VLM verdict", "accept recall", _get(report, "d2", "accept_recall")],
        ["D2 human vs VLM verdict", "reject recall", _get(report, "d2", "reject_recall")],
        ["D2 human vs VLM verdict", "agreement", _get(report, "d2", "agreement")],
        ["D2 human vs VLM verdict", "Cohen's kappa", _get(report, "d2", "kappa")],
        ["D1 plan depth", "sessions", _get(report, "d1", "n")],
        ["D1 plan depth", "exact match", _get(report, "d1", "exact_match")],
        ["D1 plan depth", "mean absolute error", _get(report, "d1", "mae")],
        ["D3 suggestion rating", "ratings", _get(report, "d3", "n")],
        ["D3 suggestion rating", "mean (1-3)", _get(report, "d3", "mean")],
    ]
    return [[a, b, _fmt(c)] for a, b, c in rows]


def _confusion_text(confusion: Any) -> str:
    if not confusion:
        return "n/a"
    if isinstance(confusion, dict):
        cells = []
        for human, row in confusion.items():
            if isinstance(row, dict):
                cells += [f"{human}→{vlm}: {n}" for vlm, n in row.items()]
            else:
                cells.append(f"{human}: {row}")
        return ", ".join(cells)
    return str(confusion)


def _charts(state: SessionState | None, report: Any, states: list[SessionState]) -> tuple[Any, Any, Any]:
    try:
        from ui import charts
    except ImportError:
        return None, None, None
    target = state if state is not None else (states[-1] if states else None)
    try:
        seconds = charts.vgm_seconds_chart(target) if target is not None else None
        confusion = charts.confusion_chart(report)
        verdicts = charts.verdicts_chart(target) if target is not None else None
    except Exception:  # a chart must never take the table down with it
        return None, None, None
    return seconds, confusion, verdicts


# ----- the sessions view ---------------------------------------------------------------------------------------

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
    missing = _need_session(sid)
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
    return _guarded(work)


def export_session(svc: Services, sid: str | None) -> tuple[list[str], str]:
    missing = _need_session(sid)
    if missing:
        return [], missing
    from storage.export import export_sessions

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = svc.data_dir / "exports" / f"session-{sid}-{stamp}.jsonl"
    try:
        result = export_sessions(svc.store, svc.artifacts, [sid], out)
    except (StoreError, FileNotFoundError, ValueError) as exc:
        return [], problem(_plain(exc))
    return ([str(result.jsonl_path), str(result.zip_path)],
            ok(f"exported {result.attempts} attempt(s) of {sid}: JSONL rows and a zip with the full log and clips"))


def final_video(svc: Services, sid: str | None) -> str | None:
    if not sid:
        return None
    try:
        return session_view(svc, sid).final_video
    except StoreError:
        return None


def wait_idle(svc: Services, sid: str, timeout: float = 60.0) -> None:
    """Block until the session's worker is idle (tests and scripts)."""
    deadline = time.time() + timeout
    svc.studio.wait(sid, timeout)
    while svc.studio.is_running(sid) and time.time() < deadline:
        time.sleep(0.02)

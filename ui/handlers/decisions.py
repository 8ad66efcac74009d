"""People's decisions on the current step: flip a verdict, edit the next action, route (regen from a picked
frame, split, fallback), and fork from a past step."""

from __future__ import annotations

from typing import Any

from collabvr.engine import DecisionError
from collabvr.events import parse_attempt_target
from collabvr.loop import next_command
from collabvr.store import StoreError
from ui import render
from ui.handlers.common import Services, guarded, need_name, need_session, ok
from ui.handlers.view import focus_line


def _then(svc: Services, sid: str) -> str:
    """What happens after a decision: the loop reads the log, so it follows from its next command; a
    command already in flight that this decision makes stale is dropped (and recorded with its cost)."""
    if svc.studio.is_running(sid):
        return ("the run goes on from it; a result in flight that it makes stale is discarded, its cost "
                "recorded")
    return "Step or Run to continue"


def override(svc: Services, sid: str | None, target: str | None, verdict: str, reason: str, suggestion: str,
             actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        step_number, attempt = parse_attempt_target(target)
        svc.studio.override_verdict(sid, step_number, attempt, verdict, actor, reason or "", suggestion or "")
        return ok(f"{target} overridden to {verdict} by {actor.strip()}; {_then(svc, sid)}")
    return guarded(work)


def decision_focus(svc: Services, sid: str | None, target: str | None) -> tuple[str, str, str]:
    """(the line that says which attempt accept/reject act on, the accept button's label, the reject
    button's label) for the attempt a person picked: a decision names its attempt before it is made."""
    try:
        state = svc.studio.state(sid) if sid else None
    except StoreError:
        state = None
    if state is None:
        return render.decision_focus_empty(), "accept", "reject"
    return focus_line(state, next_command(state), target)


def edit_action(svc: Services, sid: str | None, text: str, actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        current = svc.studio.state(sid).current_step
        if current is None:
            raise DecisionError("there is no step yet: Step once to let the planner propose one")
        svc.studio.edit_action(sid, current.number, text or "", actor)
        return ok(f"the next generation of step {current.number} will use the edited action")
    return guarded(work)


def regen_source(svc: Services, sid: str | None, target: str | None) -> tuple[int, int]:
    """(last frame index, suggested frame) of the attempt a regen would start from: the suggestion is the
    verifier's first failing frame."""
    if not sid or not target:
        return 0, 0
    try:
        step_number, attempt = parse_attempt_target(target)
        a = svc.studio.state(sid).step(step_number).attempt(attempt)
    except (ValueError, KeyError, StoreError):
        return 0, 0
    last = a.candidate_frames - 1
    failing = a.verified.first_failing_frame if a.verified else None
    return last, min(failing if failing is not None else 0, last)


def regen_preview(svc: Services, sid: str | None, target: str | None, frame: Any) -> str | None:
    """A full-size PNG of frame `frame` of the attempt's candidate clip (None when there is nothing to show)."""
    if not sid or not target:
        return None
    try:
        step_number, attempt = parse_attempt_target(target)
        a = svc.studio.state(sid).step(step_number).attempt(attempt)
        index = min(max(int(frame or 0), 0), a.candidate_frames - 1)
        return str(svc.links.full_frame(a.generated.candidate, index))
    except (KeyError, StoreError, OSError, ValueError):
        return None


def route_regen(svc: Services, sid: str | None, target: str | None, frame: Any, suggestion: str,
                actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _routable(svc, sid)
        step_number, attempt = parse_attempt_target(target)
        svc.studio.request_route(sid, step_number, "regen", actor, attempt=attempt, frame_index=int(frame or 0),
                                 suggestion=suggestion or "")
        return ok(f"step {step_number} will regenerate from frame {int(frame or 0)} of attempt {attempt}")
    return guarded(work)


def route_split(svc: Services, sid: str | None, sub_steps: Any, actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _routable(svc, sid)
        current = _current_step(svc, sid)
        svc.studio.request_route(sid, current, "split", actor, estimated_steps=int(sub_steps or 0))
        return ok(f"step {current} will be re-planned as {int(sub_steps)} sub-steps")
    return guarded(work)


def route_fallback(svc: Services, sid: str | None, actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        _routable(svc, sid)
        current = _current_step(svc, sid)
        svc.studio.request_route(sid, current, "fallback", actor)
        return ok(f"step {current} falls back to generating the whole remaining task")
    return guarded(work)


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
    missing = need_session(sid)
    if missing:
        return "", missing
    created: list[str] = []

    def work() -> str:
        if step_number in (None, ""):
            raise DecisionError("pick the step to fork from")
        number = int(str(step_number).removeprefix("step ").strip())
        created.append(svc.studio.fork_at_step(sid, number))
        return ok(f"forked {sid} at the start of step {number} into {created[0]}; it is open now")
    message = guarded(work)
    return (created[0] if created else ""), message

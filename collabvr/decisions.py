"""People's decisions: the rules that say whether one fits a session, written once.

Each `make_*` function checks a decision against a session's state and returns the event that records it,
or raises DecisionError saying why not. The engine appends what they return; `collabvr.replay` runs the
same checks on a log that comes from elsewhere (an import, a database the doctor examines), so a history
the engine would have refused is refused there too.

Texts are never cut: one over its limit is refused with the limit named (the limits are stated in the UI).
"""

from __future__ import annotations

import re

from collabvr.config import BREAKPOINTS, Breakpoint
from collabvr.events import (
    ActionEdited, Annotated, BreakpointsSet, Event, RouteRequested, VerdictOverridden, attempt_target,
    parse_attempt_target,
)
from collabvr.loop import baseline_name
from collabvr.state import AttemptState, SessionState, StepState

MAX_PROMPT_CHARS = 4000  # a task prompt or an action
MAX_TEXT_CHARS = 4000  # a reason, a suggestion, a note
MAX_NAME_CHARS = 80  # a person's name
STUDY_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the name of a reliability study (collabvr.study)
SPLIT_RANGE = (2, 8)
D1_RANGE = (1, 12)
D3_RANGE = (1, 3)


class DecisionError(ValueError):
    """A person's decision does not fit the session's current state; the message says why."""


def check_prompt(prompt: str, what: str = "prompt") -> str:
    text = _clean(prompt)
    if not text:
        raise DecisionError(f"the {what} is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise DecisionError(f"the {what} has {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return text


def check_text(text: str | None, what: str) -> str:
    """An optional free text (a reason, a suggestion): stripped, and refused over the limit."""
    cleaned = _clean(text or "")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise DecisionError(f"the {what} has {len(cleaned)} characters; at most {MAX_TEXT_CHARS} are allowed")
    return cleaned


def check_actor(actor: str | None) -> str:
    name = _clean(actor or "")
    if not name or name == "engine":
        raise DecisionError("a person's decision needs the person's name")
    if len(name) > MAX_NAME_CHARS:
        raise DecisionError(f"the name has {len(name)} characters; at most {MAX_NAME_CHARS} are allowed")
    return name


# Bidirectional overrides and isolates can make a text read differently from what it says ("Trojan
# Source"): in an audit trail a decision must read as what it is. Natural right-to-left text needs none.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _clean(text: str) -> str:
    """Stripped; refused if it carries NUL (binary pasted by mistake, or an attack on what reads logs) or
    bidirectional control characters."""
    if "\x00" in text:
        raise DecisionError("the text contains NUL characters; paste plain text")
    if BIDI_CONTROLS.intersection(text):
        raise DecisionError("the text contains right-to-left override characters, which can disguise what it "
                            "says; remove them (right-to-left text itself is fine)")
    return text.strip()


def open_step(state: SessionState, step_number: int, allow_resolved: bool = False) -> StepState:
    """The current step, if `step_number` is it and a decision can still change it."""
    if state.finished is not None:
        raise DecisionError("the session has finished; fork it from an earlier event to decide differently")
    current = state.current_step
    if current is None or current.number != step_number:
        latest = current.number if current else "none"
        raise DecisionError(f"step {step_number} is not the current step (current: {latest}); "
                            "fork from it to change a past step, or annotate it")
    if current.status == "split":
        raise DecisionError(f"step {step_number} was split into sub-steps; fork from it to decide differently")
    if state.config.method != "collabvr":
        raise DecisionError(f"this is a {baseline_name(state.config)} baseline session: its method takes no "
                            "decisions in the loop (annotate it instead)")
    if current.resolved and not allow_resolved:
        raise DecisionError(f"step {step_number} is already resolved")
    return current


def make_edit(state: SessionState, step: int, text: str, actor: str, reason: str = "") -> ActionEdited:
    """Replace the instruction the next generation of `step` will use."""
    current = open_step(state, step)
    return ActionEdited(step=step, before=current.instruction, after=check_prompt(text, "edited action"),
                        actor=check_actor(actor), reason=check_text(reason, "reason"))


def make_override(state: SessionState, step: int, attempt: int, verdict: str, actor: str, reason: str = "",
                  suggestion: str = "") -> VerdictOverridden:
    """Flip (or confirm with a suggestion) the verdict of a verified attempt of the current step."""
    current = open_step(state, step, allow_resolved=True)
    if verdict not in ("accept", "reject"):
        raise DecisionError(f"verdict must be accept or reject, not {verdict!r}")
    try:
        target = current.attempt(attempt)
    except KeyError:
        raise DecisionError(f"step {step} has no attempt {attempt}") from None
    if target.verified is None:
        raise DecisionError(f"attempt {attempt} of step {step} has not been verified yet")
    return VerdictOverridden(step=step, attempt=attempt, verdict=verdict, actor=check_actor(actor),  # type: ignore[arg-type]
                             reason=check_text(reason, "reason"), suggestion=check_text(suggestion, "suggestion"))


def make_route(state: SessionState, step: int, action: str, actor: str, *, estimated_steps: int | None = None,
               attempt: int | None = None, frame_index: int | None = None, suggestion: str = "",
               reason: str = "") -> RouteRequested:
    """Route the current step as a person decides: regen from a frame of an attempt (its frames before it
    are kept), split into `estimated_steps` sub-steps, or fallback."""
    current = open_step(state, step, allow_resolved=True)
    if action == "regen":
        try:
            source = current.attempt(attempt) if attempt else current.last_attempt
        except KeyError:
            raise DecisionError(f"step {step} has no attempt {attempt}") from None
        if source is None:
            raise DecisionError("regen needs an attempt to start from; this step has none yet")
        if frame_index is not None and not 0 <= frame_index < source.candidate_frames:
            raise DecisionError(f"frame {frame_index} is outside attempt {source.number} "
                                f"(0..{source.candidate_frames - 1})")
        attempt = source.number
    elif action == "split":
        low, high = SPLIT_RANGE
        if estimated_steps is None or not low <= estimated_steps <= high:
            raise DecisionError(f"split needs a number of sub-steps between {low} and {high}")
    elif action != "fallback":
        raise DecisionError(f"route action must be regen, split or fallback, not {action!r}")
    return RouteRequested(step=step, action=action, estimated_steps=estimated_steps, attempt=attempt,  # type: ignore[arg-type]
                          frame_index=frame_index, actor=check_actor(actor),
                          suggestion=check_text(suggestion, "suggestion"), reason=check_text(reason, "reason"))


def make_label(state: SessionState, target: str, label: str, value: int | str, actor: str,
               reason: str = "", *, study: str | None = None, frame: int | None = None) -> Annotated:
    """A reliability label; it never changes what the loop does. `study` names the study it was given in;
    `frame` anchors a note at a frame of the attempt's candidate clip (the clip the timeline plays)."""
    value = _label_value(state, target, label, value)
    if frame is not None:
        frame = _label_frame(state, target, label, frame)
    if study is not None and not (isinstance(study, str) and STUDY_NAME.fullmatch(study)):
        raise DecisionError(f"{str(study)[:40]!r} is not a study's name")
    return Annotated(target=target, label=label, value=value, actor=check_actor(actor),  # type: ignore[arg-type]
                     reason=check_text(reason, "reason"), study=study, frame=frame)


def make_breakpoints(breakpoints: list[str] | tuple[str, ...], actor: str) -> BreakpointsSet:
    unknown = [b for b in breakpoints if b not in BREAKPOINTS]
    if unknown:
        raise DecisionError(f"unknown breakpoint(s) {', '.join(unknown)}; known: {', '.join(BREAKPOINTS)}")
    chosen: tuple[Breakpoint, ...] = tuple(b for b in BREAKPOINTS if b in breakpoints)  # type: ignore[misc]
    return BreakpointsSet(breakpoints=chosen, actor=check_actor(actor))


def recheck(state: SessionState, event: Event) -> None:
    """Raise DecisionError if `event`, a person's decision found in a log, is not one the rules above would
    have recorded on `state` (for imports and the doctor)."""
    if isinstance(event, ActionEdited):
        expected: Event = make_edit(state, event.step, event.after, event.actor, event.reason)
        if event.before != expected.before:  # type: ignore[union-attr]
            raise DecisionError(f"the edit says the action was {event.before!r}, but it was "
                                f"{expected.before!r}")  # type: ignore[union-attr]
    elif isinstance(event, VerdictOverridden):
        make_override(state, event.step, event.attempt, event.verdict, event.actor, event.reason, event.suggestion)
    elif isinstance(event, RouteRequested):
        made = make_route(state, event.step, event.action, event.actor, estimated_steps=event.estimated_steps,
                          attempt=event.attempt, frame_index=event.frame_index, suggestion=event.suggestion,
                          reason=event.reason)
        if event.action == "regen" and made.attempt != event.attempt:
            raise DecisionError(f"the regen names attempt {event.attempt}, but would start from {made.attempt}")
    elif isinstance(event, Annotated):
        made_label = make_label(state, event.target, event.label, event.value, event.actor, event.reason,
                                study=event.study, frame=event.frame)
        if made_label.value != event.value:
            raise DecisionError(f"the label's value {event.value!r} is not one the app records "
                                f"({made_label.value!r})")
    elif isinstance(event, BreakpointsSet):
        make_breakpoints(list(event.breakpoints), event.actor)
    else:
        raise DecisionError(f"{event.type} is not a person's decision")


def _label_value(state: SessionState, target: str, label: str, value: int | str) -> int | str:
    if label == "note":
        text = check_text(str(value), "note")
        if not text:
            raise DecisionError("a note is empty")
        return text
    if label == "D1":
        if target != "session":
            raise DecisionError("D1 (plan depth) is a label of the whole session: target must be 'session'")
        depth = _whole(value, "D1 plan depth")
        low, high = D1_RANGE
        if not low <= depth <= high:
            raise DecisionError(f"D1 plan depth must be between {low} and {high}")
        return depth
    attempt = _attempt_for_target(state, target)
    if label == "D2":
        if value not in ("accept", "reject"):
            raise DecisionError(f"D2 must be accept or reject, not {value!r}")
        return value
    if label == "D3":
        if not (attempt.vlm_verdict and attempt.vlm_verdict.suggestion):
            raise DecisionError(f"{target} has no suggestion to rate")
        rating = _whole(value, "D3 rating")
        if not D3_RANGE[0] <= rating <= D3_RANGE[1]:
            raise DecisionError(f"D3 rating must be 1, 2 or 3, not {rating}")
        return rating
    raise DecisionError(f"unknown label {label!r}; use D1, D2, D3 or note")


def _label_frame(state: SessionState, target: str, label: str, frame: object) -> int:
    if label != "note":
        raise DecisionError("only a note can be anchored at a moment of a clip")
    attempt = _attempt_for_target(state, target, verified=False)  # a note may be made while it is verified
    index = _whole(frame, "the frame")  # type: ignore[arg-type]
    if not 0 <= index < attempt.candidate_frames:
        raise DecisionError(f"frame {index} is outside the clip of {target} (0..{attempt.candidate_frames - 1})")
    return index


def _whole(value: int | str, what: str) -> int:
    if isinstance(value, bool):
        raise DecisionError(f"{what} must be a whole number, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DecisionError(f"{what} must be a whole number, not {value!r}") from None


def _attempt_for_target(state: SessionState, target: str, verified: bool = True) -> AttemptState:
    try:
        step_number, attempt_number = parse_attempt_target(target)
        attempt = state.step(step_number).attempt(attempt_number)
    except (ValueError, KeyError):
        raise DecisionError(f"{target!r} is not an attempt of this session "
                            f"(write it as {attempt_target(1, 1)!r})") from None
    if verified and attempt.verified is None:
        raise DecisionError(f"{target} has not been verified yet")
    return attempt

